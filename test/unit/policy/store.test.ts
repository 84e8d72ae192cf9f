// PolicyStore against an in-memory bus that behaves like the port says (per-partition order,
// consumer groups reading from the beginning, compacted reads), so the catch-up logic can be
// checked record by record. The real adapters are exercised in test/integration/policy.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BatchHandler, Bus, BusInspection, BusMessage, ConsumerHandle, OutgoingRecord, Subscription, TopicName } from '../../../src/bus/port.ts';
import { PolicySchema, type Policy, type PolicyInput } from '../../../src/policy/model.ts';
import { PolicyTable } from '../../../src/policy/table.ts';
import { PolicyStore, canonical, effectivePolicies } from '../../../src/policy/store.ts';
import { silentLogger } from '../../../src/observability/logger.ts';

const PARTITIONS = 2;

interface Consumer { pos: number[]; onBatch: BatchHandler; busy: boolean; stopped: boolean }

class MemoryBus implements Bus {
  readonly kind = 'embedded' as const;
  readonly parts: BusMessage[][] = Array.from({ length: PARTITIONS }, () => []);
  readonly consumers = new Set<Consumer>();
  /** Pretend the log ends further on than the records that can be read (a compacted-away tail). */
  phantomTail = 0;
  publishFails = false;

  async connect(): Promise<void> {}
  isReady(): boolean { return true; }
  async close(): Promise<void> { this.consumers.clear(); }

  async publish(topic: TopicName, records: OutgoingRecord[]): Promise<void> {
    if (this.publishFails) throw Object.assign(new Error('down'), { retryable: true });
    if (topic !== 'policies') return;
    for (const r of records) {
      const p = partitionOf(r.key);
      this.parts[p]!.push({ topic, partition: p, offset: String(this.parts[p]!.length), key: r.key, value: r.value === null ? null : JSON.parse(JSON.stringify(r.value)), timestamp: Date.now(), headers: {} });
    }
    for (const c of this.consumers) this.#pump(c);
  }

  async subscribe(_sub: Subscription, onBatch: BatchHandler): Promise<ConsumerHandle> {
    const c: Consumer = { pos: Array(PARTITIONS).fill(0), onBatch, busy: false, stopped: false };
    this.consumers.add(c);
    this.#pump(c);
    return { stop: async () => { c.stopped = true; this.consumers.delete(c); } };
  }

  #pump(c: Consumer): void {
    setImmediate(async () => {
      if (c.busy || c.stopped) return;
      c.busy = true;
      try {
        for (let p = 0; p < PARTITIONS; p++) {
          // Small batches, to interleave partitions as a real consumer may.
          const batch = this.parts[p]!.slice(c.pos[p], c.pos[p]! + 2);
          if (!batch.length) continue;
          await c.onBatch(batch, { heartbeat: async () => {}, signal: new AbortController().signal });
          c.pos[p]! += batch.length;
        }
      } finally {
        c.busy = false;
      }
      if (!c.stopped && this.parts.some((part, p) => c.pos[p]! < part.length)) this.#pump(c);
    });
  }

  async readCompacted(): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    for (const part of this.parts) for (const m of part) m.value === null ? out.delete(m.key) : out.set(m.key, m.value);
    return out;
  }

  async inspect(): Promise<BusInspection> {
    return {
      kind: 'embedded', groups: [],
      topics: [{ topic: 'policies', partitions: this.parts.map((part, p) => ({ partition: p, low: '0', high: String(part.length + (part.length ? this.phantomTail : 0)) })) }],
    };
  }
}

function partitionOf(key: string): number {
  let h = 0;
  for (const ch of key) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h % PARTITIONS;
}

/** A table that remembers every change made to it. */
class RecordingTable extends PolicyTable {
  readonly history: [string, string | null][] = [];
  override set(id: string, policy: Policy | null): void {
    this.history.push([id, policy ? (policy.description ?? '') : null]);
    super.set(id, policy);
  }
}

