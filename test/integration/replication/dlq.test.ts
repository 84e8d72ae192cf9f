// Dead letters on the real broker and on the embedded bus: GET /dlq lists what is on `dlq`,
// POST /dlq/replay puts the tasks back on `tasks` (attempt 0, origin replay) and removes the
// letters, and `dlq replay --all` / `dlq list` do the same from the command line.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import request from 'supertest';
import { Kafka, logLevel } from 'kafkajs';
import type { Bus, BusMessage } from '../../../src/bus/port.ts';
import { EmbeddedBus } from '../../../src/bus/embedded/sqlite-bus.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { dlqCommand } from '../../../src/cli/dlq.ts';
import type { DeadLetter } from '../../../src/replication/dead-letter.ts';
import { DlqStore, UNPARSEABLE_REASON } from '../../../src/replication/dlq-store.ts';
import { ResultsStore } from '../../../src/replication/results-store.ts';
import { replicationRouter } from '../../../src/replication/routes.ts';
import { ReplicationTaskSchema, taskKey, type ReplicationTask } from '../../../src/replication/task.ts';
import { busHarnesses, type BusHarness } from '../../support/bus-harness.ts';
import { sharedBrokers } from '../../support/kafka.ts';
import { eventually } from '../../support/bridge-process.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { startQueueMetrics } from '../../../src/observability/queue-metrics.ts';

type Harness = BusHarness;

const HARNESSES = busHarnesses('dlq');

function task(i: number, targetId: string): ReplicationTask {
  return ReplicationTaskSchema.parse({
    schema: 1, id: `task-${i}`, eventId: `ev-${i}`, action: 'push', sourceId: 'harbor', repository: `lib/app${i}`, tag: `v${i}`,
    targetId, destRepository: `org/app${i}`, policyId: 'p1', attempt: 8, notBefore: '2025-01-01T00:10:00Z',
    lastError: { code: 'HSB_REGISTRY_UNAVAILABLE', message: 'HTTP 503' }, occurredAt: '2025-01-01T00:00:00Z', createdAt: '2025-01-01T00:00:01Z',
  });
}

function letter(i: number, targetId: string): DeadLetter {
  return {
    schema: 1, id: `task-${i}`, task: task(i, targetId), error: { code: 'HSB_REGISTRY_DENIED', message: 'HTTP 403 from the target', retryable: false },
    attempts: 9, source: { topic: 'tasks.retry', partition: 1, offset: String(100 + i) }, failedAt: new Date(Date.parse('2025-01-02T00:00:00Z') + i * 1000).toISOString(),
  };
}

const UNPARSEABLE: DeadLetter = {
  schema: 1, id: 'tasks-2-7', task: null, raw: { not: 'a task' }, error: { code: 'HSB_TASK_INVALID', message: 'invalid task record', retryable: false },
  attempts: 0, source: { topic: 'tasks', partition: 2, offset: '7' }, failedAt: '2025-01-01T00:00:00.000Z',
};

/** Collects records from `tasks` with a group of its own until `n` have arrived. */
async function collectTasks(bus: Bus, group: string, n: number, timeoutMs = 30000): Promise<BusMessage[]> {
  const got: BusMessage[] = [];
  let done!: () => void;
  const enough = new Promise<void>((r) => { done = r; });
  const handle = await bus.subscribe({ group, topics: ['tasks'], fromBeginning: true }, async (batch) => {
    got.push(...batch);
    if (got.length >= n) done();
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([enough, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`only ${got.length} of ${n} tasks arrived`)), timeoutMs); })]);
  } finally {
    clearTimeout(timer);
    await handle.stop();
  }
  return got;
}

function buffer(): { write(s: string): boolean; text(): string } {
  let s = '';
  return { write: (x: string) => { s += x; return true; }, text: () => s };
}

