// Walking skeleton, end to end on real parts: a Harbor push webhook → the bridge (real CLI process)
// → a real Kafka broker → the replicator → a second real registry. The webhook's resource_url names
// another host, which must never be contacted: the source is the configured registry.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { buildImage, inspectDigest, pushImage, type LocalImage } from '../support/images.ts';
import { eventually, startBridgeProcess } from '../support/bridge-process.ts';
import { sharedBrokers, uniquePrefix } from '../support/kafka.ts';
import { harborV2Payload, postWebhook } from '../support/harbor-payloads.ts';
import { KafkaBroker } from '../../scripts/kafka/broker.ts';
import { KafkaBus } from '../../src/bus/kafka/kafka-bus.ts';

const SECRET = 'Bearer e2e-webhook-secret';
const user = { username: 'robot$bridge', password: 'robot-pass-1' };
const targetUser = { username: 'pusher', password: 'push-pass-2' };

function bridgeConfig(src: TestRegistry, dst: TestRegistry) {
  return {
    server: { apiTokens: ['api-token'] },
    sources: [{ id: 'harbor-a', kind: 'harbor', url: src.url, credentials: user, webhookSecrets: [SECRET] }],
    targets: [{ id: 'registry-b', kind: 'registry', url: dst.url, credentials: targetUser }],
    policies: [{ id: 'all', src_registry: 'harbor-a', dest_registry: 'registry-b', trigger: { type: 'event_based' } }],
  };
}

async function eventsDepth(brokers: string, prefix: string): Promise<number> {
  const bus = new KafkaBus({ brokers: [brokers], topicPrefix: prefix });
  await bus.connect();
  try {
    const info = await bus.inspect();
    return info.topics.find((t) => t.topic === 'events')!.partitions.reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
  } finally {
    await bus.close();
  }
}

describe('e2e: Harbor push reaches a second registry through Kafka', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let image: LocalImage;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry({ auth: 'basic', users: [user] }), startRegistry({ auth: 'token', users: [targetUser] })]);
    image = await buildImage({ layers: [3 * 1024 * 1024, 200 * 1024] });
    await pushImage(image, src, 'library/demo', 'v1', user);
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop(), image?.cleanup()]);
  });

  it('copies the pushed image with the same digest and blobs; bad Authorization publishes nothing', async () => {
    const prefix = uniquePrefix('e2e');
    const bridge = await startBridgeProcess({ config: bridgeConfig(src, dst), env: { KAFKA_BROKERS: sharedBrokers(), TOPIC_PREFIX: prefix } });
    let decoy: Server | undefined;
    try {
      await bridge.waitReady();
      const body = harborV2Payload('PUSH_ARTIFACT', 'library/demo', { tag: 'v1', digest: image.digest });

      const wrong = await postWebhook(bridge.url, 'harbor-a', body, 'Bearer not-the-secret');
      assert.equal(wrong.status, 401);
      const missing = await postWebhook(bridge.url, 'harbor-a', body);
      assert.equal(missing.status, 401);
      assert.equal(await eventsDepth(sharedBrokers(), prefix), 0, 'refused webhooks must publish nothing');

      // resource_url is information only: a listener at the host it names counts any connection.
      let decoyConnections = 0;
      const listening = createServer((socket) => { decoyConnections++; socket.destroy(); });
      decoy = listening;
      await new Promise<void>((r) => listening.listen(0, '127.0.0.1', r));
      const decoyHost = `127.0.0.1:${(listening.address() as { port: number }).port}`;
      body.event_data.resources[0]!.resource_url = `${decoyHost}/library/demo:v1`;

      const ok = await postWebhook(bridge.url, 'harbor-a', body, SECRET);
      assert.equal(ok.status, 200, await ok.clone().text());
      assert.equal((await ok.json() as { accepted: number }).accepted, 1);
      assert.equal(await eventsDepth(sharedBrokers(), prefix), 1);

      const digest = await eventually(async () => {
        const d = await inspectDigest(dst, 'library/demo', 'v1', targetUser).catch(() => undefined);
        return d === image.digest ? d : undefined;
      }, 60000, 'the image in registry B');
      assert.equal(digest, image.digest);
      const stored = new Set(await dst.storedBlobs());
      for (const blob of [image.config!, ...image.layers]) assert.ok(stored.has(blob.digest), `registry B lacks blob ${blob.digest}`);
      for (const blob of image.layers) assert.ok(await dst.blobLinkedIn('library/demo', blob.digest));
      assert.equal(decoyConnections, 0, `the bridge contacted ${decoyHost}, the webhook's resource_url`);
    } finally {
      decoy?.close();
      assert.equal(await bridge.stop(), 0, `bridge did not shut down cleanly:\n${bridge.logs().slice(-3000)}`);
    }
  });

  it('answers 503 with Retry-After while the broker is down, and accepts the same webhook once it is back', async () => {
    const broker = new KafkaBroker(mkdtempSync(join(tmpdir(), 'hsb-kafka-')));
    await broker.start();
    const prefix = uniquePrefix('e2e-down');
    const bridge = await startBridgeProcess({ config: bridgeConfig(src, dst), env: { KAFKA_BROKERS: broker.brokers, TOPIC_PREFIX: prefix } });
    try {
      await bridge.waitReady();
      await broker.stop();
      const body = harborV2Payload('PUSH_ARTIFACT', 'library/demo', { tag: 'v1', digest: image.digest });
      const started = Date.now();
      const refused = await postWebhook(bridge.url, 'harbor-a', body, SECRET);
      assert.equal(refused.status, 503);
      assert.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After must be set');
      assert.ok(Date.now() - started < 3000, 'Harbor gives up after 3 s: the refusal must come sooner');
      // A failed publish makes the process unready, so a load balancer stops sending webhooks to it.
      const unready = await fetch(`${bridge.url}/readyz`);
      assert.equal(unready.status, 503);
      assert.equal((await unready.json() as { busConnected: boolean }).busConnected, false);

      await broker.start();
      // Ready again once the brokers answer, before any webhook has been tried.
      await eventually(async () => ((await fetch(`${bridge.url}/readyz`)).status === 200 ? true : undefined), 60000, '/readyz to recover after the broker restart', 500);
      const accepted = await eventually(async () => {
        const r = await postWebhook(bridge.url, 'harbor-a', body, SECRET);
        return r.status === 200 ? r : undefined;
      }, 60000, 'the webhook to be accepted after the broker restart', 500);
      assert.equal(accepted.status, 200);
      assert.equal(await eventsDepth(broker.brokers, prefix), 1, 'only the accepted webhook may be on the topic');
    } finally {
      await bridge.stop();
      await broker.stop();
    }
  });
});
