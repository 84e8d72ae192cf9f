import { z } from 'zod';
import { HarborArtifactDataSchema, MAX_UNIX_SECONDS } from './harbor-v1.ts';

// Harbor 2.x "Default" webhook payload (src/pkg/notifier/model/event.go, formats/default.go).
// Same envelope as 1.10; `event_data` may also carry replication, retention, custom_attributes
// and per-resource scan_overview, which the loose schemas let through untouched.

/** Types that name a change to an artifact (src/controller/event/topic.go). */
export const HARBOR_V2_ARTIFACT_TYPES: ReadonlyMap<string, 'push' | 'delete'> = new Map([
  ['PUSH_ARTIFACT', 'push'],
  ['DELETE_ARTIFACT', 'delete'],
]);

/**
 * Types answered 2xx and dropped. CREATE_TAG / DELETE_TAG are topics Harbor does not send as
 * webhooks today; listed so that a future Harbor sending them is counted, not rejected.
 */
export const HARBOR_V2_IGNORED_TYPES: ReadonlySet<string> = new Set([
  'PULL_ARTIFACT', 'SCANNING_COMPLETED', 'SCANNING_FAILED', 'SCANNING_STOPPED',
  'QUOTA_EXCEED', 'QUOTA_WARNING', 'REPLICATION', 'TAG_RETENTION',
  'UPLOAD_CHART', 'DOWNLOAD_CHART', 'DELETE_CHART',
  'CREATE_TAG', 'DELETE_TAG', 'ARTIFACT_LABELED', 'CREATE_PROJECT', 'DELETE_PROJECT', 'DELETE_REPOSITORY',
]);

export const HarborV2PayloadSchema = z.looseObject({
  type: z.string().min(1),
  /** Unix seconds. */
  occur_at: z.number().int().min(0).max(MAX_UNIX_SECONDS).nullish(),
  operator: z.string().nullish(),
  event_data: HarborArtifactDataSchema,
});

export type HarborV2Payload = z.infer<typeof HarborV2PayloadSchema>;