for (const [kind, make] of Object.entries(HARNESSES)) {
  describe(`dead letters on the ${kind} bus`, () => {
    let h: Harness;
    let results: ResultsStore;
    let app: express.Express;

    before(async () => {
      h = await make();
      results = new ResultsStore({ bus: h.bus, logger: silentLogger });
      const dlq = new DlqStore({ bus: h.bus, logger: silentLogger });
      app = express();
      app.use(express.json());
      app.use(replicationRouter({ results, dlq, progress: () => [], bus: h.bus, cacheMs: 0 }));
      await h.bus.publish('dlq', [
        ...[1, 2, 3, 4].map((i) => ({ key: `task-${i}`, value: letter(i, i % 2 ? 'swr' : 'backup') })),
        { key: UNPARSEABLE.id, value: UNPARSEABLE },
      ]);
    });
    after(async () => {
      await results.stop();
      await h.cleanup();
    });

    it('GET /dlq lists the dead letters, newest first, and filters', async () => {
      const res = await request(app).get('/dlq').expect(200);
      assert.equal(res.body.total, 5);
      assert.deepEqual(res.body.items.map((l: DeadLetter) => l.id), ['task-4', 'task-3', 'task-2', 'task-1', 'tasks-2-7']);
      assert.deepEqual(res.body.items[0], letter(4, 'backup'));
      const swr = await request(app).get('/dlq').query({ target: 'swr', limit: 1 }).expect(200);
      assert.deepEqual([swr.body.total, swr.body.items.map((l: DeadLetter) => l.id)], [2, ['task-3']]);
      const bad = await request(app).get('/dlq').query({ limit: 'many' }).expect(400);
      assert.match(bad.body.message, /limit/);
    });

    it('POST /dlq/replay without ids or all is a 400 naming the fields', async () => {
      const res = await request(app).post('/dlq/replay').send({}).expect(400);
      assert.equal(res.body.error, 'invalid_replay');
      assert.deepEqual(res.body.issues.map((i: { path: string }) => i.path).sort(), ['all', 'ids']);
      const typo = await request(app).post('/dlq/replay').send({ id: ['task-1'] }).expect(400);
      assert.deepEqual(typo.body.issues.map((i: { path: string }) => i.path), ['id', 'ids', 'all']);
      assert.equal(typo.body.issues[0].message, 'unknown field');
    });

    it('POST /dlq/replay with ids puts the tasks on `tasks` fresh and removes the letters', async () => {
      const res = await request(app).post('/dlq/replay').send({ ids: ['task-1', 'task-2', 'task-99', '__proto__', 'constructor'] }).expect(200);
      assert.deepEqual(res.body.replayed.sort(), ['task-1', 'task-2']);
      // Ids are the caller's: even those that name Object.prototype members are reported missing.
      assert.deepEqual(res.body.missing, ['task-99', '__proto__', 'constructor']);
      assert.ok(res.body.reasons['task-99']);
      assert.equal(Object.getOwnPropertyDescriptor(res.body.reasons, '__proto__')?.value, res.body.reasons['task-99']);

      const tasks = await collectTasks(h.bus, `${h.prefix}reader-1`, 2);
      assert.deepEqual(tasks.map((m) => (m.value as ReplicationTask).id).sort(), ['task-1', 'task-2']);
      for (const m of tasks) {
        const t = ReplicationTaskSchema.parse(m.value);
        assert.equal(t.attempt, 0);
        assert.equal(t.origin, 'replay');
        assert.equal(t.notBefore, undefined);
        assert.equal(t.lastError, undefined);
        assert.equal(m.key, taskKey(t));
        assert.equal(t.replays, 1, 'the first replay round');
        const { replays: _r, ...rest } = t;
        assert.deepEqual({ ...rest, attempt: 8, origin: 'event', notBefore: '2025-01-01T00:10:00Z', lastError: { code: 'HSB_REGISTRY_UNAVAILABLE', message: 'HTTP 503' } }, task(Number(t.id.slice(5)), t.targetId));
      }
      const left = await request(app).get('/dlq').expect(200);
      assert.deepEqual(left.body.items.map((l: DeadLetter) => l.id), ['task-4', 'task-3', 'tasks-2-7']);
    });

    it('`dlq replay --all` replays the rest; the unparseable letter stays, with its reason', async () => {
      const out = buffer();
      const code = await dlqCommand({ config: h.config, args: ['replay', '--all'], logger: silentLogger, out });
      assert.equal(code, 1, 'non-zero: a letter could not be replayed');
      assert.match(out.text(), /replayed 2 dead letters/);
      assert.match(out.text(), /task-3/);
      assert.match(out.text(), /task-4/);
      assert.ok(out.text().includes(`tasks-2-7: ${UNPARSEABLE_REASON}`));

      const tasks = await collectTasks(h.bus, `${h.prefix}reader-2`, 4);
      assert.deepEqual(tasks.map((m) => (m.value as ReplicationTask).id).sort(), ['task-1', 'task-2', 'task-3', 'task-4']);
      assert.ok(tasks.every((m) => ReplicationTaskSchema.parse(m.value).origin === 'replay'));

      const list = buffer();
      assert.equal(await dlqCommand({ config: h.config, args: ['list'], logger: silentLogger, out: list }), 0);
      assert.match(list.text(), /tasks-2-7/);
      assert.match(list.text(), /^1 dead letter$/m);
      assert.doesNotMatch(list.text(), /task-3/);
      const json = buffer();
      assert.equal(await dlqCommand({ config: h.config, args: ['list', '--json'], logger: silentLogger, out: json }), 0);
      assert.deepEqual(JSON.parse(json.text()), { items: [UNPARSEABLE], total: 1 });

      const again = buffer();
      assert.equal(await dlqCommand({ config: h.config, args: ['replay', '--id', 'task-3', '--id', 'task-4'], logger: silentLogger, out: again }), 1);
      assert.match(again.text(), /nothing replayed/);
      const ins = await h.bus.inspect();
      const onTasks = ins.topics.find((t) => t.topic === 'tasks')!.partitions.reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
      assert.equal(onTasks, 4, 'no new tasks');
    });

    it('hsb_dlq_letters counts the letters left; hsb_dlq_records counts the topic, tombstones of replays included', async () => {
      const metrics = createMetrics();
      const stop = startQueueMetrics(h.bus, metrics, silentLogger, [], 60_000, async () => (await new DlqStore({ bus: h.bus, logger: silentLogger }).list({ limit: 0 })).total);
      try {
        const value = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values[0]?.value;
        const letters = await eventually(async () => (await value('hsb_dlq_letters')) ?? undefined, 10000, 'the first sample');
        assert.equal(letters, 1, 'only the unparseable letter is left');
        assert.ok((await value('hsb_dlq_records'))! > 1, 'the replays left tombstones on the topic');
        assert.equal(await value('hsb_bus_up'), 1);
      } finally {
        stop();
      }
    });

    it('usage errors exit 2 without touching the bus', async () => {
      for (const args of [['replay'], ['replay', '--all', '--id', 'x'], ['purge'], ['list', '--bogus']]) {
        const [out, err] = [buffer(), buffer()];
        assert.equal(await dlqCommand({ config: h.config, args, logger: silentLogger, out, err }), 2, args.join(' '));
        assert.match(err.text(), /usage: harbor-swr-bridge dlq/);
        assert.equal(out.text(), '', 'stdout is for output; usage errors go to stderr');
      }
    });

    if (kind === 'kafka') {
      it('the dlq topic is compacted', async () => {
        const kafka = new Kafka({ brokers: [sharedBrokers()], logLevel: logLevel.NOTHING });
        const admin = kafka.admin();
        await admin.connect();
        try {
          const d = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: `${h.prefix}dlq`, configNames: ['cleanup.policy'] }] });
          assert.equal(d.resources[0]!.configEntries.find((e) => e.configName === 'cleanup.policy')?.configValue, 'compact');
        } finally {
          await admin.disconnect();
        }
      });
    }
  });
}

describe('dead letters while the bus is down', () => {
  it('GET /dlq and POST /dlq/replay answer 503 with Retry-After; GET /replications still answers, without queue depths', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hsb-dlq-down-'));
    const bus = new EmbeddedBus({ dataDir, partitions: 3 }); // never connected
    const results = new ResultsStore({ bus, logger: silentLogger });
    const app = express();
    app.use(express.json());
    app.use(replicationRouter({ results, dlq: new DlqStore({ bus, logger: silentLogger }), progress: () => [], bus, cacheMs: 0 }));
    try {
      const list = await request(app).get('/dlq').expect(503);
      assert.equal(list.headers['retry-after'], '5');
      assert.equal(list.body.error, 'bus_unavailable');
      await request(app).post('/dlq/replay').send({ all: true }).expect(503);
      const rep = await request(app).get('/replications').expect(200);
      assert.deepEqual([rep.body.total, rep.body.queues], [0, { retry_pending: null, dlq: null, dlq_records: null }]);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
