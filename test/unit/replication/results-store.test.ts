// ResultsStore: the ring keeps the last `capacity` outcomes, counts follow evictions, queries filter
// and page newest first; caughtUp() waits for the high watermarks. Pure: an in-memory Bus double.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BatchHandler, Bus, BusInspection, BusMessage, ConsumerHandle, OutgoingRecord, Subscription, TopicName } from '../../../src/bus/port.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { ResultsStore, VIEW_GROUP_PREFIX } from '../../../src/replication/results-store.ts';
import { queueDepths } from '../../../src/replication/routes.ts';
import type { TaskResult } from '../../../src/replication/task.ts';

/** Delivers what is published to `results` to the one subscriber, one record per batch. */
class FakeBus implements Bus {
  readonly kind = 'embedded' as const;
  subs: { sub: Subscription; handler: BatchHandler; stopped: boolean }[] = [];
  offsets = new Map<number, number>();
  async connect(): Promise<void> {}
  async publish(topic: TopicName, records: OutgoingRecord[]): Promise<void> {
    for (const r of records) {
      const partition = (r.headers?.partition ? Number(r.headers.partition) : 0);
      const offset = this.offsets.get(partition) ?? 0;
      this.offsets.set(partition, offset + 1);
      const m: BusMessage = { topic, partition, offset: String(offset), key: r.key, value: r.value, timestamp: Date.now(), headers: {} };
      for (const s of this.subs) if (!s.stopped && s.sub.topics.includes(topic)) await s.handler([m], { heartbeat: async () => {}, signal: new AbortController().signal });
    }
  }
  async subscribe(sub: Subscription, handler: BatchHandler): Promise<ConsumerHandle> {
    const entry = { sub, handler, stopped: false };
    this.subs.push(entry);
    return { stop: async () => { entry.stopped = true; } };
  }
  async readCompacted(): Promise<Map<string, unknown>> { return new Map(); }
  async inspect(): Promise<BusInspection> { return { kind: 'embedded', topics: [], groups: [] }; }
  isReady(): boolean { return true; }
  async close(): Promise<void> {}
}

const T0 = Date.parse('2025-01-01T00:00:00Z');

function result(i: number, over: Partial<TaskResult> = {}): TaskResult {
  return {
    schema: 1, taskId: `t${i}`, eventId: `e${i}`, policyId: i % 2 ? 'p-odd' : 'p-even', sourceId: 'harbor', targetId: i % 3 ? 'swr' : 'backup',
    repository: `lib/app${i % 4}`, destRepository: `org/app${i % 4}`, reference: `v${i}`, status: 'done', bytes: i, durationMs: 1, attempt: 0,
    occurredAt: new Date(T0).toISOString(), finishedAt: new Date(T0 + i * 1000).toISOString(), ...over,
  };
}

async function started(capacity: number): Promise<{ bus: FakeBus; store: ResultsStore }> {
  const bus = new FakeBus();
  const store = new ResultsStore({ bus, logger: silentLogger, capacity });
  await store.start();
  return { bus, store };
}

