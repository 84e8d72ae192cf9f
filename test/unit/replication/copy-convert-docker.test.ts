import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageToDocker, indexToDocker } from '../../../src/replication/convert-docker.ts';
import { parseManifest, type ImageDoc } from '../../../src/replication/copy-plan.ts';
import { MediaType } from '../../../src/registry/media-types.ts';
import type { BridgeError } from '../../../src/errors.ts';

const d = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

const oci = (layers: { mediaType: string; digest: string; size: number; urls?: string[]; annotations?: Record<string, string> }[], configType: string = MediaType.ociConfig): ImageDoc => {
  const p = parseManifest(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.ociManifest,
    config: { mediaType: configType, digest: d(1), size: 100 },
    layers,
    annotations: { 'org.opencontainers.image.created': 'now' },
    subject: { mediaType: MediaType.ociManifest, digest: d(99), size: 1 },
  })), MediaType.ociManifest);
  assert.equal(p.kind, 'image');
  return p.doc as ImageDoc;
};

test('an OCI image manifest becomes Docker schema2 over the same blobs', () => {
  const out = imageToDocker(oci([
    { mediaType: MediaType.ociLayerGzip, digest: d(2), size: 10, annotations: { a: 'b' } },
    { mediaType: MediaType.ociLayer, digest: d(3), size: 20 },
    { mediaType: MediaType.ociForeignLayerGzip, digest: d(4), size: 30, urls: ['https://example.invalid/l'] },
  ]));
  assert.equal(out.mediaType, MediaType.dockerManifest);
  const j = JSON.parse(out.bytes.toString());
  assert.deepEqual(j, {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, size: 100, digest: d(1) },
    layers: [
      { mediaType: MediaType.dockerLayerGzip, size: 10, digest: d(2) },
      { mediaType: MediaType.dockerLayer, size: 20, digest: d(3) },
      { mediaType: MediaType.dockerForeignLayer, size: 30, digest: d(4), urls: ['https://example.invalid/l'] },
    ],
  });
});

test('conversion is deterministic (same input, same digest)', () => {
  const doc = oci([{ mediaType: MediaType.ociLayerGzip, digest: d(2), size: 10 }]);
  assert.deepEqual(imageToDocker(doc).bytes, imageToDocker(doc).bytes);
});

test('zstd layers cannot be Docker layers', () => {
  assert.throws(() => imageToDocker(oci([{ mediaType: MediaType.ociLayerZstd, digest: d(2), size: 10 }])),
    (e: BridgeError) => e.code === 'HSB_REGISTRY_ZSTD_DOCKER' && !e.retryable && e.context.layer === d(2));
});

test('non-image artifacts are refused', () => {
  assert.throws(() => imageToDocker(oci([], 'application/vnd.cncf.helm.config.v1+json')), (e: BridgeError) => e.code === 'HSB_REGISTRY_CONVERT_UNSUPPORTED');
  assert.throws(() => imageToDocker(oci([{ mediaType: 'application/vnd.in-toto+json', digest: d(2), size: 1 }])), (e: BridgeError) => e.code === 'HSB_REGISTRY_CONVERT_UNSUPPORTED');
});

test('an index becomes a manifest list with platforms and without annotations', () => {
  const out = indexToDocker([
    { mediaType: MediaType.dockerManifest, digest: d(5), size: 500, platform: { os: 'linux', architecture: 'amd64' }, annotations: { x: 'y' } },
    { mediaType: MediaType.dockerManifest, digest: d(6), size: 600, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ]);
  assert.equal(out.mediaType, MediaType.dockerList);
  assert.deepEqual(JSON.parse(out.bytes.toString()), {
    schemaVersion: 2,
    mediaType: MediaType.dockerList,
    manifests: [
      { mediaType: MediaType.dockerManifest, size: 500, digest: d(5), platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MediaType.dockerManifest, size: 600, digest: d(6), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
  });
  assert.throws(() => indexToDocker([{ mediaType: MediaType.ociManifest, digest: d(5), size: 1 }]), (e: BridgeError) => e.code === 'HSB_REGISTRY_CONVERT_UNSUPPORTED');
});
