import { z } from 'zod';

// CNCF distribution registry notifications (notifications/event.go, bridge.go). One envelope may
// carry many events; pushes are sent for every blob and for the manifest, deletes carry only
// repository plus digest (manifest or blob, indistinguishable) or tag.

/** The envelope's media types: v1 up to distribution 2.8, v2 from 3.0 (the same envelope). */
export const DISTRIBUTION_CONTENT_TYPES = [
  'application/vnd.docker.distribution.events.v1+json',
  'application/vnd.docker.distribution.events.v2+json',
] as const;

export const DISTRIBUTION_ACTIONS = ['push', 'pull', 'mount', 'delete'] as const;

/** Manifest and index media types: a push of anything else is a blob (layer or config). */
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.artifact.manifest.v1+json',
]);

/** Upper bound on events in one envelope (distribution batches by its `threshold`, small in practice). */
export const MAX_DISTRIBUTION_EVENTS = 1000;

const text = z.string().nullish();

export const DistributionTargetSchema = z.looseObject({
  mediaType: text,
  size: z.number().nullish(),
  digest: text,
  length: z.number().nullish(),
  repository: text,
  fromRepository: text,
  url: text,
  tag: text,
});

export const DistributionEventSchema = z.looseObject({
  id: z.string().min(1).max(256),
  /** RFC 3339 with nanoseconds. */
  timestamp: text,
  action: z.string().min(1),
  target: DistributionTargetSchema,
  request: z.looseObject({ id: text, addr: text, host: text, method: text, useragent: text }).nullish(),
  actor: z.looseObject({ name: text }).nullish(),
  source: z.looseObject({ addr: text, instanceID: text }).nullish(),
});

export const DistributionEnvelopeSchema = z.looseObject({
  events: z.array(z.unknown()).max(MAX_DISTRIBUTION_EVENTS),
});

export type DistributionEvent = z.infer<typeof DistributionEventSchema>;
