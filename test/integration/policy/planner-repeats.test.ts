// The planner on both buses: a sender's retry of the last event for a reference is planned once,
// but the same event id after a different event for that reference is a new event. Harbor's ids
// come from occur_at in whole seconds, so a tag pushed, deleted and pushed again within one second
// repeats the first push's id; dropping it would leave the target without the tag.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { busHarnesses, type BusHarness } from '../../support/bus-harness.ts';
import type { BusMessage, ConsumerHandle } from '../../../src/bus/port.ts';
import { Planner } from '../../../src/policy/planner.ts';
import { PolicyTable } from '../../../src/policy/table.ts';
import { PolicySchema } from '../../../src/policy/model.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { normaliseHarbor } from '../../../src/ingest/normalise.ts';
import { eventKey, type ArtifactEvent } from '../../../src/ingest/event.ts';
import type { ReplicationTask } from '../../../src/replication/task.ts';

const SECOND = 1795392000;
const DIGEST = `sha256:${'a'.repeat(64)}`;

/** The event Harbor 2.x sends for `type` on lib/app:<tag>, at one fixed second. */
function harborEvent(type: 'PUSH_ARTIFACT' | 'DELETE_ARTIFACT', tag: string): ArtifactEvent {
  const body = {
    type, occur_at: SECOND, operator: 'ci',
    event_data: {
      resources: [{ digest: DIGEST, tag, resource_url: `harbor.example.com/lib/app:${tag}` }],
      repository: { date_created: SECOND - 60, name: 'app', namespace: 'lib', repo_full_name: 'lib/app', repo_type: 'private' },
    },
  };
  const r = normaliseHarbor(body, { sourceId: 'harbor', contentType: 'application/json', receivedAt: new Date(), rawEmpty: false });
  assert.equal(r.kind, 'events');
  return (r as { events: ArtifactEvent[] }).events[0]!;
}

for (const [kind, make] of Object.entries(busHarnesses('planner-repeats'))) {
  describe(`planner and repeated event ids (${kind} bus)`, () => {
    let h: BusHarness;
    let planner: Planner;
    let reader: ConsumerHandle;
    const tasks: ReplicationTask[] = [];

    before(async () => {
      h = await make();
      const policies = new PolicyTable([PolicySchema.parse({ id: 'p', src_registry: 'harbor', dest_registry: 'backup', deletion: true })]);
      planner = new Planner({ config: h.config, bus: h.bus, policies, metrics: createMetrics(), logger: silentLogger });
      await planner.start(`${h.prefix}planner`);
      reader = await h.bus.subscribe({ group: `${h.prefix}reader`, topics: ['tasks'], fromBeginning: true }, async (batch: BusMessage[]) => {
        for (const m of batch) tasks.push(m.value as ReplicationTask);
      });
    });
    after(async () => {
      await reader.stop();
      await planner.stop();
      await h.cleanup();
    });

    /** Publishes the events, then a marker event on another tag, and waits until the marker is planned. */
    async function send(events: ArtifactEvent[], marker: string): Promise<void> {
      const all = [...events, harborEvent('PUSH_ARTIFACT', marker)];
      await h.bus.publish('events', all.map((e) => ({ key: eventKey(e), value: e })));
      for (let i = 0; i < 300 && !tasks.some((t) => t.tag === marker); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(tasks.some((t) => t.tag === marker), `marker ${marker} planned`);
    }
    const actionsFor = (tag: string) => tasks.filter((t) => t.tag === tag).map((t) => t.action);

    it('plans push, delete and push again within one second, and drops retries of the last one', async () => {
      const push = harborEvent('PUSH_ARTIFACT', 'v1');
      const del = harborEvent('DELETE_ARTIFACT', 'v1');
      assert.equal(harborEvent('PUSH_ARTIFACT', 'v1').id, push.id, 'the re-push has the first push\'s id');

      await send([push, push], 'm1'); // Harbor's retry in the same batch
      assert.deepEqual(actionsFor('v1'), ['push']);
      await send([push], 'm2'); // and in a later one
      assert.deepEqual(actionsFor('v1'), ['push']);
      await send([del], 'm3');
      assert.deepEqual(actionsFor('v1'), ['push', 'delete']);
      await send([push], 'm4'); // pushed again: the same id, a new event
      assert.deepEqual(actionsFor('v1'), ['push', 'delete', 'push']);
      await send([push, del, push], 'm5'); // all three in one batch
      assert.deepEqual(actionsFor('v1'), ['push', 'delete', 'push', 'delete', 'push']);
    });
  });
}
