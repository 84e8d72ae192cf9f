// Label filters, read from Harbor's REST API (test double: test/support/harbor-api-double.ts):
// the client against 2.x and 1.10 shapes, and the planner on both buses planning only the
// artifacts whose labels pass, waiting out an unreachable Harbor instead of dropping the event.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HarborApi } from '../../../src/policy/harbor-api.ts';
import { HarborLabels } from '../../../src/policy/harbor-labels.ts';
import { Planner } from '../../../src/policy/planner.ts';
import { PolicyTable } from '../../../src/policy/table.ts';
import { PolicySchema } from '../../../src/policy/model.ts';
import { ReplicationTaskSchema, type ReplicationTask } from '../../../src/replication/task.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { startHarborDouble, type HarborDouble, type HarborDoubleArtifact } from '../../support/harbor-api-double.ts';
import { startFaultProxy, type FaultProxy } from '../../support/fault-proxy.ts';
import { busHarnesses, type BusHarness } from '../../support/bus-harness.ts';

const robot = { username: 'robot$bridge', password: 'robot-secret' };
const d = (c: string) => `sha256:${c.repeat(64)}`;
const ARTIFACTS: HarborDoubleArtifact[] = [
  { repository: 'library/app', digest: d('a'), tags: ['v1', 'latest'], labels: ['prod'] },
  { repository: 'library/app', digest: d('b'), tags: ['v2'], labels: [] },
  { repository: 'team/a/b', digest: d('c'), tags: ['v1'], labels: ['prod', 'signed'] },
  { repository: 'team/a/b', digest: d('e'), tags: [], labels: ['prod'] },
];

for (const version of ['v2', 'v1.10'] as const) {
  describe(`Harbor API artifact labels (${version})`, () => {
    let harbor: HarborDouble;
    let api: HarborApi;
    const apiVersion = version === 'v2' ? 'v2' : 'v1';
    before(async () => {
      harbor = await startHarborDouble({ version, users: [{ ...robot }], registries: [], policies: [], artifacts: ARTIFACTS });
      api = new HarborApi({ baseUrl: harbor.url, ...robot, sourceId: 'harbor', logger: silentLogger, pageSize: 2 });
    });
    after(async () => {
      await api.close();
      await harbor.close();
    });

    it('reads the labels of an artifact by tag, nested repositories included', async () => {
      assert.deepEqual(await api.artifactLabels(apiVersion, 'library/app', 'v1'), ['prod']);
      assert.deepEqual(await api.artifactLabels(apiVersion, 'library/app', 'v2'), []);
      assert.deepEqual(await api.artifactLabels(apiVersion, 'team/a/b', 'v1'), ['prod', 'signed']);
      assert.ok(harbor.requests.every((r) => r.status === 200), 'every request routed (2.x: the repository encoded twice)');
    });

    it('reads them by digest, and answers undefined for what Harbor does not have', async () => {
      assert.deepEqual(await api.artifactLabels(apiVersion, 'library/app', d('a')), ['prod']);
      assert.equal(await api.artifactLabels(apiVersion, 'library/app', 'v9'), undefined);
      assert.equal(await api.artifactLabels(apiVersion, 'library/nope', 'v1'), undefined);
    });

    it('lists a repository\'s artifacts with tags and labels (paged in 2.x)', async () => {
      const list = await api.listArtifacts(apiVersion, 'library/app');
      const byTag = new Map(list.flatMap((a) => a.tags.map((t) => [t, a.labels] as const)));
      assert.deepEqual(Object.fromEntries(byTag), { v1: ['prod'], latest: ['prod'], v2: [] });
      assert.deepEqual(await api.listArtifacts(apiVersion, 'library/nope'), []);
      if (version === 'v2') {
        // Two artifacts in one repository with page_size 2, four in team/* over two pages.
        assert.equal((await api.listArtifacts('v2', 'team/a/b')).length, 2);
        assert.ok(harbor.requests.some((r) => r.query['with_label'] === 'true' && r.query['page'] === '1'));
      }
    });

    it('refuses wrong credentials with Harbor\'s reason (not retryable)', async () => {
      const wrong = new HarborApi({ baseUrl: harbor.url, username: robot.username, password: 'nope', sourceId: 'harbor', logger: silentLogger });
      try {
        await assert.rejects(wrong.artifactLabels(apiVersion, 'library/app', 'v1'), (e: { code?: string; retryable?: boolean }) => e.code === 'HSB_HARBOR_UNAUTHORIZED' && e.retryable === false);
      } finally {
        await wrong.close();
      }
    });
  });
}

