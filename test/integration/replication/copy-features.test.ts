// copyArtifact features against real distribution 2.8: cross-repo mounts, shared in-flight blobs,
// Docker-format conversion, platform filter, override off, and referrers (OCI tag schema, cosign tags).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { buildImage, buildIndex, pushImage, inspectDigest, inspectRaw, MT, type LocalImage } from '../../support/images.ts';
import { RegistryClient } from '../../../src/registry/client.ts';
import { copyArtifact, copyReferrersOf } from '../../../src/replication/copy.ts';
import { CopyPool } from '../../../src/replication/copy-pool.ts';
import { BridgeError } from '../../../src/errors.ts';
import { digestOf } from '../../../src/registry/digest.ts';

let a: TestRegistry;
let b: TestRegistry;
let src: RegistryClient;
let dst: RegistryClient;
const cleanup: (() => Promise<void>)[] = [];

before(async () => {
  [a, b] = await Promise.all([startRegistry({ auth: 'token' }), startRegistry({ auth: 'token' })]);
  src = new RegistryClient({ url: a.url, credentials: a.users[0] });
  dst = new RegistryClient({ url: b.url, credentials: b.users[0] });
});
after(async () => {
  await src.close();
  await dst.close();
  for (const f of cleanup.reverse()) await f().catch(() => {});
  await a.stop();
  await b.stop();
});

async function built<T extends LocalImage>(p: Promise<T>): Promise<T> {
  const img = await p;
  cleanup.push(() => img.cleanup());
  return img;
}

/** Upload requests (POST without mount, PATCH, PUT) the target registry logged for a repository. */
function uploadsIn(reg: TestRegistry, repo: string): string[] {
  return reg.logs().split('\n').filter((l) => new RegExp(`"(PATCH|PUT) /v2/${repo}/blobs/uploads/`).test(l));
}

test('a blob already in another repository of the target is mounted, not uploaded', async () => {
  const img = await built(buildImage({ layers: [50_000, 80_000] }));
  await pushImage(img, a, 'team/one', 'v1');
  const pool = new CopyPool();
  const first = await copyArtifact(src, 'team/one', 'v1', dst, 'team/one', 'v1', { pool });
  assert.equal(first.blobs.uploaded, 3);
  const second = await copyArtifact(src, 'team/one', 'v1', dst, 'team/two', 'v1', { pool });
  assert.deepEqual(second.blobs, { uploaded: 0, mounted: 3, skipped: 0 });
  assert.equal(second.bytes, 0);
  // The registry's side: mount POSTs answered 201, no upload traffic into team/two, and its
  // storage links every layer into team/two.
  const mounts = b.logs().split('\n').filter((l) => /"POST \/v2\/team\/two\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=team%2Fone HTTP\/1.1" 201/.test(l));
  assert.equal(mounts.length, 3);
  assert.deepEqual(uploadsIn(b, 'team/two'), []);
  for (const l of img.layers) assert.equal(await b.blobLinkedIn('team/two', l.digest), true);
  assert.equal(await inspectDigest(b, 'team/two', 'v1'), img.digest);
});

