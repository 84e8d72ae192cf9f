// The operations view on the real broker and on the embedded bus: GET /api/v1/replications (behind
// the app's bearer auth) filters and pages what was published to `results`, shows in-flight
// progress and queue depths; `status` reads the same from the bus, and the in-flight tasks from a
// running bridge with --url.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import request from 'supertest';
import { createApp } from '../../../src/http/app.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { statusCommand, type StatusReport } from '../../../src/cli/status.ts';
import type { DeadLetter } from '../../../src/replication/dead-letter.ts';
import { DlqStore } from '../../../src/replication/dlq-store.ts';
import { Progress } from '../../../src/replication/progress.ts';
import { ResultsStore } from '../../../src/replication/results-store.ts';
import { replicationRouter } from '../../../src/replication/routes.ts';
import { ReplicationTaskSchema, type ReplicationTask, type TaskResult } from '../../../src/replication/task.ts';
import { busHarnesses, type BusHarness } from '../../support/bus-harness.ts';
import { retryGroupOf } from '../../../src/replication/replicator.ts';

const TOKEN = 'ops-token-1';

type Harness = BusHarness;

const HARNESSES = busHarnesses('status', { apiTokens: [TOKEN] });

const T0 = Date.parse('2025-03-01T00:00:00Z');
const STATUSES: TaskResult['status'][] = ['done', 'done', 'skipped', 'retry', 'done', 'deleted', 'dlq', 'done', 'done', 'retry'];

/** 40 results: policy p1 for even i, p2 for odd; target swr unless i % 4 === 3; repository lib/app(i % 5). */
function result(i: number): TaskResult {
  const status = STATUSES[i % STATUSES.length]!;
  return {
    schema: 1, taskId: `task-${i}`, eventId: `ev-${i}`, policyId: i % 2 ? 'p2' : 'p1', sourceId: 'harbor', targetId: i % 4 === 3 ? 'backup' : 'swr',
    repository: `lib/app${i % 5}`, destRepository: `org/app${i % 5}`, reference: `v${i}`, status, bytes: 100 * i, durationMs: 10, attempt: status === 'retry' ? 1 : 0,
    ...(status === 'retry' || status === 'dlq' ? { error: { code: 'HSB_REGISTRY_UNAVAILABLE', message: 'HTTP 503' } } : {}),
    occurredAt: new Date(T0).toISOString(), finishedAt: new Date(T0 + i * 1000).toISOString(),
  };
}
const RESULTS = Array.from({ length: 40 }, (_, i) => result(i));

function task(i: number): ReplicationTask {
  return ReplicationTaskSchema.parse({
    schema: 1, id: `retry-${i}`, eventId: `ev-r${i}`, action: 'push', sourceId: 'harbor', repository: `lib/r${i}`, tag: 'v1', targetId: 'swr',
    destRepository: `org/r${i}`, policyId: 'p1', attempt: 1, occurredAt: new Date(T0).toISOString(), createdAt: new Date(T0).toISOString(),
  });
}

function letter(i: number): DeadLetter {
  const t = task(100 + i);
  return { schema: 1, id: t.id, task: t, error: { code: 'HSB_REGISTRY_DENIED', message: '403', retryable: false }, attempts: 1, source: { topic: 'tasks', partition: 0, offset: String(i) }, failedAt: new Date(T0 + i).toISOString() };
}

async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function buffer(): { write(s: string): boolean; text(): string } {
  let s = '';
  return { write: (x: string) => { s += x; return true; }, text: () => s };
}