for (const [kind, make] of Object.entries(busHarnesses('labels'))) {
  describe(`planner with label filters (${kind} bus)`, () => {
    let h: BusHarness;
    let harbor: HarborDouble;
    let proxy: FaultProxy;
    let planner: Planner;
    const tasks: ReplicationTask[] = [];
    let stopTasks: (() => Promise<void>) | undefined;

    before(async () => {
      h = await make();
      harbor = await startHarborDouble({ version: 'v2', users: [{ ...robot }], registries: [], policies: [], artifacts: ARTIFACTS });
      proxy = await startFaultProxy(harbor.url);
      const config = { ...h.config, sources: [{ ...h.config.sources[0]!, url: proxy.url, credentials: { ...robot } }] };
      const policies = new PolicyTable([
        PolicySchema.parse({ id: 'plain', src_registry: 'harbor', dest_registry: 'backup', dest_namespace: 'all', filters: [{ type: 'name', value: 'late/**' }] }),
        PolicySchema.parse({ id: 'prod-only', src_registry: 'harbor', dest_registry: 'backup', deletion: true, filters: [{ type: 'label', value: ['prod'] }] }),
        PolicySchema.parse({ id: 'not-prod', src_registry: 'harbor', dest_registry: 'backup', dest_namespace: 'np', filters: [{ type: 'label', value: ['prod'], decoration: 'excludes' }] }),
      ]);
      planner = new Planner({ config, bus: h.bus, policies, metrics: createMetrics(), logger: silentLogger, labels: new HarborLabels(config, silentLogger), labelOutageMs: 3000 });
      const handle = await h.bus.subscribe({ group: `${h.prefix}labels-tasks`, topics: ['tasks'], fromBeginning: true }, async (batch) => {
        for (const m of batch) tasks.push(ReplicationTaskSchema.parse(m.value));
      });
      stopTasks = () => handle.stop();
    });
    after(async () => {
      await planner.stop();
      await stopTasks?.();
      await proxy.stop();
      await harbor.close();
      await h.cleanup();
    });

    const event = (id: string, repository: string, tag: string, action: 'push' | 'delete' = 'push') => ({
      key: `harbor/${repository}`,
      value: {
        schema: 1, id, sourceId: 'harbor', action, repository, tag, ...(action === 'push' ? { digest: ARTIFACTS.find((a) => a.repository === repository && a.tags.includes(tag))!.digest } : {}),
        occurredAt: '2026-11-23T00:00:00Z', receivedAt: '2026-11-23T00:00:01Z', format: 'harbor-v2', sourceType: action === 'push' ? 'PUSH_ARTIFACT' : 'DELETE_ARTIFACT',
      },
    });

    it('plans only what the labels allow; while Harbor answers 503 the events wait, and none is lost', async () => {
      // Harbor's API is down for the first label reads: the planner's batch fails and comes back.
      proxy.addRule({ match: { path: /\/artifacts\// }, action: 'status', status: 503, body: '{"errors":[{"code":"UNKNOWN","message":"down"}]}', times: 3 });
      await h.bus.publish('events', [
        event('e1', 'library/app', 'v1'),
        event('e2', 'library/app', 'v2'),
        event('e3', 'team/a/b', 'v1'),
        event('e4', 'library/app', 'v1', 'delete'),
      ]);
      await planner.start(`${h.prefix}planner`);
      for (let i = 0; i < 300 && tasks.length < 3; i++) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 300)); // nothing more arrives
      const planned = tasks.map((t) => `${t.policyId} ${t.action} ${t.repository}:${t.tag} -> ${t.destRepository}`).sort();
      assert.deepEqual(planned, [
        'not-prod push library/app:v2 -> np/app',
        'prod-only push library/app:v1 -> library/app',
        'prod-only push team/a/b:v1 -> team/a/b',
      ]);
      assert.equal(proxy.requests.filter((r) => r.status === 503).length, 3, 'the planner met the outage and came back');
    });

    it('a refusal (credentials) skips the label-filtered policies at once; an outage longer than the window does too; other policies plan', async () => {
      const before = tasks.length;
      proxy.clearRules();
      proxy.addRule({ match: { path: /\/library\/repositories\/app\/artifacts\/v2/ }, action: 'status', status: 401, body: '{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized"}]}', times: 1 });
      await h.bus.publish('events', [event('e5', 'library/app', 'v2')]);
      // Harbor stays down past the planner's window (3 s here): the event is skipped, not held for ever.
      proxy.addRule({ match: { path: /\/team\/repositories\/a%252Fb\/artifacts\// }, action: 'status', status: 503, body: '{"errors":[{"code":"UNKNOWN","message":"down"}]}' });
      const late = event('e7', 'late/app', 'v1', 'delete'); // shaped as a push below: not an artifact Harbor knows
      await h.bus.publish('events', [event('e6', 'team/a/b', 'v1'), { key: late.key, value: { ...late.value, action: 'push', sourceType: 'PUSH_ARTIFACT', digest: d('f') } }]);
      // e8 shares e6's key (so its partition, behind e6): once it is planned, the planner has moved past e6.
      await h.bus.publish('events', [{ key: 'harbor/team/a/b', value: { ...late.value, id: 'e8', action: 'push', sourceType: 'PUSH_ARTIFACT', repository: 'late/other', digest: d('f') } }]);
      for (let i = 0; i < 300 && !(tasks.some((t) => t.eventId === 'e7') && tasks.some((t) => t.eventId === 'e8')); i++) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 300));
      const planned = tasks.slice(before).map((t) => `${t.policyId} ${t.eventId}`).sort();
      assert.deepEqual(planned, ['plain e7', 'plain e8'], 'e5 (refused) and e6 (Harbor down past the window) planned nothing for label policies; the events behind them went through');
      assert.equal(proxy.requests.filter((r) => r.status === 401).length, 1, 'a refusal is not retried');
      assert.ok(proxy.requests.filter((r) => r.status === 503).length >= 2, 'the outage was retried within the window');
      proxy.clearRules();
    });
  });
}
