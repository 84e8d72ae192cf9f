// `sync` end to end on real registries: a push whose webhook never arrived is healed by one pass.
// The command runs in its own Node process through a tiny runner that loads the config file the
// way the CLI does and calls syncCommand (so the test does not depend on main.ts's wiring).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { buildImage, inspectDigest, pushImage, type LocalImage } from '../support/images.ts';
import { writeConfig } from '../support/bridge-process.ts';
import { startHarborDouble } from '../support/harbor-api-double.ts';
import { ConfigSchema } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { syncCommand } from '../../src/cli/sync.ts';
import { createBus } from '../../src/bus/create.ts';
import { PolicySchema } from '../../src/policy/model.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const mod = (p: string) => JSON.stringify(pathToFileURL(resolve(ROOT, p)).href);
const RUNNER = `
import { pino } from 'pino';
import { loadConfig } from ${mod('src/config/load.ts')};
import { createLogger } from ${mod('src/observability/logger.ts')};
import { syncCommand } from ${mod('src/cli/sync.ts')};
const logger = createLogger(process.env.LOG_LEVEL ?? 'warn', pino.destination(2));
const code = await syncCommand({ config: loadConfig(process.env.BRIDGE_CONFIG), dryRun: process.env.SYNC_DRY_RUN === '1', logger });
process.exit(code);
`;

const user = { username: 'robot$bridge', password: 'src-pass-1' };
const pusher = { username: 'pusher', password: 'dst-pass-2' };

async function sync(configFile: string, dryRun: boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--no-warnings', '--input-type=module', '-e', RUNNER], {
    cwd: ROOT,
    env: { ...process.env, BRIDGE_CONFIG: configFile, SYNC_DRY_RUN: dryRun ? '1' : '0', KAFKA_BROKERS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { code, stdout, stderr };
}

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f().catch(() => undefined); });

