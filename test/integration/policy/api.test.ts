// The policy REST API (supertest against the real app): validation, auth, PUT/GET/DELETE, and
// propagation of changes to a second PolicyStore on its own bus connection and to a second OS
// process, on the embedded bus and on the real Kafka broker (KAFKA_BROKERS, set by `npm test`).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import request from 'supertest';
import type { RequestListener } from 'node:http';
import { ConfigSchema, type Config } from '../../../src/config/schema.ts';
import { EmbeddedBus } from '../../../src/bus/embedded/sqlite-bus.ts';
import { KafkaBus } from '../../../src/bus/kafka/kafka-bus.ts';
import type { Bus } from '../../../src/bus/port.ts';
import { sharedBrokers, uniquePrefix } from '../../support/kafka.ts';
import { createApp } from '../../../src/http/app.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { PolicyTable } from '../../../src/policy/table.ts';
import { PolicyStore } from '../../../src/policy/store.ts';
import { policyRouter } from '../../../src/policy/routes.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const TOKEN = 'api-token-123';
const auth = { Authorization: `Bearer ${TOKEN}` };

function config(): Config {
  return ConfigSchema.parse({
    server: { apiTokens: [TOKEN] },
    sources: [{ id: 'harbor-prod', url: 'https://harbor.example.com', webhookSecrets: ['s'] }],
    targets: [{ id: 'swr-bj4', kind: 'swr', region: 'cn-north-4', credentials: { accessKey: 'AK', secretKey: 'SK' } }, { id: 'backup', kind: 'registry', url: 'https://registry.example.org' }],
    policies: [{ id: 'from-config', src_registry: 'harbor-prod', dest_registry: 'swr-bj4', filters: [{ type: 'name', value: 'library/**' }] }],
  });
}

/** A second OS process following the policies topic; reports its table on every change. */
function follower(env: Record<string, string>): { proc: ChildProcess; next: (pred: (s: FollowerState) => boolean, ms: number) => Promise<FollowerState & { at: number }>; stop: () => Promise<void> } {
  const code = `
    const ROOT = process.env.ROOT;
    const { PolicyStore } = await import(ROOT + '/src/policy/store.ts');
    const { PolicyTable } = await import(ROOT + '/src/policy/table.ts');
    const { silentLogger } = await import(ROOT + '/src/observability/logger.ts');
    let bus;
    if (process.env.KAFKA) {
      const { KafkaBus } = await import(ROOT + '/src/bus/kafka/kafka-bus.ts');
      bus = new KafkaBus({ brokers: process.env.KAFKA.split(','), topicPrefix: process.env.PREFIX, partitions: 3, clientId: 'follower' });
    } else {
      const { EmbeddedBus } = await import(ROOT + '/src/bus/embedded/sqlite-bus.ts');
      bus = new EmbeddedBus({ dataDir: process.env.DATA_DIR });
    }
    await bus.connect();
    const table = new PolicyTable();
    const store = new PolicyStore({ bus, table, logger: silentLogger });
    await store.start();
    const emit = () => process.stdout.write(JSON.stringify({ pid: process.pid, version: table.version, policies: table.list().map((p) => ({ id: p.id, description: p.description ?? null })) }) + '\\n');
    emit();
    let v = table.version;
    setInterval(() => { if (table.version !== v) { v = table.version; emit(); } }, 5);
    process.stdin.on('end', async () => { await store.stop(); await bus.close(); process.exit(0); });
    process.stdin.resume();
  `;
  const proc = spawn(process.execPath, ['--no-warnings', '--input-type=module', '-e', code], { env: { ...process.env, ROOT, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  const states: (FollowerState & { at: number })[] = [];
  const waiters: (() => void)[] = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    states.push({ ...(JSON.parse(line) as FollowerState), at: Date.now() });
    for (const w of waiters.splice(0)) w();
  });
  const next = async (pred: (s: FollowerState) => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = states.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`follower did not reach the expected state in ${ms} ms; last: ${JSON.stringify(states.at(-1))}`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        waiters.push(() => { clearTimeout(timer); r(); });
      });
    }
  };
  const stop = async () => {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.stdin!.end();
    await exited;
  };
  return { proc, next, stop };
}

