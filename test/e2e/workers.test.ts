// The replicator group under crashes, rebalances, re-ordered and duplicated events, on the real
// broker and real registries, with the bridge's own CLI processes (`serve` + `work`). In the crash
// and rebalance runs the source refuses listings (catalog, Harbor API), so the start-up reconcile
// of each new worker cannot heal a lost task: every copy must come through its webhook.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { eventually, startBridgeProcess, writeConfig, type BridgeProcess } from '../support/bridge-process.ts';
import { sharedBrokers, uniquePrefix } from '../support/kafka.ts';
import { harborV2Payload, postWebhook } from '../support/harbor-payloads.ts';
import { pushRandomImage } from '../support/random-images.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { KafkaBus } from '../../src/bus/kafka/kafka-bus.ts';
import { EmbeddedBus } from '../../src/bus/embedded/sqlite-bus.ts';
import type { Bus } from '../../src/bus/port.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SECRET = 'Bearer workers-secret';

function config(src: { url: string }, dst: TestRegistry, deletion = true) {
  return {
    worker: { concurrency: 8, attempts: 3, retryBaseMs: 300, retryMaxMs: 2000, shutdownTimeoutMs: 5000 },
    sources: [{ id: 'h', url: src.url, webhookSecrets: [SECRET] }],
    targets: [{ id: 't', kind: 'registry', url: dst.url }],
    policies: [{ id: 'all', src_registry: 'h', dest_registry: 't', deletion }],
  };
}

async function deliver(url: string, body: unknown): Promise<void> {
  await eventually(async () => (await postWebhook(url, 'h', body, SECRET)).status === 200, 20000, 'webhook accepted', 250);
}

/** Environment for bridge processes on one bus, and a way to open that bus from the test. */
interface BusUnderTest { env: Record<string, string | undefined>; open(): Bus }

function busUnderTest(kind: 'kafka' | 'embedded', name: string): BusUnderTest {
  if (kind === 'kafka') {
    const prefix = uniquePrefix(name);
    return { env: { KAFKA_BROKERS: sharedBrokers(), TOPIC_PREFIX: prefix }, open: () => new KafkaBus({ brokers: [sharedBrokers()], topicPrefix: prefix }) };
  }
  const dataDir = mkdtempSync(join(tmpdir(), `hsb-${name}-`));
  return { env: { KAFKA_BROKERS: undefined, DATA_DIR: dataDir }, open: () => new EmbeddedBus({ dataDir }) };
}

async function dlqDepth(b: BusUnderTest): Promise<number> {
  const bus = b.open();
  await bus.connect();
  try {
    return (await bus.readCompacted('dlq')).size;
  } finally {
    await bus.close();
  }
}

async function startWorker(configFile: string, env: Record<string, string | undefined>): Promise<BridgeProcess> {
  const w = await startBridgeProcess({ config: null, configFile, command: 'work', env });
  await w.waitForLog(/workers started/);
  return w;
}