test('concurrent copies sharing layers transfer each digest into the target once', async () => {
  const shared = Buffer.alloc(200_000, 7);
  const x = await built(buildImage({ layers: [shared, 30_000] }));
  const y = await built(buildImage({ layers: [shared, 40_000] }));
  await pushImage(x, a, 'par/x', 'v1');
  await pushImage(y, a, 'par/y', 'v1');
  const pool = new CopyPool({ concurrency: 4 });
  const [rx, ry] = await Promise.all([
    copyArtifact(src, 'par/x', 'v1', dst, 'par/x', 'v1', { pool }),
    copyArtifact(src, 'par/y', 'v1', dst, 'par/y', 'v1', { pool }),
  ]);
  assert.equal(rx.blobs.uploaded + ry.blobs.uploaded, 5, `two configs, two own layers and the shared layer once: ${JSON.stringify([rx.blobs, ry.blobs, x.layers.map((l) => l.digest), y.layers.map((l) => l.digest)])}`);
  assert.equal(rx.blobs.mounted + ry.blobs.mounted, 1);
  const sharedDigest = digestOf(shared);
  const finals = b.logs().split('\n').filter((l) => l.includes(`digest=${sharedDigest.replace(':', '%3A')}`) && /"PUT /.test(l));
  assert.equal(finals.length, 1, 'one final PUT of the shared layer in the registry log');
});

test('docker conversion turns an OCI index into a Docker manifest list over the same blobs', async () => {
  const idx = await built(buildIndex({ images: [
    { layers: [20_000], platform: { os: 'linux', architecture: 'amd64' } },
    { layers: [25_000], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ], annotations: { 'org.opencontainers.image.source': 'https://example.invalid/x' } }));
  await pushImage(idx, a, 'conv/app', 'v1');
  const r = await copyArtifact(src, 'conv/app', 'v1', dst, 'conv/app', 'v1', { pool: new CopyPool(), manifestFormat: 'docker' });
  const raw = await inspectRaw(b, 'conv/app', 'v1');
  assert.equal(digestOf(raw), r.digest);
  assert.notEqual(r.digest, idx.digest);
  const list = JSON.parse(raw.toString()) as { mediaType: string; manifests: { mediaType: string; digest: string; size: number; platform: { architecture: string } }[]; annotations?: unknown };
  assert.equal(list.mediaType, MT.dockerList);
  assert.equal(list.annotations, undefined);
  assert.deepEqual(list.manifests.map((m) => m.platform.architecture), ['amd64', 'arm64']);
  for (const [i, m] of list.manifests.entries()) {
    assert.equal(m.mediaType, MT.dockerManifest);
    const childRaw = await inspectRaw(b, 'conv/app', m.digest);
    assert.equal(childRaw.length, m.size);
    const child = JSON.parse(childRaw.toString()) as { mediaType: string; config: { mediaType: string; digest: string }; layers: { mediaType: string; digest: string }[] };
    assert.equal(child.mediaType, MT.dockerManifest);
    assert.equal(child.config.mediaType, MT.dockerConfig);
    assert.equal(child.config.digest, idx.children[i]!.config!.digest);
    assert.deepEqual(child.layers.map((l) => [l.mediaType, l.digest]), idx.children[i]!.layers.map((l) => [MT.dockerLayerGzip, l.digest]));
  }
  // Converting again finds the same digest in the target: nothing moves.
  const again = await copyArtifact(src, 'conv/app', 'v1', dst, 'conv/app', 'v1', { pool: new CopyPool(), manifestFormat: 'docker' });
  assert.equal(again.skipped, true);
  assert.equal(again.digest, r.digest);
});

test('docker conversion refuses zstd layers with HSB_REGISTRY_ZSTD_DOCKER and writes nothing', async () => {
  const img = await built(buildImage({ layers: [10_000], layerMediaType: MT.ociLayerZstd }));
  await pushImage(img, a, 'conv/zstd', 'v1');
  await assert.rejects(copyArtifact(src, 'conv/zstd', 'v1', dst, 'conv/zstd', 'v1', { manifestFormat: 'docker' }),
    (e: BridgeError) => e.code === 'HSB_REGISTRY_ZSTD_DOCKER' && !e.retryable);
  assert.equal(await dst.headManifest('conv/zstd', 'v1'), null);
  // Preserve mode copies it as it is.
  const r = await copyArtifact(src, 'conv/zstd', 'v1', dst, 'conv/zstd', 'v1');
  assert.equal(r.digest, img.digest);
});

test('a platform filter keeps only matching children', async () => {
  const idx = await built(buildIndex({ images: [
    { layers: [11_000], platform: { os: 'linux', architecture: 'amd64' } },
    { layers: [12_000], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { layers: [13_000], platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
  ] }));
  await pushImage(idx, a, 'plat/app', 'v1');
  const r = await copyArtifact(src, 'plat/app', 'v1', dst, 'plat/app', 'v1', { pool: new CopyPool(), platforms: ['linux/arm64'] });
  const list = JSON.parse((await inspectRaw(b, 'plat/app', 'v1')).toString()) as { manifests: { digest: string }[] };
  assert.deepEqual(list.manifests.map((m) => m.digest), [idx.children[1]!.digest]);
  const stored = new Set(await b.storedBlobs());
  assert.ok(stored.has(idx.children[1]!.layers[0]!.digest));
  assert.ok(!stored.has(idx.children[0]!.layers[0]!.digest));
  assert.ok(!stored.has(idx.children[2]!.layers[0]!.digest));
  assert.equal(r.blobs.uploaded, 2);
  await assert.rejects(copyArtifact(src, 'plat/app', 'v1', dst, 'plat/none', 'v1', { platforms: ['windows/amd64'] }), (e: BridgeError) => e.code === 'HSB_COPY_NO_MATCHING_PLATFORM');
});

test('override off copies by digest and leaves a diverging target tag in place', async () => {
  const old = await built(buildImage({ layers: [3000] }));
  const fresh = await built(buildImage({ layers: [4000] }));
  await pushImage(old, b, 'ovr/app', 'v1');
  await pushImage(fresh, a, 'ovr/app', 'v1');
  const r = await copyArtifact(src, 'ovr/app', 'v1', dst, 'ovr/app', 'v1', { override: false });
  assert.equal(r.tagMoved, false);
  assert.equal(r.skipped, false);
  assert.equal(r.digest, fresh.digest);
  assert.equal(r.tagDigest, old.digest);
  assert.equal(await inspectDigest(b, 'ovr/app', 'v1'), old.digest);
  assert.equal(await inspectDigest(b, 'ovr/app', fresh.digest), fresh.digest);
  const moved = await copyArtifact(src, 'ovr/app', 'v1', dst, 'ovr/app', 'v1', { override: true });
  assert.equal(moved.tagMoved, true);
  assert.equal(moved.blobs.uploaded, 0);
  assert.equal(await inspectDigest(b, 'ovr/app', 'v1'), fresh.digest);
});

test('copying by digest without a tag puts the manifest by digest only', async () => {
  const img = await built(buildImage({ layers: [5000] }));
  await pushImage(img, a, 'dig/app', 'v9');
  const r = await copyArtifact(src, 'dig/app', img.digest, dst, 'dig/app', undefined);
  assert.equal(r.digest, img.digest);
  assert.equal(r.tagMoved, false);
  assert.deepEqual(await dst.listTags('dig/app'), []);
  assert.equal(await inspectDigest(b, 'dig/app', img.digest), img.digest);
});

test('referrers in the tag schema are copied with the artifact', async () => {
  const img = await built(buildImage({ layers: [6000] }));
  await pushImage(img, a, 'ref/app', 'v1');
  // A signature-like artifact whose subject is the image, and the sha256-<hex> index naming it.
  const sig = await built(buildImage({ layers: [Buffer.from('signature')], annotations: { 'org.example.kind': 'sig' } }));
  await pushImage(sig, a, 'ref/app', 'sig');
  const tagIndex = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, digest: sig.digest, size: sig.bytes.length, artifactType: 'application/example.sig' }] }));
  await src.putManifest('ref/app', img.digest.replace(':', '-'), tagIndex, MT.ociIndex);
  const r = await copyArtifact(src, 'ref/app', 'v1', dst, 'ref/app', 'v1', { referrers: true, pool: new CopyPool() });
  assert.equal(r.referrers, 1);
  assert.equal(await inspectDigest(b, 'ref/app', sig.digest), sig.digest);
  assert.deepEqual(await inspectRaw(b, 'ref/app', img.digest.replace(':', '-')), tagIndex);
});

