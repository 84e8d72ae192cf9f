// `GET /replications`, `GET /dlq`, `POST /dlq/replay`: mounted by the app under /api/v1 behind
// bearer-token auth and express.json().
import express, { type Response, type Router } from 'express';
import { z } from 'zod';
import type { Bus, BusInspection } from '../bus/port.ts';
import { isBridgeError } from '../errors.ts';
import { sendError } from '../http/errors.ts';
import type { DlqStore } from './dlq-store.ts';
import type { InFlight } from './progress.ts';
import type { ResultsStore } from './results-store.ts';
import { TaskResultSchema } from './task.ts';

/** The replicator's consumer group (REPLICATOR_GROUP in replicator.ts; not imported to keep this light). */
export const DEFAULT_REPLICATOR_GROUP = 'replicator';
/** The group that reads `tasks.retry` (retryGroupOf in replicator.ts). */
const retryGroupOf = (group: string) => `${group}.retry`;

export interface ReplicationRouterDeps {
  results: Pick<ResultsStore, 'query' | 'counts'>;
  dlq: Pick<DlqStore, 'list' | 'replay'>;
  progress: () => InFlight[];
  bus: Pick<Bus, 'inspect'>;
  replicatorGroup?: string;
  /** How long one inspection of the bus and one DLQ count are reused; they cost broker round trips. */
  cacheMs?: number;
}

export interface QueueDepths {
  /** Records on `tasks.retry` the replicator's retry group has not consumed yet. */
  retryPending: number;
  /** Records on the `dlq` topic, tombstones and superseded letters included until compaction. */
  dlqRecords: number;
}

/** Pending retries and DLQ records from an inspection. Pure. */
export function queueDepths(ins: BusInspection, replicatorGroup = DEFAULT_REPLICATOR_GROUP): QueueDepths {
  const committed = new Map<number, bigint>();
  for (const o of ins.groups.find((g) => g.group === retryGroupOf(replicatorGroup))?.offsets ?? []) {
    if (o.topic === 'tasks.retry') committed.set(o.partition, BigInt(o.committed));
  }
  let retryPending = 0n;
  let dlqRecords = 0n;
  for (const t of ins.topics) {
    for (const p of t.partitions) {
      const high = BigInt(p.high);
      const low = BigInt(p.low);
      if (t.topic === 'tasks.retry') {
        const from = committed.get(p.partition) ?? low;
        const start = from > low ? from : low;
        if (high > start) retryPending += high - start;
      } else if (t.topic === 'dlq' && high > low) {
        dlqRecords += high - low;
      }
    }
  }
  return { retryPending: Number(retryPending), dlqRecords: Number(dlqRecords) };
}

const optionalText = z.string().trim().min(1).max(512).optional();

const ReplicationsQuerySchema = z.object({
  repository: optionalText,
  policy: optionalText,
  status: TaskResultSchema.shape.status.optional(),
  target: optionalText,
  page: z.coerce.number().int().min(1).default(1),
  page_size: z.coerce.number().int().min(1).max(500).default(50),
});

const DlqQuerySchema = z.object({
  target: optionalText,
  policy: optionalText,
  code: optionalText,
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});

const FilterSchema = z.object({ target: optionalText, policy: optionalText, code: optionalText }).strict();

export const ReplayBodySchema = z.object({
  ids: z.array(z.string().min(1).max(512)).min(1).max(10000).optional(),
  all: z.boolean().optional(),
  filter: FilterSchema.optional(),
}).strict().superRefine((b, ctx) => {
  if (b.all !== true && b.ids === undefined) {
    ctx.addIssue({ code: 'custom', path: ['ids'], message: 'give "ids" (dead letter ids) or "all": true' });
    ctx.addIssue({ code: 'custom', path: ['all'], message: 'give "ids" (dead letter ids) or "all": true' });
  }
  if (b.all === true && b.ids !== undefined) ctx.addIssue({ code: 'custom', path: ['all'], message: 'give either "ids" or "all": true, not both' });
});

