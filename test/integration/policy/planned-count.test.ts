// hsb_planned_tasks_total counts tasks once written to `tasks`: a planner batch that fails (here Harbor's
// label API is unreachable for a later event) is delivered again, and its earlier events must not be
// counted twice.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { EmbeddedBus } from '../../../src/bus/embedded/sqlite-bus.ts';
import { parseConfig } from '../../../src/config/load.ts';
import { Planner } from '../../../src/policy/planner.ts';
import { PolicyTable } from '../../../src/policy/table.ts';
import { PolicySchema } from '../../../src/policy/model.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { BridgeError } from '../../../src/errors.ts';

const ev = (repo: string, i: number) => ({
  schema: 1, id: `ev-${i}`, sourceId: 'h', action: 'push', repository: repo, tag: 'v1', digest: `sha256:${String(i).repeat(64)}`,
  occurredAt: new Date().toISOString(), receivedAt: new Date().toISOString(), format: 'harbor-v2', sourceType: 'PUSH_ARTIFACT',
});

it('planned tasks are counted once per task written to `tasks`', { timeout: 60000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'planned-'));
  const bus = new EmbeddedBus({ dataDir, partitions: 1 });
  await bus.connect();
  const config = parseConfig({
    bus: { kind: 'embedded', dataDir, partitions: 1 },
    sources: [{ id: 'h', url: 'https://harbor.example.com', webhookSecrets: ['s'] }],
    targets: [{ id: 't', kind: 'registry', url: 'https://t.example.org' }],
  }, '<test>', {});
  const policies = new PolicyTable([
    PolicySchema.parse({ id: 'plain', src_registry: 'h', dest_registry: 't', filters: [{ type: 'name', value: 'lib/a' }] }),
    PolicySchema.parse({ id: 'labelled', src_registry: 'h', dest_registry: 't', filters: [{ type: 'name', value: 'lib/x' }, { type: 'label', value: 'prod' }] }),
  ]);
  // Harbor's API is unreachable (retryable): the planner fails the batch and waits, up to labelOutageMs.
  const labels = { forSource: () => ({ of: async () => { throw new BridgeError('HSB_HARBOR_UNREACHABLE', 'down', { retryable: true }); } }), close: async () => {} };
  const metrics = createMetrics();
  const planner = new Planner({ config, bus, policies, metrics, logger: silentLogger, labels: labels as never, labelOutageMs: 3000 });
  let tasks = 0;
  const watch = await bus.subscribe({ group: 'watch', topics: ['tasks'], fromBeginning: true }, async (b) => { tasks += b.length; });
  try {
    await bus.publish('events', [{ key: 'h/lib/a', value: ev('lib/a', 1) }, { key: 'h/lib/x', value: ev('lib/x', 2) }]);
    await planner.start();
    const t0 = Date.now();
    while (tasks < 1 && Date.now() - t0 < 30000) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500));
    const counted = (await metrics.plannedTasks.get()).values.find((v: { labels: Record<string, unknown> }) => v.labels.policy === 'plain')?.value;

    assert.equal(counted, tasks);
  } finally {
    await planner.stop();
    await watch.stop();
    await bus.close();
  }
});
