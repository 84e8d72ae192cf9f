// copyArtifact through faulty networks on both sides: a source whose blobs redirect to another
// origin and whose responses break mid-stream, a target that throttles and drops connections.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { startFaultProxy, type FaultProxy } from '../../support/fault-proxy.ts';
import { buildImage, pushImage, inspectDigest, inspectRaw, MT, type LocalImage } from '../../support/images.ts';
import { RegistryClient } from '../../../src/registry/client.ts';
import { copyArtifact } from '../../../src/replication/copy.ts';
import { CopyPool } from '../../../src/replication/copy-pool.ts';
import type { BridgeError } from '../../../src/errors.ts';

let a: TestRegistry;
let b: TestRegistry;
let pa: FaultProxy;
let pb: FaultProxy;
let image: LocalImage;
const clients: RegistryClient[] = [];

before(async () => {
  [a, b] = await Promise.all([startRegistry({ auth: 'token' }), startRegistry({ auth: 'basic' })]);
  [pa, pb] = await Promise.all([startFaultProxy(a.url), startFaultProxy(b.url)]);
  image = await buildImage({ layers: [3 * 1024 * 1024 + 5, 400_000] });
  await pushImage(image, a, 'src/app', 'v1');
});
after(async () => {
  for (const c of clients) await c.close();
  await pa.stop(); await pb.stop();
  await a.stop(); await b.stop();
  await image.cleanup();
});

const clientsFor = () => {
  const opts = { retry: { baseMs: 20, maxMs: 200 }, upload: { monolithicMaxBytes: 512 * 1024, chunkBytes: 1024 * 1024 } };
  const src = new RegistryClient({ url: pa.url, credentials: a.users[0] }, opts);
  const dst = new RegistryClient({ url: pb.url, credentials: b.users[0] }, opts);
  clients.push(src, dst);
  return { src, dst };
};

test('copies through redirects, a broken source stream, a throttled manifest PUT and a cut chunk', async () => {
  // The big layer's first download breaks after 1.5 MB; every other blob GET redirects.
  pa.addRule({ match: { method: 'GET', path: new RegExp(`/blobs/${image.layers[0]!.digest}$`), authorized: true }, action: 'cutResponse', afterBytes: 1_500_000, times: 1 });
  pa.addRule({ match: { method: 'GET', path: /\/blobs\/sha256:/, authorized: true }, action: 'redirect' });
  pb.addRule({ match: { method: 'PUT', path: /\/manifests\/v1$/, authorized: true }, action: 'status', status: 429, headers: { 'retry-after': '0' }, times: 1 });
  pb.addRule({ match: { method: 'PATCH', nth: 2 }, action: 'cut', afterBytes: 100_000 });
  const { src, dst } = clientsFor();
  const r = await copyArtifact(src, 'src/app', 'v1', dst, 'dst/app', 'v1', { pool: new CopyPool() });
  assert.equal(r.digest, image.digest);
  assert.equal(await inspectDigest(b, 'dst/app', 'v1'), image.digest);
  assert.ok(pa.redirectOrigin.requests.length >= 1 && pa.redirectOrigin.requests.every((q) => !q.authorization));
  assert.ok(pb.requests.some((q) => q.action === 'status' && q.status === 429));
  assert.ok(pb.requests.some((q) => q.action === 'cut'));
  assert.ok(pa.requests.some((q) => q.action === 'cutResponse'));
  // The source was reopened after the break: the big layer was fetched again (via the redirect).
  assert.ok(pa.redirectOrigin.requests.some((q) => q.path.includes(image.layers[0]!.digest)));
});