/** A cosign-shaped signature (simple-signing payload layer) pushed under `sha256-<hex>.<suffix>` beside its subject. */
async function cosignTag(repo: string, subject: string, suffix: 'sig' | 'att' | 'sbom', payload = `signature of ${subject}`): Promise<LocalImage> {
  const sig = await built(buildImage({ layers: [Buffer.from(JSON.stringify({ critical: { image: { 'docker-manifest-digest': subject } }, optional: { payload } }))] }));
  await pushImage(sig, a, repo, `${subject.replace(':', '-')}.${suffix}`);
  return sig;
}

test('cosign signature and attestation tags come with the artifact, under their tags, only when asked', async () => {
  const img = await built(buildImage({ layers: [7000] }));
  await pushImage(img, a, 'cos/app', 'v1');
  const sig = await cosignTag('cos/app', img.digest, 'sig');
  const att = await cosignTag('cos/app', img.digest, 'att');
  const tag = (s: string) => `${img.digest.replace(':', '-')}.${s}`;

  const plain = await copyArtifact(src, 'cos/app', 'v1', dst, 'cos/plain', 'v1', { pool: new CopyPool() });
  assert.equal(plain.referrers, undefined);
  assert.deepEqual(await dst.listTags('cos/plain'), ['v1']);

  const r = await copyArtifact(src, 'cos/app', 'v1', dst, 'cos/app', 'v1', { referrers: true, pool: new CopyPool() });
  assert.equal(r.referrers, 2);
  assert.deepEqual((await dst.listTags('cos/app')).sort(), [tag('att'), tag('sig'), 'v1'].sort());
  assert.equal(await inspectDigest(b, 'cos/app', tag('sig')), sig.digest);
  assert.equal(await inspectDigest(b, 'cos/app', tag('att')), att.digest);

  // A second signature added later (cosign rewrites the .sig tag): the next copy of the unchanged artifact brings it.
  const resigned = await cosignTag('cos/app', img.digest, 'sig', 'a second signer');
  const again = await copyArtifact(src, 'cos/app', 'v1', dst, 'cos/app', 'v1', { referrers: true, pool: new CopyPool() });
  assert.equal(again.skipped, true);
  assert.equal(await inspectDigest(b, 'cos/app', tag('sig')), resigned.digest);
});