interface FollowerState { pid: number; version: number; policies: { id: string; description: string | null }[] }

const ids = (s: FollowerState) => s.policies.map((p) => p.id).sort();

interface Rig {
  app: RequestListener;
  tableA: PolicyTable;
  tableB: PolicyTable;
  /** Environment for a follower process on the same bus. */
  followerEnv: Record<string, string>;
  openBus(): Promise<Bus>;
  close(): Promise<void>;
}

/** Process A serves the API; store B follows on its own bus connection. */
async function rig(kind: 'embedded' | 'kafka'): Promise<Rig> {
  const cfg = config();
  const buses: Bus[] = [];
  let dataDir = '';
  let openBus: () => Promise<Bus>;
  let followerEnv: Record<string, string>;
  if (kind === 'embedded') {
    dataDir = await mkdtemp(join(tmpdir(), 'hsb-policy-api-'));
    openBus = async () => { const b = new EmbeddedBus({ dataDir }); await b.connect(); buses.push(b); return b; };
    followerEnv = { DATA_DIR: dataDir };
  } else {
    const brokers = sharedBrokers();
    const topicPrefix = uniquePrefix('policy-api');
    openBus = async () => { const b = new KafkaBus({ brokers: brokers.split(','), topicPrefix, partitions: 3, clientId: 'policy-api-test' }); await b.connect(); buses.push(b); return b; };
    followerEnv = { KAFKA: brokers, PREFIX: topicPrefix };
  }
  const tableA = new PolicyTable();
  const tableB = new PolicyTable();
  const storeA = new PolicyStore({ bus: await openBus(), table: tableA, logger: silentLogger });
  await storeA.seed(cfg.policies);
  await storeA.start();
  const storeB = new PolicyStore({ bus: await openBus(), table: tableB, logger: silentLogger });
  await storeB.start();
  const app = createApp({ config: cfg, bus: buses[0]!, metrics: createMetrics(), logger: silentLogger, api: [policyRouter({ store: storeA, table: tableA, config: cfg })] });
  return {
    app, tableA, tableB, followerEnv, openBus,
    close: async () => {
      await storeA.stop();
      await storeB.stop();
      await Promise.all(buses.map((b) => b.close()));
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

describe('policy API on the embedded bus', () => {
  let r: Rig;
  let app: RequestListener;
  let tableA: PolicyTable;
  let tableB: PolicyTable;
  before(async () => {
    r = await rig('embedded');
    ({ app, tableA, tableB } = r);
  });
  after(() => r.close());

  it('needs the bearer token', async () => {
    const none = await request(app).get('/api/v1/policies');
    assert.equal(none.status, 401);
    assert.equal(none.body.error, 'unauthorized');
    assert.equal((await request(app).put('/api/v1/policies/x').set({ Authorization: 'Bearer wrong' }).send({})).status, 401);
    assert.equal((await request(app).delete('/api/v1/policies/from-config')).status, 401);
  });

  it('is off (403 api_disabled, every token refused) when server.apiTokens is empty', async () => {
    const cfg = ConfigSchema.parse({ ...config(), server: { apiTokens: [] } });
    const off = createApp({ config: cfg, bus: await r.openBus(), metrics: createMetrics(), logger: silentLogger, api: [policyRouter({ store: new PolicyStore({ bus: await r.openBus(), table: tableA, logger: silentLogger }), table: tableA, config: cfg })] });
    for (const headers of [{}, auth, { Authorization: 'Bearer ' }]) {
      const res = await request(off).get('/api/v1/policies').set(headers);
      assert.equal(res.status, 403, JSON.stringify(headers));
      assert.equal(res.body.error, 'api_disabled');
    }
    // Webhooks and health are not behind the API's tokens.
    assert.equal((await request(off).get('/livez')).status, 200);
  });

  it('lists the config-file policies, seeded through the topic', async () => {
    const res = await request(app).get('/api/v1/policies').set(auth);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.map((p: { id: string }) => p.id), ['from-config']);
    assert.deepEqual(tableB.list().map((p) => p.id), ['from-config']);
    const one = await request(app).get('/api/v1/policies/from-config').set(auth);
    assert.equal(one.status, 200);
    assert.equal(one.body.dest_namespace_replace_count, -1);
    const missing = await request(app).get('/api/v1/policies/nope').set(auth);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error, 'not_found');
    for (const method of ['put', 'delete', 'post'] as const) {
      const r = await request(app)[method]('/api/v1/policies').set(auth).send({});
      assert.equal(r.status, 405, method);
      assert.equal(r.headers['allow'], 'GET, HEAD');
      assert.match(r.body.message, /needs a policy id/);
    }
  });

  it('refuses to change or remove a policy the config file defines (409): the file wins at every start', async () => {
    const put = await request(app).put('/api/v1/policies/from-config').set(auth).send({ src_registry: 'harbor-prod', dest_registry: 'backup' });
    assert.equal(put.status, 409);
    assert.equal(put.body.error, 'policy_in_config');
    assert.match(put.body.message, /defined in the config file/);
    assert.equal((await request(app).delete('/api/v1/policies/from-config').set(auth)).status, 409);
    assert.equal(tableA.get('from-config')?.dest_registry, 'swr-bj4', 'unchanged');
  });

  it('answers 400 naming every wrong field', async () => {
    const res = await request(app).put('/api/v1/policies/bad').set(auth).send({
      src_registry: 'harbor-nope',
      dest_registry: 'swr-bj4',
      dest_namespace_replace_count: -2,
      filters: [{ type: 'tag', value: 'v*', decoration: 'contains' }, { type: 'resource', value: 'chart' }, { type: 'tag', value: 'rc*', decorations: 'excludes' }],
      trigger: { type: 'scheduled', trigger_settings: { cron: '*/5 * * * * *' } },
      replicate_deletion: true,
      constructor: 1,
      platforms: ['linux/amd64', 'amd64'],
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_policy');
    const paths = res.body.issues.map((i: { path: string }) => i.path).sort();
    assert.deepEqual(paths, ['constructor', 'dest_namespace_replace_count', 'filters.0.decoration', 'filters.1.value', 'filters.2', 'platforms.1', 'replicate_deletion', 'src_registry', 'trigger.trigger_settings.cron']);
    // Object.prototype's members are unknown fields like any other, not hints.
    assert.equal(res.body.issues.find((i: { path: string }) => i.path === 'constructor').message, 'unknown field');
    // A misspelt decoration would otherwise be dropped, and the filter would mean its opposite.
    assert.match(res.body.message, /filters\.2: unknown field "decorations"/);
    assert.match(res.body.message, /src_registry: no source "harbor-nope" is configured \(sources: harbor-prod\)/);
    assert.match(res.body.message, /replicate_deletion: unknown field: use "deletion"/);
    // Refused now, as `copy --platform` refuses it, rather than dead-lettering every task of the policy.
    assert.match(res.body.message, /platforms\.1: expects os\/arch\[\/variant\], not "amd64"/);
    assert.equal(tableA.get('bad'), undefined);
  });

  it('answers 400 for an unknown target, a mismatched id, a bad id and a non-object body', async () => {
    const target = await request(app).put('/api/v1/policies/p').set(auth).send({ src_registry: 'harbor-prod', dest_registry: 'swr-elsewhere' });
    assert.equal(target.status, 400);
    assert.deepEqual(target.body.issues.map((i: { path: string }) => i.path), ['dest_registry']);
    // An SWR target refuses the organisation now, not at the first artifact; a plain registry has none.
    const org = await request(app).put('/api/v1/policies/p').set(auth).send({ src_registry: 'harbor-prod', dest_registry: 'swr-bj4', dest_namespace: '1bad--org/x' });
    assert.equal(org.status, 400);
    assert.deepEqual(org.body.issues, [{ path: 'dest_namespace', message: 'SWR organisation "1bad--org": organisation name must start with a lowercase letter' }]);
    const plain = await request(app).put('/api/v1/policies/p1').set(auth).send({ src_registry: 'harbor-prod', dest_registry: 'backup', dest_namespace: '1bad--org/x' });
    assert.equal(plain.status, 201, JSON.stringify(plain.body));
    assert.equal((await request(app).delete('/api/v1/policies/p1').set(auth)).status, 204);
    const id = await request(app).put('/api/v1/policies/p').set(auth).send({ id: 'q', src_registry: 'harbor-prod', dest_registry: 'backup' });
    assert.deepEqual(id.body.issues.map((i: { path: string }) => i.path), ['id']);
    // Harbor's numeric id naming the path's policy is the same id, not a mismatch.
    const numeric = await request(app).put('/api/v1/policies/3').set(auth).send({ id: 3, src_registry: 'harbor-prod', dest_registry: 'backup' });
    assert.equal(numeric.status, 201, JSON.stringify(numeric.body));
    assert.equal(numeric.body.id, '3');
    assert.equal((await request(app).delete('/api/v1/policies/3').set(auth)).status, 204);
    // What Harbor's own GET adds that says nothing new passes: its timestamps, replicate_deletion repeating deletion.
    const copied = await request(app).put('/api/v1/policies/3').set(auth).send({
      id: 3, src_registry: 'harbor-prod', dest_registry: 'backup', deletion: true, replicate_deletion: true,
      creation_time: '2024-03-01T10:00:00.000Z', update_time: '2024-03-02T10:00:00.000Z',
    });
    assert.equal(copied.status, 201, JSON.stringify(copied.body));
    assert.equal(copied.body.deletion, true);
    assert.equal(copied.body.creation_time, undefined, 'not stored');
    assert.equal((await request(app).delete('/api/v1/policies/3').set(auth)).status, 204);
    const contradicts = await request(app).put('/api/v1/policies/3').set(auth).send({ src_registry: 'harbor-prod', dest_registry: 'backup', deletion: false, replicate_deletion: true });
    assert.deepEqual(contradicts.body.issues.map((i: { path: string }) => i.path), ['replicate_deletion']);
    const other = await request(app).put('/api/v1/policies/3').set(auth).send({ id: 4, src_registry: 'harbor-prod', dest_registry: 'backup' });
    assert.match(other.body.message, /id: the body's id "4" differs from the id in the path "3"/);
    const badId = await request(app).put('/api/v1/policies/has%20space').set(auth).send({ src_registry: 'harbor-prod', dest_registry: 'backup' });
    assert.deepEqual(badId.body.issues.map((i: { path: string }) => i.path), ['id']);
    const arr = await request(app).put('/api/v1/policies/p').set(auth).send([1, 2]);
    assert.equal(arr.status, 400);
    const text = await request(app).put('/api/v1/policies/p').set(auth).set('Content-Type', 'text/plain').send('hello');
    assert.equal(text.status, 415);
    const broken = await request(app).put('/api/v1/policies/p').set(auth).set('Content-Type', 'application/json').send('{"src_registry":');
    assert.equal(broken.status, 400);
  });

  propagationTests(() => r);
});

describe('policy API on the Kafka broker', () => {
  let r: Rig;
  before(async () => { r = await rig('kafka'); });
  after(() => r.close());

  it('lists the config-file policies, seeded through the topic', async () => {
    const res = await request(r.app).get('/api/v1/policies').set(auth);
    assert.deepEqual(res.body.map((p: { id: string }) => p.id), ['from-config']);
    assert.deepEqual(r.tableB.list().map((p) => p.id), ['from-config']);
  });

  propagationTests(() => r);
});

/** Changes through the API reach store B and a second OS process within a second. */
function propagationTests(r: () => Rig): void {
  it('PUT creates (201) and replaces (200), GET reads, DELETE removes (204, then 404); a second store follows', async () => {
    const body = {
      name: 'api policy', src_registry: 'harbor-prod', dest_registry: 'backup', dest_namespace: 'mirror',
      filters: [{ type: 'name', value: '{library,harbor}/**' }, { type: 'tag', value: 'v2.[4-6].*', decoration: 'matches' }],
      trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 */6 * * *' } }, deletion: true, description: 'v1',
    };
    const t0 = Date.now();
    const created = await request(r().app).put('/api/v1/policies/api-1').set(auth).send(body);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.id, 'api-1');
    assert.equal(created.body.override, true, 'defaults filled');
    assert.equal(created.body.enabled, true);
    // Read-your-writes on the same process.
    const got = await request(r().app).get('/api/v1/policies/api-1').set(auth);
    assert.deepEqual(got.body, created.body);
    await until(() => r().tableB.get('api-1') !== undefined, 1000);
    assert.ok(Date.now() - t0 < 1000);
    assert.deepEqual(r().tableB.get('api-1'), created.body);

    const replaced = await request(r().app).put('/api/v1/policies/api-1').set(auth).send({ ...body, id: 'api-1', description: 'v2' });
    assert.equal(replaced.status, 200);
    assert.equal(replaced.body.description, 'v2');
    await until(() => r().tableB.get('api-1')?.description === 'v2', 1000);

    const del = await request(r().app).delete('/api/v1/policies/api-1').set(auth);
    assert.equal(del.status, 204);
    assert.equal((await request(r().app).get('/api/v1/policies/api-1').set(auth)).status, 404);
    assert.equal((await request(r().app).delete('/api/v1/policies/api-1').set(auth)).status, 404);
    await until(() => r().tableB.get('api-1') === undefined, 1000);
  });

  it('a second OS process sees changes within a second', async () => {
    const f = follower(r().followerEnv);
    try {
      const ready = await f.next((s) => ids(s).includes('from-config'), 15000);
      assert.deepEqual(ids(ready), ['from-config']);

      const t0 = Date.now();
      const put = await request(r().app).put('/api/v1/policies/cross-process').set(auth).send({ src_registry: 'harbor-prod', dest_registry: 'swr-bj4', description: 'hello' });
      assert.equal(put.status, 201);
      const seen = await f.next((s) => ids(s).includes('cross-process'), 1000);
      assert.ok(seen.at - t0 < 1000, `seen after ${seen.at - t0} ms`);

      const t1 = Date.now();
      assert.equal((await request(r().app).delete('/api/v1/policies/cross-process').set(auth)).status, 204);
      const gone = await f.next((s) => s.version > seen.version && !ids(s).includes('cross-process'), 1000);
      assert.ok(gone.at - t1 < 1000, `deletion seen after ${gone.at - t1} ms`);
    } finally {
      await f.stop();
    }
  });

  it('answers 503 policies_loading until its table is built, then the policies the topic holds', async () => {
    const table = new PolicyTable();
    const store = new PolicyStore({ bus: await r().openBus(), table, logger: silentLogger });
    const cfg = config();
    const app = createApp({ config: cfg, bus: (await r().openBus()), metrics: createMetrics(), logger: silentLogger, api: [policyRouter({ store, table, config: cfg })] });
    try {
      for (const call of [request(app).get('/api/v1/policies'), request(app).get('/api/v1/policies/from-config'), request(app).delete('/api/v1/policies/from-config'),
        request(app).put('/api/v1/policies/from-config').send({ src_registry: 'harbor-prod', dest_registry: 'backup' })]) {
        const res = await call.set(auth);
        assert.equal(res.status, 503);
        assert.equal(res.body.error, 'policies_loading');
        assert.equal(res.headers['retry-after'], '5');
      }
      await store.start();
      const list = await request(app).get('/api/v1/policies').set(auth);
      assert.equal(list.status, 200);
      assert.ok(list.body.some((p: { id: string }) => p.id === 'from-config'), 'the config policy is listed');
    } finally {
      await store.stop();
    }
  });

  it('a store started later builds the same table from the topic', async () => {
    for (const d of ['one', 'two', 'three']) {
      assert.equal((await request(r().app).put('/api/v1/policies/late').set(auth).send({ src_registry: 'harbor-prod', dest_registry: 'backup', description: d })).status, d === 'one' ? 201 : 200);
    }
    const table = new PolicyTable();
    const store = new PolicyStore({ bus: await r().openBus(), table, logger: silentLogger });
    await store.start();
    try {
      assert.deepEqual(table.list().map((p) => [p.id, p.description ?? null]).sort(), [['from-config', null], ['late', 'three']]);
    } finally {
      await store.stop();
    }
  });
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

