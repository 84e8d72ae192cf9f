// Reconciler against real distribution registries: the plan is exactly the differences between
// source and target; executing it converges the target; Harbor sources whose robots may not read
// the catalog are listed through Harbor's project API; label filters read labels from Harbor's API.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { buildImage, buildIndex, inspectDigest, pushImage, type LocalImage } from '../../support/images.ts';
import { ConfigSchema, type Config } from '../../../src/config/schema.ts';
import { createLogger, silentLogger } from '../../../src/observability/logger.ts';
import { Endpoints } from '../../../src/replication/endpoints.ts';
import { Reconciler } from '../../../src/replication/reconciler.ts';
import { executeTask } from '../../../src/replication/execute.ts';
import { ReplicationTaskSchema, type ReplicationTask } from '../../../src/replication/task.ts';
import { startHarborDouble, type HarborDouble } from '../../support/harbor-api-double.ts';
import { startFaultProxy } from '../../support/fault-proxy.ts';

const user = { username: 'robot$bridge', password: 'src-pass-1' };
const pusher = { username: 'pusher', password: 'dst-pass-2' };

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f().catch(() => undefined); });

const summary = (tasks: ReplicationTask[]) => tasks.map((t) => `${t.action} ${t.repository}:${t.tag} -> ${t.destRepository}`).sort();

function config(src: { url: string; registryUrl?: string }, dst: TestRegistry, policies: unknown[]): Config {
  return ConfigSchema.parse({
    sources: [{ id: 'harbor-a', kind: 'harbor', ...src, credentials: user, insecure: true }],
    targets: [{ id: 'backup', kind: 'registry', url: dst.url, credentials: pusher }],
    policies,
  });
}

