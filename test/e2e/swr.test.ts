// SWR as a target, end to end on real parts: Harbor webhooks → the bridge (the real CLI as a
// child process) → a real Kafka broker → the replicator → a stand-in SWR region: the management
// API test double in front of a real registry that only accepts SWR's `<project>@<AK>` logins
// (test/support/swr-stack.ts). One source, one SWR stack, one bridge and one topic prefix for the
// whole file; each test uses its own source repository and policy.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { MT, buildImage, buildIndex, inspectDigest, inspectRaw, pushImage, type LocalImage } from '../support/images.ts';
import { eventually, startBridgeProcess, type BridgeProcess } from '../support/bridge-process.ts';
import { sharedBrokers, uniquePrefix } from '../support/kafka.ts';
import { harborV2Payload, postWebhook } from '../support/harbor-payloads.ts';
import { DOCKER_ACCEPT, startSwrStack, type SwrStack, type TimelineEntry } from '../support/swr-stack.ts';
import { KafkaBus } from '../../src/bus/kafka/kafka-bus.ts';
import type { ConsumerHandle } from '../../src/bus/port.ts';
import type { DeadLetter } from '../../src/replication/dead-letter.ts';
import { taskKey, type ReplicationTaskInput, type TaskResult } from '../../src/replication/task.ts';

const SECRET = 'Bearer e2e-swr-webhook-secret';
const robot = { username: 'robot$bridge', password: 'robot-pass-1' };
const US = { name: 'us', ak: 'HSBE2EUSAK0000000001', sk: 'e2e-us-secret/+=key' };
const FULL = { name: 'full', ak: 'HSBE2EFULLAK00000001', sk: 'e2e-full-secret-key' };
const PROJECT = 'cn-north-4';

// Harbor's replication-policy shape. replace count 1: `library/app` → `<ns>/app`.
function policy(id: string, repo: string, destNamespace: string, extra: Record<string, unknown> = {}) {
  return {
    id, src_registry: 'harbor-a', dest_registry: 'swr-us', dest_namespace: destNamespace, dest_namespace_replace_count: 1,
    filters: [{ type: 'name', value: repo }], trigger: { type: 'event_based' }, ...extra,
  };
}

function bridgeConfig(src: TestRegistry, swr: SwrStack) {
  return {
    server: { apiTokens: ['api-token'] },
    worker: { retryBaseMs: 500, retryMaxMs: 2000 },
    sources: [{ id: 'harbor-a', kind: 'harbor', url: src.url, credentials: robot, webhookSecrets: [SECRET] }],
    // No edition and no manifestFormat: SWR Basic, so Docker formats by default.
    targets: [swr.target('swr-us', 'us'), swr.target('swr-full', 'full')],
    policies: [
      policy('first-push', 'library/app', 'myorg'),
      policy('taken', 'library/taken', 'takenorg'),
      policy('quota', 'library/quota', 'neworg', { dest_registry: 'swr-full' }),
      // Harbor accepts `9lives` as a namespace; SWR does not (an organisation starts with a letter).
      // An empty dest_namespace keeps the source path, whose project SWR refuses as an organisation: known
      // only per artifact, so refused at planning. One written in dest_namespace is refused when the config loads.
      policy('bad-name', '9lives/badname', ''),
      policy('multi-arch', 'library/multi', 'myorg'),
      policy('deletes', 'library/team/**', 'myorg', { deletion: true }),
    ],
  };
}

