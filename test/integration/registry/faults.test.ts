// The client against real distribution 2.8 behind a fault proxy: throttling, outages, broken
// uploads, cross-origin redirects and bad source bytes.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { startFaultProxy, type FaultProxy } from '../../support/fault-proxy.ts';
import { buildImage, pushImage, type LocalImage } from '../../support/images.ts';
import { RegistryClient, type RegistryClientOptions } from '../../../src/registry/client.ts';
import { BridgeError } from '../../../src/errors.ts';

let reg: TestRegistry;
let proxy: FaultProxy;
let image: LocalImage;
const clients: RegistryClient[] = [];

before(async () => {
  reg = await startRegistry({ auth: 'basic' });
  proxy = await startFaultProxy(reg.url);
  image = await buildImage({ layers: [5000, 700_000] });
  await pushImage(image, reg, 'src/app', 'v1');
});
after(async () => {
  for (const c of clients) await c.close();
  await proxy.stop();
  await reg.stop();
  await image.cleanup();
});

const client = (opts: RegistryClientOptions = {}) => {
  const c = new RegistryClient({ url: proxy.url, credentials: reg.users[0] }, { retry: { baseMs: 20, maxMs: 200 }, ...opts });
  clients.push(c);
  return c;
};
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sourceOf = (bytes: Buffer) => async (offset: number) => Readable.from([bytes.subarray(offset)]);
const sinceNow = (from: number) => proxy.requests.slice(from);

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('429 with Retry-After is waited for, then the request succeeds', async () => {
  proxy.clearRules();
  proxy.addRule({ match: { method: 'GET', path: /\/manifests\/v1$/ }, action: 'status', status: 429, headers: { 'retry-after': '1' }, times: 1 });
  const c = client();
  const t0 = Date.now();
  const m = await c.getManifest('src/app', 'v1');
  assert.equal(m.digest, image.digest);
  assert.ok(Date.now() - t0 >= 950, `waited ${Date.now() - t0} ms for Retry-After: 1`);
  const statuses = proxy.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/manifests/v1')).map((r) => r.status);
  assert.equal(statuses.filter((s) => s === 429).length, 1);
  assert.equal(statuses.at(-1), 200);
});

test('a Retry-After beyond the in-process limit fails fast as HSB_REGISTRY_THROTTLED with retryAfterMs', async () => {
  proxy.clearRules();
  proxy.addRule({ match: { method: 'GET', path: /\/manifests\/v1$/ }, action: 'status', status: 429, headers: { 'retry-after': '3600' }, times: 1 });
  const c = client();
  const t0 = Date.now();
  await assert.rejects(c.getManifest('src/app', 'v1'), (e: BridgeError) => {
    assert.equal(e.code, 'HSB_REGISTRY_THROTTLED');
    assert.equal(e.retryable, true);
    assert.equal(e.context.retryAfterMs, 3_600_000);
    return true;
  });
  assert.ok(Date.now() - t0 < 1000);
});

test('503 is retried with backoff; a lasting outage surfaces as retryable HSB_REGISTRY_UNAVAILABLE', async () => {
  proxy.clearRules();
  proxy.addRule({ match: { method: 'HEAD' }, action: 'status', status: 503, times: 2 });
  const c = client();
  const head = await c.headManifest('src/app', 'v1');
  assert.equal(head?.digest, image.digest);
  proxy.clearRules();
  proxy.addRule({ match: { method: 'HEAD' }, action: 'status', status: 503 });
  const from = proxy.requests.length;
  await assert.rejects(c.headManifest('src/app', 'v1'), (e: BridgeError) => e.code === 'HSB_REGISTRY_UNAVAILABLE' && e.retryable);
  assert.equal(sinceNow(from).length, 5, 'five tries (the default policy)');
  proxy.clearRules();
});

test('401 with wrong credentials is HSB_REGISTRY_UNAUTHORIZED and not retryable', async () => {
  const c = new RegistryClient({ url: reg.url, credentials: { username: 'robot$bridge', password: 'wrong' } });
  clients.push(c);
  await assert.rejects(c.getManifest('src/app', 'v1'), (e: BridgeError) => e.code === 'HSB_REGISTRY_UNAUTHORIZED' && !e.retryable);
});