test('a target that keeps refusing surfaces a retryable error and leaves no tag behind', async () => {
  pa.clearRules(); pb.clearRules();
  pb.addRule({ match: { method: 'PUT', path: /\/manifests\//, authorized: true }, action: 'status', status: 503 });
  const { src, dst } = clientsFor();
  await assert.rejects(copyArtifact(src, 'src/app', 'v1', dst, 'dst/other', 'v1', { pool: new CopyPool() }), (e: BridgeError) => e.code === 'HSB_REGISTRY_UNAVAILABLE' && e.retryable);
  pb.clearRules();
  assert.equal(await dst.headManifest('dst/other', 'v1'), null);
});

test('a 401 on a streamed chunk (expired token) refreshes the token and resumes the upload', async () => {
  pa.clearRules();
  const issuer = a.tokenIssuer!;
  pa.addRule({ match: { method: 'PATCH', nth: 2 }, action: 'status', status: 401, headers: { 'www-authenticate': `Bearer realm="${issuer.url}",service="${issuer.service}",error="invalid_token"` } });
  const { src } = clientsFor();
  const blob = randomBytes(3 * 1024 * 1024);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const before = issuer.requests.length;
  await src.uploadBlob('src/expiry', { digest, size: blob.length }, async (o) => Readable.from([blob.subarray(o)]));
  assert.ok(issuer.requests.length > before, 'a fresh token was fetched');
  assert.ok(pa.requests.some((q) => q.method === 'PATCH' && q.status === 401));
  assert.equal(await src.hasBlob('src/expiry', digest), true);
  pa.clearRules();
});

test('referrers from a source with the OCI 1.1 API land in a tag-schema index on a target without it', async () => {
  pa.clearRules(); pb.clearRules();
  const sig = await buildImage({ layers: [Buffer.from('sig-bytes')] });
  try {
    await pushImage(sig, a, 'src/app', 'sig-1');
    const desc = { mediaType: MT.ociManifest, digest: sig.digest, size: sig.bytes.length, artifactType: 'application/example.signature' };
    // The proxy plays a registry that implements GET /v2/<name>/referrers/<digest>.
    pa.addRule({ match: { method: 'GET', path: new RegExp(`/v2/src/app/referrers/${image.digest}`) }, action: 'status', status: 200,
      headers: { 'content-type': MT.ociIndex }, body: JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [desc] }) });
    const { src, dst } = clientsFor();
    const r = await copyArtifact(src, 'src/app', 'v1', dst, 'dst/refs', 'v1', { referrers: true, pool: new CopyPool() });
    assert.equal(r.referrers, 1);
    assert.equal(await inspectDigest(b, 'dst/refs', sig.digest), sig.digest);
    const index = JSON.parse((await inspectRaw(b, 'dst/refs', image.digest.replace(':', '-'))).toString()) as { manifests: unknown[] };
    assert.deepEqual(index.manifests, [desc]);
    // Idempotent: a second run finds everything in place and writes no new index.
    const puts = () => pb.requests.filter((q) => q.method === 'PUT' && q.path.includes('/manifests/sha256-')).length;
    const before = puts();
    const again = await copyArtifact(src, 'src/app', 'v1', dst, 'dst/refs', 'v1', { referrers: true, pool: new CopyPool() });
    assert.equal(again.skipped, true);
    assert.equal(puts(), before);
  } finally {
    pa.clearRules();
    await sig.cleanup();
  }
});

test('with referrers, the tag is written only once the signature is in the target', async () => {
  pa.clearRules(); pb.clearRules();
  const sig = await buildImage({ layers: [Buffer.from('signature that fails to copy')] });
  try {
    await pushImage(sig, a, 'src/app', 'sig-2');
    const desc = { mediaType: MT.ociManifest, digest: sig.digest, size: sig.bytes.length, artifactType: 'application/example.signature' };
    pa.addRule({ match: { method: 'GET', path: new RegExp(`/v2/src/app/referrers/${image.digest}`) }, action: 'status', status: 200,
      headers: { 'content-type': MT.ociIndex }, body: JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [desc] }) });
    // The signature's layer cannot be read from the source.
    pa.addRule({ match: { method: 'GET', path: new RegExp(`/blobs/${sig.layers[0]!.digest}`) }, action: 'status', status: 404,
      headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] }) });
    const { src, dst } = clientsFor();
    await assert.rejects(copyArtifact(src, 'src/app', 'v1', dst, 'dst/signed', 'v1', { referrers: true, pool: new CopyPool() }));
    assert.equal(await dst.headManifest('dst/signed', 'v1'), null, 'no tag on an image whose signature is missing');
    assert.ok(await dst.headManifest('dst/signed', image.digest), 'the image itself is in, by digest');
    pa.clearRules();
    pa.addRule({ match: { method: 'GET', path: new RegExp(`/v2/src/app/referrers/${image.digest}`) }, action: 'status', status: 200,
      headers: { 'content-type': MT.ociIndex }, body: JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [desc] }) });
    const r = await copyArtifact(src, 'src/app', 'v1', dst, 'dst/signed', 'v1', { referrers: true, pool: new CopyPool() });
    assert.equal(r.referrers, 1);
    assert.equal((await dst.headManifest('dst/signed', 'v1'))?.digest, image.digest);
    assert.ok(await dst.headManifest('dst/signed', sig.digest));
  } finally {
    pa.clearRules();
    await sig.cleanup();
  }
});