test('signatures of an index\'s children come too; a platform filter keeps those of the children it keeps', async () => {
  const idx = await built(buildIndex({ images: [
    { layers: [9_100], platform: { os: 'linux', architecture: 'amd64' } },
    { layers: [9_200], platform: { os: 'linux', architecture: 'arm64' } },
  ] }));
  await pushImage(idx, a, 'rec/app', 'v1');
  const [amd, arm] = [idx.children[0]!, idx.children[1]!];
  await cosignTag('rec/app', idx.digest, 'sig');
  await cosignTag('rec/app', amd.digest, 'sig');
  const armSig = await cosignTag('rec/app', arm.digest, 'sig');
  const sigTag = (d: string, s = 'sig') => `${d.replace(':', '-')}.${s}`;

  const all = await copyArtifact(src, 'rec/app', 'v1', dst, 'rec/all', 'v1', { referrers: true, pool: new CopyPool() });
  assert.equal(all.referrers, 3);
  assert.deepEqual((await dst.listTags('rec/all')).sort(), [sigTag(idx.digest), sigTag(amd.digest), sigTag(arm.digest), 'v1'].sort());

  // The filtered index has a digest of its own: its source signature would not verify, the kept child's does.
  const some = await copyArtifact(src, 'rec/app', 'v1', dst, 'rec/arm', 'v1', { referrers: true, platforms: ['linux/arm64'], pool: new CopyPool() });
  assert.notEqual(some.digest, idx.digest);
  assert.deepEqual((await dst.listTags('rec/arm')).sort(), [sigTag(arm.digest), 'v1'].sort());
  assert.equal(await inspectDigest(b, 'rec/arm', sigTag(arm.digest)), armSig.digest);

  // Attestations added later come with the next copy of the unchanged index, filtered or not.
  const amdAtt = await cosignTag('rec/app', amd.digest, 'att');
  const armAtt = await cosignTag('rec/app', arm.digest, 'att');
  const again = await copyArtifact(src, 'rec/app', 'v1', dst, 'rec/all', 'v1', { referrers: true, pool: new CopyPool() });
  assert.equal(again.skipped, true);
  assert.equal(await inspectDigest(b, 'rec/all', sigTag(amd.digest, 'att')), amdAtt.digest);
  const someAgain = await copyArtifact(src, 'rec/app', 'v1', dst, 'rec/arm', 'v1', { referrers: true, platforms: ['linux/arm64'], pool: new CopyPool() });
  assert.equal(someAgain.skipped, true);
  assert.equal(await inspectDigest(b, 'rec/arm', sigTag(arm.digest, 'att')), armAtt.digest);
  assert.equal(await dst.headManifest('rec/arm', sigTag(amd.digest, 'att')), null);
});