test('a connection cut halfway through a chunk restarts the upload (distribution drops the session) and the digest holds', async () => {
  proxy.clearRules();
  const blob = randomBytes(5 * 1024 * 1024 + 123);
  const desc = { digest: sha(blob), size: blob.length };
  proxy.addRule({ match: { method: 'PATCH', nth: 3 }, action: 'cut', afterBytes: 400_000 });
  const c = client({ upload: { monolithicMaxBytes: 1024 * 1024, chunkBytes: 1024 * 1024 } });
  const from = proxy.requests.length;
  await c.uploadBlob('dst/cut', desc, sourceOf(blob));
  const seen = sinceNow(from);
  assert.equal(seen.filter((r) => r.action === 'cut').length, 1);
  assert.equal(seen.filter((r) => r.method === 'POST' && r.status === 202).length, 2, 'a second session after the registry invalidated the first');
  // Read back through the registry and hash: the stored blob is exactly the source.
  const back = await readAll((await client().getBlob('dst/cut', desc.digest)).body);
  assert.equal(sha(back), desc.digest);
});

test('a connection cut before a chunk reached the registry resumes from the registry Range without re-sending', async () => {
  proxy.clearRules();
  const blob = randomBytes(4 * 1024 * 1024 + 77);
  const desc = { digest: sha(blob), size: blob.length };
  proxy.addRule({ match: { method: 'PATCH', nth: 3 }, action: 'cut', afterBytes: 0 });
  const c = client({ upload: { monolithicMaxBytes: 1024 * 1024, chunkBytes: 1024 * 1024 } });
  const from = proxy.requests.length;
  const opened: number[] = [];
  await c.uploadBlob('dst/resume', desc, async (offset) => { opened.push(offset); return Readable.from([blob.subarray(offset)]); });
  const seen = sinceNow(from);
  assert.equal(seen.filter((r) => r.method === 'POST' && r.status === 202).length, 1, 'same session');
  assert.ok(seen.some((r) => r.method === 'GET' && r.path.includes('/blobs/uploads/')), 'asked the registry for the upload status');
  assert.deepEqual(opened, [0, 2 * 1024 * 1024], 'source reopened at the registry offset');
  const patched = seen.filter((r) => r.method === 'PATCH').reduce((n, r) => n + r.bodyBytes, 0);
  assert.equal(patched, blob.length, 'every byte reached the registry exactly once');
  assert.equal(sha(await readAll((await client().getBlob('dst/resume', desc.digest)).body)), desc.digest);
});

