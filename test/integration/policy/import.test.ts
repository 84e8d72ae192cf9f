// `policies import` against the Harbor REST API test double (2.x and 1.10 shapes, real paging
// headers, basic auth with robot names), publishing to a real embedded bus.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { parse as parseYaml, stringify } from 'yaml';
import { parseConfig } from '../../../src/config/load.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema, type Config } from '../../../src/config/schema.ts';
import { EmbeddedBus } from '../../../src/bus/embedded/sqlite-bus.ts';
import { HarborApi } from '../../../src/policy/harbor-api.ts';
import { importFromHarbor } from '../../../src/policy/importer.ts';
import { policiesImport } from '../../../src/cli/policies.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { startHarborDouble, type HarborDouble, type HarborDoublePolicy, type HarborDoubleRegistry } from '../../support/harbor-api-double.ts';

const execFileAsync = promisify(execFile);
const ROBOT = { username: 'robot$bridge', password: 'S3cret$with:colon', canReadReplication: true };

const registries: HarborDoubleRegistry[] = [
  { id: 1, name: 'swr-beijing', url: 'https://swr.cn-north-4.myhuaweicloud.com', type: 'huawei-SWR', accessKey: 'cn-north-4@AK', accessSecret: 'x' },
  { id: 2, name: 'backup', url: 'https://registry.example.org', type: 'docker-registry' },
  { id: 3, name: 'dockerhub', url: 'https://hub.docker.com', type: 'docker-hub' },
];

const policies: HarborDoublePolicy[] = [
  {
    id: 1, name: 'prod to swr', srcRegistryId: 0, destRegistryId: 1, destNamespace: 'myorg', destNamespaceReplaceCount: 1,
    filters: [{ type: 'name', value: 'library/**' }, { type: 'tag', value: 'v*', decoration: 'matches' }, { type: 'resource', value: 'image' }],
    trigger: { type: 'event_based' }, deletion: true, override: true, enabled: true, speed: 1024, copyByChunk: true,
  },
  { id: 2, name: 'nightly backup', srcRegistryId: 0, destRegistryId: 2, trigger: { type: 'scheduled', cron: '0 0 3 * * *' }, override: true, enabled: false },
  { id: 3, name: 'by hand', srcRegistryId: 0, destRegistryId: 1, trigger: { type: 'manual' }, enabled: true },
  { id: 4, name: 'pull from hub', srcRegistryId: 3, destRegistryId: 0, trigger: { type: 'manual' }, enabled: true },
  { id: 5, name: 'to hub', srcRegistryId: 0, destRegistryId: 3, trigger: { type: 'event_based' }, enabled: true },
  { id: 6, name: 'every second', srcRegistryId: 0, destRegistryId: 2, trigger: { type: 'scheduled', cron: '* * * * * *' }, enabled: true },
  { id: 7, name: 'labels', srcRegistryId: 0, destRegistryId: 2, filters: [{ type: 'label', value: ['release', 'signed'], decoration: 'excludes' }], trigger: { type: 'event_based' }, enabled: true },
];

function config(url: string, creds = { username: ROBOT.username, password: ROBOT.password }, dataDir = '/nonexistent'): Config {
  return ConfigSchema.parse({
    bus: { kind: 'embedded', dataDir },
    sources: [{ id: 'harbor-prod', url, credentials: creds, webhookSecrets: ['s'] }],
    targets: [
      { id: 'swr-bj4', kind: 'swr', region: 'cn-north-4', credentials: { accessKey: 'AK', secretKey: 'SK' } },
      { id: 'backup', kind: 'registry', url: 'https://registry.example.org' },
    ],
  });
}

function capture() {
  let text = '';
  return { write: (s: string) => { text += s; return true; }, get text() { return text; } };
}

