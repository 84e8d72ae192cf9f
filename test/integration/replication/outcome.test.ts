// A task's outcome records on the real embedded bus: written in order when they match their
// schemas; when one does not, none of them is written and the task's record is dead-lettered as it
// came (so its partition moves on instead of failing the batch on every delivery).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { busHarnesses, type BusHarness } from '../../support/bus-harness.ts';
import { pushTask } from '../../support/tasks.ts';
import type { BusMessage, TopicName } from '../../../src/bus/port.ts';
import { BridgeError } from '../../../src/errors.ts';
import { publishOutcome, resultRecord, type OutcomeRecord } from '../../../src/replication/outcome.ts';
import { ReplicationTaskSchema, taskKey } from '../../../src/replication/task.ts';
import type { DeadLetter } from '../../../src/replication/dead-letter.ts';

async function drain(h: BusHarness, group: string, topics: TopicName[]): Promise<BusMessage[]> {
  const seen: BusMessage[] = [];
  const handle = await h.bus.subscribe({ group, topics, fromBeginning: true }, async (batch) => { seen.push(...batch); });
  await new Promise((r) => setTimeout(r, 1500));
  await handle.stop();
  return seen;
}

describe('task outcome records (embedded bus)', () => {
  let h: BusHarness;
  before(async () => { h = await busHarnesses('outcome').embedded(); });
  after(async () => { await h.cleanup(); });

  const messageOf = (offset: string, value: unknown): BusMessage => ({ topic: 'tasks', partition: 1, offset, key: 'dst/app', value, timestamp: Date.now(), headers: {} });

  it('writes every record, in order, when all match', async () => {
    const task = pushTask('app');
    const err = new BridgeError('HSB_REGISTRY_UNAVAILABLE', 'target answered 503', { retryable: true });
    const retry: OutcomeRecord = { topic: 'tasks.retry', schema: ReplicationTaskSchema, record: { key: taskKey(task), value: { ...task, attempt: 1 } } };
    const out = await publishOutcome(h.bus, messageOf('7', task), [retry, resultRecord(task, { status: 'retry', bytes: 0 }, 12, err)]);
    assert.deepEqual(out, { ok: true });
    const seen = await drain(h, 'outcome-ok', ['tasks.retry', 'results', 'dlq']);
    assert.deepEqual(seen.map((m) => m.topic).sort(), ['results', 'tasks.retry']);
    assert.equal((seen.find((m) => m.topic === 'results')!.value as { durationMs: number }).durationMs, 12);
  });

  it('writes none of them when one does not match, and dead-letters the task record instead', async () => {
    const task = pushTask('broken');
    const retry: OutcomeRecord = { topic: 'tasks.retry', schema: ReplicationTaskSchema, record: { key: taskKey(task), value: { ...task, attempt: 1 } } };
    // A negative duration is what a clock stepping back used to produce.
    const out = await publishOutcome(h.bus, messageOf('9', task), [retry, resultRecord(task, { status: 'retry', bytes: 0 }, -5)]);
    assert.equal(out.ok, false);
    assert.ok(!out.ok && out.error.code === 'HSB_BUS_INVALID_RECORD');
    const seen = await drain(h, 'outcome-bad', ['tasks.retry', 'results', 'dlq']);
    const broken = seen.filter((m) => m.key === 'dst/broken' || m.key === 'tasks-1-9');
    assert.deepEqual(broken.map((m) => m.topic), ['dlq'], 'no retry and no result half-written');
    const letter = broken[0]!.value as DeadLetter;
    assert.equal(letter.id, 'tasks-1-9');
    assert.equal(letter.error.code, 'HSB_BUS_INVALID_RECORD');
    assert.match(letter.error.message, /a results record \(key dst\/broken\) does not match its schema: durationMs: /);
    assert.deepEqual(letter.raw, JSON.parse(JSON.stringify(task)));
  });
});
