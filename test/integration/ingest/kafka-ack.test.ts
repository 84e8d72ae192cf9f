// Acknowledged means durable: every webhook answered 2xx is readable from the `events` topic of
// the real broker (the one `npm test` starts), keyed `sourceId/repository`; nothing else is.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { KafkaBus } from '../../../src/bus/kafka/kafka-bus.ts';
import { ArtifactEventSchema } from '../../../src/ingest/event.ts';
import { sharedBrokers, uniquePrefix } from '../../support/kafka.ts';
import { SECRET, digestFor, fixture, pushArtifact, readTopic, startApp, testConfig, withPublish, type RunningApp } from './harness.ts';

const HARBOR = '/webhooks/harbor/harbor-prod';

describe('ingest on Kafka: acknowledged means readable', () => {
  const brokers = sharedBrokers();
  const topicPrefix = uniquePrefix('ingest');
  let bus: KafkaBus;
  let app: RunningApp;
  const publishCalls: number[] = [];

  before(async () => {
    bus = new KafkaBus({ brokers: [brokers], topicPrefix, partitions: 3, clientId: `ingest-${topicPrefix}` });
    await bus.connect();
    // The real bus, with each publish call's size recorded, and the round trip of a broker across
    // a network (100 ms): on loopback an acknowledgement can come back before the next webhook is
    // even read, which would make the group sizes below depend on how fast the test's own
    // requests arrive rather than on the batching.
    app = await startApp(testConfig(), withPublish(bus, async (topic, records) => {
      publishCalls.push(records.length);
      await new Promise((r) => setTimeout(r, 100));
      return bus.publish(topic, records);
    }));
  });
  after(async () => {
    await app.close();
    await bus.close();
  });

  const post = (body: unknown, type = 'application/json', path = HARBOR) =>
    request(app.url).post(path).set({ 'content-type': type, authorization: SECRET }).send(JSON.stringify(body));

  it('every 2xx is on the topic with key sourceId/repository; refused and ignored webhooks are not', async () => {
    const accepted = new Map<string, string>(); // event id → expected key
    const ok = async (body: unknown, key: string, type?: string, path?: string) => {
      const res = await post(body, type, path).expect(200);
      assert.ok(res.body.accepted > 0);
      for (const id of res.body.ids as string[]) accepted.set(id, key);
    };
    await ok(fixture('v2-push-by-tag'), 'harbor-prod/library/nginx');
    await ok(fixture('v2-push-nested-no-date'), 'harbor-prod/proj/a/b/img');
    await ok(fixture('ce-artifact-pushed'), 'harbor-prod/library/nginx', 'application/cloudevents+json');
    await ok(fixture('v1-delete-image'), 'harbor-prod/library/redis');
    await ok(fixture('distribution-push'), 'registry-dev/team/app', 'application/vnd.docker.distribution.events.v1+json', '/webhooks/distribution/registry-dev');
    assert.equal(accepted.size, 7);

    // Not acknowledged as events: must not appear.
    await post(pushArtifact('library/unauthorised', 'v1', digestFor(1))).set('authorization', 'Bearer wrong').expect(401);
    await post(pushArtifact('library/invalid', 'v1', 'sha256:zz')).expect(400);
    await post(fixture('v2-pull-artifact')).expect(200);

    const records = await readTopic(brokers, `${topicPrefix}events`);
    assert.equal(records.length, accepted.size, 'exactly the acknowledged events');
    for (const r of records) {
      const event = ArtifactEventSchema.parse(r.value);
      assert.equal(r.key, accepted.get(event.id), `key of ${event.id}`);
      assert.equal(r.key, `${event.sourceId}/${event.repository}`);
    }
    assert.deepEqual(new Set(records.map((r) => r.value.id)), new Set(accepted.keys()));
  });

  it('200 webhooks at once are all acknowledged, batched into few publishes, and all readable', async () => {
    const prefix = `${topicPrefix}events`;
    const before = (await readTopic(brokers, prefix)).length;
    const N = 200;
    const callsBefore = publishCalls.length;
    const started = Date.now();
    const responses = await Promise.all(Array.from({ length: N }, (_, i) =>
      post(pushArtifact(`burst/repo-${i % 17}`, `v${i}`, digestFor(1000 + i)))));
    const took = Date.now() - started;
    assert.deepEqual(responses.map((r) => r.status), Array(N).fill(200));
    const ids = new Set(responses.flatMap((r) => r.body.ids as string[]));
    assert.equal(ids.size, N);

    const records = await readTopic(brokers, prefix);
    assert.equal(records.length - before, N);
    const burst = records.filter((r) => r.value.repository.startsWith('burst/'));
    assert.deepEqual(new Set(burst.map((r) => r.value.id)), ids);
    // Same repository → same key → same partition, in the order acknowledged per key.
    for (const r of burst) assert.equal(r.key, `harbor-prod/${r.value.repository}`);
    const partitionsPerKey = new Map<string, Set<number>>();
    for (const r of burst) partitionsPerKey.set(r.key, (partitionsPerKey.get(r.key) ?? new Set()).add(r.partition));
    for (const [key, parts] of partitionsPerKey) assert.equal(parts.size, 1, `${key} spread over partitions ${[...parts]}`);
    assert.ok(took < 10000, `200 concurrent webhooks took ${took} ms`);
    // Batched into the producer, not serialised: far fewer publishes than webhooks.
    const calls = publishCalls.slice(callsBefore);
    assert.equal(calls.reduce((a, b) => a + b, 0), N);
    assert.ok(calls.length <= N / 4, `${N} webhooks went out in ${calls.length} publishes`);
  });
});
