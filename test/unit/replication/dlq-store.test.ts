// DlqStore against an in-memory Bus double: listing the compacted view, and replay's contract —
// the task is on `tasks` (fresh: attempt 0, origin replay) before the letter's tombstone is written.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Bus, BusInspection, ConsumerHandle, OutgoingRecord, TopicName } from '../../../src/bus/port.ts';
import { isBridgeError } from '../../../src/errors.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { letterIdOf, taskLetter, type DeadLetter } from '../../../src/replication/dead-letter.ts';
import { BridgeError } from '../../../src/errors.ts';
import { DlqStore, NOT_FOUND_REASON, UNPARSEABLE_REASON, replayTask } from '../../../src/replication/dlq-store.ts';
import { ReplicationTaskSchema, taskKey, type ReplicationTask } from '../../../src/replication/task.ts';

/** Keeps every publish in order; readCompacted is the latest value per key of what was published. */
class FakeBus implements Bus {
  readonly kind = 'embedded' as const;
  log: { topic: TopicName; records: OutgoingRecord[] }[] = [];
  failOn: TopicName | undefined;
  async connect(): Promise<void> {}
  async publish(topic: TopicName, records: OutgoingRecord[]): Promise<void> {
    if (this.failOn === topic) throw new Error(`publish to ${topic} failed`);
    this.log.push({ topic, records });
  }
  async subscribe(): Promise<ConsumerHandle> { return { stop: async () => {} }; }
  async readCompacted(topic: TopicName): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    for (const e of this.log) {
      if (e.topic !== topic) continue;
      for (const r of e.records) {
        if (r.value === null) out.delete(r.key);
        else out.set(r.key, r.value);
      }
    }
    return out;
  }
  async inspect(): Promise<BusInspection> { return { kind: 'embedded', topics: [], groups: [] }; }
  isReady(): boolean { return true; }
  async close(): Promise<void> {}
  published(topic: TopicName): OutgoingRecord[] {
    return this.log.filter((e) => e.topic === topic).flatMap((e) => e.records);
  }
}

function task(i: number, over: Partial<ReplicationTask> = {}): ReplicationTask {
  return ReplicationTaskSchema.parse({
    schema: 1, id: `task-${i}`, eventId: `ev-${i}`, action: 'push', origin: 'event', sourceId: 'harbor', repository: `lib/app${i}`, tag: 'v1',
    targetId: i % 2 ? 'swr' : 'backup', destRepository: `org/app${i}`, policyId: i % 2 ? 'p1' : 'p2', attempt: 5,
    notBefore: '2025-01-01T00:10:00Z', lastError: { code: 'HSB_REGISTRY_UNAVAILABLE', message: '503' },
    occurredAt: '2025-01-01T00:00:00Z', createdAt: '2025-01-01T00:00:01Z', ...over,
  });
}

function letter(i: number, over: Partial<DeadLetter> = {}): DeadLetter {
  const t = task(i);
  return {
    schema: 1, id: t.id, task: t, error: { code: i % 3 ? 'HSB_REGISTRY_DENIED' : 'HSB_MANIFEST_INVALID', message: 'no', retryable: false },
    attempts: 6, source: { topic: 'tasks.retry', partition: 0, offset: String(i) }, failedAt: new Date(Date.parse('2025-01-02T00:00:00Z') + i * 1000).toISOString(), ...over,
  };
}

async function seeded(letters: DeadLetter[], extra: OutgoingRecord[] = []): Promise<{ bus: FakeBus; store: DlqStore }> {
  const bus = new FakeBus();
  await bus.publish('dlq', [...letters.map((l) => ({ key: l.id, value: l })), ...extra]);
  return { bus, store: new DlqStore({ bus, logger: silentLogger }) };
}