describe('ResultsStore', () => {
  it('subscribes to results from the beginning with a group of its own per instance', async () => {
    const { bus, store } = await started(10);
    const other = new ResultsStore({ bus, logger: silentLogger });
    await other.start();
    assert.deepEqual(bus.subs.map((s) => s.sub.topics), [['results'], ['results']]);
    assert.ok(bus.subs.every((s) => s.sub.fromBeginning === true));
    assert.ok(store.group.startsWith(VIEW_GROUP_PREFIX));
    assert.notEqual(store.group, other.group);
    await store.stop();
    assert.equal(bus.subs[0]!.stopped, true);
  });

  it('keeps only the last `capacity` records; counts follow evictions', async () => {
    const { bus, store } = await started(5);
    const statuses: TaskResult['status'][] = ['dlq', 'dlq', 'retry', 'done', 'done', 'skipped', 'deleted', 'done'];
    await bus.publish('results', statuses.map((status, i) => ({ key: 'k', value: result(i, { status }) })));
    assert.equal(store.size, 5);
    assert.deepEqual(store.counts(), { done: 3, skipped: 1, deleted: 1, retry: 0, dlq: 0 });
    const all = store.query({ pageSize: 100 });
    assert.equal(all.total, 5);
    assert.deepEqual(all.items.map((r) => r.taskId), ['t7', 't6', 't5', 't4', 't3']);
  });

  it('orders newest first by finish time, not by arrival, with arrival breaking ties', async () => {
    const { bus, store } = await started(10);
    await bus.publish('results', [
      { key: 'a', value: result(1, { finishedAt: new Date(T0 + 5000).toISOString() }) },
      { key: 'a', value: result(2, { finishedAt: new Date(T0 + 1000).toISOString() }) },
      { key: 'a', value: result(3, { finishedAt: new Date(T0 + 5000).toISOString() }) },
      { key: 'a', value: result(4, { finishedAt: new Date(T0 + 3000).toISOString() }) },
    ]);
    assert.deepEqual(store.query().items.map((r) => r.taskId), ['t3', 't1', 't4', 't2']);
  });

  it('filters by repository (source or destination), policy, status and target, and pages', async () => {
    const { bus, store } = await started(1000);
    await bus.publish('results', Array.from({ length: 60 }, (_, i) => ({ key: 'k', value: result(i, { status: i % 5 === 0 ? 'dlq' : 'done' }) })));
    const byRepo = store.query({ repository: 'lib/app1', pageSize: 100 });
    assert.equal(byRepo.total, 15);
    assert.ok(byRepo.items.every((r) => r.repository === 'lib/app1'));
    assert.equal(store.query({ repository: 'org/app1' }).total, 15, 'destination repository matches too');
    assert.equal(store.query({ repository: 'lib/app' }).total, 0, 'exact, not a prefix');

    const q = { policy: 'p-even', status: 'dlq' as const, target: 'backup' };
    const expected = Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 2 === 0 && i % 5 === 0 && i % 3 === 0).reverse();
    const got = store.query({ ...q, pageSize: 100 });
    assert.deepEqual(got.items.map((r) => r.taskId), expected.map((i) => `t${i}`));
    assert.equal(got.total, expected.length);

    const p1 = store.query({ page: 1, pageSize: 25 });
    const p3 = store.query({ page: 3, pageSize: 25 });
    const p4 = store.query({ page: 4, pageSize: 25 });
    assert.deepEqual([p1.total, p1.items.length, p3.items.length, p4.items.length], [60, 25, 10, 0]);
    assert.equal(p1.items[0]!.taskId, 't59');
    assert.equal(p3.items.at(-1)!.taskId, 't0');
    assert.deepEqual([p3.page, p3.pageSize], [3, 25]);
  });

  it('skips invalid records and tombstones without losing its place', async () => {
    const { bus, store } = await started(10);
    await bus.publish('results', [
      { key: 'k', value: { schema: 1, taskId: 'x' } },
      { key: 'k', value: null },
      { key: 'k', value: result(1) },
    ]);
    assert.equal(store.size, 1);
    assert.equal(store.query().items[0]!.taskId, 't1');
    assert.equal(await store.caughtUp([{ partition: 0, high: '3', low: '0' }], 100), true);
  });

  it('caughtUp waits for every partition to reach its high watermark, or times out', async () => {
    const { bus, store } = await started(10);
    const ends = [{ partition: 0, high: '2', low: '0' }, { partition: 1, high: '1', low: '0' }, { partition: 2, high: '4', low: '4' }];
    assert.equal(await store.caughtUp(ends, 50), false);
    const waiting = store.caughtUp(ends, 5000);
    await bus.publish('results', [{ key: 'k', value: result(1), headers: { partition: '0' } }, { key: 'k', value: result(2), headers: { partition: '0' } }]);
    await bus.publish('results', [{ key: 'k', value: result(3), headers: { partition: '1' } }]);
    assert.equal(await waiting, true);
  });
});

describe('queueDepths', () => {
  it('pending retries are tasks.retry records past the replicator group\'s commit (or the low mark); dlq records are high - low', () => {
    const ins: BusInspection = {
      kind: 'kafka',
      topics: [
        { topic: 'tasks.retry', partitions: [{ partition: 0, high: '10', low: '0' }, { partition: 1, high: '7', low: '5' }, { partition: 2, high: '3', low: '0' }] },
        { topic: 'dlq', partitions: [{ partition: 0, high: '4', low: '1' }, { partition: 1, high: '0', low: '0' }] },
        { topic: 'tasks', partitions: [{ partition: 0, high: '100', low: '0' }] },
      ],
      groups: [
        // tasks.retry is read by the replicator's retry group (replicator.retry).
        { group: 'replicator.retry', offsets: [{ topic: 'tasks.retry', partition: 0, committed: '8', lag: 2 }] },
        { group: 'replicator', offsets: [{ topic: 'tasks', partition: 0, committed: '1', lag: 99 }, { topic: 'tasks.retry', partition: 1, committed: '7', lag: 0 }] },
        { group: 'other.retry', offsets: [{ topic: 'tasks.retry', partition: 2, committed: '3', lag: 0 }] },
      ],
    };
    // p0: 10-8; p1: no commit by the retry group (the main group's old one does not count), from low 5 → 2; p2 → 3.
    assert.deepEqual(queueDepths(ins), { retryPending: 2 + 2 + 3, dlqRecords: 3 });
    assert.deepEqual(queueDepths(ins, 'other'), { retryPending: 10 + 2 + 0, dlqRecords: 3 });
  });
});