describe('e2e: harbor-swr-bridge sync', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let image: LocalImage;
  let later: LocalImage;
  let configFile: string;

  before(async () => {
    [src, dst] = await Promise.all([startRegistry({ auth: 'basic', users: [user] }), startRegistry({ auth: 'token', users: [pusher] })]);
    // stop() waits for an exit that already happened when called twice: the last test stops dst.
    let dstStopped = false;
    const stopDst = dst.stop.bind(dst);
    dst.stop = async () => { if (!dstStopped) { dstStopped = true; await stopDst(); } };
    cleanup.push(() => src.stop(), () => dst.stop());
    [image, later] = await Promise.all([buildImage({ layers: [1_500_000, 20_000] }), buildImage({ layers: [30_000] })]);
    cleanup.push(() => image.cleanup(), () => later.cleanup());
    // Pushed to the source; Harbor's webhook never reached the bridge.
    await pushImage(image, src, 'library/demo', 'v1', user);
    configFile = writeConfig({
      sources: [{ id: 'harbor-a', kind: 'harbor', url: src.url, credentials: user, webhookSecrets: ['Bearer x'] }],
      targets: [{ id: 'registry-b', kind: 'registry', url: dst.url, credentials: pusher }],
      policies: [{ id: 'all', src_registry: 'harbor-a', dest_registry: 'registry-b', trigger: { type: 'event_based' } }],
      bus: { dataDir: mkdtempSync(join(tmpdir(), 'hsb-sync-none-')) },
    });
  });

  it('--dry-run prints the plan and copies nothing', async () => {
    const r = await sync(configFile, true);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^plan all push harbor-a\/library\/demo:v1 -> registry-b\/library\/demo:v1 \(missing in target\)$/m);
    assert.match(r.stdout, /dry run: 1 task\(s\) planned/);
    await assert.rejects(inspectDigest(dst, 'library/demo', 'v1', pusher), 'the dry run must not copy');
  });

  it('--dry-run exits 1 when a repository would be skipped, as the real run does', async () => {
    const file = writeConfig({
      sources: [{ id: 'harbor-a', kind: 'harbor', url: src.url, credentials: user, webhookSecrets: ['Bearer x'] }],
      targets: [{ id: 'registry-b', kind: 'registry', url: dst.url, credentials: pusher }],
      // library/demo has two path components: replacing five cannot be done.
      policies: [{ id: 'too-deep', src_registry: 'harbor-a', dest_registry: 'registry-b', dest_namespace: 'm', dest_namespace_replace_count: 5 }],
      bus: { dataDir: mkdtempSync(join(tmpdir(), 'hsb-sync-skip-')) },
    });
    const r = await sync(file, true);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^skip too-deep library\/demo: /m);
    // Said once, on the output; not also as a log line on stderr.
    assert.doesNotMatch(r.stderr, /reconcile skipped a repository/);
  });

  it('plans the policies that live only on the policies topic (created through the API or imported)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hsb-sync-bus-'));
    cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const raw = {
      sources: [{ id: 'harbor-a', kind: 'harbor', url: src.url, credentials: user, webhookSecrets: ['Bearer x'] }],
      targets: [{ id: 'registry-b', kind: 'registry', url: dst.url, credentials: pusher }],
      bus: { dataDir },
    };
    const file = writeConfig(raw);
    // Nothing on the topic yet (and no bus file): no policy at all.
    const none = await sync(file, true);
    assert.equal(none.code, 0, none.stdout + none.stderr);
    assert.match(none.stdout, /dry run: 0 task\(s\) planned over 0 policy\(ies\)/);
    assert.ok(!existsSync(join(dataDir, 'bus.sqlite')), 'sync must not create an embedded bus');
    // Said, since a relative data dir run from another directory looks the same.
    assert.match(none.stderr, new RegExp(`no embedded bus at ${join(dataDir, 'bus.sqlite')}: only the config file's policies are synced`));

    const bus = createBus(ConfigSchema.parse(raw), silentLogger);
    await bus.connect();
    const policy = PolicySchema.parse({ id: 'from-api', src_registry: 'harbor-a', dest_registry: 'registry-b' });
    await bus.publish('policies', [{ key: policy.id, value: { schema: 1, policy, origin: 'api' } }]);
    await bus.close();

    const r = await sync(file, true);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^plan from-api push harbor-a\/library\/demo:v1 -> registry-b\/library\/demo:v1 \(missing in target\)$/m);
    assert.match(r.stdout, /dry run: 1 task\(s\) planned over 1 policy\(ies\)/);
  });

  it('copies the image whose webhook never arrived, exits 0, and a second pass finds nothing', async () => {
    const r = await sync(configFile, false);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`^done all push harbor-a/library/demo:v1 -> registry-b/library/demo:v1 ${image.digest} `, 'm'));
    assert.equal(await inspectDigest(dst, 'library/demo', 'v1', pusher), image.digest);

    // Another missed push: a new tag and a moved one.
    await pushImage(later, src, 'library/demo', 'v2', user);
    await pushImage(later, src, 'library/demo', 'v1', user);
    const second = await sync(configFile, false);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.match(second.stdout, /2 of 2 task\(s\) succeeded/);
    assert.equal(await inspectDigest(dst, 'library/demo', 'v1', pusher), later.digest);
    assert.equal(await inspectDigest(dst, 'library/demo', 'v2', pusher), later.digest);

    const third = await sync(configFile, true);
    assert.equal(third.code, 0);
    assert.match(third.stdout, /dry run: 0 task\(s\) planned over 1 policy\(ies\), 2 tag\(s\) or untagged artifact\(s\) already in step/);
  });

  it('exits 0 when a label-filtered policy only keeps target tags: printed as a note, not a skip', async () => {
    const [lsrc, ldst] = await Promise.all([startRegistry({ auth: 'basic', users: [user] }), startRegistry({ auth: 'basic', users: [pusher] })]);
    cleanup.push(() => lsrc.stop(), () => ldst.stop());
    await pushImage(image, lsrc, 'library/app', 'v1', user);
    // The target holds v1 already, and a tag the source no longer has: its labels are unknown, so it is kept.
    await Promise.all([pushImage(image, ldst, 'library/app', 'v1', pusher), pushImage(later, ldst, 'library/app', 'gone', pusher)]);
    const harbor = await startHarborDouble({
      version: 'v2', users: [{ ...user }], registries: [], policies: [],
      artifacts: [{ repository: 'library/app', digest: image.digest, tags: ['v1'], labels: ['prod'] }],
    });
    cleanup.push(() => harbor.close());
    const config = ConfigSchema.parse({
      sources: [{ id: 'harbor-l', kind: 'harbor', url: harbor.url, registryUrl: lsrc.url, credentials: user, insecure: true }],
      targets: [{ id: 'labelled-b', kind: 'registry', url: ldst.url, credentials: pusher }],
      policies: [{ id: 'prod', src_registry: 'harbor-l', dest_registry: 'labelled-b', filters: [{ type: 'label', value: ['prod'] }], deletion: true }],
      bus: { dataDir: mkdtempSync(join(tmpdir(), 'hsb-sync-none-')) },
    });
    for (const dryRun of [true, false]) {
      const lines: string[] = [];
      const code = await syncCommand({ config, dryRun, logger: silentLogger, out: (l) => lines.push(l) });
      assert.equal(code, 0, lines.join('\n'));
      assert.ok(lines.includes('note prod: deletion: 1 target tag(s) the source no longer has are kept: label filters cannot be evaluated for an artifact that is gone'), lines.join('\n'));
      assert.ok(!lines.some((l) => l.startsWith('skip ')), lines.join('\n'));
    }
    assert.equal(await inspectDigest(ldst, 'library/app', 'gone', pusher), later.digest, 'kept');
  });

  it('exits non-zero when a task fails (the target refuses pushes)', async () => {
    // Pull is granted, push is not: the listing works, the copy fails with 401/403 (permanent).
    const ro = await startRegistry({ auth: 'token', users: [pusher], token: { acl: (_u, a) => a.actions.filter((x) => x === 'pull') } });
    cleanup.push(() => ro.stop());
    const config = ConfigSchema.parse({
      sources: [{ id: 'harbor-a', kind: 'harbor', url: src.url, credentials: user, insecure: true }],
      targets: [{ id: 'read-only', kind: 'registry', url: ro.url, credentials: pusher }],
      policies: [{ id: 'ro', src_registry: 'harbor-a', dest_registry: 'read-only' }],
      worker: { attempts: 2 },
      bus: { dataDir: mkdtempSync(join(tmpdir(), 'hsb-sync-none-')) },
    });
    const lines: string[] = [];
    const code = await syncCommand({ config, dryRun: false, logger: silentLogger, out: (l) => lines.push(l) });
    assert.equal(code, 1, lines.join('\n'));
    assert.ok(lines.some((l) => /^failed ro push harbor-a\/library\/demo:v\d -> read-only\/library\/demo:v\d HSB_REGISTRY_(DENIED|UNAUTHORIZED)/.test(l)), lines.join('\n'));
    assert.match(lines.at(-1)!, /0 of 2 task\(s\) succeeded, 2 failed/);
  });

  it('exits non-zero with the target registry stopped', async () => {
    await dst.stop();
    const r = await sync(configFile, false);
    assert.notEqual(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^error all: HSB_REGISTRY_UNAVAILABLE/m);
  });
});