for (const kind of ['kafka', 'embedded'] as const) describe(`e2e: replicator group on the ${kind} bus`, () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  /** The source as the bridge sees it in the crash and rebalance runs: no listings. */
  let unlistable: FaultProxy;
  let srcClient: RegistryClient;
  let dstClient: RegistryClient;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    unlistable = await startFaultProxy(src.url);
    unlistable.addRule({ match: { path: /\/_catalog|\/api\// }, action: 'status', status: 503 });
    srcClient = new RegistryClient({ url: src.url });
    dstClient = new RegistryClient({ url: dst.url });
  });
  after(async () => {
    await Promise.all([srcClient?.close(), dstClient?.close()]);
    await unlistable?.stop();
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  it('loses nothing when workers are SIGKILLed at random moments during 200 pushes', async () => {
    const b = busUnderTest(kind, 'crash');
    const env = b.env;
    const configFile = writeConfig(config(unlistable, dst));
    const serve = await startBridgeProcess({ config: null, configFile, command: 'serve', env });
    let worker = await startWorker(configFile, env);
    // Five kills at random points of the run; the replacement starts while pushes go on.
    const killAt = new Set<number>();
    while (killAt.size < 5) killAt.add(10 + Math.floor(Math.random() * 180));
    let restarting: Promise<void> = Promise.resolve();
    const expected = new Map<string, string>();
    try {
      await serve.waitReady();
      for (let i = 0; i < 200; i++) {
        const repo = `crash/r${i % 10}`;
        const tag = `t${i}`;
        const digest = await pushRandomImage(srcClient, repo, tag);
        expected.set(`${repo}:${tag}`, digest);
        await deliver(serve.url, harborV2Payload('PUSH_ARTIFACT', repo, { tag, digest }));
        if (killAt.has(i)) {
          await restarting;
          await worker.kill();
          restarting = sleep(Math.random() * 1000).then(async () => { worker = await startWorker(configFile, env); });
        }
      }
      await restarting;
      for (const [ref, digest] of expected) {
        const [repo, tag] = ref.split(':') as [string, string];
        await eventually(async () => (await dstClient.headManifest(repo, tag))?.digest === digest, 120000, `${ref} in the target`, 250);
      }
      assert.equal(await dlqDepth(b), 0, 'nothing may be dead-lettered');
      assert.ok(unlistable.requests.some((r) => r.path.includes('/_catalog') && r.status === 503), 'the start-up passes were refused their listing');
      assert.equal(await worker.stop(), 0);
    } finally {
      await restarting.catch(() => undefined);
      await worker.kill();
      await serve.stop();
    }
  });

  it('shares the load between two workers and loses nothing when one leaves', async () => {
    const env = busUnderTest(kind, 'pair').env;
    const configFile = writeConfig(config(unlistable, dst));
    const serve = await startBridgeProcess({ config: null, configFile, command: 'serve', env });
    await serve.waitReady();
    const a = await startWorker(configFile, env);
    const b = await startWorker(configFile, env);
    try {
      await sleep(3000); // let the group settle with two members
      const expected = new Map<string, string>();
      for (let i = 0; i < 60; i++) {
        const repo = `pair/r${i % 12}`;
        const tag = `v${i}`;
        expected.set(`${repo}:${tag}`, await pushRandomImage(srcClient, repo, tag));
        await deliver(serve.url, harborV2Payload('PUSH_ARTIFACT', repo, { tag, digest: expected.get(`${repo}:${tag}`)! }));
        if (i === 40) await b.stop(); // a member leaves mid-run: its partitions move to the other
      }
      for (const [ref, digest] of expected) {
        const [repo, tag] = ref.split(':') as [string, string];
        await eventually(async () => (await dstClient.headManifest(repo, tag))?.digest === digest, 90000, `${ref} in the target`, 250);
      }
      const finished = (w: BridgeProcess) => (w.logs().match(/"msg":"task finished"/g) ?? []).length;
      assert.ok(finished(a) > 0, 'worker A did some of the work');
      assert.ok(finished(b) > 0, 'worker B did some of the work');
    } catch (e) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(join(tmpdir(), 'worker-a.log'), a.logs());
      writeFileSync(join(tmpdir(), 'worker-b.log'), b.logs());
      throw new Error(`${(e as Error).message} (worker logs in ${tmpdir()}/worker-{a,b}.log)`);
    } finally {
      await Promise.all([a.stop(), b.stop(), serve.stop()]);
    }
  });

  it('converges to the source whatever the order of push, delete and push events', async () => {
    const env = busUnderTest(kind, 'order').env;
    const bridge = await startBridgeProcess({ config: config(src, dst), env });
    await bridge.waitReady();
    try {
      const repo = 'order/app';
      const first = await pushRandomImage(srcClient, repo, 'stable');
      const second = await pushRandomImage(srcClient, repo, 'stable'); // tag moved: the source now says `second`
      const gone = await pushRandomImage(srcClient, repo, 'old');
      await srcClient.deleteManifest(repo, gone); // deleted in the source
      // Events arrive late, duplicated and out of order.
      const events = [
        harborV2Payload('PUSH_ARTIFACT', repo, { tag: 'stable', digest: second }, 1000),
        harborV2Payload('DELETE_ARTIFACT', repo, { tag: 'stable', digest: first }, 999),
        harborV2Payload('PUSH_ARTIFACT', repo, { tag: 'stable', digest: first }, 998),
        harborV2Payload('PUSH_ARTIFACT', repo, { tag: 'stable', digest: first }, 998),
        harborV2Payload('PUSH_ARTIFACT', repo, { tag: 'old', digest: gone }, 997),
        harborV2Payload('DELETE_ARTIFACT', repo, { tag: 'old', digest: gone }, 1001),
      ];
      for (const e of events) await deliver(bridge.url, e);
      await eventually(async () => (await dstClient.headManifest(repo, 'stable'))?.digest === second, 60000, 'stable = the source digest')
        .catch((e) => { throw new Error(`${(e as Error).message}\n${bridge.logs().slice(-5000)}`); });
      // Let every event finish, then the end state must still equal the source.
      await eventually(async () => {
        const body = await (await fetch(`${bridge.url}/metrics`)).text();
        const done = [...body.matchAll(/^hsb_tasks_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
        return done >= events.length - 1; // the exact duplicate is dropped by the planner
      }, 60000, 'all tasks finished');
      assert.equal((await dstClient.headManifest(repo, 'stable'))?.digest, second);
      assert.equal(await dstClient.headManifest(repo, 'old'), null, 'a tag deleted in the source is not in the target');
    } finally {
      await bridge.stop();
    }
  });
});

describe('e2e: a webhook that never arrived', () => {
  it('is healed by the reconcile pass every worker runs at start', async () => {
    const [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    const srcClient = new RegistryClient({ url: src.url });
    const dstClient = new RegistryClient({ url: dst.url });
    try {
      const digest = await pushRandomImage(srcClient, 'missed/app', 'v7'); // no webhook for this push
      const bridge = await startBridgeProcess({ config: config(src, dst), env: busUnderTest('kafka', 'missed').env });
      try {
        await bridge.waitReady();
        await eventually(async () => (await dstClient.headManifest('missed/app', 'v7'))?.digest === digest, 60000, 'the reconciler to copy the image');
      } finally {
        await bridge.stop();
      }
    } finally {
      await Promise.all([srcClient.close(), dstClient.close()]);
      await Promise.all([src.stop(), dst.stop()]);
    }
  });
});