test('referrers of an artifact go only into a target that holds it; a signature tag moves even with override off', async () => {
  const img = await built(buildImage({ layers: [5100] }));
  await pushImage(img, a, 'late/app', 'v1');
  const sig = await cosignTag('late/app', img.digest, 'sig');
  const sigTag = `${img.digest.replace(':', '-')}.sig`;

  assert.deepEqual(await copyReferrersOf(src, 'late/app', img.digest, dst, 'late/app', 'digest', { pool: new CopyPool() }), { kind: 'absent', artifact: img.digest });
  assert.deepEqual(await dst.listTags('late/app').catch(() => []), []);

  await copyArtifact(src, 'late/app', 'v1', dst, 'late/app', 'v1', { pool: new CopyPool() });
  const r = await copyReferrersOf(src, 'late/app', img.digest, dst, 'late/app', 'digest', { pool: new CopyPool() });
  assert.ok(r.kind === 'copied');
  assert.equal(r.result.skipped, false);
  assert.equal(r.result.referrers, 1);
  assert.equal(await inspectDigest(b, 'late/app', sigTag), sig.digest);
  const again = await copyReferrersOf(src, 'late/app', img.digest, dst, 'late/app', 'digest', { pool: new CopyPool() });
  assert.ok(again.kind === 'copied' && again.result.skipped);

  const resigned = await cosignTag('late/app', img.digest, 'sig', 'another signer');
  const moved = await copyReferrersOf(src, 'late/app', img.digest, dst, 'late/app', 'digest', { override: false, pool: new CopyPool() });
  assert.ok(moved.kind === 'copied' && !moved.result.skipped);
  assert.equal(await inspectDigest(b, 'late/app', sigTag), resigned.digest);
  // An image naming no subject is no OCI 1.1 referrer.
  assert.deepEqual(await copyReferrersOf(src, 'late/app', img.digest, dst, 'late/app', 'subject', { pool: new CopyPool() }), { kind: 'not-a-referrer' });
});

/** An OCI 1.1 referrer of `subject` over another image's blobs, pushed by digest only (no tag-schema index beside it). */
async function pushReferrer(repo: string, subject: LocalImage, content: string): Promise<string> {
  const carrier = await built(buildImage({ layers: [Buffer.from(content)] }));
  await pushImage(carrier, a, repo, `carrier-${carrier.digest.slice(7, 19)}`);
  const doc = JSON.parse(carrier.bytes.toString()) as Record<string, unknown>;
  const bytes = Buffer.from(JSON.stringify({ ...doc, artifactType: 'application/example.sbom', subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length } }));
  await src.putManifest(repo, digestOf(bytes), bytes, MT.ociManifest);
  return digestOf(bytes);
}

/** The digests and artifact types the target's `sha256-<hex>` index lists for `subject` (distribution 2.8 has no referrers API). */
async function tagSchemaIndex(repo: string, subject: string): Promise<string[]> {
  const raw = await inspectRaw(b, repo, subject.replace(':', '-'));
  return (JSON.parse(raw.toString()) as { manifests: { digest: string; artifactType?: string }[] }).manifests.map((m) => `${m.digest} ${m.artifactType}`);
}

test('an OCI 1.1 referrer pushed after its subject follows it into a target that holds it, listed in the subject\'s tag-schema index', async () => {
  const img = await built(buildImage({ layers: [5300] }));
  await pushImage(img, a, 'oci/app', 'v1');
  const referrer = await pushReferrer('oci/app', img, 'sbom contents');

  assert.deepEqual(await copyReferrersOf(src, 'oci/app', referrer, dst, 'oci/app', 'subject', { pool: new CopyPool() }), { kind: 'absent', artifact: img.digest });
  assert.equal(await dst.headManifest('oci/app', referrer).catch(() => null), null);

  await copyArtifact(src, 'oci/app', 'v1', dst, 'oci/app', 'v1', { pool: new CopyPool() });
  const r = await copyReferrersOf(src, 'oci/app', referrer, dst, 'oci/app', 'subject', { pool: new CopyPool() });
  assert.ok(r.kind === 'copied');
  assert.equal(r.artifact, img.digest);
  assert.equal(r.result.skipped, false);
  assert.equal(await inspectDigest(b, 'oci/app', referrer), referrer);
  assert.deepEqual(await tagSchemaIndex('oci/app', img.digest), [`${referrer} application/example.sbom`]);
});

test('with referrers, a referrer copied by digest like any untagged artifact is added to its subject\'s tag-schema index, once', async () => {
  const img = await built(buildImage({ layers: [5400] }));
  await pushImage(img, a, 'link/app', 'v1');
  await copyArtifact(src, 'link/app', 'v1', dst, 'link/app', 'v1', { pool: new CopyPool() });
  const first = await pushReferrer('link/app', img, 'first sbom');
  const second = await pushReferrer('link/app', img, 'second sbom');
  const opts = () => ({ referrers: true, pool: new CopyPool() });
  await copyArtifact(src, 'link/app', first, dst, 'link/app', undefined, opts());
  await copyArtifact(src, 'link/app', second, dst, 'link/app', undefined, opts());
  await copyArtifact(src, 'link/app', second, dst, 'link/app', undefined, opts());
  assert.deepEqual(await tagSchemaIndex('link/app', img.digest), [`${first} application/example.sbom`, `${second} application/example.sbom`]);
});

