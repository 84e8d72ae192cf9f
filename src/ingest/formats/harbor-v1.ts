import { z } from 'zod';

// Harbor 1.10 webhook payload (src/core/notifier/model/event.go and its `EventType*` constants).
// Harbor 2.x kept this envelope and these two objects, so the v2 Default schema reuses them.

/** v1.10 event types that name a change to an image; every other type is informational. */
export const HARBOR_V1_ARTIFACT_TYPES: ReadonlyMap<string, 'push' | 'delete'> = new Map([
  ['pushImage', 'push'],
  ['deleteImage', 'delete'],
]);

/** v1.10 types that are answered 2xx and dropped. `testEndpoint` is what the "test" button names. */
export const HARBOR_V1_IGNORED_TYPES: ReadonlySet<string> = new Set([
  'pullImage', 'uploadChart', 'downloadChart', 'deleteChart',
  'scanningCompleted', 'scanningFailed', 'projectQuota', 'replication', 'testEndpoint',
]);

/** Upper bound on resources in one payload (a v1.10 deleteImage lists every deleted tag). */
export const MAX_RESOURCES = 1000;

// Go marshals absent strings as "" (no omitempty on tag/name/...) and nil slices as null: accept both.
const text = z.string().nullish();

export const HarborResourceSchema = z.looseObject({
  digest: text,
  /** "" when pushed by digest (v1.10); the digest itself in v2 when there is no tag. */
  tag: text,
  resource_url: text,
});

export const HarborRepositorySchema = z.looseObject({
  /** Omitted when Harbor could not read the repository record (e.g. it was just deleted). */
  date_created: z.number().nullish(),
  name: text,
  namespace: text,
  repo_full_name: z.string().min(1),
  repo_type: text,
});

/** `event_data` of an artifact event: the part every Harbor format shares (CloudEvents `data` too). */
export const HarborArtifactDataSchema = z.looseObject({
  resources: z.array(HarborResourceSchema).min(1).max(MAX_RESOURCES),
  repository: HarborRepositorySchema,
});

/** Largest unix-seconds value still written as a four-digit-year ISO timestamp (9999-12-31T23:59:59Z). */
export const MAX_UNIX_SECONDS = 253_402_300_799;

export const HarborV1PayloadSchema = z.looseObject({
  type: z.string().min(1),
  /** Unix seconds. */
  occur_at: z.number().int().min(0).max(MAX_UNIX_SECONDS).nullish(),
  event_data: HarborArtifactDataSchema,
  operator: text,
});

export type HarborResource = z.infer<typeof HarborResourceSchema>;
export type HarborArtifactData = z.infer<typeof HarborArtifactDataSchema>;
export type HarborV1Payload = z.infer<typeof HarborV1PayloadSchema>;

// Hand-written mirrors of the schemas above, for the payloads that pass: what Harbor sends is
// nearly always valid, and the schemas build a copy of every object they pass through (a few
// microseconds per webhook on the thread that answers them). They must accept exactly what the
// schemas accept; the schemas still parse whatever they refuse, for the issue list.
// test/unit/ingest/fuzz.test.ts holds them to the schemas on thousands of generated bodies.

/** A JSON object (what zod's object schemas take): not null, not an array. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** string | null | undefined, what `z.string().nullish()` accepts. */
function isText(v: unknown): boolean {
  return v === undefined || v === null || typeof v === 'string';
}

function isUnixSeconds(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_UNIX_SECONDS);
}

/** Accepts exactly what HarborArtifactDataSchema accepts. */
function isHarborArtifactData(v: unknown): v is HarborArtifactData {
  if (!isRecord(v)) return false;
  const resources = v['resources'];
  if (!Array.isArray(resources) || resources.length < 1 || resources.length > MAX_RESOURCES) return false;
  for (let i = 0; i < resources.length; i++) {
    const r: unknown = resources[i];
    if (!isRecord(r) || !isText(r['digest']) || !isText(r['tag']) || !isText(r['resource_url'])) return false;
  }
  const repo = v['repository'];
  if (!isRecord(repo)) return false;
  const created = repo['date_created'];
  const name = repo['repo_full_name'];
  return (created === undefined || created === null || (typeof created === 'number' && Number.isFinite(created)))
    && isText(repo['name']) && isText(repo['namespace']) && isText(repo['repo_type'])
    && typeof name === 'string' && name.length >= 1;
}

/** Accepts exactly what HarborV1PayloadSchema and HarborV2PayloadSchema accept (the same envelope). */
export function isHarborEnvelope(v: unknown): v is HarborV1Payload {
  if (!isRecord(v)) return false;
  const type = v['type'];
  return typeof type === 'string' && type.length >= 1 && isUnixSeconds(v['occur_at']) && isText(v['operator'])
    && isHarborArtifactData(v['event_data']);
}
