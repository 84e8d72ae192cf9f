// Embedded-bus behaviour beyond the shared contract: pruning, start positions, stop/close,
// and the errors it raises.

import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { EmbeddedBus, type EmbeddedBusOptions } from '../../../src/bus/embedded/sqlite-bus.ts';
import type { Bus, BusMessage, TopicName } from '../../../src/bus/port.ts';

const dirs: string[] = [];
const buses: Bus[] = [];
after(async () => {
  await Promise.all(buses.map((b) => b.close()));
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function openBus(opts: Partial<EmbeddedBusOptions> = {}, dataDir?: string): Promise<EmbeddedBus> {
  const dir = dataDir ?? await mkdtemp(join(tmpdir(), 'hsb-bus-unit-'));
  if (!dataDir) dirs.push(dir);
  const bus = new EmbeddedBus({ dataDir: dir, retryBackoffMs: 20, ...opts });
  await bus.connect();
  buses.push(bus);
  return bus;
}

async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const lowHigh = async (bus: Bus, topic: TopicName) => (await bus.inspect()).topics.find((t) => t.topic === topic)!.partitions
  .filter((p) => p.high !== '0').map((p) => ({ low: Number(p.low), high: Number(p.high) }));

describe('embedded bus pruning', () => {
  it('deletes only records past retention that every group has committed', async () => {
    const bus = await openBus({ retentionMs: 1_000, maxBatchSize: 1 });
    await bus.publish('events', Array.from({ length: 5 }, (_, i) => ({ key: 'one-key', value: { i } })));
    const done = await bus.subscribe({ group: 'fast', topics: ['events'] }, async () => {});
    // 'slow' handles offsets 0 and 1, then fails forever on 2.
    const slow = await bus.subscribe({ group: 'slow', topics: ['events'] }, async (batch) => {
      if (Number(batch[0]!.offset) >= 2) throw new Error('stuck (expected by the test)');
    });
    // One key, so one partition holds all five; the others stay at 0.
    const committed = async (group: string) => Math.max(...((await bus.inspect()).groups.find((g) => g.group === group)?.offsets ?? []).map((o) => Number(o.committed)));
    await waitUntil('fast at 5, slow at 2', async () => (await committed('fast')) === 5 && (await committed('slow')) === 2);
    await Promise.all([done.stop(), slow.stop()]);

    assert.equal(bus.prune(Date.now()), 0, 'nothing is older than retention yet');
    assert.equal(bus.prune(Date.now() + 2_000), 2, 'only what the slowest group committed');
    assert.deepEqual(await lowHigh(bus, 'events'), [{ low: 2, high: 5 }]);
  });

  it('forgets a group gone longer than groupExpiryMs (a one-off reader), but not one with a live member', async () => {
    const bus = await openBus({ retentionMs: 1_000, groupExpiryMs: 1_000, maxBatchSize: 1 });
    await bus.publish('results', Array.from({ length: 4 }, (_, i) => ({ key: 'k', value: { i } })));
    const stuck = (group: string) => bus.subscribe({ group, topics: ['results'] }, async (batch) => {
      if (Number(batch[0]!.offset) >= 1) throw new Error('stuck (expected by the test)');
    });
    const committed = async (group: string) => Math.max(0, ...((await bus.inspect()).groups.find((g) => g.group === group)?.offsets ?? []).map((o) => Number(o.committed)));
    const alive = await stuck('replicator');
    await waitUntil('replicator at 1', async () => (await committed('replicator')) === 1);
    assert.equal(bus.prune(Date.now() + 2_000), 1, 'a group with a live member holds the rest, however old its commit');
    await alive.stop();

    const other = await openBus({ retentionMs: 1_000, groupExpiryMs: 1_000, maxBatchSize: 1 });
    await other.publish('results', Array.from({ length: 4 }, (_, i) => ({ key: 'k', value: { i } })));
    const once = await other.subscribe({ group: 'status-once', topics: ['results'] }, async (batch) => {
      if (Number(batch[0]!.offset) >= 1) throw new Error('stuck (expected by the test)');
    });
    await waitUntil('status-once at 1', async () => Math.max(0, ...((await other.inspect()).groups.find((g) => g.group === 'status-once')?.offsets ?? []).map((o) => Number(o.committed))) === 1);
    await once.stop();
    assert.equal(other.prune(Date.now() + 500), 0, 'within retention and group expiry: nothing goes');
    assert.equal(other.prune(Date.now() + 2_000), 4, 'the reader that went away is forgotten and no longer holds the records');
    assert.ok(!(await other.inspect()).groups.some((g) => g.group === 'status-once'));
  });

  it('a view group (status, a policy follower) never holds records back, however recent its commit', async () => {
    const bus = await openBus({ retentionMs: 1_000, maxBatchSize: 1 });
    await bus.publish('results', Array.from({ length: 4 }, (_, i) => ({ key: 'k', value: { i } })));
    const view = await bus.subscribe({ group: 'status-view', topics: ['results'] }, async (batch) => {
      if (Number(batch[0]!.offset) >= 1) throw new Error('stuck (expected by the test)');
    });
    await waitUntil('status-view at 1', async () => Math.max(0, ...((await bus.inspect()).groups.find((g) => g.group === 'status-view')?.offsets ?? []).map((o) => Number(o.committed))) === 1);
    await view.stop();
    assert.equal(bus.prune(Date.now() + 2_000), 4, 'past retention, the view\'s commit holds nothing');
  });

  it('prunes topics no group consumes by retention alone', async () => {
    const bus = await openBus({ retentionMs: 1_000 });
    await bus.publish('dlq', [{ key: 'a', value: 1 }, { key: 'b', value: 2 }]);
    assert.equal(bus.prune(Date.now() + 2_000), 2);
    for (const p of await lowHigh(bus, 'dlq')) assert.equal(p.low, p.high, 'empty partition: low = high');
  });

  it('keeps the latest value of each key of a compacted topic and drops old tombstones', async () => {
    const bus = await openBus({ retentionMs: 1_000 });
    await bus.publish('policies', [
      { key: 'a', value: { v: 1 } }, { key: 'a', value: { v: 2 } },
      { key: 'b', value: { v: 1 } }, { key: 'b', value: null },
      { key: 'c', value: { v: 1 } },
    ]);
    const before = await bus.readCompacted('policies');
    assert.equal(bus.prune(Date.now() + 2_000), 3, 'a v1, b v1 and the tombstone of b');
    assert.deepEqual(await bus.readCompacted('policies'), before);
    assert.deepEqual(before, new Map<string, unknown>([['a', { v: 2 }], ['c', { v: 1 }]]));
    // A new group reading from the beginning still sees each live key's latest value.
    const seen: BusMessage[] = [];
    const h = await bus.subscribe({ group: 'late', topics: ['policies'] }, async (b) => { seen.push(...b); });
    await waitUntil('2 records', () => seen.length >= 2);
    await h.stop();
    assert.deepEqual(seen.map((m) => [m.key, m.value]).sort(), [['a', { v: 2 }], ['c', { v: 1 }]]);
  });
});

describe('embedded bus consumers', () => {
  it('starts a new group at the end when fromBeginning is false', async () => {
    const bus = await openBus();
    await bus.publish('events', [{ key: 'old', value: 1 }]);
    const seen: string[] = [];
    const h = await bus.subscribe({ group: 'tail', topics: ['events'], fromBeginning: false }, async (b) => { seen.push(...b.map((m) => m.key)); });
    await waitUntil('start pinned', async () => (await bus.inspect()).groups.some((g) => g.group === 'tail'));
    await bus.publish('events', [{ key: 'new', value: 2 }]);
    await waitUntil('new record', () => seen.length >= 1);
    await sleep(50);
    await h.stop();
    assert.deepEqual(seen, ['new']);
  });

  it('close() aborts in-flight batches, waits for them, and makes the bus unusable', async () => {
    const bus = await openBus();
    await bus.publish('tasks', [{ key: 'k', value: 1 }]);
    let started = false;
    let sawAbort = false;
    let finished = false;
    await bus.subscribe({ group: 'g', topics: ['tasks'] }, async (_batch, ctx) => {
      started = true;
      await ctx.heartbeat();
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      sawAbort = ctx.signal.aborted;
      await sleep(30);
      finished = true;
    });
    await waitUntil('handler running', () => started);
    assert.equal(bus.isReady(), true);
    await bus.close();
    assert.ok(sawAbort && finished, 'close waited for the aborted handler');
    assert.equal(bus.isReady(), false);
    await assert.rejects(bus.publish('tasks', [{ key: 'k', value: 2 }]), { code: 'HSB_BUS_NOT_CONNECTED' });
  });

  it('moves partitions to a new in-process member and back when it stops', async () => {
    const bus = await openBus();
    const a: number[] = [];
    const b: number[] = [];
    const ha = await bus.subscribe({ group: 'rb', topics: ['results'] }, async (batch) => { a.push(...batch.map((m) => m.partition)); });
    const hb = await bus.subscribe({ group: 'rb', topics: ['results'] }, async (batch) => { b.push(...batch.map((m) => m.partition)); });
    const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
    await waitUntil('b owns partitions', async () => {
      await bus.publish('results', keys.map((key) => ({ key, value: 0 })));
      await sleep(50);
      return b.length > 0;
    });
    await hb.stop();
    a.length = 0;
    await bus.publish('results', keys.map((key) => ({ key, value: 1 })));
    await waitUntil('a owns all again', () => new Set(a).size === 6);
    await ha.stop();
  });
});

describe('embedded bus files', () => {
  it('creates a missing data directory for its owner only (dead letters hold error messages)', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'hsb-bus-mode-'));
    dirs.push(parent);
    await openBus({}, join(parent, 'data', 'nested'));
    assert.equal((await stat(join(parent, 'data', 'nested'))).mode & 0o777, 0o700);
  });
});

describe('embedded bus errors', () => {
  it('refuses a different partition count for an existing file', async () => {
    const first = await openBus({ partitions: 6 });
    const dir = dirs[dirs.length - 1]!;
    await first.close();
    const other = new EmbeddedBus({ dataDir: dir, partitions: 3 });
    await assert.rejects(other.connect(), { code: 'HSB_BUS_CONFIG' });
  });

  it('rejects unknown topics, bad records and use before connect', async () => {
    const bus = await openBus();
    await assert.rejects(bus.publish('nope' as TopicName, [{ key: 'k', value: 1 }]), { code: 'HSB_BUS_UNKNOWN_TOPIC' });
    await assert.rejects(bus.publish('events', [{ key: 'k', value: { n: 1n } }]), { code: 'HSB_BUS_INVALID_RECORD' });
    await assert.rejects(bus.subscribe({ group: 'g', topics: [] }, async () => {}), { code: 'HSB_BUS_INVALID_SUBSCRIPTION' });
    const unconnected = new EmbeddedBus({ dataDir: dirs[0]! });
    assert.equal(unconnected.isReady(), false);
    await assert.rejects(unconnected.inspect(), { code: 'HSB_BUS_NOT_CONNECTED' });
  });
});
