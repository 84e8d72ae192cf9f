// Reconcile tasks go onto a real Kafka `tasks` topic (shared broker, unique prefix) keyed per
// destination repository, and read back unchanged; the start-up pass leaves manual policies out,
// and a policy whose start-up pass failed (source down) is passed again until it succeeds.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { startFaultProxy } from '../../support/fault-proxy.ts';
import { buildImage, pushImage, type LocalImage } from '../../support/images.ts';
import { sharedBrokers, uniquePrefix } from '../../support/kafka.ts';
import { KafkaBus } from '../../../src/bus/kafka/kafka-bus.ts';
import type { BusMessage } from '../../../src/bus/port.ts';
import { ConfigSchema, type Config } from '../../../src/config/schema.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { PolicyTable } from '../../../src/policy/table.ts';
import { Endpoints } from '../../../src/replication/endpoints.ts';
import { Reconciler } from '../../../src/replication/reconciler.ts';
import { ReplicationTaskSchema, taskKey } from '../../../src/replication/task.ts';

const user = { username: 'robot$bridge', password: 'src-pass-1' };
const pusher = { username: 'pusher', password: 'dst-pass-2' };

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f().catch(() => undefined); });

async function readTasks(bus: KafkaBus, group: string, count: number, timeoutMs = 30000): Promise<BusMessage[]> {
  const seen: BusMessage[] = [];
  const handle = await bus.subscribe({ group, topics: ['tasks'], fromBeginning: true }, async (batch) => { seen.push(...batch); });
  try {
    const deadline = Date.now() + timeoutMs;
    while (seen.length < count && Date.now() < deadline) await sleep(50);
    // A little longer, to catch anything beyond what was expected.
    await sleep(500);
    return seen;
  } finally {
    await handle.stop();
  }
}

/** A reconciler for `raw` (a config) and a Kafka bus of its own prefix, both closed after the file. */
async function reconcileRig(raw: unknown, name: string): Promise<{ cfg: Config; reconciler: Reconciler; bus: KafkaBus }> {
  const cfg = ConfigSchema.parse(raw);
  const endpoints = new Endpoints(cfg, silentLogger);
  cleanup.push(() => endpoints.close());
  const reconciler = new Reconciler({ config: cfg, endpoints, logger: silentLogger });
  const bus = new KafkaBus({ brokers: [sharedBrokers()], topicPrefix: uniquePrefix(name), partitions: 3, clientId: 'reconcile-test' });
  await bus.connect();
  cleanup.push(() => bus.close());
  return { cfg, reconciler, bus };
}

