// Replicator.stop() on both buses: a task already copying finishes within worker.shutdownTimeoutMs
// and its outcome is recorded and committed (not redone by the next worker); tasks not started
// yet stay uncommitted for the next one. Real registries; the target behind the fault proxy.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { busHarnesses, type BusHarness } from '../../support/bus-harness.ts';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { pushTask } from '../../support/tasks.ts';
import { startFaultProxy, type FaultProxy } from '../../support/fault-proxy.ts';
import { buildImage, inspectDigest, pushImage, type LocalImage } from '../../support/images.ts';
import { parseConfig } from '../../../src/config/load.ts';
import { Endpoints } from '../../../src/replication/endpoints.ts';
import { Replicator } from '../../../src/replication/replicator.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import type { TaskResult } from '../../../src/replication/task.ts';

let src: TestRegistry;
let dst: TestRegistry;
let proxy: FaultProxy;
let image: LocalImage;

before(async () => {
  [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
  proxy = await startFaultProxy(dst.url);
  image = await buildImage({ layers: [40_000] });
  for (const kind of ['kafka', 'embedded']) await pushImage(image, src, `${kind}/busy`, 'v1');
});
after(async () => {
  await proxy.stop();
  await Promise.all([src.stop(), dst.stop()]);
  await image.cleanup();
});


for (const [kind, make] of Object.entries(busHarnesses('drain'))) {
  describe(`replicator stop drains in-flight tasks (${kind} bus)`, () => {
    let h: BusHarness;
    let endpoints: Endpoints;
    before(async () => { h = await make(); });
    after(async () => {
      await endpoints?.close();
      await h.cleanup();
    });

    it('lets the copying task finish and commits it', async () => {
      const repo = `${kind}/busy`;
      const config = parseConfig({
        bus: { kind: h.config.bus.kind, brokers: h.config.bus.brokers, topicPrefix: h.config.bus.topicPrefix, dataDir: h.config.bus.dataDir, partitions: 3 },
        sources: [{ id: 'src', kind: 'registry', url: src.url, insecure: true }],
        targets: [{ id: 'dst', kind: 'registry', url: proxy.url }],
        worker: { shutdownTimeoutMs: 20_000 },
      }, '<test>', {});
      endpoints = new Endpoints(config, silentLogger);
      const group = `${h.prefix}replicator`;
      const replicator = new Replicator({ config, bus: h.bus, endpoints, metrics: createMetrics(), logger: silentLogger, group });
      // The copy's first upload session opens 2 s late: stop() arrives while it is in flight.
      proxy.clearRules();
      proxy.addRule({ match: { method: 'POST', path: new RegExp(`/${repo}/blobs/uploads/$`) }, action: 'delay', ms: 2000, times: 1 });
      await h.bus.publish('tasks', [{ key: `dst/${repo}`, value: pushTask(repo) }]);
      await replicator.start();
      for (let i = 0; i < 200 && !proxy.requests.some((r) => r.method === 'POST' && r.path.includes(repo)); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(proxy.requests.some((r) => r.method === 'POST' && r.path.includes(repo)), 'the copy reached its upload');
      await replicator.stop();

      assert.equal(await inspectDigest(dst, repo, 'v1'), image.digest);
      const results = [...(await readAll(h, 'results'))].map((v) => v as TaskResult).filter((r) => r.taskId === `t-${repo}`);
      assert.deepEqual(results.map((r) => r.status), ['done']);
      const committed = (await h.bus.inspect()).groups.find((g) => g.group === group)?.offsets.filter((o) => o.topic === 'tasks') ?? [];
      assert.equal(committed.reduce((n, o) => n + o.lag, 0), 0, 'the finished task was committed');
      assert.ok(committed.length > 0, JSON.stringify((await h.bus.inspect()).groups));
    });
  });
}

/** Every value on a topic, read once from the beginning by a throwaway group. */
async function readAll(h: BusHarness, topic: 'results'): Promise<unknown[]> {
  const out: unknown[] = [];
  const high = (await h.bus.inspect()).topics.find((t) => t.topic === topic)!.partitions.reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
  const sub = await h.bus.subscribe({ group: `${h.prefix}read-${Date.now()}`, topics: [topic], fromBeginning: true }, async (b) => { for (const m of b) out.push(m.value); });
  for (let i = 0; i < 200 && out.length < high; i++) await new Promise((r) => setTimeout(r, 50));
  await sub.stop();
  return out;
}
