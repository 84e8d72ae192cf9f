// Replicator edge cases on the embedded bus with real registries. Deleting a policy stops its queued
// work: a task planned before this process saw the policy removed is recorded as skipped instead of
// copied (or retried towards the DLQ); a policy it never saw removed (a new one another process
// just created) runs as usual. A record that is not a task is dead-lettered and counted. Retries
// that are not due never hold back those behind them, and each runs once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { pushTask } from '../../support/tasks.ts';
import { buildImage, pushImage, type LocalImage } from '../../support/images.ts';
import { EmbeddedBus } from '../../../src/bus/embedded/sqlite-bus.ts';
import { parseConfig } from '../../../src/config/load.ts';
import { Endpoints } from '../../../src/replication/endpoints.ts';
import { Replicator } from '../../../src/replication/replicator.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { PolicyTable } from '../../../src/policy/table.ts';
import { PolicySchema } from '../../../src/policy/model.ts';
import type { TaskResult } from '../../../src/replication/task.ts';
import type { Metrics } from '../../../src/observability/metrics.ts';

let src: TestRegistry;
let dst: TestRegistry;
let image: LocalImage;

before(async () => {
  [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
  image = await buildImage({ layers: [10_000] });
  await pushImage(image, src, 'lib/old', 'v1');
  await pushImage(image, src, 'lib/new', 'v1');
});
after(async () => {
  await Promise.all([src.stop(), dst.stop()]);
  await image.cleanup();
});

interface Rig { bus: EmbeddedBus; replicator: Replicator; endpoints: Endpoints; metrics: Metrics; results: TaskResult[] }

/** A replicator on a fresh embedded bus (`maxBatchSize` records per fetch), and the results it writes. */
async function withReplicator(opts: { maxBatchSize?: number; partitions?: number; policies?: PolicyTable }, body: (r: Rig) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hsb-replicator-edges-'));
  const config = parseConfig({
    bus: { kind: 'embedded', dataDir: dir },
    sources: [{ id: 'src', kind: 'registry', url: src.url, insecure: true }],
    targets: [{ id: 'dst', kind: 'registry', url: dst.url }],
  }, '<test>', {});
  const bus = new EmbeddedBus({ dataDir: dir, ...(opts.maxBatchSize ? { maxBatchSize: opts.maxBatchSize } : {}), ...(opts.partitions ? { partitions: opts.partitions } : {}) });
  await bus.connect();
  const endpoints = new Endpoints(config, silentLogger);
  const metrics = createMetrics();
  const replicator = new Replicator({ config, bus, endpoints, metrics, logger: silentLogger, ...(opts.policies ? { policies: opts.policies } : {}) });
  const results: TaskResult[] = [];
  const watch = await bus.subscribe({ group: 'watch', topics: ['results'], fromBeginning: true }, async (b) => { for (const m of b) results.push(m.value as TaskResult); });
  try {
    await body({ bus, replicator, endpoints, metrics, results });
  } finally {
    await replicator.stop();
    await watch.stop();
    await endpoints.close();
    await bus.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const at = (ms: number) => new Date(Date.now() + ms).toISOString();
const waitFor = async (cond: () => boolean) => { for (const until = Date.now() + 30_000; !cond() && Date.now() < until;) await new Promise((r) => setTimeout(r, 100)); };

test('a task of a policy deleted after it was planned is skipped; one of a policy never seen deleted runs', async () => {
  const table = new PolicyTable([PolicySchema.parse({ id: 'gone', src_registry: 'src', dest_registry: 'dst' })]);
  await withReplicator({ policies: table }, async ({ bus, replicator, endpoints, results }) => {
    const planned = pushTask('lib/old', { policyId: 'gone', createdAt: new Date(Date.now() - 1000).toISOString() });
    table.set('gone', null);
    await bus.publish('tasks', [
      { key: 'dst/lib/old', value: planned },
      { key: 'dst/lib/new', value: pushTask('lib/new', { policyId: 'brand-new' }) },
    ]);
    await replicator.start();
    await waitFor(() => results.length >= 2);
    const byTask = new Map(results.map((r) => [r.taskId, r.status]));
    assert.equal(byTask.get('t-lib/old'), 'skipped');
    assert.equal(byTask.get('t-lib/new'), 'done');
    assert.equal(await endpoints.target('dst').client.headManifest('lib/old', 'v1'), null, 'nothing copied for the deleted policy');
  });
});

test('a record on tasks that is not a task is dead-lettered and counted in hsb_tasks_total', async () => {
  await withReplicator({}, async ({ bus, replicator, metrics }) => {
    const letters: unknown[] = [];
    const watch = await bus.subscribe({ group: 'watch-dlq', topics: ['dlq'], fromBeginning: true }, async (b) => { for (const m of b) letters.push(m.value); });
    try {
      await bus.publish('tasks', [
        { key: 'dst/x', value: { targetId: 'dst', not: 'a task' } },
        { key: 'elsewhere/y', value: { targetId: 'someone-elses-target', not: 'a task' } },
      ]);
      await replicator.start();
      await waitFor(() => letters.length >= 2);
      assert.equal(letters.length, 2);
      const counted = (await metrics.tasks.get()).values.filter((v) => v.labels.outcome === 'dlq').map((v) => [v.labels.target, v.value]).sort();
      assert.deepEqual(counted, [['dst', 1], ['unknown', 1]], 'an unconfigured target id is not a label');
    } finally {
      await watch.stop();
    }
  });
});

test('a valid task naming an unconfigured target is dead-lettered and counted under target "unknown"', async () => {
  await withReplicator({}, async ({ bus, replicator, metrics, results }) => {
    await bus.publish('tasks', [{ key: 'nowhere/lib/new', value: { ...pushTask('lib/new'), targetId: 'target-nobody-configured' } }]);
    await replicator.start();
    await waitFor(() => results.length >= 1);
    assert.equal(results[0]!.status, 'dlq');
    const labels = (await metrics.tasks.get()).values.map((v) => v.labels.target);
    assert.deepEqual(labels, ['unknown'], 'a task record cannot add label values');
  });
});

test('a due retry behind more waiting retries than one fetch holds runs at once', async () => {
  // Five records per fetch stand in for the default 200: the waiting retries fill more than one.
  await withReplicator({ maxBatchSize: 5, partitions: 1 }, async ({ bus, replicator, results }) => {
    await bus.publish('tasks.retry', Array.from({ length: 12 }, (_, i) => ({ key: 'dst/lib/down', value: pushTask(`lib/down-${i}`, { attempt: 1, notBefore: at(600_000) }) })));
    await bus.publish('tasks.retry', [{ key: 'dst/lib/new', value: pushTask('lib/new', { attempt: 1, notBefore: at(0) }) }]);
    await replicator.start();
    await waitFor(() => results.length >= 1);
    // Copied, or found in step when the first test copied it already.
    assert.deepEqual(results.map((r) => r.taskId), ['t-lib/new'], 'the due retry ran; the waiting ones wait');
    assert.ok(['done', 'skipped'].includes(results[0]!.status), results[0]!.status);
    const lag = (await bus.inspect()).groups.find((g) => g.group === 'replicator.retry')!.offsets.reduce((n, o) => n + o.lag, 0);
    assert.equal(lag, 13, 'the commit stays at the first waiting retry');
  });
});

test('retries run past a held one are not run again when the held one comes due', async () => {
  await withReplicator({ maxBatchSize: 5, partitions: 1 }, async ({ bus, replicator, results }) => {
    // Offset 0 comes due in 3 s, offset 7 in 10 minutes; the others are due now. None is in the
    // source, so each ends at once as skipped: what counts is how often each ran.
    await bus.publish('tasks.retry', Array.from({ length: 13 }, (_, i) => ({
      key: 'dst/lib/gone', value: pushTask(`lib/gone-${i}`, { attempt: 1, notBefore: i === 0 ? at(3000) : i === 7 ? at(600_000) : at(0) }),
    })));
    await replicator.start();
    await waitFor(() => results.some((r) => r.taskId === 't-lib/gone-0'));
    await new Promise((r) => setTimeout(r, 1500)); // a duplicate would show up by now
    const runs = new Map<string, number>();
    for (const r of results) runs.set(r.taskId, (runs.get(r.taskId) ?? 0) + 1);
    assert.deepEqual([...runs.values()].filter((n) => n > 1), [], `ran more than once: ${[...runs].filter(([, n]) => n > 1).map(([id]) => id).join(', ')}`);
    assert.equal(runs.size, 12, 'all but the one due in 10 minutes');
    assert.equal(runs.has('t-lib/gone-7'), false);
  });
});