const pol = (id: string, extra: Partial<PolicyInput> = {}): Policy => PolicySchema.parse({ id, src_registry: 'harbor', dest_registry: 'swr', ...extra });
const rec = (p: Policy, origin = 'api') => ({ key: p.id, value: { schema: 1, policy: p, origin } });

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('PolicyStore', () => {
  it('seed publishes config policies that are absent or different, and removes ones the config dropped', async () => {
    const bus = new MemoryBus();
    await bus.publish('policies', [
      rec(pol('same', { description: 'x' }), 'config'),
      rec(pol('changed', { description: 'old' }), 'config'),
      rec(pol('dropped'), 'config'),
      rec(pol('from-api'), 'api'),
    ]);
    const store = new PolicyStore({ bus, table: new PolicyTable(), logger: silentLogger });
    const s = await store.seed([pol('same', { description: 'x' }), pol('changed', { description: 'new' }), pol('added')]);
    assert.deepEqual(s, { created: ['added'], updated: ['changed'], unchanged: ['same'], removed: ['dropped'] });
    const now = await bus.readCompacted();
    assert.deepEqual([...now.keys()].sort(), ['added', 'changed', 'from-api', 'same']);
    assert.equal((now.get('changed') as { policy: Policy }).policy.description, 'new');
    assert.equal((now.get('added') as { origin: string }).origin, 'config');
    // A config policy identical to one created through the API is taken over by the config.
    const takeover = await store.seed([pol('same', { description: 'x' }), pol('changed', { description: 'new' }), pol('added'), pol('from-api')], { prune: false });
    assert.deepEqual(takeover.updated, ['from-api']);
    assert.equal(((await bus.readCompacted()).get('from-api') as { origin: string }).origin, 'config');
    // Seeding the same config again publishes nothing.
    const before = bus.parts.flat().length;
    await store.seed([pol('same', { description: 'x' }), pol('changed', { description: 'new' }), pol('added'), pol('from-api')]);
    assert.equal(bus.parts.flat().length, before);
  });

  it('builds the table from the topic without ever stepping back to an older version or a deleted policy', async () => {
    const bus = new MemoryBus();
    const a1 = pol('a', { description: 'v1' });
    const a2 = pol('a', { description: 'v2' });
    await bus.publish('policies', [rec(a1), rec(pol('gone', { description: 'g' })), rec(a2), { key: 'gone', value: null }, rec(pol('b', { description: 'b' }))]);
    const table = new RecordingTable();
    const store = new PolicyStore({ bus, table, logger: silentLogger });
    await store.start();
    assert.deepEqual(table.list().map((p) => [p.id, p.description]).sort(), [['a', 'v2'], ['b', 'b']]);
    // Only the snapshot's values were ever applied: the replay of a@v1 and of "gone" was held back.
    assert.deepEqual(table.history.sort(), [['a', 'v2'], ['b', 'b']]);
    // The deletion is known even though "gone" never reached the table: its queued tasks are stale.
    assert.equal(typeof table.removedAt('gone'), 'number');
    assert.equal(table.removedAt('a'), undefined);
    await store.stop();
  });

  it('follows live changes from another store, and put/delete resolve once applied locally', async () => {
    const bus = new MemoryBus();
    const tableA = new PolicyTable();
    const tableB = new PolicyTable();
    const a = new PolicyStore({ bus, table: tableA, logger: silentLogger });
    const b = new PolicyStore({ bus, table: tableB, logger: silentLogger });
    await a.start();
    await b.start();
    const stored = await a.put({ id: 'p1', src_registry: 'harbor', dest_registry: 'swr', deletion: true });
    assert.equal(stored.deletion, true);
    assert.equal(tableA.get('p1')?.deletion, true, 'visible to its own process as soon as put() resolves');
    await until(() => tableB.get('p1') !== undefined);
    assert.equal(canonical(tableB.get('p1')), canonical(stored));

    const v = tableB.version;
    await a.put(stored); // the same value again: no change for readers
    await until(() => tableA.get('p1') !== undefined);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(tableB.version, v);

    await a.delete('p1');
    assert.equal(tableA.get('p1'), undefined);
    await until(() => tableB.get('p1') === undefined);
    await a.stop();
    await b.stop();
  });

  it('skips records that do not match the schema or whose key is not the policy id', async () => {
    const bus = new MemoryBus();
    await bus.publish('policies', [
      { key: 'bad', value: { schema: 1, policy: { id: 'bad', src_registry: 'h' } } },
      { key: 'old-schema', value: { schema: 2, policy: pol('old-schema') } },
      { key: 'other', value: { schema: 1, policy: pol('mismatch') } },
      rec(pol('good')),
    ]);
    const table = new PolicyTable();
    const store = new PolicyStore({ bus, table, logger: silentLogger });
    await store.start();
    assert.deepEqual(table.list().map((p) => p.id), ['good']);
    // Live, too.
    await bus.publish('policies', [{ key: 'bad2', value: { schema: 1, policy: { id: 'bad2', src_registry: 'h', dest_registry: 'x', speed: 'fast' } } }]);
    await bus.publish('policies', [rec(pol('good2'))]);
    await until(() => table.get('good2') !== undefined);
    assert.equal(table.get('bad2'), undefined);
    await store.stop();
  });

  it('stops waiting for end offsets it cannot reach once the replay goes quiet', async () => {
    const bus = new MemoryBus();
    bus.phantomTail = 3;
    await bus.publish('policies', [rec(pol('a', { description: 'v1' })), rec(pol('a', { description: 'v2' }))]);
    const table = new PolicyTable();
    const store = new PolicyStore({ bus, table, logger: silentLogger, catchUpIdleMs: 150 });
    const t0 = Date.now();
    await store.start();
    assert.ok(Date.now() - t0 >= 100, 'waited for the replay to go quiet');
    assert.equal(table.get('a')?.description, 'v2');
    await bus.publish('policies', [rec(pol('a', { description: 'v3' }))]);
    await until(() => table.get('a')?.description === 'v3');
    await store.stop();
  });

  it('put() rejects when the bus refuses the record, and the table is unchanged', async () => {
    const bus = new MemoryBus();
    const table = new PolicyTable();
    const store = new PolicyStore({ bus, table, logger: silentLogger });
    await store.start();
    bus.publishFails = true;
    await assert.rejects(store.put(pol('x')), /down/);
    assert.equal(table.get('x'), undefined);
    await store.stop();
  });

  it('start() can be retried after the bus failed it', async () => {
    const bus = new MemoryBus();
    await bus.publish('policies', [rec(pol('a'))]);
    const table = new PolicyTable();
    const store = new PolicyStore({ bus, table, logger: silentLogger });
    const real = bus.readCompacted.bind(bus);
    bus.readCompacted = async () => { throw new Error('bus down'); };
    await assert.rejects(store.start(), /bus down/);
    bus.readCompacted = real;
    await store.start();
    assert.deepEqual(table.list().map((p) => p.id), ['a']);
    await store.stop();
  });

  it('without start(), put resolves once durable (the importer CLI)', async () => {
    const bus = new MemoryBus();
    const store = new PolicyStore({ bus, table: new PolicyTable(), logger: silentLogger });
    const s = await store.publishAll([pol('a'), pol('b')], 'import');
    assert.deepEqual(s.created, ['a', 'b']);
    const again = await store.publishAll([pol('a'), pol('b', { deletion: true })], 'import');
    assert.deepEqual([again.unchanged, again.updated], [['a'], ['b']]);
    assert.equal(((await bus.readCompacted()).get('b') as { origin: string }).origin, 'import');
  });
});

describe('effectivePolicies (what `sync` runs)', () => {
  const records = (...rs: [Policy, string | undefined][]) => new Map(rs.map(([p, origin]) => [p.id, { schema: 1 as const, policy: p, ...(origin ? { origin: origin as 'api' } : {}) }]));

  it('keeps the config file\'s version, adds API and imported policies, drops what an older config left', () => {
    const fromFile = pol('a', { enabled: true });
    const topic = records(
      [pol('a', { enabled: false }), 'api'], // the config replaces it, as seed() would
      [pol('b'), 'api'],
      [pol('c'), 'import'],
      [pol('d'), 'config'], // an earlier config's: seed() prunes it
      [pol('e'), undefined], // written before origins were recorded: kept, as seed() keeps it
    );
    const got = effectivePolicies([fromFile], topic);
    assert.deepEqual(got.map((p) => p.id), ['a', 'b', 'c', 'e']);
    assert.equal(got[0], fromFile);
  });

  it('is the config alone when the topic is empty', () => {
    assert.deepEqual(effectivePolicies([pol('x')], new Map()).map((p) => p.id), ['x']);
  });
});
