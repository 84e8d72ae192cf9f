import { z } from 'zod';

// The normalised event every ingest format turns into; published to the `events` topic.
export const EVENT_SCHEMA_VERSION = 1;

export const ArtifactEventSchema = z.object({
  schema: z.literal(EVENT_SCHEMA_VERSION),
  /** Stable across the sender's retries: CloudEvents id, else a hash of the event's identity. */
  id: z.string().min(1),
  sourceId: z.string().min(1),
  action: z.enum(['push', 'delete']),
  /** Full repository path in the source, e.g. `library/nginx` or `proj/a/b/img`. */
  repository: z.string().min(1),
  /** Manifest digest when the sender gave one. */
  digest: z.string().regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/).optional(),
  /** Tag, absent for pushes and deletes by digest. */
  tag: z.string().optional(),
  mediaType: z.string().optional(),
  /** When the sender says it happened (ISO 8601). */
  occurredAt: z.iso.datetime({ offset: true }),
  receivedAt: z.iso.datetime({ offset: true }),
  format: z.enum(['harbor-v1', 'harbor-v2', 'cloudevents', 'distribution']),
  /** Sender's own type name, kept for operators (e.g. PUSH_ARTIFACT, harbor.artifact.pushed). */
  sourceType: z.string(),
  operator: z.string().optional(),
  /** Information only: never used as an address. */
  resourceUrl: z.string().optional(),
});

export type ArtifactEvent = z.infer<typeof ArtifactEventSchema>;

/** Bus key for events: per-repository ordering within a source. */
export function eventKey(e: Pick<ArtifactEvent, 'sourceId' | 'repository'>): string {
  return `${e.sourceId}/${e.repository}`;
}