describe('reconciler: plan is the difference between source and target', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  const img: Record<'A' | 'B' | 'C' | 'D', LocalImage> = {} as never;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry({ auth: 'basic', users: [user] }), startRegistry({ auth: 'basic', users: [pusher] })]);
    cleanup.push(() => src.stop(), () => dst.stop());
    for (const k of ['A', 'B', 'C', 'D'] as const) {
      img[k] = await buildImage({ layers: [2048, 40_000] });
      cleanup.push(() => img[k].cleanup());
    }
    // Source: 3 repositories, 5 tags.
    await pushImage(img.A, src, 'library/app', 'v1');
    await pushImage(img.B, src, 'library/app', 'v2');
    await pushImage(img.C, src, 'library/tool', 'v1');
    await pushImage(img.A, src, 'library/tool', 'latest');
    await pushImage(img.B, src, 'other/svc', 'v1');
    // Target: app:v1 and tool:v1 in step, app:v2 stale, app:old extra; tool:latest and other/svc missing.
    await pushImage(img.A, dst, 'library/app', 'v1');
    await pushImage(img.C, dst, 'library/app', 'v2');
    await pushImage(img.D, dst, 'library/app', 'old');
    await pushImage(img.C, dst, 'library/tool', 'v1');
  });

  it('plans exactly the differences, and nothing once they are executed', async () => {
    const cfg = config({ url: src.url }, dst, [
      { id: 'all', src_registry: 'harbor-a', dest_registry: 'backup', deletion: true },
    ]);
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const reconciler = new Reconciler({ config: cfg, endpoints, logger: silentLogger });

    const plan = await reconciler.plan(cfg.policies[0]!);
    assert.deepEqual(plan.skipped, []);
    assert.deepEqual(summary(plan.tasks), [
      'delete library/app:old -> library/app',
      'push library/app:v2 -> library/app',
      'push library/tool:latest -> library/tool',
      'push other/svc:v1 -> other/svc',
    ]);
    assert.equal(plan.unchanged, 2);
    for (const t of plan.tasks) {
      assert.deepEqual(ReplicationTaskSchema.parse(t), t);
      assert.equal(t.origin, 'reconcile');
      assert.ok(plan.reasons.get(t.id));
    }
    const byTag = new Map(plan.tasks.map((t) => [`${t.repository}:${t.tag}`, t]));
    assert.equal(byTag.get('library/app:v2')!.digest, img.B.digest);
    assert.equal(byTag.get('library/app:old')!.digest, undefined, 'extra tags are not headed');
    assert.match(plan.reasons.get(byTag.get('library/app:v2')!.id)!, /^target has sha256:/);

    // Executing the plan converges the target.
    for (const t of plan.tasks) {
      const o = await executeTask(t, endpoints.source(t.sourceId), endpoints.target(t.targetId), { logger: silentLogger });
      assert.equal(o.status, t.action === 'delete' ? 'deleted' : 'done', `${t.action} ${t.repository}:${t.tag}`);
    }
    assert.equal(await inspectDigest(dst, 'library/app', 'v2', pusher), img.B.digest);
    assert.equal(await inspectDigest(dst, 'library/tool', 'latest', pusher), img.A.digest);
    assert.equal(await inspectDigest(dst, 'other/svc', 'v1', pusher), img.B.digest);
    assert.equal(await endpoints.target('backup').client.headManifest('library/app', 'old'), null);
    // Run again (a duplicate event), a copy says why it moved nothing.
    const repeat = await executeTask(byTag.get('library/app:v2')!, endpoints.source('harbor-a'), endpoints.target('backup'), { logger: silentLogger });
    assert.deepEqual([repeat.status, repeat.note], ['skipped', `already up to date: the target has ${img.B.digest}`]);

    const again = await reconciler.plan(cfg.policies[0]!);
    assert.deepEqual(again.tasks, []);
    assert.equal(again.unchanged, 5);
  });

  it('with Docker conversion, a converged tag is in step (compared with the converted digest) and a moved one is not', async () => {
    const oci = await buildImage({ layers: [3000] });
    const next = await buildImage({ layers: [4000] });
    cleanup.push(() => oci.cleanup(), () => next.cleanup());
    await pushImage(oci, src, 'conv/app', 'v1');
    const cfg = config({ url: src.url }, dst, [
      { id: 'docker', src_registry: 'harbor-a', dest_registry: 'backup', manifestFormat: 'docker', filters: [{ type: 'name', value: 'conv/**' }] },
    ]);
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const reconciler = new Reconciler({ config: cfg, endpoints, logger: silentLogger });

    const first = await reconciler.plan(cfg.policies[0]!);
    assert.deepEqual(summary(first.tasks), ['push conv/app:v1 -> conv/app']);
    const o = await executeTask(first.tasks[0]!, endpoints.source('harbor-a'), endpoints.target('backup'), { logger: silentLogger });
    assert.equal(o.status, 'done');
    assert.notEqual(o.digest, oci.digest, 'the copy converted the manifest');

    const again = await reconciler.plan(cfg.policies[0]!);
    assert.deepEqual(again.tasks, [], 'a converted copy is in step');
    assert.equal(again.unchanged, 1);

    await pushImage(next, src, 'conv/app', 'v1');
    const moved = await reconciler.plan(cfg.policies[0]!);
    assert.deepEqual(summary(moved.tasks), ['push conv/app:v1 -> conv/app']);
    assert.match(moved.reasons.get(moved.tasks[0]!.id)!, /^target has sha256:/);
  });

  it('applies name and tag filters and the namespace rewrite; deletion off plans no deletes', async () => {
    const cfg = config({ url: src.url }, dst, [{
      id: 'lib-v', src_registry: 'harbor-a', dest_registry: 'backup', dest_namespace: 'mirror', dest_namespace_replace_count: 1,
      filters: [{ type: 'name', value: 'library/**' }, { type: 'tag', value: 'v*' }], deletion: false,
    }]);
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const plan = await new Reconciler({ config: cfg, endpoints, logger: silentLogger }).plan(cfg.policies[0]!);
    assert.deepEqual(summary(plan.tasks), [
      'push library/app:v1 -> mirror/app',
      'push library/app:v2 -> mirror/app',
      'push library/tool:v1 -> mirror/tool',
    ]);
  });

  it('shares source listings between the policies of a pass and reports a policy that fails', async () => {
    const cfg = ConfigSchema.parse({
      sources: [{ id: 'harbor-a', kind: 'harbor', url: src.url, credentials: user, insecure: true }],
      targets: [
        { id: 'backup', kind: 'registry', url: dst.url, credentials: pusher },
        { id: 'down', kind: 'registry', url: 'http://127.0.0.1:9', credentials: pusher },
      ],
      policies: [
        { id: 'to-backup', src_registry: 'harbor-a', dest_registry: 'backup', filters: [{ type: 'name', value: 'other/**' }] },
        { id: 'to-down', src_registry: 'harbor-a', dest_registry: 'down', filters: [{ type: 'name', value: 'other/**' }] },
        { id: 'off', src_registry: 'harbor-a', dest_registry: 'backup', enabled: false },
      ],
    });
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const catalogReads = () => src.logs().split('\n').filter((l) => /"GET \/v2\/_catalog\S* HTTP\/1.1" 200/.test(l)).length;
    const tagReads = () => src.logs().split('\n').filter((l) => /"GET \/v2\/other\/svc\/tags\/list\S* HTTP\/1.1" 200/.test(l)).length;
    const [catalogBefore, tagsBefore] = [catalogReads(), tagReads()];
    const pass = await new Reconciler({ config: cfg, endpoints, logger: silentLogger }).runPass({ dryRun: true });
    assert.equal(catalogReads() - catalogBefore, 1, 'one catalog read for two policies of one source');
    assert.equal(tagReads() - tagsBefore, 1, 'one tag listing per source repository');
    assert.deepEqual(pass.policies.map((p) => p.policyId), ['to-backup', 'to-down']);
    assert.equal(pass.failed, 1);
    assert.equal(pass.policies[1]!.error?.code, 'HSB_REGISTRY_UNAVAILABLE');
    assert.equal(pass.policies[0]!.error, undefined);
    assert.equal(pass.published, 0);
  });
});

