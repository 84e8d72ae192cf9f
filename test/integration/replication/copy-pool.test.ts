// The process-wide transfer slots (worker.transfers) are shared by every target: an upload backing
// off from a failing target lends its slot out meanwhile, so a copy to a healthy target does not
// queue until the failing one gives up.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { startFaultProxy, type FaultProxy } from '../../support/fault-proxy.ts';
import { buildImage, pushImage, inspectDigest, type LocalImage } from '../../support/images.ts';
import { RegistryClient } from '../../../src/registry/client.ts';
import { copyArtifact } from '../../../src/replication/copy.ts';
import { CopyPool } from '../../../src/replication/copy-pool.ts';

let src: TestRegistry;
let failing: TestRegistry;
let healthy: TestRegistry;
let proxy: FaultProxy;
const images: LocalImage[] = [];
const clients: RegistryClient[] = [];

before(async () => {
  [src, failing, healthy] = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
  proxy = await startFaultProxy(failing.url);
  // Every upload request to the failing target: 503, come back in a second.
  proxy.addRule({ match: { path: /\/blobs\/uploads\// }, action: 'status', status: 503, headers: { 'retry-after': '1' } });
  for (const i of [0, 1, 2]) {
    const img = await buildImage({ layers: [20_000 + i] });
    images.push(img);
    await pushImage(img, src, `app/n${i}`, 'v1');
  }
});
after(async () => {
  for (const c of clients) await c.close();
  await proxy.stop();
  await Promise.all([src.stop(), failing.stop(), healthy.stop()]);
  for (const img of images) await img.cleanup();
});

test('a copy to a healthy target is not held back by uploads backing off from a failing one', async () => {
  const client = (url: string) => { const c = new RegistryClient({ url }); clients.push(c); return c; };
  const [from, dead, ok] = [client(src.url), client(proxy.url), client(healthy.url)];
  const pool = new CopyPool({ concurrency: 2 });
  const stop = new AbortController();
  const settled: string[] = [];
  // Two copies to the failing target take both slots first.
  const stuck = [0, 1].map((i) => copyArtifact(from, `app/n${i}`, 'v1', dead, `app/n${i}`, 'v1', { pool, signal: stop.signal })
    .then(() => 'done', (e: { code?: string }) => e.code ?? 'error').then((r) => { settled.push(r); return r; }));
  await new Promise((r) => setTimeout(r, 300));
  const r = await copyArtifact(from, 'app/n2', 'v1', ok, 'app/n2', 'v1', { pool });
  const refusedSoFar = proxy.requests.filter((q) => q.status === 503).length;
  assert.equal(r.digest, images[2]!.digest);
  assert.deepEqual(settled, [], 'the healthy copy finished while the failing ones were still backing off');
  // Each refused request is followed by a 1 s wait: holding their slots through the transport's
  // own retries (5 per request) would have taken both failing copies past 10 refusals first.
  assert.ok(refusedSoFar < 6, `the healthy copy waited through ${refusedSoFar} refusals of the failing target`);
  assert.equal(await inspectDigest(healthy, 'app/n2', 'v1'), images[2]!.digest);
  stop.abort();
  assert.ok((await Promise.all(stuck)).every((x) => x !== 'done'));
});

test('mount candidates are remembered per account: another account on the same registry is not offered them', async () => {
  // admin may read everything; robot nothing under secret/.
  const users = [{ username: 'robot', password: 'r0b0t' }, { username: 'admin', password: 'adm1n' }];
  const reg = await startRegistry({ auth: 'token', users, token: { acl: (u, a) => (u !== 'admin' && a.name.startsWith('secret/') ? [] : a.actions) } });
  try {
    const from = new RegistryClient({ url: src.url });
    const admin = new RegistryClient({ url: reg.url, credentials: users[1] });
    const robot = new RegistryClient({ url: reg.url, credentials: users[0] });
    clients.push(from, admin, robot);
    const pool = new CopyPool();
    await copyArtifact(from, 'app/n0', 'v1', admin, 'secret/one', 'v1', { pool });
    const mark = reg.logs().length;
    const r = await copyArtifact(from, 'app/n0', 'v1', robot, 'pub/two', 'v1', { pool });
    assert.deepEqual(r.blobs, { uploaded: 2, mounted: 0, skipped: 0 });
    const mounts = reg.logs().slice(mark).split('\n').filter((l) => /"POST \/v2\/pub\/two\/blobs\/uploads\/\?[^"]*mount=/.test(l));
    assert.deepEqual(mounts, [], 'no mount from a repository only the other account wrote');
  } finally {
    await reg.stop();
  }
});

test('a refused mount\'s upload session carries the upload: no cancel, no second session', async () => {
  const dst = await startRegistry();
  try {
    const img = images[0]!;
    for (const [name, upload] of [['whole', {}], ['chunked', { monolithicMaxBytes: 0, chunkBytes: 8192 }]] as const) {
      const from = new RegistryClient({ url: src.url });
      const to = new RegistryClient({ url: dst.url }, { upload });
      clients.push(from, to);
      const pool = new CopyPool();
      // The pool believes each blob is in a repository of the target that does not hold it: every mount is refused with a 202.
      for (const blob of [...img.layers, img.config!]) pool.remember(to.identity, blob.digest, 'elsewhere/none');
      const mark = dst.logs().length;
      const r = await copyArtifact(from, 'app/n0', 'v1', to, `mnt/${name}`, 'v1', { pool });
      assert.deepEqual(r.blobs, { uploaded: 2, mounted: 0, skipped: 0 }, name);
      const lines = dst.logs().slice(mark).split('\n');
      const posts = lines.filter((l) => l.includes(`"POST /v2/mnt/${name}/blobs/uploads/`));
      assert.equal(posts.length, 2, `${name}: one POST per blob, the mount's:\n${posts.join('\n')}`);
      assert.ok(posts.every((l) => /[?&]mount=/.test(l)), name);
      assert.deepEqual(lines.filter((l) => l.includes('"DELETE ')), [], `${name}: no session cancelled`);
      if (name === 'chunked') assert.ok(lines.some((l) => l.includes(`"PATCH /v2/mnt/${name}/blobs/uploads/`)), 'the chunked path ran');
      assert.equal(await inspectDigest(dst, `mnt/${name}`, 'v1'), img.digest);
    }
  } finally {
    await dst.stop();
  }
});

test('a handed-over session the registry no longer knows costs only a fresh one: no failure, no wait, no switch to chunks', async () => {
  const dst = await startRegistry();
  try {
    const layer = images[1]!.layers[0]!;
    // chunkBytes below the blob's size: an upload counted as broken would go on in PATCHes.
    for (const [name, upload] of [['whole', { chunkBytes: 8192 }], ['chunked', { monolithicMaxBytes: 0, chunkBytes: 8192 }]] as const) {
      const from = new RegistryClient({ url: src.url });
      const to = new RegistryClient({ url: dst.url }, { upload });
      clients.push(from, to);
      const mount = await to.mountBlob(`gone/${name}`, layer.digest, 'elsewhere/none');
      assert.ok(!mount.mounted && mount.session, 'distribution answers a refused mount with an upload session');
      await to.cancelUpload(`gone/${name}`, mount.session);
      const mark = dst.logs().length;
      await to.uploadBlob(`gone/${name}`, { digest: layer.digest, size: layer.size },
        async (offset) => (await from.getBlob('app/n1', layer.digest, { offset })).body, { session: mount.session });
      const calls = [...dst.logs().slice(mark).matchAll(new RegExp(`"(\\w+) /v2/gone/${name}/[^ ]* HTTP/1\\.1" (\\d+)`, 'g'))].map((m) => `${m[1]} ${m[2]}`);
      const first = name === 'whole' ? 'PUT 404' : 'PATCH 404';
      // The stale session is tried, given back, and a fresh one takes the blob (the chunked path asks for the stale one's offset first).
      const expected = name === 'whole' ? [first, 'DELETE 404', 'POST 202', 'PUT 201'] : [first, 'GET 404', 'DELETE 404', 'POST 202', 'PATCH 202', 'PATCH 202', 'PATCH 202', 'PUT 201'];
      assert.deepEqual(calls, expected, name);
      assert.equal(await to.hasBlob(`gone/${name}`, layer.digest), true, name);
    }
    // A registry that says so with a bare 404 (no BLOB_UPLOAD_UNKNOWN body), which is otherwise not retried.
    const bare = await startFaultProxy(dst.url);
    try {
      for (const [name, upload, method] of [['whole', {}, 'PUT'], ['chunked', { monolithicMaxBytes: 0, chunkBytes: 8192 }, 'PATCH']] as const) {
        bare.addRule({ match: { method, path: new RegExp(`^/v2/bare/${name}/blobs/uploads/`), nth: 1 }, action: 'status', status: 404, times: 1 });
        const from = new RegistryClient({ url: src.url });
        const to = new RegistryClient({ url: bare.url }, { upload });
        clients.push(from, to);
        const mount = await to.mountBlob(`bare/${name}`, layer.digest, 'elsewhere/none');
        assert.ok(!mount.mounted && mount.session);
        await to.uploadBlob(`bare/${name}`, { digest: layer.digest, size: layer.size },
          async (offset) => (await from.getBlob('app/n1', layer.digest, { offset })).body, { session: mount.session });
        assert.equal(await to.hasBlob(`bare/${name}`, layer.digest), true, name);
        assert.ok(bare.requests.some((r) => r.method === method && r.status === 404 && r.path.startsWith(`/v2/bare/${name}/`)), `${name}: the bare 404 was served`);
      }
    } finally {
      await bare.stop();
    }
  } finally {
    await dst.stop();
  }
});