test('a cut monolithic PUT is restarted in a new session', async () => {
  proxy.clearRules();
  const blob = randomBytes(600_000);
  proxy.addRule({ match: { method: 'PUT', path: /\/blobs\/uploads\//, nth: 1 }, action: 'cut', afterBytes: 250_000 });
  const c = client();
  await c.uploadBlob('dst/mono', { digest: sha(blob), size: blob.length }, sourceOf(blob));
  assert.equal(await c.hasBlob('dst/mono', sha(blob)), true);
});

test('a throttled blob PUT waits for Retry-After, then uploads in a new session', async () => {
  proxy.clearRules();
  const blob = randomBytes(200_000);
  proxy.addRule({ match: { method: 'PUT', path: /\/blobs\/uploads\// }, action: 'status', status: 429, headers: { 'retry-after': '1' }, times: 1 });
  const c = client();
  const t0 = Date.now();
  await c.uploadBlob('dst/throttled', { digest: sha(blob), size: blob.length }, sourceOf(blob));
  assert.ok(Date.now() - t0 >= 950, `waited ${Date.now() - t0} ms for Retry-After: 1`);
  assert.equal(await c.hasBlob('dst/throttled', sha(blob)), true);
});

test('a session the registry has forgotten (404 BLOB_UPLOAD_INVALID, as distribution answers) starts the upload over', async () => {
  proxy.clearRules();
  const blob = randomBytes(200_000);
  proxy.addRule({
    match: { method: 'PUT', path: /\/dst\/forgot\/blobs\/uploads\// }, action: 'status', status: 404, times: 1,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_INVALID', message: 'blob upload invalid', detail: 'unknown upload' }] }),
  });
  const c = client();
  await c.uploadBlob('dst/forgot', { digest: sha(blob), size: blob.length }, sourceOf(blob));
  assert.equal(await c.hasBlob('dst/forgot', sha(blob)), true);
  assert.equal(proxy.requests.filter((r) => r.method === 'PUT' && r.path.includes('/dst/forgot/')).length, 2, 'the refused PUT, then one in a new session');
});

test('a blob PUT told to come back in an hour fails fast with retryAfterMs (for the retry topic)', async () => {
  proxy.clearRules();
  const blob = randomBytes(200_000);
  proxy.addRule({ match: { method: 'PUT', path: /\/blobs\/uploads\// }, action: 'status', status: 429, headers: { 'retry-after': '3600' } });
  const c = client();
  const t0 = Date.now();
  await assert.rejects(c.uploadBlob('dst/later', { digest: sha(blob), size: blob.length }, sourceOf(blob)), (e: BridgeError) => {
    assert.equal(e.code, 'HSB_REGISTRY_THROTTLED');
    assert.equal(e.context.retryAfterMs, 3_600_000);
    return true;
  });
  assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
  assert.equal(proxy.requests.filter((r) => r.method === 'PUT' && r.path.includes('/dst/later/')).length, 1, 'one PUT, no in-process wait');
});

test('a registry that refuses the blob in one request (413) gets it in chunks', async () => {
  proxy.clearRules();
  const blob = randomBytes(3 * 1024 * 1024);
  proxy.addRule({ match: { method: 'PUT', path: /\/blobs\/uploads\// }, action: 'status', status: 413, times: 1, body: '{"errors":[{"code":"SIZE_INVALID","message":"body too large"}]}' });
  const c = client({ upload: { chunkBytes: 1024 * 1024 } });
  const from = proxy.requests.length;
  await c.uploadBlob('dst/capped', { digest: sha(blob), size: blob.length }, sourceOf(blob));
  const seen = sinceNow(from);
  assert.equal(seen.filter((r) => r.status === 413).length, 1);
  assert.equal(seen.filter((r) => r.method === 'PATCH').length, 3);
  assert.equal(await c.hasBlob('dst/capped', sha(blob)), true);
});

test('a gateway that also refuses the chunks (413) gets smaller ones, halved until they pass', async () => {
  proxy.clearRules();
  const blob = randomBytes(2 * 1024 * 1024);
  const tooLarge = '{"errors":[{"code":"SIZE_INVALID","message":"body too large"}]}';
  proxy.addRule({ match: { method: 'PUT', path: /\/dst\/small-chunks\/blobs\/uploads\// }, action: 'status', status: 413, times: 1, body: tooLarge });
  // Default tuning (32 MiB chunks): chunks start below the refused blob, 1 MiB; the first two are
  // refused too (1 MiB, then 512 KiB); 256 KiB pass.
  proxy.addRule({ match: { method: 'PATCH', path: /\/dst\/small-chunks\// }, action: 'status', status: 413, times: 2, body: tooLarge });
  const c = client();
  const from = proxy.requests.length;
  await c.uploadBlob('dst/small-chunks', { digest: sha(blob), size: blob.length }, sourceOf(blob));
  const patches = sinceNow(from).filter((r) => r.method === 'PATCH' && r.status !== 413);
  assert.equal(patches.length, 8, '2 MiB in 256 KiB chunks');
  assert.equal(await c.hasBlob('dst/small-chunks', sha(blob)), true);
});

test('a 201 naming another digest than the one asked for fails the blob', async () => {
  proxy.clearRules();
  const blob = randomBytes(100_000);
  const other = sha(randomBytes(10));
  // A registry that files bytes under whatever it computed, and says so.
  proxy.addRule({ match: { method: 'PUT', path: /\/blobs\/uploads\// }, action: 'status', status: 201, headers: { 'docker-content-digest': other }, body: '', times: 1 });
  const c = client();
  await assert.rejects(c.uploadBlob('dst/filed', { digest: sha(blob), size: blob.length }, sourceOf(blob)), (e: BridgeError) => {
    assert.equal(e.code, 'HSB_REGISTRY_DIGEST_MISMATCH');
    assert.equal(e.context.actual, other);
    return true;
  });
});

test('source bytes that do not match the digest cancel the upload and never send the final PUT', async () => {
  proxy.clearRules();
  const blob = randomBytes(3 * 1024 * 1024);
  const wrong = { digest: sha(randomBytes(10)), size: blob.length };
  const c = client({ upload: { monolithicMaxBytes: 1024 * 1024, chunkBytes: 1024 * 1024 } });
  const from = proxy.requests.length;
  await assert.rejects(c.uploadBlob('dst/bad', wrong, sourceOf(blob)), (e: BridgeError) => e.code === 'HSB_REGISTRY_DIGEST_MISMATCH');
  const seen = sinceNow(from);
  assert.equal(seen.filter((r) => r.method === 'PUT').length, 0);
  assert.equal(seen.filter((r) => r.method === 'DELETE' && r.path.includes('/blobs/uploads/')).length, 1);
  assert.equal(await c.hasBlob('dst/bad', wrong.digest), false);
});

test('by default a blob goes in one streamed PUT; when that PUT breaks, the upload goes on in hashed chunks', async () => {
  proxy.clearRules();
  const blob = randomBytes(3 * 1024 * 1024);
  proxy.addRule({ match: { method: 'PUT', path: /\/blobs\/uploads\// }, action: 'cut', afterBytes: 1024 * 1024, times: 1 });
  const c = client({ upload: { chunkBytes: 1024 * 1024 } });
  const from = proxy.requests.length;
  await c.uploadBlob('dst/fallback', { digest: sha(blob), size: blob.length }, sourceOf(blob));
  const seen = sinceNow(from);
  assert.equal(seen.filter((r) => r.method === 'PUT' && r.action === 'cut').length, 1, 'the single PUT broke');
  assert.ok(seen.filter((r) => r.method === 'PATCH').length >= 3, 'then chunks');
  assert.equal(await c.hasBlob('dst/fallback', sha(blob)), true);
  const got = await c.getBlob('dst/fallback', sha(blob));
  assert.equal(sha(await readAll(got.body)), sha(blob));
});

test('in one streamed PUT, bytes that do not match the digest are refused by the registry and never become a blob', async () => {
  proxy.clearRules();
  const blob = randomBytes(200_000);
  const wrong = { digest: sha(randomBytes(10)), size: blob.length };
  const c = client();
  await assert.rejects(c.uploadBlob('dst/bad-mono', wrong, sourceOf(blob)), (e: BridgeError) => e.code === 'HSB_REGISTRY_DIGEST_MISMATCH');
  assert.equal(await c.hasBlob('dst/bad-mono', wrong.digest), false);
});

test('a source shorter than its descriptor fails with HSB_REGISTRY_SIZE_MISMATCH', async () => {
  proxy.clearRules();
  const blob = randomBytes(100_000);
  const c = client();
  await assert.rejects(c.uploadBlob('dst/short', { digest: sha(blob), size: blob.length + 10 }, sourceOf(blob)), (e: BridgeError) => e.code === 'HSB_REGISTRY_SIZE_MISMATCH');
  assert.equal(await c.hasBlob('dst/short', sha(blob)), false);
});

test('blob GET redirected to another origin is followed without Authorization', async () => {
  proxy.clearRules();
  proxy.addRule({ match: { method: 'GET', path: /\/blobs\/sha256:/, authorized: true }, action: 'redirect' });
  const c = client();
  const layer = image.layers[1]!;
  const got = await c.getBlob('src/app', layer.digest);
  assert.equal(got.size, layer.size);
  assert.equal(sha(await readAll(got.body)), layer.digest);
  const ranged = await c.getBlob('src/app', layer.digest, { offset: 1000 });
  assert.equal((await readAll(ranged.body)).length, layer.size - 1000);
  const hits = proxy.redirectOrigin.requests;
  assert.ok(hits.length >= 2);
  assert.ok(hits.every((h) => !h.authorization && h.status >= 200 && h.status < 300), JSON.stringify(hits));
  // The registry request itself did carry credentials.
  assert.ok(proxy.requests.filter((r) => r.action === 'redirect').length >= 2);
  proxy.clearRules();
});

test('limits.concurrency bounds requests in flight to one registry; requestsPerSecond paces them', async () => {
  proxy.clearRules();
  proxy.addRule({ match: { method: 'HEAD' }, action: 'delay', ms: 30 });
  const c = new RegistryClient({ url: proxy.url, credentials: reg.users[0], limits: { concurrency: 2, requestsPerSecond: 40 } });
  clients.push(c);
  await c.headManifest('src/app', 'v1'); // settle auth first
  proxy.resetStats();
  const t0 = Date.now();
  const heads = await Promise.all(Array.from({ length: 60 }, () => c.headManifest('src/app', 'v1')));
  const ms = Date.now() - t0;
  assert.ok(heads.every((h) => h?.digest === image.digest));
  assert.equal(proxy.maxInFlight(), 2);
  // 40/s with a burst of 40: the other 20 wait about half a second.
  assert.ok(ms >= 450, `60 HEADs took ${ms} ms`);
  proxy.clearRules();
});

test('limits.concurrency counts a blob download until its body is read or destroyed, not just until its headers', async () => {
  proxy.clearRules();
  const c = new RegistryClient({ url: proxy.url, credentials: reg.users[0], limits: { concurrency: 1 } });
  clients.push(c);
  await c.headManifest('src/app', 'v1'); // settle auth first
  proxy.resetStats();
  const layer = image.layers[1]!;
  const first = await c.getBlob('src/app', layer.digest);
  let second: Awaited<ReturnType<typeof c.getBlob>> | undefined;
  const secondAsked = c.getBlob('src/app', layer.digest).then((b) => { second = b; return b; });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(second, undefined, 'the second download waits while the first one streams');
  assert.equal(sha(await readAll(first.body)), layer.digest);
  assert.equal(sha(await readAll((await secondAsked).body)), layer.digest);
  // A body given up on (destroyed unread) frees its slot as well.
  const third = await c.getBlob('src/app', layer.digest);
  third.body.on('error', () => {}).destroy();
  const fourth = await c.getBlob('src/app', layer.digest, { signal: AbortSignal.timeout(5000) });
  assert.equal(sha(await readAll(fourth.body)), layer.digest);
  assert.equal(proxy.maxInFlight(), 1);
});

test('a request queued behind a transfer takes its token when it is sent, not when it queued', async () => {
  // Tokens live 2 s (cached until 1.8 s). The HEAD waits 2.5 s for the only slot; sent with the token
  // it could have picked when it queued, a streamed PUT would be refused past the registry's leeway
  // and start over (a 66 s reproduction of that is too slow for the suite).
  const tokenReg = await startRegistry({ auth: 'token', token: { ttlSeconds: 2 } });
  const c = new RegistryClient({ url: tokenReg.url, credentials: tokenReg.users[0], limits: { concurrency: 1 } });
  try {
    await pushImage(image, tokenReg, 'q/app', 'v1');
    const layer = image.layers[1]!;
    const held = await c.getBlob('q/app', layer.digest); // a pull token, and the slot until the body is read
    const fetched = tokenReg.tokenIssuer!.requests.length;
    const queued = c.headManifest('q/app', 'v1');
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(sha(await readAll(held.body)), layer.digest);
    assert.equal((await queued)?.digest, image.digest);
    assert.equal(tokenReg.tokenIssuer!.requests.length, fetched + 1, 'the HEAD fetched a fresh token once it had the slot');
  } finally {
    await c.close();
    await tokenReg.stop();
  }
});

test('a token without the grant (401 insufficient_scope after a fresh token) is HSB_REGISTRY_DENIED, not wrong credentials', async () => {
  // The user's password is right; the token service grants nothing under secret/.
  const tokenReg = await startRegistry({ auth: 'token', token: { acl: (_u, a) => (a.name.startsWith('secret/') ? [] : a.actions) } });
  const c = new RegistryClient({ url: tokenReg.url, credentials: tokenReg.users[0] });
  try {
    await assert.rejects(c.headManifest('secret/app', 'v1'), (e: BridgeError) => {
      assert.equal(e.code, 'HSB_REGISTRY_DENIED');
      assert.match(e.message, /credentials are accepted but lack repository:secret\/app:pull/);
      return true;
    });
    assert.equal(await c.headManifest('open/app', 'v1'), null, 'the same credentials work where they are granted');
  } finally {
    await c.close();
    await tokenReg.stop();
  }
});

test('a single-PUT upload closes its source once the registry took the blob, even when the source never said it ended', async () => {
  proxy.clearRules();
  const blob = randomBytes(200_000);
  const opened: Readable[] = [];
  // Exactly the blob's bytes and no end-of-stream yet (a chunked download whose last empty chunk is late).
  const open = async (offset: number) => {
    const r = new Readable({ read() {} });
    r.push(blob.subarray(offset));
    opened.push(r);
    return r;
  };
  await client().uploadBlob('dst/open-ended', { digest: sha(blob), size: blob.length }, open);
  assert.equal(opened.length, 1);
  assert.equal(opened[0]!.destroyed, true, 'the source body is closed, so its download slot is free again');
});

test('limits.speedKbps caps upload bandwidth', async () => {
  proxy.clearRules();
  const blob = randomBytes(1024 * 1024);
  const capped = new RegistryClient({ url: proxy.url, credentials: reg.users[0], limits: { concurrency: 4, speedKbps: 16_000 } });
  clients.push(capped);
  const t0 = Date.now();
  await capped.uploadBlob('dst/slow', { digest: sha(blob), size: blob.length }, sourceOf(blob));
  const ms = Date.now() - t0;
  // 16 000 Kbit/s is 2 MB/s: a 1 MiB blob needs about half a second.
  assert.ok(ms >= 400 && ms < 5000, `1 MiB at 2 MB/s took ${ms} ms`);
  assert.equal(await capped.hasBlob('dst/slow', sha(blob)), true);
});