describe('reconciler: Harbor source whose robot may not read the catalog', () => {
  let reg: TestRegistry;
  let dst: TestRegistry;
  let harbor: Server;
  let harborUrl: string;
  const seen: { path: string; auth: string | undefined }[] = [];

  before(async () => {
    [reg, dst] = await Promise.all([
      // The token service grants repository access but never `registry:catalog:*`, as Harbor does for robots.
      startRegistry({ auth: 'token', users: [user], token: { acl: (_u, a) => (a.type === 'registry' ? [] : a.actions) } }),
      startRegistry({ auth: 'basic', users: [pusher] }),
    ]);
    cleanup.push(() => reg.stop(), () => dst.stop());
    const image = await buildImage({ layers: [1024] });
    cleanup.push(() => image.cleanup());
    await pushImage(image, reg, 'library/app', 'v1', user);
    await pushImage(image, reg, 'other/svc', 'v1', user);

    // A two-page project list (Harbor's Link header), then each project's repositories.
    const expected = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
    harbor = createServer((req: IncomingMessage, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      seen.push({ path: `${u.pathname}${u.search}`, auth: req.headers.authorization });
      const json = (body: unknown, headers: Record<string, string> = {}) => res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
      if (req.headers.authorization !== expected) { res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized"}]}'); return; }
      const page = Number(u.searchParams.get('page') ?? '1');
      if (u.pathname === '/api/v2.0/systeminfo') return json({ harbor_version: 'v2.11.0-abc', auth_mode: 'db_auth' });
      if (u.pathname === '/api/v2.0/projects') {
        if (page === 1) return json([{ project_id: 1, name: 'library' }], { 'x-total-count': '2', link: '</api/v2.0/projects?page=2&page_size=100>; rel="next"' });
        return json([{ project_id: 2, name: 'other' }], { 'x-total-count': '2', link: '</api/v2.0/projects?page=1&page_size=100>; rel="prev"' });
      }
      if (u.pathname === '/api/v2.0/projects/library/repositories') return json([{ id: 1, name: 'library/app' }], { 'x-total-count': '1' });
      if (u.pathname === '/api/v2.0/projects/other/repositories') return json([{ id: 2, name: 'other/svc' }], { 'x-total-count': '1' });
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => harbor.listen(0, '127.0.0.1', r));
    harborUrl = `http://127.0.0.1:${(harbor.address() as AddressInfo).port}`;
    cleanup.push(() => new Promise((r) => { harbor.closeAllConnections(); harbor.close(r); }));
  });

  it('lists repositories through /api/v2.0/projects when the catalog is refused', async () => {
    const cfg = config({ url: harborUrl, registryUrl: reg.url }, dst, [{ id: 'all', src_registry: 'harbor-a', dest_registry: 'backup' }]);
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const plan = await new Reconciler({ config: cfg, endpoints, logger: silentLogger }).plan(cfg.policies[0]!);
    assert.deepEqual(summary(plan.tasks), ['push library/app:v1 -> library/app', 'push other/svc:v1 -> other/svc']);
    // The registry was asked for the catalog first and refused it.
    assert.ok(reg.tokenIssuer!.requests.some((r) => r.scopes.includes('registry:catalog:*') && r.granted.length === 0));
    assert.deepEqual(seen.map((s) => s.path), [
      '/api/v2.0/systeminfo',
      '/api/v2.0/projects?page=1&page_size=100',
      '/api/v2.0/projects?page=2&page_size=100',
      '/api/v2.0/projects/library/repositories?page=1&page_size=100',
      '/api/v2.0/projects/other/repositories?page=1&page_size=100',
      // The untagged artifacts of a policy without a tag filter (this Harbor lists none).
      '/api/v2.0/systeminfo',
      '/api/v2.0/projects/library/repositories/app/artifacts?with_tag=true&with_label=true&page=1&page_size=100',
      '/api/v2.0/projects/other/repositories/svc/artifacts?with_tag=true&with_label=true&page=1&page_size=100',
    ]);
  });

  it('lists repositories through Harbor 1.10\'s /api/projects and /api/repositories?project_id= (it has no /api/v2.0)', async () => {
    const v110 = await startHarborDouble({
      version: 'v1.10', users: [{ ...user }], registries: [], policies: [],
      artifacts: [
        { repository: 'library/app', digest: `sha256:${'1'.repeat(64)}`, tags: ['v1'], labels: [] },
        { repository: 'other/svc', digest: `sha256:${'2'.repeat(64)}`, tags: ['v1'], labels: [] },
      ],
    });
    cleanup.push(() => v110.close());
    const cfg = config({ url: v110.url, registryUrl: reg.url }, dst, [{ id: 'all', src_registry: 'harbor-a', dest_registry: 'backup' }]);
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const plan = await new Reconciler({ config: cfg, endpoints, logger: silentLogger }).plan(cfg.policies[0]!);
    assert.deepEqual(summary(plan.tasks), ['push library/app:v1 -> library/app', 'push other/svc:v1 -> other/svc']);
    assert.deepEqual(v110.requests.map((r) => `${r.status} ${r.path}${r.query['project_id'] ? `?project_id=${r.query['project_id']}` : ''}`), [
      '404 /api/v2.0/systeminfo',
      '200 /api/systeminfo',
      '200 /api/projects',
      '200 /api/repositories?project_id=1',
      '200 /api/repositories?project_id=2',
      // The untagged lookup finds a 1.10 API, which has no untagged artifacts: no listing.
      '404 /api/v2.0/systeminfo',
      '200 /api/systeminfo',
    ]);
  });

  it('does not fall back for a plain registry source', async () => {
    const cfg = ConfigSchema.parse({
      sources: [{ id: 'plain', kind: 'registry', url: reg.url, credentials: user, insecure: true }],
      targets: [{ id: 'backup', kind: 'registry', url: dst.url, credentials: pusher }],
      policies: [{ id: 'all', src_registry: 'plain', dest_registry: 'backup' }],
    });
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    await assert.rejects(new Reconciler({ config: cfg, endpoints, logger: silentLogger }).plan(cfg.policies[0]!), (e: { code?: string }) => e.code === 'HSB_REGISTRY_UNAUTHORIZED' || e.code === 'HSB_REGISTRY_DENIED');
  });
});

describe('reconciler: label filters, labels read from Harbor\'s API', () => {
  let reg: TestRegistry;
  let dst: TestRegistry;
  let harbor: HarborDouble;
  let prod: LocalImage;
  let dev: LocalImage;

  before(async () => {
    [reg, dst] = await Promise.all([startRegistry({ auth: 'basic', users: [user] }), startRegistry({ auth: 'basic', users: [pusher] })]);
    cleanup.push(() => reg.stop(), () => dst.stop());
    [prod, dev] = await Promise.all([buildImage({ layers: [1024] }), buildImage({ layers: [2048] })]);
    cleanup.push(() => prod.cleanup(), () => dev.cleanup());
    await pushImage(prod, reg, 'library/app', 'v1');
    await pushImage(prod, reg, 'library/app', 'stable');
    await pushImage(dev, reg, 'library/app', 'v2');
    await pushImage(dev, reg, 'team/x/tool', 'v1');
    // Harbor knows the same artifacts, labelled; `v1` was labelled, `v2` not; the tool carries only "dev".
    harbor = await startHarborDouble({
      version: 'v2', users: [{ ...user }], registries: [], policies: [],
      artifacts: [
        { repository: 'library/app', digest: prod.digest, tags: ['v1', 'stable'], labels: ['prod'] },
        { repository: 'library/app', digest: dev.digest, tags: ['v2'], labels: [] },
        { repository: 'team/x/tool', digest: dev.digest, tags: ['v1'], labels: ['dev'] },
      ],
    });
    cleanup.push(() => harbor.close());
  });

  it('plans only the tags whose artifact has every label (matches) or lacks them (excludes), one artifact listing per repository', async () => {
    const cfg = config({ url: harbor.url, registryUrl: reg.url }, dst, [
      { id: 'prod', src_registry: 'harbor-a', dest_registry: 'backup', filters: [{ type: 'label', value: ['prod'] }], trigger: { type: 'manual' } },
      { id: 'no-prod', src_registry: 'harbor-a', dest_registry: 'backup', dest_namespace: 'np', filters: [{ type: 'label', value: ['prod'], decoration: 'excludes' }], trigger: { type: 'manual' } },
    ]);
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const pass = await new Reconciler({ config: cfg, endpoints, logger: silentLogger }).runPass({ dryRun: true });
    assert.equal(pass.failed, 0);
    assert.deepEqual(summary(pass.policies[0]!.tasks), ['push library/app:stable -> library/app', 'push library/app:v1 -> library/app']);
    assert.deepEqual(summary(pass.policies[1]!.tasks), ['push library/app:v2 -> np/app', 'push team/x/tool:v1 -> np/tool']);
    const listings = harbor.requests.filter((r) => r.path.endsWith('/artifacts'));
    assert.deepEqual(listings.map((r) => r.path).sort(), [
      '/api/v2.0/projects/library/repositories/app/artifacts',
      '/api/v2.0/projects/team/repositories/x%252Ftool/artifacts',
    ], 'one listing per repository, shared by both policies; the nested name encoded twice');
    assert.ok(listings.every((r) => r.status === 200 && r.query['with_label'] === 'true'));
  });

  it('a plain-registry source has no labels: the policy plans nothing and says why', async () => {
    const cfg = ConfigSchema.parse({
      sources: [{ id: 'plain', kind: 'registry', url: reg.url, credentials: user, insecure: true }],
      targets: [{ id: 'backup', kind: 'registry', url: dst.url, credentials: pusher }],
      policies: [{ id: 'prod', src_registry: 'plain', dest_registry: 'backup', filters: [{ type: 'label', value: ['prod'] }] }],
    });
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const plan = await new Reconciler({ config: cfg, endpoints, logger: silentLogger }).plan(cfg.policies[0]!);
    assert.equal(plan.tasks.length, 0);
    assert.match(plan.skipped.map((s) => s.reason).join('\n'), /label filters need the artifact's labels/);
  });
});

describe('reconciler: untagged artifacts of a Harbor 2.x source, listed through its API', () => {
  let reg: TestRegistry;
  let dst: TestRegistry;
  let harbor: HarborDouble;
  let kept: LocalImage;
  let old: LocalImage;
  let cur: LocalImage;
  const ref = (t: ReplicationTask) => `${t.action} ${t.repository}${t.tag === undefined ? `@${t.digest}` : `:${t.tag}`} -> ${t.destRepository}`;

  before(async () => {
    [reg, dst] = await Promise.all([startRegistry({ auth: 'basic', users: [user] }), startRegistry({ auth: 'basic', users: [pusher] })]);
    cleanup.push(() => reg.stop(), () => dst.stop());
    [kept, old, cur] = await Promise.all([buildImage({ layers: [1024] }), buildImage({ layers: [2048] }), buildImage({ layers: [3072] })]);
    cleanup.push(() => kept.cleanup(), () => old.cleanup(), () => cur.cleanup());
    await pushImage(kept, reg, 'library/app', 'v1');
    // `moving` pushed twice: the first artifact stays in the registry, untagged, as in Harbor.
    await pushImage(old, reg, 'library/app', 'moving');
    await pushImage(cur, reg, 'library/app', 'moving');
    harbor = await startHarborDouble({
      version: 'v2', users: [{ ...user }], registries: [], policies: [],
      artifacts: [
        { repository: 'library/app', digest: kept.digest, tags: ['v1'], labels: [] },
        { repository: 'library/app', digest: old.digest, tags: [], labels: ['prod'] },
        { repository: 'library/app', digest: cur.digest, tags: ['moving'], labels: [] },
      ],
    });
    cleanup.push(() => harbor.close());
  });

  it('plans an untagged artifact the target lacks, copies it by digest, and finds it by digest on the next pass', async () => {
    const cfg = config({ url: harbor.url, registryUrl: reg.url }, dst, [{ id: 'all', src_registry: 'harbor-a', dest_registry: 'backup' }]);
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const reconciler = new Reconciler({ config: cfg, endpoints, logger: silentLogger });
    const plan = await reconciler.plan(cfg.policies[0]!);
    assert.deepEqual(plan.tasks.map(ref).sort(), [
      `push library/app:moving -> library/app`,
      `push library/app:v1 -> library/app`,
      `push library/app@${old.digest} -> library/app`,
    ].sort());
    const untagged = plan.tasks.find((t) => t.tag === undefined)!;
    assert.equal(plan.reasons.get(untagged.id), 'untagged digest missing in target');
    for (const t of plan.tasks) {
      const o = await executeTask(t, endpoints.source(t.sourceId), endpoints.target(t.targetId), { logger: silentLogger });
      assert.equal(o.status, 'done', ref(t));
    }
    assert.ok(await endpoints.target('backup').client.headManifest('library/app', old.digest), 'the untagged artifact is in the target by digest');

    const again = await reconciler.plan(cfg.policies[0]!);
    assert.deepEqual(again.tasks.map(ref), []);
    assert.equal(again.unchanged, 3);
  });

  it('takes the untagged artifact only through filters that pass it: labels from the listing; a tag filter that needs a tag lists nothing', async () => {
    const cfg = config({ url: harbor.url, registryUrl: reg.url }, dst, [
      { id: 'prod', src_registry: 'harbor-a', dest_registry: 'backup', dest_namespace: 'prod', filters: [{ type: 'label', value: ['prod'] }] },
      { id: 'v-tags', src_registry: 'harbor-a', dest_registry: 'backup', dest_namespace: 'vt', filters: [{ type: 'tag', value: 'v*' }] },
    ]);
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const before = harbor.requests.filter((r) => r.path.endsWith('/artifacts')).length;
    const reconciler = new Reconciler({ config: cfg, endpoints, logger: silentLogger });
    const prod = await reconciler.plan(cfg.policies[0]!);
    assert.deepEqual(prod.tasks.map(ref), [`push library/app@${old.digest} -> prod/app`]);
    const afterProd = harbor.requests.filter((r) => r.path.endsWith('/artifacts')).length;
    assert.equal(afterProd - before, 1, 'one artifact listing for labels and untagged artifacts together');
    const vTags = await reconciler.plan(cfg.policies[1]!);
    assert.deepEqual(vTags.tasks.map(ref), ['push library/app:v1 -> vt/app']);
    assert.equal(harbor.requests.filter((r) => r.path.endsWith('/artifacts')).length, afterProd, '"v*" never passes an untagged artifact: no listing');
  });

  it('with Docker conversion, an untagged artifact copied once is found under its converted digest', async () => {
    const cfg = config({ url: harbor.url, registryUrl: reg.url }, dst, [
      { id: 'docker', src_registry: 'harbor-a', dest_registry: 'backup', dest_namespace: 'conv', manifestFormat: 'docker', filters: [{ type: 'tag', value: '' }] },
    ]);
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const reconciler = new Reconciler({ config: cfg, endpoints, logger: silentLogger });
    const first = await reconciler.plan(cfg.policies[0]!);
    const untagged = first.tasks.filter((t) => t.tag === undefined);
    assert.deepEqual(untagged.map(ref), [`push library/app@${old.digest} -> conv/app`]);
    const o = await executeTask(untagged[0]!, endpoints.source('harbor-a'), endpoints.target('backup'), { logger: silentLogger });
    assert.equal(o.status, 'done');
    assert.notEqual(o.digest, old.digest, 'the copy converted the manifest');
    const again = await reconciler.plan(cfg.policies[0]!);
    assert.deepEqual(again.tasks.filter((t) => t.tag === undefined).map(ref), [], 'found by the converted digest');
  });

  it('an artifact API the robot may not read (every repository refused): the pass compares tags and warns once for the source', async () => {
    const plain = await startRegistry();
    cleanup.push(() => plain.stop());
    for (const repository of ['team/one', 'team/two', 'ops/three']) await pushImage(kept, plain, repository, 'v1');
    // Harbor answers the version probe, but this robot sees none of the projects: each listing is 403.
    const refusing = await startHarborDouble({ version: 'v2', users: [{ ...user }], registries: [], policies: [], artifacts: [] });
    cleanup.push(() => refusing.close());
    const cfg = config({ url: refusing.url, registryUrl: plain.url }, dst, [
      { id: 'team', src_registry: 'harbor-a', dest_registry: 'backup', dest_namespace: 'refused-team', filters: [{ type: 'name', value: 'team/**' }] },
      { id: 'ops', src_registry: 'harbor-a', dest_registry: 'backup', dest_namespace: 'refused-ops', filters: [{ type: 'name', value: 'ops/**' }] },
    ]);
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const entries: { level: number; msg: string; code?: string }[] = [];
    const logger = createLogger('warn', new Writable({ write(chunk: Buffer, _enc, cb) { entries.push(JSON.parse(chunk.toString())); cb(); } }));
    const reconciler = new Reconciler({ config: cfg, endpoints, logger });

    for (let pass = 0; pass < 2; pass++) {
      const summary = await reconciler.runPass({ dryRun: true });
      assert.equal(summary.failed, 0);
      assert.deepEqual(summary.policies.flatMap((p) => p.tasks).map(ref).sort(), ['push ops/three:v1 -> refused-ops/three', 'push team/one:v1 -> refused-team/one', 'push team/two:v1 -> refused-team/two']);
    }
    assert.equal(refusing.requests.filter((r) => r.path.endsWith('/artifacts') && r.status === 403).length, 6, 'each repository was tried, in each pass');
    const warned = entries.filter((e) => /untagged artifacts are not compared/.test(e.msg));
    assert.equal(warned.length, 1, JSON.stringify(warned));
    assert.equal(warned[0]!.code, 'HSB_HARBOR_FORBIDDEN');
  });
});

describe('reconciler: cosign signatures follow their subjects, past the tag filter', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  const sigTag = (digest: string) => `${digest.replace(':', '-')}.sig`;
  const img: Record<'app' | 'dev' | 'sig' | 'devSig' | 'childSig' | 'stray' | 'old' | 'oldAtt', LocalImage> = {} as never;
  const gone = `sha256:${'e'.repeat(64)}`;
  let multi: LocalImage;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry({ auth: 'basic', users: [user] }), startRegistry({ auth: 'basic', users: [pusher] })]);
    cleanup.push(() => src.stop(), () => dst.stop());
    for (const k of ['app', 'dev', 'sig', 'devSig', 'childSig', 'stray', 'old', 'oldAtt'] as const) {
      img[k] = await buildImage({ layers: [Buffer.from(`layer of ${k}`)] });
      cleanup.push(() => img[k].cleanup());
    }
    await pushImage(img.app, src, 'library/app', 'v1');
    await pushImage(img.dev, src, 'library/app', 'dev');
    // The artifact was replicated before cosign signed it.
    await pushImage(img.app, dst, 'library/app', 'v1');
    await pushImage(img.sig, src, 'library/app', sigTag(img.app.digest));
    await pushImage(img.devSig, src, 'library/app', sigTag(img.dev.digest));
    // A multi-platform image in step, one of whose children was signed afterwards (cosign sign --recursive).
    multi = await buildIndex({ images: [{ layers: [3100], platform: { os: 'linux', architecture: 'amd64' } }, { layers: [3200], platform: { os: 'linux', architecture: 'arm64' } }] });
    cleanup.push(() => multi.cleanup());
    await pushImage(multi, src, 'library/app', 'v2');
    await pushImage(multi, dst, 'library/app', 'v2');
    await pushImage(img.childSig, src, 'library/app', sigTag(multi.children[1]!.digest));
    // An attestation left behind by an artifact the source no longer has.
    await pushImage(img.stray, src, 'library/app', `${gone.replace(':', '-')}.att`);
    // One the target still holds (replicated before the source deleted it), with its attestation left behind.
    await pushImage(img.old, dst, 'library/app', 'v0');
    await pushImage(img.oldAtt, src, 'library/app', `${img.old.digest.replace(':', '-')}.att`);
  });

  const policy = { id: 'signed', src_registry: 'harbor-a', dest_registry: 'backup', referrers: true, filters: [{ type: 'tag', value: 'v*' }] };

  it('plans the missing signature of an in-step artifact, copies it under its tag, then is in step', async () => {
    const cfg = config({ url: src.url }, dst, [policy]);
    const endpoints = new Endpoints(cfg, silentLogger);
    cleanup.push(() => endpoints.close());
    const reconciler = new Reconciler({ config: cfg, endpoints, logger: silentLogger });

    const plan = await reconciler.plan(cfg.policies[0]!);
    const child = multi.children[1]!.digest;
    assert.deepEqual(plan.tasks.map((t) => [t.digest, t.tag, t.options.referrersOf, plan.reasons.get(t.id)]).sort(), [
      [img.app.digest, undefined, 'digest', `${sigTag(img.app.digest)} missing in target`],
      [child, undefined, 'digest', `${sigTag(child)} missing in target`],
    ].sort());
    for (const t of plan.tasks) {
      const o = await executeTask(t, endpoints.source('harbor-a'), endpoints.target('backup'), { logger: silentLogger });
      assert.equal(o.status, 'done');
    }
    assert.equal(await inspectDigest(dst, 'library/app', sigTag(img.app.digest), pusher), img.sig.digest);
    assert.equal(await inspectDigest(dst, 'library/app', sigTag(child), pusher), img.childSig.digest);

    const again = await reconciler.plan(cfg.policies[0]!);
    assert.deepEqual(again.tasks, []);

    const run = (t: ReplicationTask) => executeTask(ReplicationTaskSchema.parse(t), endpoints.source('harbor-a'), endpoints.target('backup'), { logger: silentLogger });
    const gonePlanned = await run({ ...plan.tasks[0]!, id: 'gone', digest: gone });
    assert.equal(gonePlanned.status, 'skipped');
    assert.match(gonePlanned.note ?? '', /does not hold sha256:e+, which the signature tag names/);
    const docker = await run({ ...plan.tasks[0]!, id: 'docker', options: { ...plan.tasks[0]!.options, manifestFormat: 'docker' } });
    assert.equal(docker.status, 'skipped');
    assert.match(docker.note ?? '', /Docker format/);

    // The filtered-out artifact's signature has nowhere to go: a task for it copies nothing.
    const stray = ReplicationTaskSchema.parse({ ...plan.tasks[0]!, id: 'stray', digest: img.dev.digest });
    const skipped = await executeTask(stray, endpoints.source('harbor-a'), endpoints.target('backup'), { logger: silentLogger });
    assert.equal(skipped.status, 'skipped');
    assert.match(skipped.note ?? '', /does not hold/);
    assert.equal(await endpoints.target('backup').client.headManifest('library/app', sigTag(img.dev.digest)), null);
  });
});

