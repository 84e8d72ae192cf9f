// The replicator on both buses with real registries: a retry that is not due yet never holds back
// fresh tasks (tasks.retry has a consumer group of its own) nor a due retry behind it in its
// partition, and once due it runs.
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
    await pushImage(image, src, `${kind}/waiting`, 'v1');
    await pushImage(image, src, `${kind}/behind`, 'v1');
    for (const n of [1, 2, 3]) await pushImage(image, src, `${kind}/pass-${n}`, 'v1');
    await pushImage(image, src, `${kind}/far`, 'v1');
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
      replicator = new Replicator({ config, bus: h.bus, endpoints, metrics: createMetrics(), logger: silentLogger, group: `${h.prefix}replicator`, retryPassLimit: 2 });
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

    it('runs a retry that is due while an earlier one in the same partition waits, and the waiting one at its time', async () => {
      const [waiting, behind] = [`${kind}/waiting`, `${kind}/behind`];
      const before = results.length;
      // One key: the same partition, the due retry published behind the waiting one.
      const key = `dst/${kind}/one-partition`;
      const due = new Date(Date.now() + 10_000);
      await h.bus.publish('tasks.retry', [{ key, value: pushTask(waiting, { attempt: 1, notBefore: due.toISOString() }) }]);
      await new Promise((r) => setTimeout(r, 1000)); // fetched, and waiting
      await h.bus.publish('tasks.retry', [{ key, value: pushTask(behind, { attempt: 1, notBefore: new Date().toISOString() }) }]);

      await eventually('both retries', () => results.length >= before + 2);
      const mine = results.slice(before);
      assert.deepEqual(mine.map((r) => [r.taskId, r.status]), [[`t-${behind}`, 'done'], [`t-${waiting}`, 'done']], 'the due retry did not wait for the earlier one');
      assert.ok(Date.parse(mine[0]!.finishedAt) < due.getTime(), 'the due retry ran before the waiting one was due');
      assert.ok(Date.parse(mine[1]!.finishedAt) >= due.getTime(), 'the waiting retry ran at its time');
      // Each ran once: the redelivery skipped the retry already run past the waiting one.
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(results.slice(before).length, 2);
    });
    it('moves a waiting retry to the end of tasks.retry once more than the limit ran past it, and runs it once at its time', async () => {
      const before = results.length;
      const depth = async () => (await h.bus.inspect()).topics.find((t) => t.topic === 'tasks.retry')!.partitions.reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
      const depthBefore = await depth();
      const key = `dst/${kind}/crowded`;
      const due = new Date(Date.now() + 8000);
      await h.bus.publish('tasks.retry', [{ key, value: pushTask(`${kind}/far`, { attempt: 1, notBefore: due.toISOString() }) }]);
      await new Promise((r) => setTimeout(r, 1000));
      await h.bus.publish('tasks.retry', [1, 2, 3].map((n) => ({ key, value: pushTask(`${kind}/pass-${n}`, { attempt: 1, notBefore: new Date().toISOString() }) })));
      await eventually('all four', () => results.length >= before + 4);
      const mine = results.slice(before).map((r) => r.taskId);
      assert.deepEqual(mine.slice(0, 3).sort(), [1, 2, 3].map((n) => `t-${kind}/pass-${n}`));
      assert.equal(mine[3], `t-${kind}/far`);
      assert.ok(Date.parse(results[before + 3]!.finishedAt) >= due.getTime(), 'moved, it kept its due time');
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(results.length, before + 4, 'each ran once');
      assert.equal(await depth() - depthBefore, 5, 'the four retries, and the waiting one again at the end');
    });
  });
}
