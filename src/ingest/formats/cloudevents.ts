import { z } from 'zod';
import { HarborArtifactDataSchema } from './harbor-v1.ts';

// Harbor 2.8+ CloudEvents structured mode (src/pkg/notifier/formats/cloudevents.go): `data` is the
// Default format's `event_data`; `operator` and `requestid` are extensions. Retries reuse `id`.

export const CLOUDEVENTS_CONTENT_TYPE = 'application/cloudevents+json';

/** Harbor's `type` prefix; a body with `specversion` and this prefix is CloudEvents whatever its content type. */
export const HARBOR_CLOUDEVENT_PREFIX = 'harbor.';

export const CLOUDEVENT_ARTIFACT_TYPES: ReadonlyMap<string, 'push' | 'delete'> = new Map([
  ['harbor.artifact.pushed', 'push'],
  ['harbor.artifact.deleted', 'delete'],
]);

export const CLOUDEVENT_IGNORED_TYPES: ReadonlySet<string> = new Set([
  'harbor.artifact.pulled', 'harbor.tag.created', 'harbor.quota.exceeded', 'harbor.quota.warned',
  'harbor.replication.status.changed', 'harbor.scan.failed', 'harbor.scan.completed',
  'harbor.scan.stopped', 'harbor.tag_retention.finished',
]);

/** The envelope alone: checked before `data`, whose shape depends on the type. */
export const CloudEventEnvelopeSchema = z.looseObject({
  specversion: z.string().min(1),
  id: z.string().min(1).max(256),
  type: z.string().min(1),
  source: z.string().nullish(),
  /** RFC 3339; Harbor sets it from occur_at. */
  time: z.string().nullish(),
  datacontenttype: z.string().nullish(),
  requestid: z.string().nullish(),
  operator: z.string().nullish(),
});

export const HarborCloudEventSchema = CloudEventEnvelopeSchema.extend({ data: HarborArtifactDataSchema });

export type HarborCloudEvent = z.infer<typeof HarborCloudEventSchema>;
