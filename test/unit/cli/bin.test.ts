// The installed entry point (bin/harbor-swr-bridge.js): commands that copy blobs re-execute Node once
// with a 2 MiB young generation, the others keep V8's default. Observed from /proc/<pid>/cmdline
// (execve keeps the pid) while the process waits on a registry that never answers.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { EmbeddedBus } from '../../../src/bus/embedded/sqlite-bus.ts';

const BIN = join(import.meta.dirname, '../../../bin/harbor-swr-bridge.js');

describe('bin/harbor-swr-bridge.js', () => {
  let silent: Server;
  let port = 0;
  const held: Socket[] = [];
  before(async () => {
    // Accepts connections and never answers: the copy stays in flight while we look at it.
    silent = createServer((s) => { held.push(s); });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    port = (silent.address() as { port: number }).port;
  });
  after(async () => {
    for (const s of held) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  /** argv of the running process once `ready()` holds (or after ~2 s). */
  async function argsWhileRunning(args: string[], ready: () => boolean): Promise<string[]> {
    const child: ChildProcess = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore', env: { ...process.env, LOG_LEVEL: 'silent' } });
    try {
      let last: string[] = [];
      for (let i = 0; i < 100; i++) {
        await sleep(50);
        last = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
        if (ready() || i > 40) return last;
      }
      return last;
    } finally {
      child.kill('SIGKILL');
    }
  }

  it('runs `copy` with a 2 MiB young generation, re-executed in the same process', async () => {
    held.length = 0;
    // By the time it connects to the registry, any re-exec has happened.
    const argv = await argsWhileRunning(['copy', `127.0.0.1:${port}/a/b:1`, `127.0.0.1:${port}/c/d:1`], () => held.length > 0);
    assert.ok(held.length > 0, 'the copy reached the registry');
    assert.ok(argv.includes('--max-semi-space-size=2'), argv.join(' '));
    assert.equal(argv.filter((a) => a.startsWith('--max-semi-space-size')).length, 1, 'exactly once: no re-exec loop');
  });

  it('keeps V8\'s default for other commands', async () => {
    const child = spawn(process.execPath, [BIN, '--help'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 0);
    assert.match(out, /usage/i);
    // `serve` on the embedded bus runs until stopped.
    const dir = mkdtempSync(join(tmpdir(), 'bin-serve-'));
    const config = join(dir, 'config.yaml');
    writeFileSync(config, `server: { port: 0, host: 127.0.0.1 }\nbus: { dataDir: ${JSON.stringify(dir)} }\nsources: [{ id: h, url: "https://harbor.example.com", webhookSecrets: ["s"] }]\ntargets: [{ id: t, kind: registry, url: "http://127.0.0.1:1" }]\n`);
    const started = Date.now();
    const argv = await argsWhileRunning(['serve', '--config', config], () => Date.now() - started > 1000);
    assert.ok(argv.includes(BIN), `still running: ${argv.join(' ')}`);
    assert.ok(!argv.some((a) => a.startsWith('--max-semi-space-size')), argv.join(' '));
  });

  it('refuses an unknown LOG_LEVEL with a usage error instead of a stack trace', async () => {
    const child = spawn(process.execPath, [BIN, 'status'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOG_LEVEL: 'verbose', BRIDGE_CONFIG: '' } });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 2);
    assert.match(err, /^LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent \(got "verbose"\)$/m);
    assert.doesNotMatch(err, /\n\s+at /);
  });

  it('`<command> --help` prints that command\'s usage and exits 0 without reading a config', async () => {
    const cases: [string[], RegExp][] = [
      [['run', '--help'], /^usage: harbor-swr-bridge <command>/],
      [['serve', '-h'], /^usage: harbor-swr-bridge <command>/],
      [['work', '--help'], /^usage: harbor-swr-bridge <command>/],
      [['sync', '--help'], /^usage: harbor-swr-bridge sync \[--dry-run\]/],
      [['policies', 'import', '--help'], /^usage: harbor-swr-bridge policies import --harbor/],
      [['dlq', '--help'], /^usage: harbor-swr-bridge dlq list[\s\S]*dlq replay/],
      [['status', '--help'], /^usage: harbor-swr-bridge status \[--url/],
      [['bus', 'inspect', '-h'], /^usage: harbor-swr-bridge bus inspect/],
      [['check', '--help'], /^usage: harbor-swr-bridge check --config FILE/],
    ];
    const env = { ...process.env };
    delete env.BRIDGE_CONFIG;
    for (const [args, usage] of cases) {
      const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
      let [out, err] = ['', ''];
      child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      assert.equal(code, 0, `${args.join(' ')}: ${err}`);
      assert.match(out, usage, args.join(' '));
      assert.equal(err, '', args.join(' '));
    }
  });

  it('bus-only commands (bus inspect, status, dlq) run without the registries\' secrets; the others still refuse', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bin-lenient-'));
    const config = join(dir, 'config.yaml');
    writeFileSync(config, `bus: { dataDir: ${JSON.stringify(join(dir, 'data'))} }\nsources: [{ id: h, url: "http://127.0.0.1:1", credentials: { username: u, password: "\${HSB_TEST_UNSET_PASSWORD}" }, webhookSecrets: ["\${HSB_TEST_UNSET_SECRET}"] }]\ntargets: [{ id: t, kind: registry, url: "http://127.0.0.1:1" }]\n`);
    const bus = new EmbeddedBus({ dataDir: join(dir, 'data') });
    await bus.connect();
    await bus.close();
    // One unset, one set empty (as a compose file passes an unset variable).
    const env: NodeJS.ProcessEnv = { ...process.env, HSB_TEST_UNSET_SECRET: '' };
    delete env.HSB_TEST_UNSET_PASSWORD;
    delete env.KAFKA_BROKERS;
    const run = async (args: string[]) => {
      const child = spawn(process.execPath, [BIN, ...args, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env });
      let [out, err] = ['', ''];
      child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      return { code, out, err };
    };
    for (const args of [['bus', 'inspect'], ['dlq', 'list'], ['status']]) {
      const r = await run(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
    }
    const sync = await run(['sync', '--dry-run']);
    assert.equal(sync.code, 1);
    assert.match(sync.err, /sources\.0\.credentials\.password: environment variable HSB_TEST_UNSET_PASSWORD is not set/);
  });

  it('check validates a config without a bus or a registry: where each target pushes, or the file and field at fault', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bin-check-'));
    const write = (name: string, body: string) => { const f = join(dir, name); writeFileSync(f, body); return f; };
    const common = 'sources: [{ id: h, url: "https://harbor.example.com", webhookSecrets: ["s"] }]\n';
    const good = write('good.yaml', `${common}targets: [{ id: eu, kind: swr, region: eu-west-101, domain: myhuaweicloud.eu, credentials: { accessKey: AK, secretKey: SK } }]\npolicies: [{ id: p, src_registry: h, dest_registry: eu, dest_namespace: team }]\n`);
    const bad = write('bad.yaml', `${common}targets: [{ id: eu, kind: swr, region: eu-west-101, domain: "https://myhuaweicloud.eu", credentials: { accessKey: AK, secretKey: SK } }]\n`);
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: join(dir, 'never') };
    delete env.KAFKA_BROKERS;
    const run = async (config: string) => {
      const child = spawn(process.execPath, [BIN, 'check', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env });
      let [out, err] = ['', ''];
      child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
      return { code: await new Promise<number | null>((r) => child.once('exit', r)), out, err };
    };
    const ok = await run(good);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /good\.yaml: valid \(1 source, 1 target, 1 policy in the file\)/);
    assert.match(ok.out, /^\s+eu\s+swr basic, docker manifests\s+https:\/\/swr\.eu-west-101\.myhuaweicloud\.eu \(API https:\/\/swr-api\.eu-west-101\.myhuaweicloud\.eu\)$/m);
    assert.doesNotMatch(ok.out, /\bAK\b|\bSK\b/, 'no credentials printed');
    assert.equal(existsSync(join(dir, 'never')), false, 'no bus created');
    const no = await run(bad);
    assert.equal(no.code, 1);
    assert.match(no.err, /bad\.yaml: targets\.0\.domain: a DNS domain/);
    // A Kafka bus: how it would connect (TLS, client certificate, SASL mechanism and user), never the password.
    const pem = write('ca.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const key = write('key.pem', '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n');
    const kafka = write('kafka.yaml', `${common}targets: [{ id: r, kind: registry, url: "https://reg.example.org" }]\n`
      + `bus: { kind: kafka, brokers: ["kafka-1.example.com:9093"], tls: { caFile: ${pem}, certFile: ${pem}, keyFile: ${key} }, sasl: { mechanism: scram-sha-512, username: harbor-bridge, password: "\${HSB_TEST_KAFKA_PASSWORD}" } }\n`);
    env.HSB_TEST_KAFKA_PASSWORD = 'kafka-Pw-3141';
    const secure = await run(kafka);
    assert.equal(secure.code, 0, secure.err);
    assert.match(secure.out, /^bus: kafka \(kafka-1\.example\.com:9093, topic prefix harbor-bridge\.\)$/m);
    assert.match(secure.out, /kafka\.yaml: valid \(1 source, 1 target, 0 policies in the file\)/);
    assert.ok(secure.out.includes(`\nbus security: TLS (verified against Node's CAs and ${pem}, client certificate ${pem}), SASL scram-sha-512 as harbor-bridge\n`), secure.out);
    assert.doesNotMatch(secure.out + secure.err, /kafka-Pw-3141/);
    assert.doesNotMatch(ok.out, /bus security/, 'the embedded bus has no such line');
    const ignored = await run(write('ignored.yaml', `${common}targets: [{ id: r, kind: registry, url: "https://reg.example.org" }]\nbus: { dataDir: ${JSON.stringify(join(dir, 'never'))}, sasl: { mechanism: plain, username: u, password: p-Assw0rd } }\n`));
    assert.equal(ignored.code, 0, ignored.err);
    assert.match(ignored.out, /^warning: bus\.tls and bus\.sasl are for Kafka: the embedded bus ignores them/m);
  });

  it('takes the last --config (npm start -- --config FILE after the script\'s own)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bin-config-'));
    const good = join(dir, 'good.yaml');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(good, `bus: { dataDir: ${JSON.stringify(join(dir, 'data'))} }\nsources: [{ id: h, url: "http://127.0.0.1:1", webhookSecrets: ["s"] }]\ntargets: [{ id: t, kind: registry, url: "http://127.0.0.1:1" }]\n`);
    writeFileSync(bad, 'sources: [{ id: h, url: "http://127.0.0.1:1", webhookSecrets: ["s"], colour: blue }]\n');
    const child = spawn(process.execPath, [BIN, 'sync', '--dry-run', '--config', good, '--config', bad], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 1, err);
    assert.ok(err.includes(`${bad}: sources.0: Unrecognized key: "colour"`), err);
  });

  it('refuses a mistyped flag with exit 2 and usage for every command, before doing anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bin-flags-'));
    const config = join(dir, 'config.yaml');
    writeFileSync(config, `server: { port: 0, host: 127.0.0.1 }\nbus: { dataDir: ${JSON.stringify(join(dir, 'data'))} }\nsources: [{ id: h, url: "http://127.0.0.1:1", webhookSecrets: ["s"] }]\ntargets: [{ id: t, kind: registry, url: "http://127.0.0.1:1" }]\n`);
    const cases: [string[], RegExp][] = [
      [['sync', '--dryrun'], /Unknown option '--dryrun'[\s\S]*usage: harbor-swr-bridge sync \[--dry-run\]/],
      [['policies', 'import', '--harbor', 'h', '--dryrun'], /Unknown option '--dryrun'[\s\S]*policies import --harbor/],
      [['policies', 'import'], /--harbor <sourceId> is required/],
      [['policies', 'export', '--harbor', 'h'], /expected import, got "export"/],
      [['serve', '--port', '1'], /Unknown option '--port'/],
      [['work', 'now'], /Unexpected argument 'now'/],
      [['bus', 'inspect', '--bogus'], /Unknown option '--bogus'[\s\S]*bus inspect \[--json\]/],
      // A flag before the command is not a command: `run` (the default) takes no arguments.
      [['--dry-run', 'sync'], /Unknown option '--dry-run'/],
    ];
    for (const [args, message] of cases) {
      const child = spawn(process.execPath, [BIN, ...args, '--config', config], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
      let err = '';
      child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      assert.equal(code, 2, `${args.join(' ')}: ${err}`);
      assert.match(err, message, args.join(' '));
      assert.doesNotMatch(err, /\n\s+at /);
    }
    assert.ok(!existsSync(join(dir, 'data')), 'no command opened the bus');
  });

  it('reports an unusable data dir, a port in use and an unreachable bridge in one line, not a stack trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bin-errors-'));
    const config = join(dir, 'config.yaml');
    writeFileSync(config, `server: { port: 0, host: 127.0.0.1 }\nbus: { dataDir: ${JSON.stringify(join(dir, 'data'))} }\nsources: [{ id: h, url: "http://127.0.0.1:1", webhookSecrets: ["s"] }]\ntargets: [{ id: t, kind: registry, url: "http://127.0.0.1:1" }]\n`);
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const busyPort = (busy.address() as { port: number }).port;
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const run = async (args: string[], env: Record<string, string>) => {
      // On the embedded bus whatever the suite's environment says (npm test sets KAFKA_BROKERS).
      const { KAFKA_BROKERS: _kafka, ...inherited } = process.env;
      const child = spawn(process.execPath, [BIN, ...args, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...inherited, LOG_LEVEL: 'silent', ...env } });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
      const code = await Promise.race([new Promise<number | null>((r) => child.once('exit', r)), sleep(15000).then(() => { child.kill('SIGKILL'); return 'still running'; })]);
      return { code, out };
    };
    // `status` reads the bus before it asks the bridge: one is there, as the bridge would have made it.
    const bus = new EmbeddedBus({ dataDir: join(dir, 'data') });
    await bus.connect();
    await bus.close();
    try {
      const cases: [string[], Record<string, string>, number, RegExp][] = [
        [['serve'], { DATA_DIR: '/dev/null/x' }, 1, /bus\.dataDir \(DATA_DIR\) \/dev\/null\/x: the embedded bus cannot use this directory \(ENOTDIR\)/],
        [['bus', 'inspect'], { DATA_DIR: '/dev/null/x' }, 1, /^harbor-swr-bridge: no embedded bus at \/dev\/null\/x\/bus\.sqlite: start the bridge first/m],
        [['serve'], { PORT: String(busyPort) }, 1, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${busyPort} \\(server\\.host, server\\.port / PORT\\): EADDRINUSE`)],
        [['status', '--url', `http://127.0.0.1:${closedPort}`], {}, 1, new RegExp(`could not ask the bridge: fetch failed: connect ECONNREFUSED 127\\.0\\.0\\.1:${closedPort}`)],
        // Said before the request (0.0.0.0 is not written as this machine, though it reaches it): the token crosses the network in clear.
        [['status', '--url', `http://0.0.0.0:${closedPort}`], { BRIDGE_API_TOKEN: 'tok' }, 1, new RegExp(`^warning: the API token goes to 0\\.0\\.0\\.0:${closedPort} over plain http; put a TLS proxy in front of the bridge and use https:// beyond a trusted network$`, 'm')],
      ];
      for (const [args, env, code, message] of cases) {
        const r = await run(args, env);
        assert.equal(r.code, code, `${args.join(' ')}: ${r.out}`);
        assert.match(r.out, message, args.join(' '));
        assert.doesNotMatch(r.out, /\n\s+at /, 'no stack trace');
      }
    } finally {
      busy.close();
    }
  });
});
