// A target that fails for a while: its tasks go through `tasks.retry` and complete once it
// recovers, while another target keeps receiving images meanwhile.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { eventually, startBridgeProcess } from '../support/bridge-process.ts';
import { sharedBrokers, uniquePrefix } from '../support/kafka.ts';
import { harborV2Payload, postWebhook } from '../support/harbor-payloads.ts';
import { pushRandomImage } from '../support/random-images.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { KafkaBus } from '../../src/bus/kafka/kafka-bus.ts';

const SECRET = 'Bearer failing-target';

describe('e2e: one failing target', () => {
  let src: TestRegistry;
  let good: TestRegistry;
  let bad: TestRegistry;
  let proxy: FaultProxy;
  const clients: RegistryClient[] = [];

  before(async () => {
    [src, good, bad] = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
    proxy = await startFaultProxy(bad.url);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await proxy?.stop();
    await Promise.all([src?.stop(), good?.stop(), bad?.stop()]);
  });

  it('retries through tasks.retry until the target recovers, without stalling the healthy one', async () => {
    const prefix = uniquePrefix('failing');
    const cfg = {
      worker: { concurrency: 8, attempts: 2, retryBaseMs: 500, retryMaxMs: 2000, maxRetries: 50 },
      sources: [{ id: 'h', url: src.url, webhookSecrets: [SECRET] }],
      targets: [{ id: 'good', kind: 'registry', url: good.url }, { id: 'bad', kind: 'registry', url: proxy.url }],
      policies: [
        { id: 'to-good', src_registry: 'h', dest_registry: 'good' },
        { id: 'to-bad', src_registry: 'h', dest_registry: 'bad' },
      ],
    };
    proxy.addRule({ action: 'status', status: 503, body: 'down for maintenance' });
    const bridge = await startBridgeProcess({ config: cfg, env: { KAFKA_BROKERS: sharedBrokers(), TOPIC_PREFIX: prefix } });
    const srcClient = new RegistryClient({ url: src.url });
    const goodClient = new RegistryClient({ url: good.url });
    const badClient = new RegistryClient({ url: bad.url });
    clients.push(srcClient, goodClient, badClient);
    try {
      await bridge.waitReady();
      const images: [string, string][] = [];
      for (let i = 0; i < 5; i++) {
        const digest = await pushRandomImage(srcClient, 'team/svc', `v${i}`);
        images.push([`v${i}`, digest]);
        const r = await postWebhook(bridge.url, 'h', harborV2Payload('PUSH_ARTIFACT', 'team/svc', { tag: `v${i}`, digest }), SECRET);
        assert.equal(r.status, 200);
      }
      // The healthy target gets everything while the other one is still down.
      for (const [tag, digest] of images) {
        await eventually(async () => (await goodClient.headManifest('team/svc', tag))?.digest === digest, 60000, `good has ${tag}`);
      }
      const retries = await eventually(async () => {
        const text = await (await fetch(`${bridge.url}/metrics`)).text();
        const m = /^hsb_tasks_total\{target="bad",outcome="retry"\} (\d+)/m.exec(text);
        return m && Number(m[1]) >= 5 ? Number(m[1]) : undefined;
      }, 60000, 'tasks for the failing target to go to the retry topic');
      assert.ok(retries >= 5);
      for (const [tag] of images) assert.equal(await badClient.headManifest('team/svc', tag), null, 'nothing reached the failing target yet');

      proxy.clearRules(); // the target recovers
      for (const [tag, digest] of images) {
        await eventually(async () => (await badClient.headManifest('team/svc', tag))?.digest === digest, 90000, `bad has ${tag} after recovery`);
      }
      const bus = new KafkaBus({ brokers: [sharedBrokers()], topicPrefix: prefix });
      await bus.connect();
      try {
        assert.equal((await bus.readCompacted('dlq')).size, 0, 'transient failures never reach the DLQ');
        const retryDepth = (await bus.inspect()).topics.find((t) => t.topic === 'tasks.retry')!.partitions.reduce((n, p) => n + Number(p.high), 0);
        assert.ok(retryDepth >= 5, 'the failing tasks went through tasks.retry');
      } finally {
        await bus.close();
      }
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${bridge.logs().slice(-4000)}`);
    } finally {
      await bridge.stop();
    }
  });
});