test('the first failed blob cancels the copy\'s other transfers, and is the error reported', async () => {
  pa.clearRules(); pb.clearRules();
  const [big, small] = image.layers;
  // The small layer cannot be read; the big one moves slowly (bandwidth limit) when the copy fails.
  pa.addRule({ match: { method: 'GET', path: new RegExp(`/blobs/${small!.digest}`) }, action: 'status', status: 404,
    headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] }) });
  const { src, dst } = clientsFor();
  let lastProgress = 0;
  const failed = await copyArtifact(src, 'src/app', 'v1', dst, 'dst/cancelled', 'v1', {
    pool: new CopyPool(), speedKbps: 2000, onProgress: () => { lastProgress = Date.now(); },
  }).then(() => undefined, (e: BridgeError) => e);
  const at = Date.now();
  assert.equal(failed?.code, 'HSB_REGISTRY_NOT_FOUND', `the missing blob is the error reported, got ${failed?.code}`);
  // At 256 KB/s the 3 MB layer would still be moving for seconds: allow only the cancellation's own moment.
  await new Promise((r) => setTimeout(r, 2000));
  assert.ok(lastProgress <= at + 300, 'no byte of the copy moved after it failed');
  assert.equal(await dst.hasBlob('dst/cancelled', big!.digest), false);
  pa.clearRules();
});

