// The replicator on both buses with real registries: a retry that is not due yet never holds back
// fresh tasks (tasks.retry has a consumer group of its own), and once due it runs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { busHarnesses, type BusHarness } from '../../support/bus-harness.ts';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { pushTask } from '../../support/tasks.ts';
import { buildImage, inspectDigest, pushImage, type LocalImage } from '../../support/images.ts';
import { parseConfig } from '../../../src/config/load.ts';
import { Endpoints } from '../../../src/replication/endpoints.ts';
import { Replicator, retryGroupOf } from '../../../src/replication/replicator.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import type { TaskResult } from '../../../src/replication/task.ts';
import type { ConsumerHandle } from '../../../src/bus/port.ts';

let src: TestRegistry;
let dst: TestRegistry;
let image: LocalImage;

before(async () => {
  [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
  image = await buildImage({ layers: [40_000] });
  for (const kind of ['kafka', 'embedded']) {
    await pushImage(image, src, `${kind}/fresh`, 'v1');
    await pushImage(image, src, `${kind}/later`, 'v1');
  }
});
after(async () => {
  await Promise.all([src.stop(), dst.stop()]);
  await image.cleanup();
});


async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const [kind, make] of Object.entries(busHarnesses('retry-isolation'))) {
  describe(`replicator retries (${kind} bus)`, () => {
    let h: BusHarness;
    let replicator: Replicator;
    let endpoints: Endpoints;
    let watch: ConsumerHandle;
    const results: TaskResult[] = [];

    before(async () => {
      h = await make();
      const config = parseConfig({
        bus: { kind: h.config.bus.kind, brokers: h.config.bus.brokers, topicPrefix: h.config.bus.topicPrefix, dataDir: h.config.bus.dataDir, partitions: 3 },
        sources: [{ id: 'src', kind: 'registry', url: src.url, insecure: true }],
        targets: [{ id: 'dst', kind: 'registry', url: dst.url }],
      }, '<test>', {});
      endpoints = new Endpoints(config, silentLogger);
      replicator = new Replicator({ config, bus: h.bus, endpoints, metrics: createMetrics(), logger: silentLogger, group: `${h.prefix}replicator` });
      watch = await h.bus.subscribe({ group: `${h.prefix}watch`, topics: ['results'], fromBeginning: true }, async (b) => { for (const m of b) results.push(m.value as TaskResult); });
    });
    after(async () => {
      await replicator.stop();
      await watch.stop();
      await endpoints.close();
      await h.cleanup();
    });

    it('runs a fresh task while a retry waits for its due time, and the retry once due', async () => {
      const [fresh, later] = [`${kind}/fresh`, `${kind}/later`];
      // Due in 8 s: on one consumer group with `tasks`, this wait would hold back the fresh task.
      const due = new Date(Date.now() + 8000);
      await h.bus.publish('tasks.retry', [{ key: `dst/${later}`, value: pushTask(later, { attempt: 1, notBefore: due.toISOString() }) }]);
      await replicator.start();
      await new Promise((r) => setTimeout(r, 500)); // the retry is fetched and waiting
      await h.bus.publish('tasks', [{ key: `dst/${fresh}`, value: pushTask(fresh) }]);

      await eventually('both results', () => results.length >= 2);
      // Ordered by what happened, not by the clock: the fresh task's outcome comes first.
      assert.deepEqual(results.map((r) => [r.taskId, r.status]), [[`t-${fresh}`, 'done'], [`t-${later}`, 'done']]);
      assert.ok(Date.parse(results[1]!.finishedAt) >= due.getTime(), 'the retry ran before its due time');
      assert.equal(await inspectDigest(dst, fresh, 'v1'), image.digest);
      assert.equal(await inspectDigest(dst, later, 'v1'), image.digest);
      const groups = (await h.bus.inspect()).groups.map((g) => g.group);
      assert.ok(groups.includes(retryGroupOf(`${h.prefix}replicator`)), groups.join(', '));
    });
  });
}
