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
    mountBlob: async () => false,
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