test('bytes the target refuses as not hashing to their digest are reported as the source\'s', async () => {
  pa.clearRules(); pb.clearRules();
  pb.addRule({ match: { method: 'PUT', path: /\/dst\/corrupt\/blobs\/uploads\// }, action: 'status', status: 400,
    headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content' }] }) });
  const { src, dst } = clientsFor();
  await assert.rejects(copyArtifact(src, 'src/app', 'v1', dst, 'dst/corrupt', 'v1', { pool: new CopyPool() }), (e: BridgeError) => {
    assert.equal(e.code, 'HSB_REGISTRY_DIGEST_MISMATCH');
    assert.match(e.message, new RegExp(`^the bytes ${src.host.replace(/\./g, '\\.')}/src/app served for sha256:`));
    assert.equal(e.context.sourceRepository, 'src/app');
    return true;
  });
  assert.equal(await dst.headManifest('dst/corrupt', 'v1'), null);
  pb.clearRules();
});

test('a source tag that moves during the copy is not written back with the older digest', async () => {
  pa.clearRules(); pb.clearRules();
  const next = await buildImage({ layers: [70_000] });
  try {
    await pushImage(image, a, 'src/moving', 'v1');
    // Hold the first blob upload to the target while the source tag moves on.
    pb.addRule({ match: { method: 'POST', path: /\/dst\/moving\/blobs\/uploads\/$/ }, action: 'delay', ms: 4000, times: 1 });
    const { src, dst } = clientsFor();
    const copying = copyArtifact(src, 'src/moving', 'v1', dst, 'dst/moving', 'v1', { pool: new CopyPool() });
    await pushImage(next, a, 'src/moving', 'v1');
    await assert.rejects(copying, (e: BridgeError) => {
      assert.equal(e.code, 'HSB_COPY_SOURCE_MOVED');
      assert.equal(e.retryable, true);
      assert.equal(e.context.copied, image.digest);
      assert.equal(e.context.now, next.digest);
      return true;
    });
    await assert.rejects(inspectDigest(b, 'dst/moving', 'v1'), 'the stale digest must not be tagged');
    // The next try resolves the tag afresh.
    const r = await copyArtifact(src, 'src/moving', 'v1', dst, 'dst/moving', 'v1', { pool: new CopyPool() });
    assert.equal(r.digest, next.digest);
    assert.equal(await inspectDigest(b, 'dst/moving', 'v1'), next.digest);
  } finally {
    await next.cleanup();
  }
});

test('a policy\'s speed (Kbit/s, Harbor\'s 1024-bit Kbit) caps the copy\'s uploads', async () => {
  pa.clearRules(); pb.clearRules();
  const { src, dst } = clientsFor();
  const bytes = image.layers.reduce((n, l) => n + l.size, 0);
  const t0 = Date.now();
  const r = await copyArtifact(src, 'src/app', 'v1', dst, 'dst/paced', 'v1', { pool: new CopyPool(), speedKbps: 16_000 });
  const ms = Date.now() - t0;
  assert.equal(r.digest, image.digest);
  // 16 000 Kbit/s is 2,048,000 bytes/s; the first tenth of a second is a burst.
  const floor = ((bytes / 2_048_000) - 0.1) * 1000;
  assert.ok(ms >= floor, `${bytes} bytes at 2 MB/s took ${ms} ms (at least ${Math.round(floor)} expected)`);
});

test('a source that refuses look-ups of cosign tags (403, 405) is taken as having none; other failures still fail the copy', async () => {
  pa.clearRules(); pb.clearRules();
  const { src, dst } = clientsFor();
  pa.addRule({ match: { method: 'HEAD', path: /\/manifests\/sha256-[0-9a-f]{64}\.sig$/ }, action: 'status', status: 403, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errors: [{ code: 'DENIED', message: 'denied' }] }) });
  pa.addRule({ match: { method: 'HEAD', path: /\/manifests\/sha256-[0-9a-f]{64}\.att$/ }, action: 'status', status: 405 });
  try {
    const r = await copyArtifact(src, 'src/app', 'v1', dst, 'dst/probed', 'v1', { referrers: true, pool: new CopyPool() });
    assert.equal(r.digest, image.digest);
    assert.equal(await inspectDigest(b, 'dst/probed', 'v1'), image.digest);
    assert.ok(pa.requests.some((q) => q.method === 'HEAD' && q.path.endsWith('.sig') && q.status === 403), 'the refused probe was made');
    pa.addRule({ match: { method: 'HEAD', path: /\/manifests\/sha256-[0-9a-f]{64}\.sbom$/ }, action: 'status', status: 500, times: 100 });
    await assert.rejects(copyArtifact(src, 'src/app', 'v1', dst, 'dst/probed', 'v1', { referrers: true, pool: new CopyPool() }), (e: BridgeError) => e.code === 'HSB_REGISTRY_UNAVAILABLE');
  } finally {
    pa.clearRules();
  }
});

test('a target refusing the subject\'s tag-schema index does not fail the copy of a referrer, which is in by digest', async () => {
  pa.clearRules(); pb.clearRules();
  const { src, dst } = clientsFor();
  const carrier = await buildImage({ layers: [Buffer.from('an sbom the target will hold')] });
  try {
    await pushImage(carrier, a, 'src/app', 'carrier');
    const bytes = Buffer.from(JSON.stringify({ ...JSON.parse(carrier.bytes.toString()), subject: { mediaType: image.mediaType, digest: image.digest, size: image.bytes.length } }));
    const referrer = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await src.putManifest('src/app', referrer, bytes, MT.ociManifest);
    pb.addRule({ match: { method: 'PUT', path: /\/manifests\/sha256-[0-9a-f]{64}$/ }, action: 'status', status: 403, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errors: [{ code: 'DENIED', message: 'denied' }] }) });
    const r = await copyArtifact(src, 'src/app', referrer, dst, 'dst/link', undefined, { referrers: true, pool: new CopyPool() });
    assert.equal(r.digest, referrer);
    assert.ok(await dst.headManifest('dst/link', referrer));
    assert.ok(pb.requests.some((q) => q.method === 'PUT' && /\/manifests\/sha256-[0-9a-f]{64}$/.test(q.path) && q.status === 403), 'the index write was tried');

    // A transient failure is the copy's: its retry links the referrer.
    pb.clearRules();
    pb.addRule({ match: { method: 'PUT', path: /\/manifests\/sha256-[0-9a-f]{64}$/ }, action: 'status', status: 503, times: 100 });
    await assert.rejects(copyArtifact(src, 'src/app', referrer, dst, 'dst/link2', undefined, { referrers: true, pool: new CopyPool() }), (e: BridgeError) => e.retryable === true);
    pb.clearRules();
    const retried = await copyArtifact(src, 'src/app', referrer, dst, 'dst/link2', undefined, { referrers: true, pool: new CopyPool() });
    assert.equal(retried.skipped, true);
    const index = JSON.parse((await inspectRaw(b, 'dst/link2', image.digest.replace(':', '-'))).toString()) as { manifests: { digest: string }[] };
    assert.deepEqual(index.manifests.map((m) => m.digest), [referrer]);
  } finally {
    pb.clearRules();
    await carrier.cleanup();
  }
});