test('referrers copied at once into one target all end up in the subject\'s tag-schema index', async () => {
  const img = await built(buildImage({ layers: [5500] }));
  await pushImage(img, a, 'race/app', 'v1');
  await copyArtifact(src, 'race/app', 'v1', dst, 'race/app', 'v1', { pool: new CopyPool() });
  const refs = await Promise.all(['one', 'two', 'three', 'four'].map((n) => pushReferrer('race/app', img, `sbom ${n}`)));
  await Promise.all(refs.map((r) => copyArtifact(src, 'race/app', r, dst, 'race/app', undefined, { referrers: true, pool: new CopyPool() })));
  assert.deepEqual((await tagSchemaIndex('race/app', img.digest)).sort(), refs.map((r) => `${r} application/example.sbom`).sort());
});

test('a referrer the target already holds is added to its subject\'s index on the next copy; without referrers nothing is', async () => {
  const img = await built(buildImage({ layers: [5600] }));
  await pushImage(img, a, 'heal/app', 'v1');
  await copyArtifact(src, 'heal/app', 'v1', dst, 'heal/app', 'v1', { pool: new CopyPool() });
  const r = await pushReferrer('heal/app', img, 'sbom held already');
  // Copied without referrers (as a policy without them would): in the target, listed nowhere.
  await copyArtifact(src, 'heal/app', r, dst, 'heal/app', undefined, { pool: new CopyPool() });
  assert.deepEqual(await dst.listTags('heal/app'), ['v1']);
  const again = await copyArtifact(src, 'heal/app', r, dst, 'heal/app', undefined, { referrers: true, pool: new CopyPool() });
  assert.equal(again.skipped, true);
  assert.deepEqual(await tagSchemaIndex('heal/app', img.digest), [`${r} application/example.sbom`]);
});

test('a signature of a referrer (a signed SBOM) follows the SBOM; progress is reported while referrers move', async () => {
  const img = await built(buildImage({ layers: [5700] }));
  await pushImage(img, a, 'sbom/app', 'v1');
  const sbom = await pushReferrer('sbom/app', img, 'an sbom that gets signed');
  await copyArtifact(src, 'sbom/app', 'v1', dst, 'sbom/app', 'v1', { referrers: true, pool: new CopyPool() });
  assert.equal((await copyReferrersOf(src, 'sbom/app', sbom, dst, 'sbom/app', 'subject', { pool: new CopyPool() })).kind, 'copied');
  assert.ok(await dst.headManifest('sbom/app', sbom), 'the SBOM followed its subject');
  const sig = await cosignTag('sbom/app', sbom, 'sig');
  let calls = 0;
  const r = await copyReferrersOf(src, 'sbom/app', sbom, dst, 'sbom/app', 'digest', { pool: new CopyPool(), onProgress: () => { calls++; } });
  assert.ok(r.kind === 'copied' && r.artifact === sbom && !r.result.skipped);
  assert.equal(await inspectDigest(b, 'sbom/app', `${sbom.replace(':', '-')}.sig`), sig.digest);
  assert.ok(calls > 0, 'a referrers-only copy reports progress, which keeps the stall timer from firing');
});

test('an SBOM\'s own cosign signature comes with the SBOM when its subject is copied', async () => {
  const img = await built(buildImage({ layers: [5800] }));
  await pushImage(img, a, 'sbom2/app', 'v1');
  const sbom = await pushReferrer('sbom2/app', img, 'an sbom signed before the copy');
  const bytes = (await src.getManifest('sbom2/app', sbom)).bytes;
  // The subject's tag-schema index, as the pushing client writes it on a registry without the referrers API.
  await src.putManifest('sbom2/app', img.digest.replace(':', '-'), Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, digest: sbom, size: bytes.length, artifactType: 'application/example.sbom' }] })), MT.ociIndex);
  const sig = await cosignTag('sbom2/app', sbom, 'sig');
  const r = await copyArtifact(src, 'sbom2/app', 'v1', dst, 'sbom2/app', 'v1', { referrers: true, pool: new CopyPool() });
  assert.equal(r.referrers, 2);
  assert.ok(await dst.headManifest('sbom2/app', sbom));
  assert.equal(await inspectDigest(b, 'sbom2/app', `${sbom.replace(':', '-')}.sig`), sig.digest);
});
