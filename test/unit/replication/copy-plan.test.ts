import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blobsOf, filterChildren, parseManifest, parsePlatform, planBlobs, platformMatches, rewriteIndex, type IndexDoc, type PlanNode } from '../../../src/replication/copy-plan.ts';
import { MediaType } from '../../../src/registry/media-types.ts';
import type { BridgeError } from '../../../src/errors.ts';

const d = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const child = (n: number, os: string, architecture: string, variant?: string) => ({ mediaType: MediaType.ociManifest, digest: d(n), size: n, platform: { os, architecture, ...(variant ? { variant } : {}) } });

test('parseManifest tells images from indexes and rejects malformed manifests', () => {
  const img = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: MediaType.ociConfig, digest: d(1), size: 2 }, layers: [] })), MediaType.ociManifest);
  assert.equal(img.kind, 'image');
  const idx = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })), 'application/json');
  assert.equal(idx.kind, 'index');
  assert.throws(() => parseManifest(Buffer.from('{'), MediaType.ociManifest), (e: BridgeError) => e.code === 'HSB_REGISTRY_MANIFEST_INVALID');
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, config: { digest: 'nope' } })), MediaType.ociManifest), (e: BridgeError) => e.code === 'HSB_REGISTRY_MANIFEST_INVALID');
});

test('blobsOf lists config and layers once, without foreign layers', () => {
  const p = parseManifest(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    config: { mediaType: MediaType.dockerConfig, digest: d(1), size: 1 },
    layers: [
      { mediaType: MediaType.dockerLayerGzip, digest: d(2), size: 2 },
      { mediaType: MediaType.dockerForeignLayer, digest: d(3), size: 3, urls: ['https://x'] },
      { mediaType: MediaType.dockerLayerGzip, digest: d(2), size: 2 },
    ],
  })), MediaType.dockerManifest);
  assert.equal(p.kind, 'image');
  if (p.kind === 'image') assert.deepEqual(blobsOf(p.doc).map((b) => b.digest), [d(1), d(2)]);
});

test('platform filters match os/arch and optionally the variant', () => {
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.throws(() => parsePlatform('linux'));
  assert.equal(platformMatches({ os: 'linux', architecture: 'arm64', variant: 'v8' }, [parsePlatform('linux/arm64')]), true);
  assert.equal(platformMatches({ os: 'linux', architecture: 'arm64', variant: 'v8' }, [parsePlatform('linux/arm64/v7')]), false);
  assert.equal(platformMatches(undefined, [parsePlatform('linux/amd64')]), false);
});

test('platform names are compared as container runtimes normalise them', () => {
  const matches = (child: { os: string; architecture: string; variant?: string }, filter: string) => platformMatches(child, [parsePlatform(filter)]);
  // buildx and ko publish arm64 without a variant; v8 is arm64's only variant.
  assert.equal(matches({ os: 'linux', architecture: 'arm64' }, 'linux/arm64/v8'), true);
  assert.equal(matches({ os: 'linux', architecture: 'aarch64' }, 'linux/arm64'), true);
  assert.equal(matches({ os: 'linux', architecture: 'amd64' }, 'linux/amd64/v1'), true);
  assert.equal(matches({ os: 'linux', architecture: 'x86_64' }, 'linux/amd64'), true);
  assert.equal(matches({ os: 'linux', architecture: 'amd64', variant: 'v3' }, 'linux/amd64/v1'), false);
  // An arm child without a variant is arm/v7; a filter without one still takes every variant.
  assert.equal(matches({ os: 'linux', architecture: 'arm' }, 'linux/arm/v7'), true);
  assert.equal(matches({ os: 'linux', architecture: 'arm' }, 'linux/arm/v6'), false);
  assert.equal(matches({ os: 'linux', architecture: 'arm', variant: 'v6' }, 'linux/arm'), true);
  assert.equal(matches({ os: 'linux', architecture: 'arm', variant: '7' }, 'linux/arm/v7'), true);
  assert.equal(matches({ os: 'Linux', architecture: 'ARM64' }, 'linux/arm64'), true);
  assert.equal(matches({ os: 'windows', architecture: 'amd64' }, 'linux/amd64'), false);
});

test('filterChildren keeps matching images, platform-less artifacts and the attestations of kept images', () => {
  const amd = child(1, 'linux', 'amd64');
  const arm = child(2, 'linux', 'arm64', 'v8');
  const attAmd = { ...child(3, 'unknown', 'unknown'), annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': d(1) } };
  const attArm = { ...child(4, 'unknown', 'unknown'), annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': d(2) } };
  const artifact = { mediaType: MediaType.ociManifest, digest: d(5), size: 5 };
  const all = [amd, arm, attAmd, attArm, artifact];
  assert.deepEqual(filterChildren(all, undefined), all);
  assert.deepEqual(filterChildren(all, []), all);
  assert.deepEqual(filterChildren(all, ['linux/amd64']).map((c) => c.digest), [d(1), d(3), d(5)]);
});

test('rewriteIndex keeps the exact bytes when nothing changed, else re-serialises', () => {
  const doc: IndexDoc = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [child(1, 'linux', 'amd64'), child(2, 'linux', 'arm64')] };
  const bytes = Buffer.from(JSON.stringify(doc) + '\n');
  assert.equal(rewriteIndex(bytes, doc, doc.manifests), bytes);
  const out = rewriteIndex(bytes, doc, [doc.manifests[1]!]);
  assert.notDeepEqual(out, bytes);
  assert.deepEqual(JSON.parse(out.toString()).manifests.map((m: { digest: string }) => m.digest), [d(2)]);
});

test('planBlobs collects distinct blobs, children first', () => {
  const leaf = (n: number, blobs: number[]): PlanNode => ({ sourceDigest: d(n), digest: d(n), mediaType: MediaType.ociManifest, bytes: Buffer.alloc(0), children: [], blobs: blobs.map((b) => ({ mediaType: MediaType.ociLayerGzip, digest: d(b), size: b })) });
  const root: PlanNode = { ...leaf(100, []), children: [leaf(101, [1, 2]), leaf(102, [2, 3])] };
  assert.deepEqual([...planBlobs(root).keys()], [d(1), d(2), d(3)]);
});
