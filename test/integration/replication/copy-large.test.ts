// A 300 MB layer copies between real registries in one streamed upload with bounded memory.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry } from '../../support/registry.ts';
import { buildImage, pushImage, inspectDigest } from '../../support/images.ts';
import { RegistryClient } from '../../../src/registry/client.ts';
import { copyArtifact } from '../../../src/replication/copy.ts';
import { CopyPool } from '../../../src/replication/copy-pool.ts';

const cleanup: (() => Promise<void>)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f().catch(() => {}); });

test('a 300 MB blob is copied with bounded memory and the target verifies its digest', { timeout: 180_000 }, async () => {
  const SIZE = 300 * 1024 * 1024;
  const image = await buildImage({ layers: [SIZE, 4096] });
  cleanup.push(() => image.cleanup());
  const [a, b] = await Promise.all([startRegistry({ auth: 'basic' }), startRegistry({ auth: 'basic' })]);
  cleanup.push(() => a.stop(), () => b.stop());
  await pushImage(image, a, 'big/app', 'v1');

  const src = new RegistryClient({ url: a.url, credentials: a.users[0] });
  const dst = new RegistryClient({ url: b.url, credentials: b.users[0] });
  cleanup.push(() => src.close(), () => dst.close());

  global.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
  const progress: number[] = [];
  const t0 = Date.now();
  let r;
  try {
    r = await copyArtifact(src, 'big/app', 'v1', dst, 'big/app', 'v1', { pool: new CopyPool(), onProgress: (p) => progress.push(p.bytesDone) });
  } finally {
    clearInterval(sampler);
  }
  const ms = Date.now() - t0;
  assert.equal(r.digest, image.digest);
  assert.equal(r.blobs.uploaded, 3);
  assert.equal(await inspectDigest(b, 'big/app', 'v1'), image.digest);
  assert.ok((await b.storedBlobs()).includes(image.layers[0]!.digest));
  const grewMb = (peak - base) / 1024 / 1024;
  assert.ok(grewMb < 150, `RSS grew by ${grewMb.toFixed(0)} MB while copying 300 MB`);
  // Progress is reported along the way, monotonically, up to the total.
  assert.ok(progress.length > 10);
  assert.ok(progress.every((v, i) => i === 0 || v >= progress[i - 1]!));
  assert.equal(progress.at(-1), image.layers.reduce((n, l) => n + l.size, 0) + image.config!.size);
  // By default every blob goes up in one streamed PUT that the registry verifies (its own access
  // log shows the PUTs and no PATCH); chunks are for uploads that broke (see the fault tests).
  const lines = b.logs().split('\n');
  const patches = lines.filter((l) => /"PATCH \/v2\/big\/app\/blobs\/uploads\//.test(l)).length;
  const puts = lines.filter((l) => /"PUT \/v2\/big\/app\/blobs\/uploads\/[^"]*digest=/.test(l)).length;
  assert.equal(patches, 0, `PATCH requests: ${patches}`);
  assert.equal(puts, 3, 'one streamed PUT per blob');
  console.log(`# 300 MB copy: ${ms} ms, RSS +${grewMb.toFixed(0)} MB`);
});
