import { createHash } from 'node:crypto';
import { z } from 'zod';

// A unit of replication work on the `tasks` / `tasks.retry` topics. Level-triggered: it names
// what to converge (source repository + reference → target repository); the replicator reads the
// source when it runs. The policy options it needs travel with it, so a task is self-contained.
export const TASK_SCHEMA_VERSION = 1;
/**
 * A referrers task (`options.referrersOf`): a worker of an earlier version would drop the option it
 * does not know and copy the artifact itself, filtered out or not; the version makes it
 * dead-letter the record instead (replayable once every worker is upgraded).
 */
export const REFERRERS_TASK_SCHEMA_VERSION = 2;

const digest = z.string().regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/);

export const ReplicationTaskSchema = z.object({
  schema: z.union([z.literal(TASK_SCHEMA_VERSION), z.literal(REFERRERS_TASK_SCHEMA_VERSION)]),
  id: z.string().min(1),
  /** The event (or reconcile pass) that caused it, so duplicates can be dropped. */
  eventId: z.string().min(1),
  /** What the event said happened; a hint only, the source decides. */
  action: z.enum(['push', 'delete']),
  origin: z.enum(['event', 'reconcile', 'replay', 'manual']).default('event'),
  sourceId: z.string().min(1),
  repository: z.string().min(1),
  tag: z.string().optional(),
  digest: digest.optional(),
  targetId: z.string().min(1),
  destRepository: z.string().min(1),
  policyId: z.string().min(1),
  options: z.object({
    deletion: z.boolean().default(false),
    override: z.boolean().default(true),
    manifestFormat: z.enum(['preserve', 'docker']).optional(),
    platforms: z.array(z.string()).optional(),
    referrers: z.boolean().default(false),
    speedKbps: z.number().int().positive().optional(),
    /**
     * Copy only referrers (signatures, SBOMs), and only into a target that already holds their
     * artifact: those of `digest` (`digest`: named by a referrer tag such as `sha256-<hex>.sig`), or
     * those of the subject `digest`'s manifest names (`subject`: an untagged push, which may be an
     * OCI 1.1 referrer). Planned for a signature pushed after its artifact.
     */
    referrersOf: z.enum(['digest', 'subject']).optional(),
  }).default({ deletion: false, override: true, referrers: false }),
  /** Attempts through the retry topic so far. */
  attempt: z.number().int().min(0).default(0),
  /** Times this task was replayed from the DLQ; a dead letter of a replay carries it in its id. */
  replays: z.number().int().min(1).optional(),
  /** Earliest time to run (retry topic). */
  notBefore: z.iso.datetime({ offset: true }).optional(),
  occurredAt: z.iso.datetime({ offset: true }),
  createdAt: z.iso.datetime({ offset: true }),
  lastError: z.object({ code: z.string(), message: z.string() }).optional(),
}).refine((t) => t.tag !== undefined || t.digest !== undefined, { message: 'a task needs a tag or a digest', path: ['tag'] })
  .refine((t) => !t.options.referrersOf || (t.digest !== undefined && t.tag === undefined && t.action === 'push'), {
    message: 'a referrers task names its artifact by digest, without a tag', path: ['options', 'referrersOf'],
  })
  .refine((t) => (t.options.referrersOf !== undefined) === (t.schema === REFERRERS_TASK_SCHEMA_VERSION), {
    message: `a referrers task, and only one, is schema ${REFERRERS_TASK_SCHEMA_VERSION}`, path: ['schema'],
  });

export type ReplicationTask = z.infer<typeof ReplicationTaskSchema>;
export type ReplicationTaskInput = z.input<typeof ReplicationTaskSchema>;

/** Bus key for tasks: per-destination-repository ordering within a target. */
export function taskKey(t: Pick<ReplicationTask, 'targetId' | 'destRepository'>): string {
  return `${t.targetId}/${t.destRepository}`;
}

/** Deterministic task id: the same event and policy always give the same task id. */
export function taskId(eventId: string, policyId: string, reference: string): string {
  return createHash('sha256').update(`${eventId}\0${policyId}\0${reference}`).digest('hex').slice(0, 32);
}

export const TaskResultSchema = z.object({
  schema: z.literal(TASK_SCHEMA_VERSION),
  taskId: z.string(),
  eventId: z.string(),
  policyId: z.string(),
  sourceId: z.string(),
  targetId: z.string(),
  repository: z.string(),
  destRepository: z.string(),
  reference: z.string(),
  status: z.enum(['done', 'skipped', 'deleted', 'retry', 'dlq']),
  /** Digest the target now holds for the reference, when known. */
  digest: z.string().optional(),
  bytes: z.number().int().min(0).default(0),
  blobs: z.object({ uploaded: z.number().int(), mounted: z.number().int(), skipped: z.number().int() }).optional(),
  durationMs: z.number().min(0),
  attempt: z.number().int().min(0),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  occurredAt: z.iso.datetime({ offset: true }),
  finishedAt: z.iso.datetime({ offset: true }),
});

export type TaskResult = z.infer<typeof TaskResultSchema>;
