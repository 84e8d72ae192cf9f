// OCI → Docker schema2 conversion for targets that refuse OCI (SWR Basic). Only manifests
// change: the same blobs, config typed application/vnd.docker.container.image.v1+json, layer
// types mapped. Docker schema2 cannot describe zstd layers or non-image artifacts.
import { MediaType } from '../registry/media-types.ts';
import { registryError } from '../registry/errors.ts';
import type { Descriptor } from '../registry/referrers.ts';
import type { ImageDoc, IndexDoc } from './copy-plan.ts';

const LAYER_MAP: Record<string, string> = {
  [MediaType.ociLayerGzip]: MediaType.dockerLayerGzip,
  [MediaType.ociLayer]: MediaType.dockerLayer,
  [MediaType.ociForeignLayerGzip]: MediaType.dockerForeignLayer,
  [MediaType.dockerLayerGzip]: MediaType.dockerLayerGzip,
  [MediaType.dockerLayer]: MediaType.dockerLayer,
  [MediaType.dockerForeignLayer]: MediaType.dockerForeignLayer,
};

const ZSTD = new Set<string>([MediaType.ociLayerZstd, MediaType.ociForeignLayerZstd, MediaType.dockerLayerZstd]);

const serialise = (o: object) => Buffer.from(JSON.stringify(o, null, 3));

/** Docker schema2 descriptors carry mediaType, size, digest and urls (and platform in lists). */
function dockerDescriptor(d: Descriptor, mediaType: string, withPlatform = false): Record<string, unknown> {
  return {
    mediaType,
    size: d.size,
    digest: d.digest,
    ...(d.urls?.length ? { urls: d.urls } : {}),
    ...(withPlatform && d.platform ? { platform: d.platform } : {}),
  };
}

export function imageToDocker(doc: ImageDoc, ctx: { digest?: string } = {}): { bytes: Buffer; mediaType: string } {
  const configType = doc.config.mediaType;
  if (configType !== MediaType.ociConfig && configType !== MediaType.dockerConfig) {
    throw registryError('HSB_REGISTRY_CONVERT_UNSUPPORTED', `cannot express an artifact with config type ${configType} as a Docker image`, ctx);
  }
  const layers = doc.layers.map((l) => {
    if (ZSTD.has(l.mediaType)) throw registryError('HSB_REGISTRY_ZSTD_DOCKER', `layer ${l.digest} is zstd-compressed; Docker schema2 cannot describe it`, { ...ctx, layer: l.digest });
    const mt = LAYER_MAP[l.mediaType];
    if (!mt) throw registryError('HSB_REGISTRY_CONVERT_UNSUPPORTED', `cannot express layer type ${l.mediaType} as a Docker layer`, { ...ctx, layer: l.digest });
    return dockerDescriptor(l, mt);
  });
  const out = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: dockerDescriptor(doc.config, MediaType.dockerConfig),
    layers,
  };
  return { bytes: serialise(out), mediaType: MediaType.dockerManifest };
}

/**
 * A Docker manifest list over already converted children (`children` in the target's terms:
 * converted digest, size and media type, platform kept). Annotations have no place in it.
 */
export function indexToDocker(children: Descriptor[]): { bytes: Buffer; mediaType: string } {
  const manifests = children.map((c) => {
    if (c.mediaType !== MediaType.dockerManifest && c.mediaType !== MediaType.dockerList) {
      throw registryError('HSB_REGISTRY_CONVERT_UNSUPPORTED', `index child ${c.digest} of type ${c.mediaType} has no Docker equivalent`);
    }
    return dockerDescriptor(c, c.mediaType, true);
  });
  return { bytes: serialise({ schemaVersion: 2, mediaType: MediaType.dockerList, manifests }), mediaType: MediaType.dockerList };
}

/** True when a manifest is already Docker-typed and needs no rewrite. */
export const isDockerType = (mt: string) => mt === MediaType.dockerManifest || mt === MediaType.dockerList;

export type { IndexDoc };
