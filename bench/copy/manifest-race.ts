// Reproduces a distribution 2.8 race that the copy benchmark hit: an OCI index PUT answers
// 400 DIGEST_INVALID while another request re-PUTs one of its child manifests in the same
// repository (the child's revision link is truncated and rewritten, and the index check reads it
// empty). Run: node bench/copy/manifest-race.ts [rounds]. Prints how many PUTs failed.
import { createHash, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { RegistryClient } from '../../src/registry/client.ts';
import { startBenchRegistry } from './registry.ts';

const rounds = Number(process.argv[2] ?? 300);
const dir = join(tmpdir(), `hsb-manifest-race-${process.pid}`);
// The race is distribution 2.8's: Debian's docker-registry.
const reg = await startBenchRegistry('/usr/bin/docker-registry', join(dir, 'data'), dir);
const client = new RegistryClient({ url: reg.url });
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MT = 'application/vnd.oci.image.manifest.v1+json';
const IT = 'application/vnd.oci.image.index.v1+json';
try {
  const layer = randomBytes(1000);
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  for (const b of [layer, config]) await client.uploadBlob('x', { digest: sha(b), size: b.length }, async (o) => Readable.from([b.subarray(o)]));
  const child = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MT,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }],
  }));
  await client.putManifest('x', sha(child), child, MT);
  const failures = new Map<string, number>();
  for (let i = 0; i < rounds; i++) {
    // A new index each round (so its blob is new), PUT while the child is PUT again twice.
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: IT, manifests: [{ mediaType: MT, digest: sha(child), size: child.length }], annotations: { round: String(i) } }));
    const results = await Promise.allSettled([
      client.putManifest('x', sha(child), child, MT),
      client.putManifest('x', `i${i}`, index, IT),
      client.putManifest('x', sha(child), child, MT),
    ]);
    for (const [k, r] of results.entries()) {
      if (r.status === 'fulfilled') continue;
      const e = r.reason as { code?: string; message?: string };
      const key = `${k === 1 ? 'index' : 'child'} PUT ${e.code}: ${String(e.message).slice(-70)}`;
      failures.set(key, (failures.get(key) ?? 0) + 1);
    }
  }
  const total = [...failures.values()].reduce((a, b) => a + b, 0);
  process.stdout.write(`${total} of ${rounds * 3} PUTs failed (${rounds} index PUTs, each beside two PUTs of its child)\n`);
  for (const [k, n] of failures) process.stdout.write(`  ${n} x ${k}\n`);
} finally {
  await client.close();
  await reg.stop();
  await rm(dir, { recursive: true, force: true });
}