describe('policies import from Harbor 2.x', () => {
  let harbor: HarborDouble;
  before(async () => {
    harbor = await startHarborDouble({
      version: 'v2', registries, policies,
      users: [ROBOT, { username: 'robot$readonly', password: 'pw', canReadReplication: false }],
    });
  });
  after(() => harbor.close());

  it('keeps push-mode event-based and scheduled policies to configured targets, and says why it skipped the rest', async () => {
    const r = await importFromHarbor({ config: config(harbor.url), sourceId: 'harbor-prod', logger: silentLogger });
    assert.equal(r.api, 'v2');
    assert.match(r.harborVersion ?? '', /^v2\./);
    assert.deepEqual(r.imported.map((p) => p.id), ['harbor-harbor-prod-1', 'harbor-harbor-prod-2', 'harbor-harbor-prod-7']);
    const [p1, p2, p7] = r.imported;
    assert.deepEqual({ ...p1 }, {
      id: 'harbor-harbor-prod-1', name: 'prod to swr', enabled: true, src_registry: 'harbor-prod', dest_registry: 'swr-bj4',
      dest_namespace: 'myorg', dest_namespace_replace_count: 1,
      filters: [{ type: 'name', value: 'library/**' }, { type: 'tag', value: 'v*', decoration: 'matches' }, { type: 'resource', value: 'image' }],
      trigger: { type: 'event_based' }, deletion: true, override: true, speed: 1024, copy_by_chunk: true, referrers: false,
    });
    // Harbor 2.x leaves `enabled` out of a disabled policy: it stays disabled here.
    assert.equal(p2!.enabled, false);
    assert.deepEqual(p2!.trigger, { type: 'scheduled', trigger_settings: { cron: '0 0 3 * * *' } });
    assert.equal(p2!.dest_registry, 'backup');
    assert.deepEqual(p7!.filters, [{ type: 'label', value: ['release', 'signed'], decoration: 'excludes' }]);

    const why = Object.fromEntries(r.skipped.map((s) => [s.harborId, s.reason]));
    assert.deepEqual(Object.keys(why).map(Number), [3, 4, 5, 6]);
    assert.match(why[3]!, /^manual trigger/);
    assert.match(why[4]!, /^pull-mode policy/);
    assert.match(why[5]!, /matches no configured target/);
    assert.match(why[6]!, /cron.*seconds field must be 0/);
    assert.deepEqual(r.skipped.find((s) => s.harborId === 3)!.name, 'by hand');

    // Every API call carried the robot's credentials and Harbor accepted them.
    const api = harbor.requests.filter((q) => q.path !== '/api/v2.0/systeminfo');
    assert.ok(api.length >= 2);
    assert.ok(api.every((q) => q.user === 'robot$bridge' && q.status === 200));
  });

  it('pages through Link rel="next" (and stays within Harbor\'s page_size limit)', async () => {
    const many = await startHarborDouble({
      version: 'v2', registries, users: [ROBOT],
      policies: Array.from({ length: 103 }, (_, i) => ({ id: i + 1, name: `p${i + 1}`, srcRegistryId: 0, destRegistryId: 1, trigger: { type: 'event_based' as const }, enabled: true })),
    });
    try {
      const r = await importFromHarbor({ config: config(many.url), sourceId: 'harbor-prod', logger: silentLogger });
      assert.equal(r.imported.length, 103);
      assert.equal(new Set(r.imported.map((p) => p.id)).size, 103);
      const pages = many.requests.filter((q) => q.path === '/api/v2.0/replication/policies');
      assert.deepEqual(pages.map((q) => [q.query.page, q.query.page_size, q.status]), [['1', '100', 200], ['2', '100', 200]]);

      // Small pages: 103 policies in 35 requests, each page asked for once.
      const small = new HarborApi({ baseUrl: many.url, username: ROBOT.username, password: ROBOT.password, sourceId: 'harbor-prod', logger: silentLogger, pageSize: 3 });
      const before = many.requests.length;
      const raw = await small.listPolicies('v2');
      await small.close();
      assert.equal(raw.length, 103);
      const asked = many.requests.slice(before).map((q) => Number(q.query.page));
      assert.deepEqual(asked, Array.from({ length: 35 }, (_, i) => i + 1));
    } finally {
      await many.close();
    }
  });

  it('fails with Harbor\'s reason on wrong robot credentials (401) and on a robot without permission (403)', async () => {
    await assert.rejects(
      importFromHarbor({ config: config(harbor.url, { username: 'robot$bridge', password: 'wrong' }), sourceId: 'harbor-prod', logger: silentLogger }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'HSB_HARBOR_UNAUTHORIZED');
        assert.match(e.message, /refused the credentials of "robot\$bridge".*UNAUTHORIZED: unauthorized/);
        assert.doesNotMatch(e.message, /wrong/);
        return true;
      },
    );
    await assert.rejects(
      importFromHarbor({ config: config(harbor.url, { username: 'robot$readonly', password: 'pw' }), sourceId: 'harbor-prod', logger: silentLogger }),
      (e: Error & { code?: string }) => e.code === 'HSB_HARBOR_FORBIDDEN' && /robot\$readonly/.test(e.message),
    );
  });

  it('the CLI publishes to the policies topic, reports created/unchanged, and prints skips with reasons', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hsb-import-'));
    const bus = new EmbeddedBus({ dataDir });
    await bus.connect();
    try {
      const out = capture();
      const code = await policiesImport({ config: config(harbor.url), sourceId: 'harbor-prod', dryRun: false, logger: silentLogger, out, bus });
      assert.equal(code, 0, out.text);
      assert.match(out.text, /API v2.*7 replication policies, 3 importable, 4 skipped/);
      assert.match(out.text, /harbor-harbor-prod-1 {2}"prod to swr" {2}harbor-prod → swr-bj4\/myorg {2}event_based {2}deletion {2}\[created\]/);
      assert.match(out.text, /#4 "pull from hub": pull-mode policy/);
      const topic = await bus.readCompacted('policies');
      assert.deepEqual([...topic.keys()].sort(), ['harbor-harbor-prod-1', 'harbor-harbor-prod-2', 'harbor-harbor-prod-7']);
      assert.deepEqual((topic.get('harbor-harbor-prod-2') as { schema: number; origin: string }).schema, 1);
      assert.deepEqual((topic.get('harbor-harbor-prod-2') as { schema: number; origin: string }).origin, 'import');

      const again = capture();
      assert.equal(await policiesImport({ config: config(harbor.url), sourceId: 'harbor-prod', dryRun: false, logger: silentLogger, out: again, bus }), 0);
      assert.equal((again.text.match(/\[unchanged\]/g) ?? []).length, 3);
    } finally {
      await bus.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('--dry-run publishes nothing and prints config-file YAML', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hsb-import-'));
    try {
      const out = capture();
      // No bus is passed: a dry run must not even open the configured one.
      const code = await policiesImport({ config: config(harbor.url, undefined, join(dataDir, 'never')), sourceId: 'harbor-prod', dryRun: true, logger: silentLogger, out });
      assert.equal(code, 0);
      assert.match(out.text, /would import \(dry run, nothing published\)/);
      assert.match(out.text, /policies:\n {2}- id: harbor-harbor-prod-1\n/);
      const { existsSync } = await import('node:fs');
      assert.equal(existsSync(join(dataDir, 'never')), false);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('through the binary: --dry-run prints YAML that the config file takes as it is', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hsb-import-'));
    try {
      const file = join(dataDir, 'bridge.yaml');
      const base = {
        bus: { kind: 'embedded', dataDir: join(dataDir, 'bus') },
        sources: [{ id: 'harbor-prod', url: harbor.url, credentials: { username: ROBOT.username, password: '${HARBOR_ROBOT}' }, webhookSecrets: ['s'] }],
        targets: [{ id: 'swr-bj4', kind: 'swr', region: 'cn-north-4', credentials: { accessKey: 'AK', secretKey: 'SK' } }, { id: 'backup', kind: 'registry', url: 'https://registry.example.org' }],
      };
      await writeFile(file, stringify(base));
      const env = { ...process.env, HARBOR_ROBOT: ROBOT.password, LOG_LEVEL: 'error' };
      const main = join(import.meta.dirname, '../../../src/cli/main.ts');
      const run = await execFileAsync(process.execPath, [main, 'policies', 'import', '--harbor', 'harbor-prod', '--dry-run', '--config', file], { env });
      assert.match(run.stdout, /3 importable, 4 skipped/);
      const yaml = run.stdout.slice(run.stdout.indexOf('# as config-file policies:'));
      const pasted = parseConfig({ ...base, ...parseYaml(yaml) }, file, env);
      // Every field survives the trip, not only the ids.
      const report = await importFromHarbor({ config: config(harbor.url), sourceId: 'harbor-prod', logger: silentLogger });
      assert.deepEqual(pasted.policies, report.imported);
      assert.deepEqual(pasted.policies.map((p) => p.id), ['harbor-harbor-prod-1', 'harbor-harbor-prod-2', 'harbor-harbor-prod-7']);
      // Usage errors exit 2 with the usage line.
      await assert.rejects(execFileAsync(process.execPath, [main, 'policies', 'import', '--config', file], { env }),
        (e: { code?: number; stderr?: string }) => e.code === 2 && /usage: harbor-swr-bridge policies import --harbor <sourceId>/.test(e.stderr ?? ''));
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('the CLI exits non-zero on failure and on an unknown source', async () => {
    const out = capture();
    assert.equal(await policiesImport({ config: config(harbor.url, { username: 'robot$bridge', password: 'nope' }), sourceId: 'harbor-prod', dryRun: true, logger: silentLogger, out }), 1);
    assert.match(out.text, /import failed: .*401|import failed: .*refused the credentials/);
    const out2 = capture();
    assert.equal(await policiesImport({ config: config(harbor.url), sourceId: 'nope', dryRun: true, logger: silentLogger, out: out2 }), 1);
    assert.match(out2.text, /no source "nope"/);
  });
});

describe('policies import from Harbor 1.10', () => {
  let harbor: HarborDouble;
  before(async () => {
    harbor = await startHarborDouble({
      version: 'v1.10', registries, policies,
      users: [{ username: 'admin', password: 'Harbor12345', sysadmin: true }, { username: 'robot$ci', password: 'tok', sysadmin: false }],
    });
  });
  after(() => harbor.close());

  const creds = { username: 'admin', password: 'Harbor12345' };

  it('detects 1.10 through /api/systeminfo and maps its shapes', async () => {
    const r = await importFromHarbor({ config: config(harbor.url, creds), sourceId: 'harbor-prod', logger: silentLogger });
    assert.equal(r.api, 'v1');
    assert.match(r.harborVersion ?? '', /^v1\.10/);
    assert.ok(harbor.requests.some((q) => q.path === '/api/v2.0/systeminfo' && q.status === 404));
    assert.deepEqual(r.imported.map((p) => p.id), ['harbor-harbor-prod-1', 'harbor-harbor-prod-2', 'harbor-harbor-prod-7']);
    const p1 = r.imported[0]!;
    // 1.10 has no decoration, replace count, speed or chunking: Harbor 1.10's meaning is kept.
    assert.deepEqual(p1.filters, [{ type: 'name', value: 'library/**' }, { type: 'tag', value: 'v*' }, { type: 'resource', value: 'image' }]);
    assert.equal(p1.dest_namespace, 'myorg');
    assert.equal(p1.dest_namespace_replace_count, -1);
    assert.equal(p1.deletion, true);
    assert.equal(p1.speed, -1);
    assert.equal(r.imported[1]!.enabled, false);
    assert.deepEqual(r.skipped.map((s) => s.harborId), [3, 4, 5, 6]);
  });

  it('pages with 1.10\'s Link header', async () => {
    const api = new HarborApi({ baseUrl: harbor.url, ...creds, sourceId: 'harbor-prod', logger: silentLogger, pageSize: 2 });
    const before = harbor.requests.length;
    const raw = await api.listPolicies('v1');
    await api.close();
    assert.deepEqual(raw.map((p) => (p as { id: number }).id), [1, 2, 3, 4, 5, 6, 7]);
    const pages = harbor.requests.slice(before).map((q) => [q.path, q.query.page]);
    assert.deepEqual(pages, [['/api/replication/policies', '1'], ['/api/replication/policies', '2'], ['/api/replication/policies', '3'], ['/api/replication/policies', '4']]);
  });

  it('reports 1.10\'s 401 and 403 bodies', async () => {
    await assert.rejects(
      importFromHarbor({ config: config(harbor.url, { username: 'admin', password: 'bad' }), sourceId: 'harbor-prod', logger: silentLogger }),
      (e: Error & { code?: string }) => e.code === 'HSB_HARBOR_UNAUTHORIZED' && /UnAuthorized/.test(e.message),
    );
    // 1.10 robot accounts are project-scoped: Harbor answers 403 with the name.
    await assert.rejects(
      importFromHarbor({ config: config(harbor.url, { username: 'robot$ci', password: 'tok' }), sourceId: 'harbor-prod', logger: silentLogger }),
      (e: Error & { code?: string }) => e.code === 'HSB_HARBOR_FORBIDDEN' && /robot\$ci/.test(e.message),
    );
  });
});