describe('DlqStore.list', () => {
  it('lists valid letters newest first, filtered and paged, skipping invalid records', async () => {
    const { store } = await seeded([1, 2, 3, 4, 5, 6].map((i) => letter(i)), [{ key: 'junk', value: { schema: 1, id: 'junk' } }]);
    const all = await store.list();
    assert.equal(all.total, 6);
    assert.deepEqual(all.items.map((l) => l.id), ['task-6', 'task-5', 'task-4', 'task-3', 'task-2', 'task-1']);
    assert.deepEqual((await store.list({ target: 'swr' })).items.map((l) => l.id), ['task-5', 'task-3', 'task-1']);
    assert.deepEqual((await store.list({ policy: 'p2', code: 'HSB_MANIFEST_INVALID' })).items.map((l) => l.id), ['task-6']);
    const page = await store.list({ limit: 2, offset: 2 });
    assert.deepEqual([page.total, page.items.map((l) => l.id)], [6, ['task-4', 'task-3']]);
  });

  it('a letter stored under the older task-key contract is found by id and tombstoned under that key', async () => {
    const old = letter(7);
    const { bus, store } = await seeded([], [{ key: taskKey(old.task!), value: old }]);
    assert.deepEqual((await store.list()).items.map((l) => l.id), ['task-7']);
    const r = await store.replay({ ids: ['task-7'] });
    assert.deepEqual(r.replayed, ['task-7']);
    assert.deepEqual(bus.published('dlq').at(-1), { key: 'swr/org/app7', value: null });
    assert.equal((await store.list()).total, 0);
  });
});