describe('reconciler: signatures, continued', () => {
  it('a source refusing look-ups of cosign tags still plans; a signature tag taken as a tag moves even with override off', async () => {
    const [src, dst] = await Promise.all([startRegistry({ auth: 'basic', users: [user] }), startRegistry({ auth: 'basic', users: [pusher] })]);
    cleanup.push(() => src.stop(), () => dst.stop());
    const [app, sig, stale] = await Promise.all(['app', 'signature', 'stale signature'].map((l) => buildImage({ layers: [Buffer.from(l)] })));
    cleanup.push(() => app!.cleanup(), () => sig!.cleanup(), () => stale!.cleanup());
    const sigTag = `${app!.digest.replace(':', '-')}.sig`;
    await pushImage(app!, src, 'library/app', 'v1');
    await pushImage(app!, dst, 'library/app', 'v1');
    await pushImage(sig!, src, 'library/app', sigTag);
    await pushImage(stale!, dst, 'library/app', sigTag);
    const proxy = await startFaultProxy(src.url);
    cleanup.push(() => proxy.stop());
    proxy.addRule({ match: { method: 'HEAD', path: /\/manifests\/sha256-[0-9a-f]{64}\.(sig|att|sbom)$/ }, action: 'status', status: 403, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errors: [{ code: 'DENIED', message: 'denied' }] }) });

    const refused = config({ url: proxy.url }, dst, [{ id: 'signed', src_registry: 'harbor-a', dest_registry: 'backup', referrers: true, filters: [{ type: 'tag', value: 'v*' }] }]);
    const e1 = new Endpoints(refused, silentLogger);
    cleanup.push(() => e1.close());
    const plan = await new Reconciler({ config: refused, endpoints: e1, logger: silentLogger }).plan(refused.policies[0]!);
    assert.deepEqual(plan.tasks, [], 'the refused signature tag counts as absent');
    // Also where the tag filter takes signature tags (none here).
    const all = config({ url: proxy.url }, dst, [{ id: 'all', src_registry: 'harbor-a', dest_registry: 'backup', referrers: true }]);
    const e0 = new Endpoints(all, silentLogger);
    cleanup.push(() => e0.close());
    assert.deepEqual((await new Reconciler({ config: all, endpoints: e0, logger: silentLogger }).plan(all.policies[0]!)).tasks, []);
    assert.ok(proxy.requests.some((q) => q.method === 'HEAD' && q.path.endsWith('.sig') && q.status === 403));

    // No tag filter: the signature tag is an ordinary tag, and it moves although override is off.
    const plain = config({ url: src.url }, dst, [{ id: 'plain', src_registry: 'harbor-a', dest_registry: 'backup', override: false }]);
    const e2 = new Endpoints(plain, silentLogger);
    cleanup.push(() => e2.close());
    const reconciler = new Reconciler({ config: plain, endpoints: e2, logger: silentLogger });
    const tasks = (await reconciler.plan(plain.policies[0]!)).tasks;
    assert.deepEqual(tasks.map((t) => t.tag), [sigTag]);
    const o = await executeTask(tasks[0]!, e2.source('harbor-a'), e2.target('backup'), { logger: silentLogger });
    assert.equal(o.status, 'done');
    assert.equal(await inspectDigest(dst, 'library/app', sigTag, pusher), sig!.digest);
    assert.deepEqual((await reconciler.plan(plain.policies[0]!)).tasks, []);
  });
});
