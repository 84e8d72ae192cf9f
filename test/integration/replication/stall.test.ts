// The stall bound measures silence on the wire, not time queued: a task whose blob waits for a
// transfer slot behind another task's slow upload is not abandoned as stalled; a transfer that
// goes quiet is. Real registries; the target behind the tests' fault proxy.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { pushTask } from '../../support/tasks.ts';
import { startFaultProxy, type FaultProxy } from '../../support/fault-proxy.ts';
import { buildImage, inspectDigest, pushImage, type LocalImage } from '../../support/images.ts';
import { parseConfig } from '../../../src/config/load.ts';
import { Endpoints } from '../../../src/replication/endpoints.ts';
import { executeWithRetries } from '../../../src/replication/attempts.ts';
import { CopyPool } from '../../../src/replication/copy-pool.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import type { BridgeError } from '../../../src/errors.ts';

let src: TestRegistry;
let dst: TestRegistry;
let proxy: FaultProxy;
let slow: LocalImage;
let queued: LocalImage;
let endpoints: Endpoints;

before(async () => {
  [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
  proxy = await startFaultProxy(dst.url);
  [slow, queued] = await Promise.all([buildImage({ layers: [60_000] }), buildImage({ layers: [50_000] })]);
  await pushImage(slow, src, 'lib/slow', 'v1');
  await pushImage(queued, src, 'lib/queued', 'v1');
  endpoints = new Endpoints(parseConfig({
    sources: [{ id: 'src', kind: 'registry', url: src.url, insecure: true }],
    targets: [{ id: 'dst', kind: 'registry', url: proxy.url }],
  }, '<test>', {}), silentLogger);
});
after(async () => {
  await endpoints.close();
  await proxy.stop();
  await Promise.all([src.stop(), dst.stop()]);
  await Promise.all([slow.cleanup(), queued.cleanup()]);
});

const run = (repo: string, stallTimeoutMs: number, pool: CopyPool) =>
  executeWithRetries(pushTask(repo), endpoints.source('src'), endpoints.target('dst'), { attempts: 1, stallTimeoutMs, logger: silentLogger, pool });

test('a task queued behind another task\'s slow transfer is not a stall', async () => {
  proxy.clearRules();
  // Every blob upload session of lib/slow opens 2 s late, holding the pool's only slot.
  proxy.addRule({ match: { method: 'POST', path: /\/lib\/slow\/blobs\/uploads\/$/ }, action: 'delay', ms: 2000 });
  const pool = new CopyPool({ concurrency: 1 });
  const first = run('lib/slow', 30_000, pool);
  await new Promise((r) => setTimeout(r, 300)); // lib/slow holds the slot
  const second = await run('lib/queued', 800, pool);
  assert.equal(second.status, 'done');
  assert.equal((await first).status, 'done');
  assert.equal(await inspectDigest(dst, 'lib/queued', 'v1'), queued.digest);
});

test('a transfer that goes quiet is abandoned as stalled (retryable)', async () => {
  proxy.clearRules();
  proxy.addRule({ match: { method: 'POST', path: /\/lib\/quiet\/blobs\/uploads\/$/ }, action: 'delay', ms: 3000 });
  await pushImage(queued, src, 'lib/quiet', 'v1');
  await assert.rejects(run('lib/quiet', 800, new CopyPool({ concurrency: 1 })), (e: BridgeError) => {
    assert.equal(e.code, 'HSB_TASK_STALLED');
    assert.equal(e.retryable, true);
    return true;
  });
});

test('a transfer waiting for a request slot at the source (taken by another download) is not a stall', async () => {
  const srcProxy = await startFaultProxy(src.url);
  const limited = new Endpoints(parseConfig({
    sources: [{ id: 'src', kind: 'registry', url: srcProxy.url, insecure: true, limits: { concurrency: 1 } }],
    targets: [{ id: 'dst', kind: 'registry', url: dst.url }],
  }, '<test>', {}), silentLogger);
  try {
    await pushImage(slow, src, 'lib/slow-src', 'v1');
    await pushImage(queued, src, 'lib/queued-src', 'v1');
    // lib/slow-src's blob downloads answer 2 s late, holding the source's only request slot.
    srcProxy.addRule({ match: { method: 'GET', path: /\/lib\/slow-src\/blobs\/sha256:/ }, action: 'delay', ms: 2000 });
    const pool = new CopyPool({ concurrency: 2 });
    const go = (repo: string, stallTimeoutMs: number) =>
      executeWithRetries(pushTask(repo), limited.source('src'), limited.target('dst'), { attempts: 1, stallTimeoutMs, logger: silentLogger, pool });
    const first = go('lib/slow-src', 30_000);
    await new Promise((r) => setTimeout(r, 300));
    const second = await go('lib/queued-src', 800);
    assert.equal(second.status, 'done');
    assert.equal((await first).status, 'done');
    assert.equal(await inspectDigest(dst, 'lib/queued-src', 'v1'), queued.digest);
  } finally {
    await limited.close();
    await srcProxy.stop();
  }
});