describe('reconciler → Kafka tasks topic', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let image: LocalImage;
  let other: LocalImage;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry({ auth: 'basic', users: [user] }), startRegistry({ auth: 'basic', users: [pusher] })]);
    cleanup.push(() => src.stop(), () => dst.stop());
    [image, other] = await Promise.all([buildImage({ layers: [1024] }), buildImage({ layers: [1024] })]);
    cleanup.push(() => image.cleanup(), () => other.cleanup());
    await pushImage(image, src, 'library/app', 'v1');
    await pushImage(image, src, 'library/app', 'v2');
    await pushImage(other, src, 'library/tool', 'v1');
    await pushImage(image, dst, 'library/app', 'v1');
    await pushImage(other, dst, 'library/app', 'v2');
    await pushImage(other, dst, 'library/app', 'extra');
  });

  it('publishes every difference, readable back with its key and value', async () => {
    const cfg = ConfigSchema.parse({
      sources: [{ id: 'harbor-a', kind: 'harbor', url: src.url, credentials: user, insecure: true }],
      targets: [{ id: 'backup', kind: 'registry', url: dst.url, credentials: pusher }],
      policies: [{ id: 'all', src_registry: 'harbor-a', dest_registry: 'backup', deletion: true }],
    });
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const metrics = createMetrics();
    const reconciler = new Reconciler({ config: cfg, endpoints, logger: silentLogger, metrics });
    const bus = new KafkaBus({ brokers: [sharedBrokers()], topicPrefix: uniquePrefix('reconcile'), partitions: 3, clientId: 'reconcile-test' });
    await bus.connect();
    cleanup.push(() => bus.close());

    const plan = await reconciler.reconcileAndPublish(cfg.policies[0]!, bus);
    assert.deepEqual(plan.tasks.map((t) => `${t.action} ${t.repository}:${t.tag}`).sort(), [
      'delete library/app:extra', 'push library/app:v2', 'push library/tool:v1',
    ]);
    const msgs = await readTasks(bus, 'reconcile-read', plan.tasks.length);
    assert.equal(msgs.length, plan.tasks.length);
    const byId = new Map(plan.tasks.map((t) => [t.id, t]));
    for (const m of msgs) {
      const task = ReplicationTaskSchema.parse(m.value);
      const sent = byId.get(task.id);
      assert.ok(sent, `unexpected task ${task.id}`);
      assert.deepEqual(task, sent);
      assert.equal(m.key, taskKey(sent));
      byId.delete(task.id);
    }
    assert.equal(byId.size, 0);
    const planned = await metrics.plannedTasks.get();
    assert.equal(planned.values.find((v) => v.labels.policy === 'all')?.value, 3);
  });

  it('start-up pass publishes for event-based and scheduled policies, not manual ones; dry runs publish nothing', async () => {
    const { cfg, reconciler, bus } = await reconcileRig({
      sources: [{ id: 'harbor-a', kind: 'harbor', url: src.url, credentials: user, insecure: true }],
      targets: [{ id: 'backup', kind: 'registry', url: dst.url, credentials: pusher }],
      policies: [
        { id: 'events', src_registry: 'harbor-a', dest_registry: 'backup', dest_namespace: 'ev', filters: [{ type: 'name', value: 'library/tool' }] },
        { id: 'nightly', src_registry: 'harbor-a', dest_registry: 'backup', dest_namespace: 'sch', trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 3 * * *' } }, filters: [{ type: 'name', value: 'library/tool' }] },
        { id: 'by-hand', src_registry: 'harbor-a', dest_registry: 'backup', dest_namespace: 'man', trigger: { type: 'manual' } },
      ],
    }, 'reconcile-start');

    const dry = await reconciler.runPass({ dryRun: true, bus });
    assert.equal(dry.published, 0);
    assert.equal(dry.tasks, 5, 'the dry run plans every policy, manual included');

    const summary = await reconciler.startupPass(new PolicyTable(cfg.policies), bus);
    assert.deepEqual(summary.policies.map((p) => p.policyId), ['events', 'nightly']);
    assert.equal(summary.published, 2);
    const msgs = await readTasks(bus, 'reconcile-start-read', 2);
    assert.deepEqual(msgs.map((m) => (m.value as { destRepository: string }).destRepository).sort(), ['ev/tool', 'sch/tool']);
  });

  it('passes a policy whose start-up pass failed again, with growing delays, until its source answers', async () => {
    const proxy = await startFaultProxy(src.url);
    cleanup.push(() => proxy.stop());
    // The source's catalog fails (503, past the client's own retries) until the second retry.
    proxy.addRule({ match: { path: /_catalog/ }, action: 'status', status: 503 });
    const { cfg, reconciler, bus } = await reconcileRig({
      sources: [{ id: 'harbor-a', kind: 'registry', url: proxy.url, credentials: user, insecure: true }],
      targets: [{ id: 'backup', kind: 'registry', url: dst.url, credentials: pusher }],
      policies: [
        { id: 'healed', src_registry: 'harbor-a', dest_registry: 'backup', dest_namespace: 'late', filters: [{ type: 'name', value: 'library/tool' }] },
        { id: 'by-hand', src_registry: 'harbor-a', dest_registry: 'backup', dest_namespace: 'man', trigger: { type: 'manual' } },
      ],
    }, 'reconcile-retry');
    const table = new PolicyTable(cfg.policies);

    const first = await reconciler.startupPass(table, bus);
    assert.deepEqual(first.policies.map((p) => [p.policyId, p.error !== undefined]), [['healed', true]]);
    assert.equal(first.published, 0);
    const delays: number[] = [];
    await reconciler.retryFailed(first, table, bus, new AbortController().signal, (attempt) => {
      delays.push(attempt);
      if (attempt === 1) proxy.clearRules();
      return 50 * (attempt + 1);
    });
    assert.deepEqual(delays, [0, 1], 'tried twice more: once failing, once passing');
    const msgs = await readTasks(bus, 'reconcile-retry-read', 1);
    assert.deepEqual(msgs.map((m) => (m.value as { destRepository: string }).destRepository), ['late/tool']);
  });

  it('stops trying when the policy is disabled or the process stops', async () => {
    const proxy = await startFaultProxy(src.url);
    cleanup.push(() => proxy.stop());
    proxy.addRule({ match: { path: /_catalog/ }, action: 'status', status: 503 });
    const raw = { id: 'down', src_registry: 'harbor-a', dest_registry: 'backup', filters: [{ type: 'name', value: 'library/tool' }] };
    const { cfg, reconciler, bus } = await reconcileRig({
      sources: [{ id: 'harbor-a', kind: 'registry', url: proxy.url, credentials: user, insecure: true }],
      targets: [{ id: 'backup', kind: 'registry', url: dst.url, credentials: pusher }],
      policies: [raw],
    }, 'reconcile-stop');
    const table = new PolicyTable(cfg.policies);
    const first = await reconciler.startupPass(table, bus);

    // Disabled after two failed retries: the third finds nothing to pass and the loop ends.
    let tries = 0;
    await reconciler.retryFailed(first, table, bus, new AbortController().signal, () => {
      if (++tries === 3) table.set('down', { ...cfg.policies[0]!, enabled: false });
      return 20;
    });
    assert.equal(tries, 3);
    const catalogReads = () => proxy.requests.filter((r) => r.path.includes('_catalog')).length;
    const afterDisabled = catalogReads();

    // Aborted while waiting: returns without another pass.
    table.set('down', cfg.policies[0]!);
    const stop = new AbortController();
    const waiting = reconciler.retryFailed(first, table, bus, stop.signal, () => 60_000);
    stop.abort();
    await waiting;
    assert.equal(catalogReads(), afterDisabled);
  });
});
