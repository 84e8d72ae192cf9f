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
