// copyArtifact between real distribution 2.8 registries with each auth mode, checked with skopeo.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { buildImage, buildIndex, pushImage, inspectDigest, inspectRaw, type LocalImage } from '../../support/images.ts';
import { RegistryClient } from '../../../src/registry/client.ts';
import { copyArtifact } from '../../../src/replication/copy.ts';
import { CopyPool } from '../../../src/replication/copy-pool.ts';

const cleanup: (() => Promise<void>)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f().catch(() => {}); });

const clientFor = (r: TestRegistry) => {
  const c = new RegistryClient({ url: r.url, credentials: r.users[0] });
  cleanup.push(() => c.close());
  return c;
};

let image: LocalImage;
before(async () => {
  image = await buildImage({ layers: [2048, 300_000, 1_500_000] });
  cleanup.push(() => image.cleanup());
});

for (const auth of ['none', 'basic', 'token'] as const) {
  test(`copies an image between registries with ${auth} auth`, async () => {
    const [a, b] = await Promise.all([startRegistry({ auth }), startRegistry({ auth })]);
    cleanup.push(() => a.stop(), () => b.stop());
    await pushImage(image, a, 'team/app', 'v1');
    const src = clientFor(a);
    const dst = clientFor(b);
    const pool = new CopyPool();

    const r = await copyArtifact(src, 'team/app', 'v1', dst, 'mirror/app', 'v1', { pool });
    assert.equal(r.digest, image.digest);
    assert.equal(r.skipped, false);
    assert.equal(r.tagMoved, true);
    assert.deepEqual(r.blobs, { uploaded: 4, mounted: 0, skipped: 0 });
    assert.equal(r.bytes, image.layers.reduce((n, l) => n + l.size, 0) + image.config!.size);
    assert.equal(await inspectDigest(b, 'mirror/app', 'v1'), image.digest);
    // The registry itself holds every blob.
    const stored = new Set(await b.storedBlobs());
    for (const l of [...image.layers, image.config!]) assert.ok(stored.has(l.digest), `target stores ${l.digest}`);

    const again = await copyArtifact(src, 'team/app', 'v1', dst, 'mirror/app', 'v1', { pool });
    assert.equal(again.skipped, true);
    assert.deepEqual(again.blobs, { uploaded: 0, mounted: 0, skipped: 0 });
    if (auth === 'token') {
      // Tokens are cached: one fetch per scope set, not per request.
      assert.ok(b.tokenIssuer!.requests.length <= 6, `token requests: ${b.tokenIssuer!.requests.length}`);
      assert.ok(b.tokenIssuer!.requests.every((q) => q.status === 200 && q.user === 'robot$bridge'));
    }
  });
}

test('copies a multi-arch OCI index digest-exact, children before the index', async () => {
  const idx = await buildIndex({ images: [
    { layers: [10_000, 20_000], platform: { os: 'linux', architecture: 'amd64' } },
    { layers: [30_000], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ] });
  cleanup.push(() => idx.cleanup());
  const [a, b] = await Promise.all([startRegistry({ auth: 'basic' }), startRegistry({ auth: 'basic' })]);
  cleanup.push(() => a.stop(), () => b.stop());
  await pushImage(idx, a, 'lib/multi', '1.0');
  const r = await copyArtifact(clientFor(a), 'lib/multi', '1.0', clientFor(b), 'lib/multi', '1.0', { pool: new CopyPool() });
  assert.equal(r.digest, idx.digest);
  assert.deepEqual(await inspectRaw(b, 'lib/multi', '1.0'), idx.bytes);
  for (const child of idx.children) assert.equal(await inspectDigest(b, 'lib/multi', child.digest), child.digest);
  assert.equal(r.blobs.uploaded, 5);

  // Children before parents, from the target registry's own access log: every child manifest
  // PUT precedes the PUT of the tag.
  const puts = b.logs().split('\n').filter((l) => /"PUT \/v2\/lib\/multi\/manifests\//.test(l)).map((l) => /manifests\/([^ ?"]+)/.exec(l)![1]);
  assert.deepEqual(puts.slice(-1), ['1.0']);
  for (const child of idx.children) assert.ok(puts.indexOf(child.digest) >= 0 && puts.indexOf(child.digest) < puts.indexOf('1.0'));
});