for (const [kind, make] of Object.entries(HARNESSES)) {
  describe(`operations status on the ${kind} bus`, () => {
    let h: Harness;
    let results: ResultsStore;
    let server: Server;
    let proxied: Server;
    let url: string;
    let replicatorGroup: string;
    const progress = new Progress(createMetrics());

    before(async () => {
      h = await make();
      // The replicator group has consumed 3 retries; 2 more are waiting.
      replicatorGroup = `${h.prefix}replicator`;
      await h.bus.publish('tasks.retry', [0, 1, 2].map((i) => ({ key: `swr/org/r${i}`, value: task(i) })));
      let seen = 0;
      const consumer = await h.bus.subscribe({ group: retryGroupOf(replicatorGroup), topics: ['tasks.retry'], fromBeginning: true }, async (b) => { seen += b.length; });
      await eventually('the replicator\'s retry group to commit its retries', async () => {
        const g = (await h.bus.inspect()).groups.find((x) => x.group === retryGroupOf(replicatorGroup));
        return seen === 3 && (g?.offsets ?? []).filter((o) => o.topic === 'tasks.retry').reduce((n, o) => n + Number(o.committed), 0) === 3;
      });
      await consumer.stop();
      await h.bus.publish('tasks.retry', [3, 4].map((i) => ({ key: `swr/org/r${i}`, value: task(i) })));
      // Two dead letters, one of them replayed away since (tombstone).
      await h.bus.publish('dlq', [letter(1), letter(2)].map((l) => ({ key: l.id, value: l })));
      await h.bus.publish('dlq', [{ key: letter(1).id, value: null }]);

      await h.bus.publish('results', RESULTS.map((r) => ({ key: `${r.targetId}/${r.destRepository}`, value: r })));
      await h.bus.publish('results', [{ key: 'junk', value: { schema: 1, status: 'done' } }]);
      results = new ResultsStore({ bus: h.bus, logger: silentLogger });
      await results.start();

      const big = progress.begin(ReplicationTaskSchema.parse({ ...task(7), id: 'copying', destRepository: 'org/big', repository: 'lib/app1' }));
      big.update(256 * 1024 * 1024, 1024 * 1024 * 1024);
      progress.begin(ReplicationTaskSchema.parse({ ...task(8), id: 'starting', policyId: 'p2' }));

      const api = replicationRouter({ results, dlq: new DlqStore({ bus: h.bus, logger: silentLogger }), progress: () => progress.list(), bus: h.bus, replicatorGroup, cacheMs: 0 });
      const app = createApp({ config: h.config, bus: h.bus, metrics: createMetrics(), logger: silentLogger, api: [api] });
      server = createServer(app);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      // The same app behind a reverse proxy that serves it under /bridge/ only.
      proxied = createServer((req, res) => {
        if (!req.url?.startsWith('/bridge/')) { res.writeHead(404).end(); return; }
        req.url = req.url.slice('/bridge'.length);
        app(req, res);
      });
      await new Promise<void>((r) => proxied.listen(0, '127.0.0.1', () => r()));
      await eventually('the results store to read every result', () => results.size === RESULTS.length);
    });
    after(async () => {
      await new Promise<void>((r) => { proxied?.close(() => r()); proxied?.closeAllConnections(); });
      await new Promise<void>((r) => { server?.close(() => r()); server?.closeAllConnections(); });
      await results?.stop();
      await h.cleanup();
    });

    const get = (query: Record<string, string | number> = {}) =>
      request(url).get('/api/v1/replications').query(query).set('authorization', `Bearer ${TOKEN}`);

    it('needs the bearer token', async () => {
      await request(url).get('/api/v1/replications').expect(401);
      await request(url).get('/api/v1/dlq').set('authorization', 'Bearer nope').expect(401);
    });

    it('GET /replications: newest first, counts by status, in-flight progress and queue depths', async () => {
      const res = await get().expect(200);
      assert.equal(res.body.total, 40);
      assert.equal(res.body.page, 1);
      assert.equal(res.body.page_size, 50);
      assert.deepEqual(res.body.items.map((r: TaskResult) => r.taskId), RESULTS.map((r) => r.taskId).reverse());
      assert.deepEqual(res.body.items[0], RESULTS[39]);
      assert.deepEqual(res.body.counts, { done: 20, skipped: 4, retry: 8, deleted: 4, dlq: 4 });
      const copying = res.body.inflight.find((t: { taskId: string }) => t.taskId === 'copying');
      assert.deepEqual([copying.bytesDone, copying.bytesTotal, copying.destRepository], [256 * 1024 * 1024, 1024 * 1024 * 1024, 'org/big']);
      assert.equal(res.body.inflight.length, 2);
      assert.deepEqual(res.body.queues, { retry_pending: 2, dlq: 1, dlq_records: 3 });
    });

    it('GET /replications filters by repository, policy, status and target, and pages', async () => {
      const expected = RESULTS.filter((r) => r.policyId === 'p1' && r.status === 'done').reverse();
      assert.ok(expected.length > 6);
      const p2 = await get({ policy: 'p1', status: 'done', page: 2, page_size: 3 }).expect(200);
      assert.equal(p2.body.total, expected.length);
      assert.deepEqual([p2.body.page, p2.body.page_size], [2, 3]);
      assert.deepEqual(p2.body.items.map((r: TaskResult) => r.taskId), expected.slice(3, 6).map((r) => r.taskId));

      const repo = await get({ repository: 'lib/app1', target: 'backup' }).expect(200);
      const want = RESULTS.filter((r) => r.repository === 'lib/app1' && r.targetId === 'backup').reverse();
      assert.deepEqual(repo.body.items.map((r: TaskResult) => r.taskId), want.map((r) => r.taskId));
      assert.deepEqual(repo.body.inflight, [], 'in-flight tasks are filtered too (copying is on swr)');
      const byPolicy = await get({ policy: 'p2' }).expect(200);
      assert.deepEqual(byPolicy.body.inflight.map((t: { taskId: string }) => t.taskId), ['starting']);

      const bad = await get({ status: 'exploded', page: 0 }).expect(400);
      assert.deepEqual(bad.body.issues.map((i: { path: string }) => i.path).sort(), ['page', 'status']);
    });

    it('`status --json` reads counts, queues and group lag from the bus and in-flight tasks from --url', async () => {
      const out = buffer();
      const code = await statusCommand({ config: h.config, args: ['--json', '--url', url], logger: silentLogger, out, replicatorGroup, env: {} });
      assert.equal(code, 0, out.text());
      const r = JSON.parse(out.text()) as StatusReport;
      assert.equal(r.bus, kind);
      assert.equal(r.results.read, 40);
      assert.equal(r.results.complete, true);
      assert.deepEqual(r.results.counts, { done: 20, skipped: 4, retry: 8, deleted: 4, dlq: 4 });
      assert.deepEqual(r.results.recentFailures.map((f) => f.taskId), ['task-39', 'task-36', 'task-33', 'task-29', 'task-26']);
      assert.deepEqual(r.queues, { retryPending: 2, dlq: 1, dlqRecords: 3 });
      const retryGroup = retryGroupOf(replicatorGroup);
      assert.deepEqual(r.groups.filter((g) => g.group === retryGroup), [{ group: retryGroup, topic: 'tasks.retry', partitions: r.groups.find((g) => g.group === retryGroup)!.partitions, lag: 2 }]);
      assert.ok(!r.groups.some((g) => g.group.startsWith('status-')), 'read-only views are left out');
      assert.deepEqual(r.bridge?.inflight?.map((t) => t.taskId).sort(), ['copying', 'starting']);
    });

    it('`status` prints tables; a wrong token is reported and exits 1', async () => {
      const out = buffer();
      assert.equal(await statusCommand({ config: h.config, args: ['--url', url], logger: silentLogger, out, replicatorGroup, env: {} }), 0);
      const text = out.text();
      assert.match(text, /done 20, skipped 4, deleted 4, retry 8, dlq 4/);
      assert.match(text, /2 pending retries, 1 dead letter\n/);
      assert.match(text, new RegExp(`${retryGroupOf(replicatorGroup).replace(/\./g, "\\.")}\\s+tasks\\.retry\\s+\\d+\\s+2`));
      assert.match(text, /copying\s+swr\s+org\/big\s+v1\s+1\s+256\.0 MiB \/ 1\.0 GiB \(25%\)/);

      const denied = buffer();
      assert.equal(await statusCommand({ config: h.config, args: ['--url', url], logger: silentLogger, out: denied, replicatorGroup, env: { BRIDGE_API_TOKEN: 'wrong' } }), 1);
      assert.match(denied.text(), /could not ask the bridge: HTTP 401/);
      const elsewhere = buffer();
      assert.equal(await statusCommand({ config: h.config, args: ['--url', `${url}/not-the-api`], logger: silentLogger, out: elsewhere, replicatorGroup, env: {} }), 1);
      assert.match(elsewhere.text(), /could not ask the bridge: HTTP 404 \(--url takes the address of a `run` or `serve` process, where the API is\)/);
    });

    it('`status --url` keeps a path prefix (a bridge behind a proxy), with or without the trailing slash', async () => {
      const base = `http://127.0.0.1:${(proxied.address() as { port: number }).port}/bridge`;
      for (const u of [base, `${base}/`]) {
        const out = buffer();
        const code = await statusCommand({ config: h.config, args: ['--json', '--url', u], logger: silentLogger, out, replicatorGroup, env: {} });
        assert.equal(code, 0, `${u}: ${out.text()}`);
        assert.deepEqual((JSON.parse(out.text()) as StatusReport).bridge?.inflight?.map((t) => t.taskId).sort(), ['copying', 'starting'], u);
      }
    });
  });
}
