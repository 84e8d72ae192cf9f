// `harbor-swr-bridge copy` between real distribution 2.8 registries on loopback: one image with
// source credentials, and a list through one shared pool (tags, an OCI index, a copy by digest,
// a broken line), checked from the target's side with skopeo.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { buildImage, buildIndex, pushImage, inspectDigest, type LocalImage } from '../../support/images.ts';
import { startFaultProxy } from '../../support/fault-proxy.ts';
import { copyCommand } from '../../../src/cli/copy.ts';
import { silentLogger } from '../../../src/observability/logger.ts';

const cleanup: (() => Promise<void>)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f().catch(() => {}); });

let src: TestRegistry;
let base: LocalImage;
let app: LocalImage;
let multi: LocalImage;
const BASE_LAYER = Buffer.alloc(400_000, 7);

before(async () => {
  src = await startRegistry({ auth: 'basic' });
  cleanup.push(() => src.stop());
  base = await buildImage({ layers: [BASE_LAYER, 120_000] });
  app = await buildImage({ layers: [BASE_LAYER, 2_500_000] });
  multi = await buildIndex({ images: [
    { layers: [50_000], platform: { os: 'linux', architecture: 'amd64' } },
    { layers: [60_000], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ] });
  cleanup.push(() => base.cleanup(), () => app.cleanup(), () => multi.cleanup());
  await pushImage(base, src, 'team/base', 'v1');
  await pushImage(app, src, 'team/app', 'v2');
  await pushImage(multi, src, 'team/multi', 'v1');
});

async function run(rest: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await copyCommand({ rest, flags: {}, logger: silentLogger, print: (l, s) => (s === 'out' ? out : err).push(l) });
  return { code, out, err };
}

const creds = () => `${src.users[0]!.username}:${src.users[0]!.password}`;

test('copies one image with source credentials; a second run moves nothing', async () => {
  const dst = await startRegistry();
  cleanup.push(() => dst.stop());
  const first = await run(['--src-creds', creds(), `${src.host}/team/app:v2`, `${dst.host}/mirror/app:v2`]);
  assert.equal(first.code, 0, first.err.join('\n'));
  assert.equal(await inspectDigest(dst, 'mirror/app', 'v2'), app.digest);
  const bytes = app.layers.reduce((n, l) => n + l.size, 0) + app.config!.size;
  assert.equal(first.out.length, 1);
  assert.match(first.out[0]!, new RegExp(`^${src.host}/team/app:v2 -> ${dst.host}/mirror/app:v2 ${app.digest} ${bytes} bytes \\(3 uploaded, 0 mounted, 0 present\\)`));
  const stored = new Set(await dst.storedBlobs());
  for (const l of app.layers) assert.ok(stored.has(l.digest), `target stores ${l.digest}`);

  const again = await run(['--src-creds', creds(), `${src.host}/team/app:v2`, `${dst.host}/mirror/app:v2`]);
  assert.equal(again.code, 0);
  assert.match(again.out[0]!, / 0 bytes \(up to date\)/);
});

test('without credentials the basic-auth source refuses, and the command fails', async () => {
  const dst = await startRegistry();
  cleanup.push(() => dst.stop());
  const r = await run([`${src.host}/team/app:v2`, `${dst.host}/mirror/app:v2`]);
  assert.equal(r.code, 1);
  assert.match(r.err.join('\n'), /FAILED HSB_REGISTRY_UNAUTHORIZED/);
  assert.ok(!r.err.join('\n').includes(src.users[0]!.password), 'no secret in the output');
});

test('--from-file copies a list through one pool: tags, an OCI index, by digest; a broken line fails alone', async () => {
  const dst = await startRegistry({ auth: 'basic' });
  cleanup.push(() => dst.stop());
  const dir = await mkdtemp(join(tmpdir(), 'hsb-copy-list-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const list = join(dir, 'list.txt');
  await writeFile(list, [
    '# corpus for the test',
    `${src.host}/team/base:v1 ${dst.host}/mirror/base:v1`,
    `${src.host}/team/app:v2 ${dst.host}/mirror/app`,
    `${src.host}/team/multi:v1 ${dst.host}/mirror/multi:stable`,
    `${src.host}/team/multi:v1 ${dst.host}/mirror/multi:latest`,
    `${src.host}/team/app@${app.digest} ${dst.host}/pinned/app`,
    `${src.host}/team/missing:v9 ${dst.host}/mirror/missing:v9`,
    '',
  ].join('\n'));
  const r = await run(['--from-file', list, '--jobs', '3', '--src-creds', creds(), '--dest-creds', creds()]);
  assert.equal(r.code, 1, 'one line fails, so the command fails');
  assert.equal(r.err.length, 1);
  assert.match(r.err[0]!, /team\/missing:v9 .* FAILED HSB_REGISTRY_NOT_FOUND/);
  assert.match(r.out.at(-1)!, /^copied 5\/6 images, \d+ bytes uploaded in [\d.]+s; 1 failed$/);

  assert.equal(await inspectDigest(dst, 'mirror/base', 'v1'), base.digest);
  assert.equal(await inspectDigest(dst, 'mirror/app', 'v2'), app.digest, 'destination without a tag takes the source tag');
  assert.equal(await inspectDigest(dst, 'mirror/multi', 'stable'), multi.digest, 'index copied digest-exact');
  assert.equal(await inspectDigest(dst, 'mirror/multi', 'latest'), multi.digest);
  // Two tags of one index into one repository run one after the other: the second only tags.
  const multiLines = r.out.filter((l) => l.includes('/mirror/multi:'));
  assert.equal(multiLines.length, 2);
  assert.equal(multiLines.filter((l) => l.includes(' 0 bytes (0 uploaded, 0 mounted, 0 present)')).length, 1, multiLines.join('\n'));
  for (const c of multi.children) assert.equal(await inspectDigest(dst, 'mirror/multi', c.digest), c.digest);
  assert.equal(await inspectDigest(dst, 'pinned/app', app.digest), app.digest, 'copied by digest');

  // One pool for the list: every distinct blob crossed the wire once; the rest were mounted.
  const shared = base.layers[0]!.digest;
  assert.equal(shared, app.layers[0]!.digest);
  const sum = (what: string) => r.out.reduce((n, l) => n + Number(new RegExp(`(\\d+) ${what}`).exec(l)?.[1] ?? 0), 0);
  const distinct = new Set([...base.layers, base.config!, ...app.layers, app.config!, ...multi.layers, ...multi.children.map((c) => c.config!)].map((b) => b.digest));
  assert.equal(sum('uploaded'), distinct.size);
  assert.equal(sum('mounted'), 1 + app.layers.length + 1, 'the shared layer once, and all of pinned/app');
  for (const repo of ['mirror/base', 'mirror/app', 'pinned/app']) assert.ok(await dst.blobLinkedIn(repo, shared), `${repo} links the shared layer`);
  assert.ok((await dst.storedBlobs()).length >= distinct.size);

  const again = await run(['--from-file', list, '--src-creds', creds(), '--dest-creds', creds()]);
  assert.equal(again.out.filter((l) => l.includes('(up to date)')).length, 5);
});

test('a copy that fails with a retryable error gets another pass (distribution\'s DIGEST_INVALID race)', async () => {
  const dst = await startRegistry();
  cleanup.push(() => dst.stop());
  const proxy = await startFaultProxy(dst.url);
  cleanup.push(() => proxy.stop());
  const digestInvalid = JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content' }] });
  const rule = { match: { method: 'PUT', path: /\/manifests\/stable$/ }, action: 'status' as const, status: 400, headers: { 'content-type': 'application/json' }, body: digestInvalid, times: 1 };
  proxy.addRule(rule);
  const once = await run(['--src-creds', creds(), '--retries', '0', `${src.host}/team/multi:v1`, `${proxy.host}/mirror/multi:stable`]);
  assert.equal(once.code, 1);
  assert.match(once.err.join('\n'), /FAILED HSB_REGISTRY_DIGEST_MISMATCH/);

  proxy.clearRules();
  proxy.addRule(rule);
  const retried = await run(['--src-creds', creds(), `${src.host}/team/multi:v1`, `${proxy.host}/mirror/multi:stable`]);
  assert.equal(retried.code, 0, retried.err.join('\n'));
  assert.equal(await inspectDigest(dst, 'mirror/multi', 'stable'), multi.digest);
  assert.equal(proxy.requests.filter((q) => q.method === 'PUT' && q.path.endsWith('/manifests/stable')).length, 3, 'one refused PUT per run, then the retried one');
});

test('usage errors exit 2 without touching a registry', async () => {
  for (const rest of [[], ['only-one/ref'], ['--bogus', 'a.example/x', 'b.example/x'], ['a.example/X', 'b.example/x'], ['--from-file', '/nonexistent/list.txt']]) {
    const r = await run(rest);
    assert.equal(r.code, 2, rest.join(' '));
    assert.match(r.err.join('\n'), /usage: harbor-swr-bridge copy/);
  }
});
