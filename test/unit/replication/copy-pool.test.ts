// CopyPool without a network: registry clients stand in as the few methods ensureBlob calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CopyPool } from '../../../src/replication/copy-pool.ts';
import type { RegistryClient } from '../../../src/registry/client.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;

/** A target whose upload of any blob takes `ms`. */
function slowTarget(ms: number): RegistryClient {
  return {
    host: 'target.example', identity: 'u@target.example',
    hasBlob: async () => false,
    mountBlob: async () => ({ mounted: false }),
    uploadBlob: async () => { await sleep(ms); },
  } as unknown as RegistryClient;
}
const source = { host: 'source.example', identity: '@source.example', getBlob: async () => ({ body: null }) } as unknown as RegistryClient;

test('a copy waiting for another copy\'s transfer of the same blob stops waiting when it is aborted', async () => {
  const pool = new CopyPool({ concurrency: 4 });
  const dst = slowTarget(3000);
  const owner = pool.ensureBlob({ src: source, srcRepo: 'a', dst, dstRepo: 'x', desc: { digest: DIGEST, size: 1 } as never });
  await sleep(50);
  const ac = new AbortController();
  const waiter = pool.ensureBlob({ src: source, srcRepo: 'a', dst, dstRepo: 'y', desc: { digest: DIGEST, size: 1 } as never, signal: ac.signal });
  let settled = false;
  const outcome = waiter.then(() => 'resolved', (e: unknown) => (e as Error).message).finally(() => { settled = true; });
  ac.abort(new Error('task aborted'));
  await sleep(200);
  assert.equal(settled, true, 'the waiter let go before the other transfer ended');
  assert.equal(await outcome, 'task aborted');
  assert.equal(await owner, 'uploaded', 'the other copy\'s transfer goes on by itself');
});

/** A target whose mounts answer in turn from `answers` (a session name, or 'mounted'); records what happens to the sessions. */
function mountingTarget(answers: string[], uploadMs = 0) {
  const seen = { cancelled: [] as string[], uploadedWith: [] as (string | undefined)[] };
  const next = [...answers];
  const target = {
    host: 'target.example', identity: 'u@target.example',
    hasBlob: async () => false,
    mountBlob: async () => {
      const a = next.shift()!;
      return a === 'mounted' ? { mounted: true } : { mounted: false, session: { location: a, chunkMin: 0 } };
    },
    cancelUpload: async (_repo: string, s: { location: string }) => { seen.cancelled.push(s.location); },
    uploadBlob: async (...args: unknown[]) => {
      seen.uploadedWith.push((args[3] as { session?: { location: string } }).session?.location);
      await sleep(uploadMs);
    },
  } as unknown as RegistryClient;
  return { target, seen };
}

test('refused mounts: the first upload session carries the upload, later ones are given back', async () => {
  const pool = new CopyPool({ concurrency: 1 });
  const { target, seen } = mountingTarget(['s1', 's2']);
  for (const r of ['r1', 'r2']) pool.remember(target.identity, DIGEST, r);
  assert.equal(await pool.ensureBlob({ src: source, srcRepo: 'a', dst: target, dstRepo: 'x', desc: { digest: DIGEST, size: 1 } as never }), 'uploaded');
  assert.deepEqual(seen, { cancelled: ['s2'], uploadedWith: ['s1'] });
});

test('refused, then mounted: the kept session is given back', async () => {
  const pool = new CopyPool({ concurrency: 1 });
  const { target, seen } = mountingTarget(['s1', 'mounted']);
  for (const r of ['r1', 'r2']) pool.remember(target.identity, DIGEST, r);
  assert.equal(await pool.ensureBlob({ src: source, srcRepo: 'a', dst: target, dstRepo: 'x', desc: { digest: DIGEST, size: 1 } as never }), 'mounted');
  assert.deepEqual(seen, { cancelled: ['s1'], uploadedWith: [] });
});

test('no transfer slot free: the kept session is given back at once, and the upload opens its own when a slot frees', async () => {
  const pool = new CopyPool({ concurrency: 1 });
  const holder = pool.ensureBlob({ src: source, srcRepo: 'a', dst: slowTarget(300), dstRepo: 'h', desc: { digest: `sha256:${'b'.repeat(64)}`, size: 1 } as never });
  const { target, seen } = mountingTarget(['s1']);
  pool.remember(target.identity, DIGEST, 'r1');
  const waiting = pool.ensureBlob({ src: source, srcRepo: 'a', dst: target, dstRepo: 'x', desc: { digest: DIGEST, size: 1 } as never });
  await sleep(100);
  assert.deepEqual(seen, { cancelled: ['s1'], uploadedWith: [] }, 'given back while the other transfer still holds the slot');
  assert.equal(await waiting, 'uploaded');
  assert.deepEqual(seen, { cancelled: ['s1'], uploadedWith: [undefined] });
  assert.equal(await holder, 'uploaded');
});

test('aborted during a later mount: the kept session is given back', async () => {
  const pool = new CopyPool({ concurrency: 1 });
  const ac = new AbortController();
  const { target, seen } = mountingTarget(['s1']);
  const mount = target.mountBlob.bind(target);
  let calls = 0;
  (target as { mountBlob: unknown }).mountBlob = async (...args: Parameters<RegistryClient['mountBlob']>) => {
    if (++calls === 1) return mount(...args);
    ac.abort(new Error('task aborted'));
    throw new Error('request aborted');
  };
  for (const r of ['r1', 'r2']) pool.remember(target.identity, DIGEST, r);
  await assert.rejects(pool.ensureBlob({ src: source, srcRepo: 'a', dst: target, dstRepo: 'x', desc: { digest: DIGEST, size: 1 } as never, signal: ac.signal }));
  await sleep(10);
  assert.deepEqual(seen, { cancelled: ['s1'], uploadedWith: [] });
});
