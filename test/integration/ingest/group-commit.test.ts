// Webhooks arriving while a publish is in flight go to the bus together in the next one (group
// commit), and a webhook refused at its deadline while still queued never reaches the bus.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bus, OutgoingRecord } from '../../../src/bus/port.ts';
import { SECRET, digestFor, embeddedBus, eventCount, pushArtifact, startApp, testConfig, withPublish } from './harness.ts';

const HARBOR = '/webhooks/harbor/harbor-prod';

const post = (url: string, body: unknown) => fetch(`${url}${HARBOR}`, {
  method: 'POST', headers: { 'content-type': 'application/json', authorization: SECRET }, body: JSON.stringify(body),
});

/** The embedded bus behind a publish that first waits for `gate()` and records each call's size. */
async function gatedBus(gate: (call: number) => Promise<void>) {
  const e = await embeddedBus();
  const calls: number[] = [];
  const bus: Bus = withPublish(e.bus, async (topic, records: OutgoingRecord[]) => {
    calls.push(records.length);
    await gate(calls.length);
    await e.bus.publish(topic, records);
  });
  return { ...e, raw: e.bus, bus, calls };
}

describe('group commit of webhooks', () => {
  it('webhooks arriving during a publish share the next one, and all are acknowledged and stored', async () => {
    const g = await gatedBus(() => sleep(30));
    const app = await startApp(testConfig(), g.bus);
    try {
      const N = 60;
      const res = await Promise.all(Array.from({ length: N }, (_, i) => post(app.url, pushArtifact(`group/r${i % 7}`, `t${i}`, digestFor(i)))));
      assert.deepEqual(res.map((r) => r.status), Array(N).fill(200));
      assert.equal(await eventCount(g.raw), N);
      assert.equal(g.calls.reduce((a, b) => a + b, 0), N);
      assert.ok(g.calls.length < N / 3, `${N} webhooks took ${g.calls.length} publishes: ${g.calls}`);
    } finally {
      await app.close();
      await g.cleanup();
    }
  });

  it('caps a group at 500 records', async () => {
    const g = await gatedBus(() => sleep(50));
    const app = await startApp(testConfig(), g.bus);
    try {
      // v1.10 deleteImage with 4 tags: 4 events per webhook, 1,200 in all.
      const webhook = (i: number) => ({
        type: 'deleteImage', occur_at: 1600000000 + i,
        event_data: {
          resources: ['a', 'b', 'c', 'd'].map((t) => ({ tag: `${t}${i}`, resource_url: `h.example.com/library/x:${t}${i}` })),
          repository: { name: 'x', namespace: 'library', repo_full_name: 'library/x', repo_type: 'private' },
        },
      });
      const res = await Promise.all(Array.from({ length: 300 }, (_, i) => post(app.url, webhook(i))));
      assert.deepEqual(new Set(res.map((r) => r.status)), new Set([200]));
      assert.equal(await eventCount(g.raw), 1200);
      assert.ok(g.calls.every((n) => n <= 500), `group sizes ${g.calls}`);
      assert.ok(g.calls.some((n) => n > 100), `no grouping happened: ${g.calls}`);
    } finally {
      await app.close();
      await g.cleanup();
    }
  });

  it('a failed publish refuses exactly its group with 503; the next group goes through', async () => {
    const e = await embeddedBus();
    let call = 0;
    const bus = withPublish(e.bus, async (topic, records) => {
      call++;
      await sleep(30);
      if (call === 1) throw new Error('broker gone');
      await e.bus.publish(topic, records);
    });
    const app = await startApp(testConfig(), bus);
    try {
      const first = post(app.url, pushArtifact('group/fail', 'first', digestFor(1)));
      await sleep(10); // the first publish is in flight: these two queue behind it
      const later = [post(app.url, pushArtifact('group/fail', 'a', digestFor(2))), post(app.url, pushArtifact('group/fail', 'b', digestFor(3)))];
      assert.equal((await first).status, 503);
      assert.deepEqual((await Promise.all(later)).map((r) => r.status), [200, 200]);
      assert.equal(await eventCount(e.bus), 2);
    } finally {
      await app.close();
      await e.cleanup();
    }
  });

  it('a webhook still queued at its deadline gets 503 and is never published', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    const g = await gatedBus((call) => (call === 1 ? released : Promise.resolve()));
    const app = await startApp(testConfig({ server: { publishTimeoutMs: 300 } }), g.bus);
    try {
      const inFlight = post(app.url, pushArtifact('group/deadline', 'in-flight', digestFor(10)));
      await sleep(50);
      const queued = post(app.url, pushArtifact('group/deadline', 'queued', digestFor(11)));
      assert.equal((await inFlight).status, 503);
      assert.equal((await queued).status, 503);
      // The bus now acknowledges the publish that was already handed to it; the queued webhook
      // was withdrawn and must not follow.
      release();
      await sleep(100);
      const fresh = await post(app.url, pushArtifact('group/deadline', 'fresh', digestFor(12)));
      assert.equal(fresh.status, 200);
      assert.deepEqual(g.calls, [1, 1], 'only the in-flight and the fresh webhook reached the bus');
      assert.equal(await eventCount(g.raw), 2);
    } finally {
      release();
      await app.close();
      await g.cleanup();
    }
  });
});