/** Records `results` and `dlq` as they arrive, through a consumer group of the test's own. */
class Watch {
  results: TaskResult[] = [];
  dlq: DeadLetter[] = [];
  #bus: KafkaBus;
  #handle: ConsumerHandle | undefined;
  #logs: () => string;
  constructor(brokers: string, prefix: string, logs: () => string) {
    this.#bus = new KafkaBus({ brokers: [brokers], topicPrefix: prefix });
    this.#logs = logs;
  }
  /** `eventually`, with the end of the bridge's log in the timeout message. */
  async #wait<T>(fn: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    try {
      return await eventually(async () => fn(), timeoutMs, what);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- bridge log (end) ---\n${this.#logs().slice(-5000)}`);
    }
  }
  async start(): Promise<void> {
    await this.#bus.connect();
    this.#handle = await this.#bus.subscribe({ group: `e2e-watch-${randomBytes(4).toString('hex')}`, topics: ['results', 'dlq'], fromBeginning: true }, async (batch) => {
      for (const m of batch) {
        if (m.topic === 'results') this.results.push(m.value as TaskResult);
        else if (m.topic === 'dlq' && m.value) this.dlq.push(m.value as DeadLetter);
      }
    });
  }
  publishTask(task: ReplicationTaskInput): Promise<void> {
    return this.#bus.publish('tasks', [{ key: taskKey(task), value: task }]);
  }
  /** Waits for a result; a dead letter for the same destination fails at once, with its error. */
  async result(dest: string, status: TaskResult['status'], timeoutMs = 60000): Promise<TaskResult> {
    let letter: DeadLetter | undefined;
    const r = await this.#wait(() => {
      letter = status === 'dlq' ? undefined : this.dlq.find((l) => l.task?.destRepository === dest);
      return letter ?? this.results.find((x) => x.destRepository === dest && x.status === status);
    }, timeoutMs, `a ${status} result for ${dest}`);
    if (letter) assert.fail(`${dest} was dead-lettered instead: ${letter.error.code} ${letter.error.message}`);
    return r as TaskResult;
  }
  letter(dest: string, timeoutMs = 60000): Promise<DeadLetter> {
    return this.#wait(() => this.dlq.find((l) => l.task?.destRepository === dest), timeoutMs, `a dead letter for ${dest}`);
  }
  async stop(): Promise<void> {
    await this.#handle?.stop();
    await this.#bus.close();
  }
}

const basic = (c: { username: string; password: string }) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
const registryHits = (swr: SwrStack, ns: string) => swr.timeline.filter((e) => e.via === 'registry' && e.path.startsWith(`/v2/${ns}/`));
const apiHits = (swr: SwrStack, pred: (e: TimelineEntry) => boolean) => swr.timeline.filter((e) => e.via === 'api' && pred(e));

