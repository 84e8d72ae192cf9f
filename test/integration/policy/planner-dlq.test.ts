// The planner on both buses: an `events` record that does not match the event schema is kept on
// the DLQ with its position (never silently dropped), and the valid records around it are planned.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { busHarnesses, type BusHarness } from '../../support/bus-harness.ts';
import { Planner } from '../../../src/policy/planner.ts';
import { PolicyTable } from '../../../src/policy/table.ts';
import { PolicySchema } from '../../../src/policy/model.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { DeadLetterSchema } from '../../../src/replication/dead-letter.ts';

for (const [kind, make] of Object.entries(busHarnesses('planner-dlq'))) {
  describe(`planner and unparsable events (${kind} bus)`, () => {
    let h: BusHarness;
    let planner: Planner;
    before(async () => {
      h = await make();
      const policies = new PolicyTable([PolicySchema.parse({ id: 'p', src_registry: 'harbor', dest_registry: 'backup' })]);
      planner = new Planner({ config: h.config, bus: h.bus, policies, metrics: createMetrics(), logger: silentLogger });
    });
    after(async () => {
      await planner.stop();
      await h.cleanup();
    });

    it('dead-letters the bad record and an event whose task would not be valid, plans the good one, and moves on', async () => {
      const good = {
        schema: 1, id: 'ev-good', sourceId: 'harbor', action: 'push', repository: 'lib/app', tag: 'v1',
        occurredAt: '2026-11-23T00:00:00Z', receivedAt: '2026-11-23T00:00:01Z', format: 'harbor-v2', sourceType: 'PUSH_ARTIFACT',
      };
      // A valid event whose "tag" has a colon is planned by digest, and this is no digest: its task fails the task schema.
      const unplannable = { ...good, id: 'ev-colon', tag: 'not:a digest!' };
      await h.bus.publish('events', [
        { key: 'harbor/lib/app', value: { schema: 99, id: 'from-the-future', repository: 'lib/app' } },
        { key: 'harbor/lib/app', value: unplannable },
        { key: 'harbor/lib/app', value: good },
      ]);
      await planner.start(`${h.prefix}planner`);
      let letters: ReturnType<typeof DeadLetterSchema.parse>[] = [];
      let tasks = 0;
      for (let i = 0; i < 300 && (letters.length < 2 || tasks === 0); i++) {
        await new Promise((r) => setTimeout(r, 100));
        letters = [...(await h.bus.readCompacted('dlq')).values()].map((v) => DeadLetterSchema.parse(v));
        tasks = (await h.bus.inspect()).topics.find((t) => t.topic === 'tasks')!.partitions.reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
      }
      assert.equal(letters.length, 2);
      const l = letters.find((x) => x.error.code === 'HSB_EVENT_INVALID');
      assert.equal(l!.task, null);
      assert.equal(l!.source.topic, 'events');
      assert.deepEqual(l!.raw, { schema: 99, id: 'from-the-future', repository: 'lib/app' });
      const bad = letters.find((x) => x.error.code === 'HSB_BUS_INVALID_RECORD');
      assert.equal(bad!.task, null);
      assert.equal(bad!.source.topic, 'events');
      assert.deepEqual(bad!.raw, unplannable, 'the event is kept as it came');
      assert.match(bad!.error.message, /tasks record .* does not match its schema: digest/);
      assert.equal(tasks, 1, 'the valid event was planned');
    });
  });
}