interface Issue { path: string; message: string }

function issuesOf(e: z.ZodError): Issue[] {
  return e.issues.flatMap((i) => {
    const at = i.path.map(String).join('.');
    // Name each unknown field, so a typo like "id" for "ids" is pointed at.
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => ({ path: at ? `${at}.${k}` : k, message: 'unknown field' }));
    return [{ path: at || '(body)', message: i.message }];
  });
}

function invalid(res: Response, error: string, what: string, issues: Issue[]): void {
  sendError(res, 400, error, `invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues });
}

/** Bus trouble is the server's (503, try again); anything else goes to the app's error handler. */
function busTrouble(res: Response, e: unknown): boolean {
  if (!isBridgeError(e) || !e.retryable) return false;
  res.set('Retry-After', '5');
  sendError(res, 503, 'bus_unavailable', 'the bus is not reachable; try again');
  return true;
}

/** Caches one async value for `ms`; concurrent callers share the call in flight. */
function cached<T>(ms: number, fn: () => Promise<T>): { get(): Promise<T>; clear(): void } {
  let value: { at: number; p: Promise<T> } | undefined;
  return {
    get() {
      if (value && Date.now() - value.at < ms) return value.p;
      const p = fn();
      const entry = { at: Date.now(), p };
      value = entry;
      p.catch(() => { if (value === entry) value = undefined; });
      return p;
    },
    clear() { value = undefined; },
  };
}

export function replicationRouter(deps: ReplicationRouterDeps): Router {
  const router = express.Router();
  const ttl = deps.cacheMs ?? 2000;
  const inspection = cached(ttl, () => deps.bus.inspect());
  const dlqSize = cached(ttl, async () => (await deps.dlq.list({ limit: 0 })).total);

  router.get('/replications', async (req, res) => {
    const q = ReplicationsQuerySchema.safeParse(req.query);
    if (!q.success) return invalid(res, 'invalid_query', 'query', issuesOf(q.error));
    const { page, page_size, ...filter } = q.data;
    const result = deps.results.query({ ...filter, page, pageSize: page_size });
    const inflight = deps.progress().filter((t) =>
      (filter.policy === undefined || t.policyId === filter.policy)
      && (filter.target === undefined || t.targetId === filter.target)
      && (filter.repository === undefined || t.repository === filter.repository || t.destRepository === filter.repository));
    // The queues are extra: a bus hiccup must not hide the outcomes and in-flight tasks.
    const [ins, dlq] = await Promise.allSettled([inspection.get(), dlqSize.get()]);
    const depths = ins.status === 'fulfilled' ? queueDepths(ins.value, deps.replicatorGroup) : undefined;
    res.json({
      items: result.items,
      total: result.total,
      page,
      page_size,
      inflight,
      counts: deps.results.counts(),
      queues: {
        retry_pending: depths?.retryPending ?? null,
        dlq: dlq.status === 'fulfilled' ? dlq.value : null,
        dlq_records: depths?.dlqRecords ?? null,
      },
    });
  });

  router.get('/dlq', async (req, res) => {
    const q = DlqQuerySchema.safeParse(req.query);
    if (!q.success) return invalid(res, 'invalid_query', 'query', issuesOf(q.error));
    try {
      res.json(await deps.dlq.list(q.data));
    } catch (e) {
      if (!busTrouble(res, e)) throw e;
    }
  });

  router.post('/dlq/replay', async (req, res) => {
    if (req.is('application/json') === false) return sendError(res, 415, 'unsupported_media_type', 'Content-Type must be application/json');
    const b = ReplayBodySchema.safeParse(req.body ?? {});
    if (!b.success) return invalid(res, 'invalid_replay', 'replay request', issuesOf(b.error));
    try {
      const out = await deps.dlq.replay(b.data);
      dlqSize.clear();
      res.json(out);
    } catch (e) {
      if (!busTrouble(res, e)) throw e;
    }
  });

  return router;
}