describe('e2e: Harbor → bridge → SWR (management API double + a real registry with SWR logins)', () => {
  let src: TestRegistry;
  let swr: SwrStack;
  let bridge: BridgeProcess;
  let watch: Watch;
  let image: LocalImage;
  const prefix = uniquePrefix('e2e-swr');

  before(async () => {
    [src, swr, image] = await Promise.all([
      startRegistry({ auth: 'basic', users: [robot] }),
      startSwrStack({ project: PROJECT, tenants: [US, FULL] }),
      buildImage({ layers: [512 * 1024, 64 * 1024], mediaTypes: 'docker' }),
    ]);
    // takenorg belongs to another tenant; `full` is at SWR's default quota of 5 organisations.
    swr.double.addNamespace('someone-else', 'takenorg');
    for (let i = 1; i <= 5; i++) swr.double.addNamespace('full', `full-org-${i}`);
    bridge = await startBridgeProcess({ config: bridgeConfig(src, swr), env: { KAFKA_BROKERS: sharedBrokers(), TOPIC_PREFIX: prefix } });
    watch = new Watch(sharedBrokers(), prefix, () => bridge.logs());
    await Promise.all([bridge.waitReady(), watch.start()]);
    // The start-up reconcile pass (one line per policy) must be over before the tests push, or
    // it would race them with tasks of its own.
    const policies = bridgeConfig(src, swr).policies.length;
    await eventually(async () => (bridge.logs().match(/"component":"reconciler".*"msg":"reconcile (planned|of this policy failed)"/g) ?? []).length >= policies,
      30000, 'the start-up reconcile pass');
  });
  after(async () => {
    const code = await bridge?.stop();
    await watch?.stop();
    await Promise.all([src?.stop(), swr?.stop(), image?.cleanup()]);
    assert.equal(code, 0, `bridge did not shut down cleanly:\n${bridge?.logs().slice(-3000)}`);
  });

  async function pushAndNotify(img: LocalImage, repo: string, tag = 'v1'): Promise<void> {
    await pushImage(img, src, repo, tag, robot);
    const r = await postWebhook(bridge.url, 'harbor-a', harborV2Payload('PUSH_ARTIFACT', repo, { tag, digest: img.digest }), SECRET);
    assert.equal(r.status, 200, await r.text());
  }

  it('first push creates the organisation (signed POST) before writing into it, and pushes with the <project>@<AK> login', async () => {
    await pushAndNotify(image, 'library/app');
    const result = await watch.result('myorg/app', 'done');
    assert.equal(result.digest, image.digest, 'a Docker image is copied digest-exact');

    const creates = apiHits(swr, (e) => e.method === 'POST' && e.path === '/v2/manage/namespaces');
    assert.equal(creates.length, 1, 'exactly one organisation create');
    const create = creates[0]!;
    assert.equal(create.status, 201);
    assert.deepEqual(JSON.parse(create.body ?? ''), { namespace: 'myorg' });
    assert.match(create.authorization ?? '', new RegExp(`^SDK-HMAC-SHA256 Access=${US.ak}, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$`));
    // The double accepted the signature (it recomputes it with the tenant's SK) and credited us.
    const seen = swr.double.requests.find((r) => r.method === 'POST' && r.url === '/v2/manage/namespaces');
    assert.equal(seen?.tenant, 'us');
    assert.ok(swr.double.namespacesOf('us').includes('myorg'));

    // Reads of the target may come first (a reconcile lists its tags); the first write may not.
    const pushes = registryHits(swr, 'myorg');
    const firstWrite = pushes.find((e) => e.method !== 'GET' && e.method !== 'HEAD');
    assert.ok(firstWrite, 'the image was written through the registry');
    assert.ok(create.seq < firstWrite.seq, `the organisation must exist before the first write into it:\n${swr.timeline.map((e) => `${e.seq} ${e.via} ${e.method} ${e.path} ${e.status}`).join('\n')}`);

    // Authenticated registry requests all used the SWR login; the registry accepts no other user.
    const users = new Set(pushes.map((e) => e.basicUser).filter((u) => u !== undefined));
    assert.deepEqual([...users], [`${PROJECT}@${US.ak}`]);
    assert.equal(await inspectDigest(swr.registry, 'myorg/app', 'v1', swr.login('us')), image.digest);
    const probe = async (c: { username: string; password: string }) => (await fetch(`${swr.registry.url}/v2/`, { headers: { authorization: basic(c) } })).status;
    assert.equal(await probe(swr.login('us')), 200);
    assert.equal(await probe({ username: `${PROJECT}@${US.ak}`, password: US.sk }), 401, 'the SK itself is not the password');
    assert.equal(await probe({ username: US.ak, password: swr.login('us').password }), 401, 'the user needs the project prefix');
  });

  it('an organisation owned by another tenant (409, then GET 404) dead-letters the task with HSB_SWR_NAMESPACE_TAKEN and pushes nothing', async () => {
    await pushAndNotify(image, 'library/taken');
    const letter = await watch.letter('takenorg/taken');
    assert.equal(letter.error.code, 'HSB_SWR_NAMESPACE_TAKEN', letter.error.message);
    assert.equal(letter.error.retryable, false);
    assert.match(letter.error.message, /takenorg/);
    assert.equal(letter.attempts, 1, 'a permanent error is not retried');
    const calls = apiHits(swr, (e) => e.body?.includes('takenorg') === true || e.path.includes('takenorg'));
    assert.deepEqual(calls.map((e) => `${e.method} ${e.path} ${e.status}`), ['POST /v2/manage/namespaces 409', 'GET /v2/manage/namespaces/takenorg 404']);
    assert.deepEqual(registryHits(swr, 'takenorg'), [], 'nothing reached the registry');
    assert.ok(!watch.results.some((r) => r.destRepository === 'takenorg/taken' && r.status === 'done'));
  });

  it('organisation quota reached: dead letter with SWR\'s quota code, nothing pushed', async () => {
    await pushAndNotify(image, 'library/quota');
    const letter = await watch.letter('neworg/quota');
    assert.equal(letter.error.code, 'HSB_SWR_QUOTA', letter.error.message);
    assert.equal(letter.error.retryable, false);
    assert.match(letter.error.message, /SVCSTG\.SWR\.4000097/);
    const creates = apiHits(swr, (e) => e.method === 'POST' && e.body?.includes('neworg') === true);
    assert.deepEqual(creates.map((e) => e.status), [400]);
    assert.equal(swr.double.namespacesOf('full').length, 5);
    assert.deepEqual(registryHits(swr, 'neworg'), []);
  });

  it('names SWR refuses never reach SWR: the planner skips the policy, and a task that bypasses it is dead-lettered before any traffic', async () => {
    await pushAndNotify(image, '9lives/badname');
    await bridge.waitForLog(/"policy":"bad-name".*HSB_SWR_NAME_INVALID|HSB_SWR_NAME_INVALID.*"policy":"bad-name"/, 30000);

    // A task carrying a bad destination (an old task, a replay, a hand-written one) is refused by
    // the replicator's own check, before the organisation call or the push.
    const now = new Date().toISOString();
    await watch.publishTask({
      schema: 1, id: `bad-dest-${randomBytes(4).toString('hex')}`, eventId: 'manual-bad-dest', action: 'push', origin: 'manual',
      sourceId: 'harbor-a', repository: 'library/app', tag: 'v1', targetId: 'swr-us', destRepository: 'My_Org/app', policyId: 'manual',
      options: { deletion: false, override: true, referrers: false }, attempt: 0, occurredAt: now, createdAt: now,
    });
    const letter = await watch.letter('My_Org/app');
    assert.equal(letter.error.code, 'HSB_SWR_NAME_INVALID', letter.error.message);
    assert.equal(letter.error.retryable, false);

    for (const name of ['9lives', 'My_Org', 'my_org']) {
      assert.deepEqual(swr.timeline.filter((e) => e.url.includes(name) || e.body?.includes(name)), [], `no request for ${name} reached SWR`);
    }
    assert.ok(!watch.results.some((r) => r.destRepository.startsWith('9lives/')), 'the planner made no task for the bad policy');
    assert.ok(!watch.dlq.some((l) => l.task?.destRepository.startsWith('9lives/')));
  });

  it('an OCI index is converted for SWR Basic: a Docker manifest list of Docker schema2 images', async () => {
    const index = await buildIndex({
      images: [
        { layers: [128 * 1024], platform: { os: 'linux', architecture: 'amd64' } },
        { layers: [96 * 1024], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    });
    try {
      await pushAndNotify(index, 'library/multi');
      const result = await watch.result('myorg/multi', 'done');
      const raw = await inspectRaw(swr.registry, 'myorg/multi', 'v1', swr.login('us'));
      const list = JSON.parse(raw.toString('utf8')) as { mediaType: string; manifests: { mediaType: string; digest: string; platform: { architecture: string } }[] };
      assert.equal(list.mediaType, MT.dockerList);
      assert.notEqual(result.digest, index.digest, 'converted, so the digest differs from the OCI source');
      assert.deepEqual(list.manifests.map((m) => m.platform.architecture).sort(), ['amd64', 'arm64']);
      for (const child of list.manifests) {
        assert.equal(child.mediaType, MT.dockerManifest);
        const m = JSON.parse((await inspectRaw(swr.registry, 'myorg/multi', child.digest, swr.login('us'))).toString('utf8')) as {
          mediaType: string; config: { mediaType: string; digest: string }; layers: { mediaType: string; digest: string }[];
        };
        assert.equal(m.mediaType, MT.dockerManifest);
        assert.equal(m.config.mediaType, MT.dockerConfig);
        const source = index.children.find((c) => c.config!.digest === m.config.digest);
        assert.ok(source, 'the config blob is the source child\'s, unchanged');
        assert.deepEqual(m.layers.map((l) => l.mediaType), source.layers.map(() => MT.dockerLayerGzip));
        assert.deepEqual(m.layers.map((l) => l.digest), source.layers.map((l) => l.digest));
      }
      // myorg is known from the first push: no second create.
      assert.equal(apiHits(swr, (e) => e.method === 'POST' && e.body?.includes('"myorg"') === true).length, 1);
    } finally {
      await index.cleanup();
    }
  });

  it('a tag deleted in Harbor is deleted in SWR through the management API ($ for / in nested repositories)', async () => {
    await pushAndNotify(image, 'library/team/tool');
    await watch.result('myorg/team/tool', 'done');
    assert.equal(await inspectDigest(swr.registry, 'myorg/team/tool', 'v1', swr.login('us')), image.digest);

    // Harbor deletes the artifact, then sends DELETE_ARTIFACT.
    const del = await fetch(`${src.url}/v2/library/team/tool/manifests/${image.digest}`, { method: 'DELETE', headers: { authorization: basic(robot) } });
    assert.equal(del.status, 202);
    const r = await postWebhook(bridge.url, 'harbor-a', harborV2Payload('DELETE_ARTIFACT', 'library/team/tool', { tag: 'v1', digest: image.digest }), SECRET);
    assert.equal(r.status, 200, await r.text());
    await watch.result('myorg/team/tool', 'deleted');

    const deletes = apiHits(swr, (e) => e.method === 'DELETE');
    assert.deepEqual(deletes.map((e) => `${e.path} ${e.status}`), ['/v2/manage/namespaces/myorg/repos/team$tool/tags/v1 204']);
    assert.deepEqual(swr.deletedTags, [{ tenant: 'us', namespace: 'myorg', repository: 'team/tool', tag: 'v1' }]);
    const head = await fetch(`${swr.registry.url}/v2/myorg/team/tool/manifests/v1`, { method: 'HEAD', headers: { authorization: basic(swr.login('us')), accept: DOCKER_ACCEPT } });
    assert.equal(head.status, 404, 'the tag is gone from the target');
    assert.equal(registryHits(swr, 'myorg/team').filter((e) => e.method === 'DELETE').length, 0, 'the bridge deleted through the API, not the registry');
  });
});