describe('DlqStore.replay', () => {
  it('publishes the fresh task to tasks first, then the tombstone to dlq', async () => {
    const { bus, store } = await seeded([letter(1), letter(2), letter(3)]);
    const r = await store.replay({ ids: ['task-1', 'task-3', 'nope'] });
    assert.deepEqual(r.replayed.sort(), ['task-1', 'task-3']);
    assert.deepEqual(r.missing, ['nope']);
    assert.equal(r.reasons.nope, NOT_FOUND_REASON);

    const after = bus.log.slice(1);
    assert.deepEqual(after.map((e) => e.topic), ['tasks', 'dlq'], 'tasks before tombstones');
    const tasks = after[0]!.records;
    assert.deepEqual(tasks.map((t) => (t.value as ReplicationTask).id).sort(), ['task-1', 'task-3']);
    for (const rec of tasks) {
      const t = ReplicationTaskSchema.parse(rec.value);
      assert.equal(t.attempt, 0);
      assert.equal(t.origin, 'replay');
      assert.equal(t.notBefore, undefined);
      assert.equal(t.lastError, undefined);
      assert.equal(rec.key, taskKey(t));
      assert.ok(!('notBefore' in (rec.value as object)) && !('lastError' in (rec.value as object)));
    }
    assert.deepEqual(after[1]!.records.map((x) => [x.key, x.value]).sort(), [['task-1', null], ['task-3', null]]);
    assert.deepEqual((await store.list()).items.map((l) => l.id), ['task-2']);
  });

  it('a failed task publish writes no tombstone: the letter stays', async () => {
    const { bus, store } = await seeded([letter(1)]);
    bus.failOn = 'tasks';
    await assert.rejects(store.replay({ all: true }), /publish to tasks failed/);
    assert.equal(bus.published('dlq').filter((r) => r.value === null).length, 0);
    assert.equal((await store.list()).total, 1);
  });

  it('all replays every replayable letter matching the filter; unparseable ones are reported with a reason', async () => {
    const raw: DeadLetter = { ...letter(9), id: 'tasks-0-42', task: null, raw: { garbage: true }, attempts: 0 };
    const { bus, store } = await seeded([letter(1), letter(2), letter(3), raw]);
    const some = await store.replay({ all: true, filter: { target: 'swr' } });
    assert.deepEqual(some.replayed.sort(), ['task-1', 'task-3']);
    assert.deepEqual(some.missing, [], 'the filter leaves the unparseable letter out');
    const rest = await store.replay({ all: true });
    assert.deepEqual(rest.replayed, ['task-2']);
    assert.deepEqual(rest.missing, ['tasks-0-42']);
    assert.equal(rest.reasons['tasks-0-42'], UNPARSEABLE_REASON);
    assert.deepEqual((await store.list()).items.map((l) => l.id), ['tasks-0-42']);
    assert.equal(bus.published('tasks').length, 3);
  });

  it('a task record an earlier version could not read (a newer task schema) is replayed by this one, by letter or task id', async () => {
    const newer = { ...task(7, { tag: undefined, digest: `sha256:${'c'.repeat(64)}` }), schema: 2, options: { deletion: false, override: true, referrers: true, referrersOf: 'digest' } };
    assert.equal(ReplicationTaskSchema.safeParse(newer).success, true);
    const letterOf = (id: string, topic: string): DeadLetter => ({ ...letter(8), id, task: null, raw: newer, attempts: 0, source: { topic, partition: 0, offset: '7' } });
    const { bus, store } = await seeded([letterOf('tasks-0-7', 'tasks'), letterOf('events-0-7', 'events')]);
    // Listed and filtered by its task, as any task letter.
    const listed = await store.list({ target: 'swr' });
    assert.deepEqual(listed.items.map((l) => [l.id, l.task?.id]), [['tasks-0-7', 'task-7']]);
    const r = await store.replay({ ids: ['task-7'], filter: { target: 'swr' } });
    assert.deepEqual(r.replayed, ['tasks-0-7']);
    const [sent] = bus.published('tasks');
    assert.equal((sent!.value as ReplicationTask).schema, 2);
    assert.equal((sent!.value as ReplicationTask).options.referrersOf, 'digest');
    assert.equal((sent!.value as ReplicationTask).origin, 'replay');
    const rest = await store.replay({ all: true });
    assert.deepEqual(rest.missing, ['events-0-7'], 'a record from another topic is no task');
  });

  it('asking for nothing is an error; replaying an empty selection publishes nothing', async () => {
    const { bus, store } = await seeded([letter(1)]);
    await assert.rejects(store.replay({}), (e) => isBridgeError(e) && e.code === 'HSB_DLQ_SELECTION');
    await assert.rejects(store.replay({ ids: [] }), (e) => isBridgeError(e) && e.code === 'HSB_DLQ_SELECTION');
    const r = await store.replay({ ids: ['task-1'], filter: { target: 'backup' } });
    assert.deepEqual([r.replayed, r.missing], [[], ['task-1']]);
    assert.match(r.reasons['task-1']!, /filter/);
    assert.equal(bus.log.length, 1);
  });

  it('replayTask resets the retry state and keeps identity, counting the replay round', () => {
    const t = replayTask(task(4, { digest: 'sha256:abc' }));
    assert.deepEqual([t.id, t.eventId, t.attempt, t.origin, t.tag, t.digest, t.replays], ['task-4', 'ev-4', 0, 'replay', 'v1', 'sha256:abc', 1]);
    assert.equal(replayTask(t).replays, 2);
  });

  it('a replayed task that fails again before the replay\'s tombstone lands keeps its new letter', async () => {
    const { bus, store } = await seeded([letter(1)]);
    await store.replay({ ids: ['task-1'] });
    const replayed = bus.published('tasks')[0]!.value as ReplicationTask;
    // The race, in the order it would land: the replay's task fails at once and is dead-lettered,
    // then the replay's tombstone for the old letter arrives.
    const tombstones = bus.log.pop()!;
    assert.equal(tombstones.topic, 'dlq');
    const again = taskLetter(replayed, { topic: 'tasks', partition: 0, offset: '9' }, new BridgeError('HSB_REGISTRY_DENIED', 'still no'), 1);
    await bus.publish('dlq', [{ key: again.id, value: again }]);
    bus.log.push(tombstones);
    const { items } = await store.list();
    assert.deepEqual(items.map((l) => l.id), ['task-1.replay-1']);
    assert.equal(items[0]!.error.message, 'still no');
    assert.equal(letterIdOf(task(1)), 'task-1', 'letters of tasks never replayed keep the task id');
    // The task id (as results show it) finds the replayed task's letter; naming it twice replays it once.
    const r = await store.replay({ ids: ['task-1', 'task-1.replay-1'] });
    assert.deepEqual(r.replayed, ['task-1.replay-1']);
    assert.equal((bus.published('tasks').at(-1)!.value as ReplicationTask).replays, 2);
    assert.equal(bus.published('tasks').length, 2);
  });
});
