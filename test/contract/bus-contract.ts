// The Bus port's contract, run against every adapter (embedded and Kafka). It only uses the port,
// polls with deadlines instead of sleeping (Kafka joins and commits take seconds), and tags every
// record with a per-test run id, so it also holds if topics are shared between tests.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BatchHandler, Bus, BusMessage, OutgoingRecord, TopicName } from '../../src/bus/port.ts';

export interface BusFixture {
  /** A connected bus on fresh topics (a new topic prefix or data dir). */
  bus: Bus;
  /** A second, connected bus instance on the same topics and storage, as after a restart. */
  reopen(): Promise<Bus>;
  /** Closes every bus this fixture made and removes what it created. */
  cleanup(): Promise<void>;
}

export interface BusContractOptions {
  /** Deadline for any single expected delivery or commit to show up. Default 30 s. */
  waitMs?: number;
  /** Quiet time after the expected records arrived, to catch duplicates or strays. Default 300 ms. */
  graceMs?: number;
}

export function busContract(name: string, makeBus: () => Promise<BusFixture>, opts: BusContractOptions = {}): void {
  const waitMs = opts.waitMs ?? 30_000;
  const graceMs = opts.graceMs ?? 300;
  const testTimeout = waitMs * 3;

  /** Runs a test body with a fresh fixture and always cleans up. */
  const withBus = (body: (f: BusFixture, run: string) => Promise<void>) => async () => {
    const f = await makeBus();
    try {
      await body(f, randomUUID().slice(0, 8));
    } finally {
      await f.cleanup();
    }
  };

  async function waitUntil(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
    const deadline = Date.now() + waitMs;
    while (!(await cond())) {
      if (Date.now() > deadline) assert.fail(`timed out after ${waitMs} ms waiting for ${what}`);
      await sleep(25);
    }
  }

  /** Subscribes and records every message whose key starts with `prefix`. */
  async function collect(bus: Bus, group: string, topics: TopicName[], prefix: string, handler?: BatchHandler) {
    const seen: BusMessage[] = [];
    const handle = await bus.subscribe({ group, topics, fromBeginning: true }, async (batch, ctx) => {
      if (handler) await handler(batch, ctx);
      for (const m of batch) if (m.key.startsWith(prefix)) seen.push(m);
    });
    return { seen, handle };
  }

  const lagOf = async (bus: Bus, group: string, topic: TopicName): Promise<number | undefined> => {
    const g = (await bus.inspect()).groups.find((x) => x.group === group);
    const offsets = g?.offsets.filter((o) => o.topic === topic) ?? [];
    return offsets.length === 0 ? undefined : offsets.reduce((n, o) => n + o.lag, 0);
  };

  describe(`Bus contract: ${name}`, { timeout: testTimeout * 10 }, () => {
    it('delivers exactly the published records with their keys, values and headers', { timeout: testTimeout }, withBus(async ({ bus }, run) => {
      const before = Date.now();
      const records: OutgoingRecord[] = [
        { key: `${run}-a`, value: { n: 1, text: 'héllo', nested: { list: [1, 2, 3] } }, headers: { 'content-type': 'application/json', trace: run } },
        { key: `${run}-b`, value: 'plain string', headers: {} },
        { key: `${run}-c`, value: 42 },
      ];
      await bus.publish('events', records);
      const { seen, handle } = await collect(bus, `g-${run}`, ['events'], run);
      await waitUntil('3 records', () => seen.length >= 3);
      await sleep(graceMs);
      await handle.stop();
      assert.equal(seen.length, 3, 'each record delivered once');
      const byKey = new Map(seen.map((m) => [m.key, m]));
      for (const r of records) {
        const m = byKey.get(r.key);
        assert.ok(m, `record ${r.key} delivered`);
        assert.equal(m.topic, 'events');
        assert.deepEqual(m.value, r.value);
        assert.deepEqual(m.headers, r.headers ?? {});
        assert.match(m.offset, /^\d+$/);
        assert.ok(Number.isInteger(m.partition) && m.partition >= 0);
        assert.ok(m.timestamp >= before - 60_000 && m.timestamp <= Date.now() + 60_000, 'timestamp is epoch ms');
      }
    }));

    it('preserves per-key order across many keys', { timeout: testTimeout }, withBus(async ({ bus }, run) => {
      const keys = Array.from({ length: 24 }, (_, i) => `${run}-k${i}`);
      const versions = 8;
      for (let v = 0; v < versions; v++) await bus.publish('tasks', keys.map((key) => ({ key, value: { v } })));
      const { seen, handle } = await collect(bus, `g-${run}`, ['tasks'], run);
      await waitUntil('all versions', () => seen.length >= keys.length * versions);
      await handle.stop();
      for (const key of keys) {
        const got = seen.filter((m) => m.key === key);
        assert.deepEqual(got.map((m) => (m.value as { v: number }).v), [...Array(versions).keys()], `order of ${key}`);
        assert.equal(new Set(got.map((m) => m.partition)).size, 1, `${key} stays in one partition`);
        const offsets = got.map((m) => BigInt(m.offset));
        assert.ok(offsets.every((o, i) => i === 0 || o > offsets[i - 1]!), `offsets of ${key} increase`);
      }
    }));

    it('redelivers a batch whose handler rejects and loses nothing after it', { timeout: testTimeout }, withBus(async ({ bus }, run) => {
      const key = `${run}-one-key`;
      await bus.publish('tasks', Array.from({ length: 10 }, (_, i) => ({ key, value: { i } })));
      let failedOnce = false;
      const attempted: number[] = [];
      const done: number[] = [];
      const handle = await bus.subscribe({ group: `g-${run}`, topics: ['tasks'], fromBeginning: true }, async (batch) => {
        const mine = batch.filter((m) => m.key === key).map((m) => (m.value as { i: number }).i);
        attempted.push(...mine);
        if (!failedOnce && mine.includes(3)) {
          failedOnce = true;
          throw new Error('handler failure (expected by the test)');
        }
        done.push(...mine);
      });
      await waitUntil('all 10 handled', () => done.length >= 10);
      await sleep(graceMs);
      await handle.stop();
      assert.ok(failedOnce, 'the failure happened');
      assert.deepEqual(done, [...Array(10).keys()], 'every record handled once successfully, in order');
      assert.equal(attempted.filter((i) => i === 3).length, 2, 'the failed record came again');
    }));

    it('a redelivery keeps delivering what follows, keeps the commit at the held record, and comes back at its time', { timeout: testTimeout }, withBus(async ({ bus }, run) => {
      const group = `g-${run}`;
      const key = `${run}-one-partition`;
      await bus.publish('tasks.retry', [{ key, value: { i: 0 } }]);
      const seen: { i: number; at: number }[] = [];
      let held: string | undefined;
      let until = 0;
      const handle = await bus.subscribe({ group, topics: ['tasks.retry'], fromBeginning: true }, async (batch) => {
        const mine = batch.filter((m) => m.key === key);
        for (const m of mine) seen.push({ i: (m.value as { i: number }).i, at: Date.now() });
        if (mine.length === 0) return;
        if (held === undefined) {
          held = mine[0]!.offset;
          until = Date.now() + 4000;
        }
        // Hold record 0 until its time; everything after it counts as run.
        if (Date.now() < until) return { redeliverFrom: held, until };
      });
      try {
        await waitUntil('record 0', () => seen.length >= 1);
        await bus.publish('tasks.retry', [{ key, value: { i: 1 } }, { key, value: { i: 2 } }]);
        await waitUntil('records 1 and 2', () => seen.some((x) => x.i === 2));
        assert.ok(seen.filter((x) => x.i > 0).every((x) => x.at < until), 'read on past the held record, in its own partition');
        assert.equal(await lagOf(bus, group, 'tasks.retry'), 3, 'the commit stays at the held record');
        await waitUntil('record 0 again', () => seen.filter((x) => x.i === 0).length >= 2);
        const again = seen.filter((x) => x.i === 0)[1]!;
        assert.ok(again.at >= until, 'not before its time');
        await waitUntil('everything committed', async () => (await lagOf(bus, group, 'tasks.retry')) === 0);
      } finally {
        await handle.stop();
      }
    }));

    it('keeps committed offsets across a reconnect', { timeout: testTimeout }, withBus(async (f, run) => {
      const group = `g-${run}`;
      await f.bus.publish('results', Array.from({ length: 5 }, (_, i) => ({ key: `${run}-${i}`, value: { i, phase: 1 } })));
      const first = await collect(f.bus, group, ['results'], run);
      await waitUntil('phase 1 records', () => first.seen.length >= 5);
      await waitUntil('phase 1 committed', async () => (await lagOf(f.bus, group, 'results')) === 0);
      await first.handle.stop();
      await f.bus.close();
      assert.equal(f.bus.isReady(), false, 'a closed bus is not ready');

      const bus2 = await f.reopen();
      assert.equal(bus2.isReady(), true);
      await bus2.publish('results', Array.from({ length: 3 }, (_, i) => ({ key: `${run}-${i}`, value: { i, phase: 2 } })));
      const second = await collect(bus2, group, ['results'], run);
      await waitUntil('phase 2 records', () => second.seen.length >= 3);
      await sleep(graceMs);
      await second.handle.stop();
      assert.deepEqual(second.seen.map((m) => (m.value as { phase: number }).phase), [2, 2, 2], 'nothing committed is redelivered');
    }));

    it('splits partitions between two members of one group, each record seen once', { timeout: testTimeout }, withBus(async ({ bus }, run) => {
      const group = `g-${run}`;
      const a = await collect(bus, group, ['tasks'], run);
      const b = await collect(bus, group, ['tasks'], run);
      // Settle the group first: once both members have had records, both hold partitions.
      let round = 0;
      const probes = () => [...a.seen, ...b.seen].filter((m) => m.key.startsWith(`${run}-probe`));
      await waitUntil('both members assigned', async () => {
        const p = probes();
        if (p.some((m) => a.seen.includes(m)) && p.some((m) => b.seen.includes(m))) return true;
        await bus.publish('tasks', Array.from({ length: 24 }, (_, i) => ({ key: `${run}-probe-${i}`, value: { round } })));
        round++;
        await sleep(200);
        return false;
      });
      const keys = Array.from({ length: 30 }, (_, i) => `${run}-real-${i}`);
      await bus.publish('tasks', keys.flatMap((key) => [{ key, value: { seq: 0 } }, { key, value: { seq: 1 } }]));
      const real = () => [...a.seen, ...b.seen].filter((m) => m.key.startsWith(`${run}-real`));
      await waitUntil('60 records', () => real().length >= 60);
      await sleep(graceMs);
      await Promise.all([a.handle.stop(), b.handle.stop()]);
      const ids = real().map((m) => `${m.key}#${(m.value as { seq: number }).seq}`);
      assert.equal(ids.length, 60, 'no record seen twice');
      assert.equal(new Set(ids).size, 60, 'every record seen');
      const partsA = new Set(a.seen.filter((m) => m.key.includes('-real-')).map((m) => m.partition));
      const partsB = new Set(b.seen.filter((m) => m.key.includes('-real-')).map((m) => m.partition));
      assert.ok(partsA.size > 0 && partsB.size > 0, 'both members got work');
      assert.deepEqual([...partsA].filter((p) => partsB.has(p)), [], 'no partition served by both');
    }));

    it('aborts a running handler whose partitions move to a member that joins', { timeout: testTimeout }, withBus(async ({ bus }, run) => {
      const group = `g-${run}`;
      await bus.publish('tasks', Array.from({ length: 24 }, (_, i) => ({ key: `${run}-k-${i}`, value: { i } })));
      let held = 0;
      let aborted = 0;
      // A holds every batch it gets without heartbeating itself, until its signal says the partition is gone.
      const a = await bus.subscribe({ group, topics: ['tasks'], fromBeginning: true }, async (batch, ctx) => {
        if (!batch.some((m) => m.key.startsWith(run))) return;
        held++;
        const until = Date.now() + waitMs;
        while (!ctx.signal.aborted && Date.now() < until) await sleep(25);
        if (ctx.signal.aborted) {
          aborted++;
          throw new Error('partition revoked (expected by the test)');
        }
      });
      await waitUntil('A holding a batch', () => held > 0);
      const servedByB = new Set<number>();
      const b = await bus.subscribe({ group, topics: ['tasks'], fromBeginning: true }, async (batch) => {
        for (const m of batch) if (m.key.startsWith(run)) servedByB.add(m.partition);
      });
      await waitUntil('a held batch of A to be aborted', () => aborted > 0);
      await waitUntil('B to serve the records it took over', () => servedByB.size > 0);
      await Promise.all([a.stop(), b.stop()]);
    }));

    it('gives every group all records', { timeout: testTimeout }, withBus(async ({ bus }, run) => {
      await bus.publish('events', Array.from({ length: 10 }, (_, i) => ({ key: `${run}-${i}`, value: { i } })));
      const one = await collect(bus, `g1-${run}`, ['events'], run);
      const two = await collect(bus, `g2-${run}`, ['events'], run);
      await waitUntil('both groups have all', () => one.seen.length >= 10 && two.seen.length >= 10);
      await sleep(graceMs);
      await Promise.all([one.handle.stop(), two.handle.stop()]);
      const sorted = (s: BusMessage[]) => s.map((m) => m.key).sort();
      assert.deepEqual(sorted(one.seen), sorted(two.seen));
      assert.equal(new Set(one.seen.map((m) => m.key)).size, 10);
      assert.equal(one.seen.length, 10);
    }));

    it('reads a compacted topic as the latest value per key, without tombstones', { timeout: testTimeout }, withBus(async ({ bus }, run) => {
      await bus.publish('policies', [
        { key: `${run}-a`, value: { v: 1 } },
        { key: `${run}-b`, value: { v: 1 } },
        { key: `${run}-a`, value: { v: 2 } },
      ]);
      await bus.publish('policies', [
        { key: `${run}-c`, value: { v: 1 } },
        { key: `${run}-b`, value: null },
        { key: `${run}-d`, value: null },
      ]);
      const all = await bus.readCompacted('policies');
      const mine = new Map([...all].filter(([k]) => k.startsWith(run)));
      assert.deepEqual(mine, new Map<string, unknown>([[`${run}-a`, { v: 2 }], [`${run}-c`, { v: 1 }]]));
    }));

    it('publishes a call all or nothing', { timeout: testTimeout }, withBus(async ({ bus }, run) => {
      await bus.publish('events', Array.from({ length: 25 }, (_, i) => ({ key: `${run}-ok-${i}`, value: { i } })));
      // A value JSON cannot encode fails the whole call, so its valid neighbours must not appear.
      await assert.rejects(bus.publish('events', [
        { key: `${run}-bad-0`, value: { fine: true } },
        { key: `${run}-bad-1`, value: { big: 1n } },
        { key: `${run}-bad-2`, value: { fine: true } },
      ]));
      await bus.publish('events', [{ key: `${run}-marker`, value: {} }]);
      const { seen, handle } = await collect(bus, `g-${run}`, ['events'], run);
      await waitUntil('all records and the marker', () => seen.length >= 26);
      await sleep(graceMs);
      await handle.stop();
      assert.equal(seen.filter((m) => m.key.startsWith(`${run}-ok-`)).length, 25);
      assert.deepEqual(seen.filter((m) => m.key.startsWith(`${run}-bad-`)), []);
    }));

    it('inspect shows depth, committed offsets and lag', { timeout: testTimeout }, withBus(async ({ bus }, run) => {
      const group = `g-${run}`;
      await bus.publish('dlq', Array.from({ length: 7 }, (_, i) => ({ key: `${run}-${i}`, value: { i } })));
      const shown = await bus.inspect();
      assert.equal(shown.kind, bus.kind);
      const dlq = shown.topics.find((t) => t.topic === 'dlq');
      assert.ok(dlq && dlq.partitions.length > 0, 'dlq topic listed with partitions');
      for (const p of dlq.partitions) assert.match(`${p.low}/${p.high}`, /^\d+\/\d+$/);
      const depth = dlq.partitions.reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
      assert.ok(depth >= 7, `depth ${depth} counts the 7 records`);

      const { seen, handle } = await collect(bus, group, ['dlq'], run);
      await waitUntil('7 records', () => seen.length >= 7);
      await waitUntil('group lag 0', async () => (await lagOf(bus, group, 'dlq')) === 0);
      await handle.stop();
      const again = await bus.inspect();
      const g = again.groups.find((x) => x.group === group);
      assert.ok(g, 'group listed');
      // Listed in one order on both buses: partitions ascending, groups by name, a group's offsets by topic then partition.
      const sorted = <T>(xs: T[], cmp: (a: T, b: T) => number) => assert.deepEqual(xs, [...xs].sort(cmp));
      const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
      for (const t of again.topics) sorted(t.partitions.map((p) => p.partition), (a, b) => a - b);
      sorted(again.groups.map((x) => x.group), byName);
      for (const x of again.groups) sorted(x.offsets, (a, b) => byName(a.topic, b.topic) || a.partition - b.partition);
      for (const o of g.offsets.filter((x) => x.topic === 'dlq')) assert.match(o.committed, /^\d+$/);

      await bus.publish('dlq', Array.from({ length: 4 }, (_, i) => ({ key: `${run}-later-${i}`, value: { i } })));
      await waitUntil('lag 4 after 4 more records', async () => (await lagOf(bus, group, 'dlq')) === 4);
    }));
  });
}
