// SIGTERM during a copy: the process stops taking work, abandons the in-flight task after the
// shutdown deadline without committing it, exits cleanly, and the next worker finishes the task.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { eventually, startBridgeProcess, writeConfig } from '../support/bridge-process.ts';
import { sharedBrokers, uniquePrefix } from '../support/kafka.ts';
import { harborV2Payload, postWebhook } from '../support/harbor-payloads.ts';
import { pushRandomImage } from '../support/random-images.ts';
import { RegistryClient } from '../../src/registry/client.ts';

const SECRET = 'Bearer shutdown';

describe('e2e: graceful shutdown', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let proxy: FaultProxy;
  let srcClient: RegistryClient;
  let dstClient: RegistryClient;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    proxy = await startFaultProxy(dst.url);
    srcClient = new RegistryClient({ url: src.url });
    dstClient = new RegistryClient({ url: dst.url });
  });
  after(async () => {
    await Promise.all([srcClient?.close(), dstClient?.close(), proxy?.stop()]);
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  it('abandons an in-flight copy on SIGTERM without committing it; the next process completes it', async () => {
    const env = { KAFKA_BROKERS: sharedBrokers(), TOPIC_PREFIX: uniquePrefix('shutdown') };
    const configFile = writeConfig({
      worker: { shutdownTimeoutMs: 1000, attempts: 1 },
      sources: [{ id: 'h', url: src.url, webhookSecrets: [SECRET] }],
      targets: [{ id: 't', kind: 'registry', url: proxy.url }],
      policies: [{ id: 'all', src_registry: 'h', dest_registry: 't' }],
    });
    // Every manifest PUT to the target hangs for a minute: the copy is in flight when SIGTERM comes.
    proxy.addRule({ match: { method: 'PUT', path: /\/manifests\// }, action: 'delay', ms: 60000 });
    const first = await startBridgeProcess({ config: null, configFile, env });
    await first.waitReady();
    const digest = await pushRandomImage(srcClient, 'svc/api', 'v1');
    assert.equal((await postWebhook(first.url, 'h', harborV2Payload('PUSH_ARTIFACT', 'svc/api', { tag: 'v1', digest }), SECRET)).status, 200);
    await eventually(async () => proxy.requests.some((r) => r.method === 'PUT' && r.path.includes('/manifests/')), 30000, 'the manifest PUT to be in flight');

    const signalled = Date.now();
    assert.equal(await first.stop(), 0, 'clean exit on SIGTERM');
    assert.ok(Date.now() - signalled < 20000, 'the shutdown deadline bounds the wait for in-flight work');
    assert.match(first.logs(), /shutting down/);
    assert.doesNotMatch(first.logs(), /"msg":"task finished"/, 'the abandoned task was not recorded as done');

    proxy.clearRules();
    const second = await startBridgeProcess({ config: null, configFile, env });
    try {
      await second.waitReady();
      await eventually(async () => (await dstClient.headManifest('svc/api', 'v1'))?.digest === digest, 60000, 'the task to be redelivered and completed');
    } finally {
      await second.stop();
    }
  });
});
