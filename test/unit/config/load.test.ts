import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig, parseConfig } from '../../../src/config/load.ts';
import { resolveSecret } from '../../../src/config/secret.ts';
import { BridgeError } from '../../../src/errors.ts';

const base = () => ({
  sources: [{ id: 'h', url: 'https://harbor.example.com/', webhookSecrets: ['s3cret'] }],
  targets: [{ id: 't', kind: 'registry', url: 'https://reg.example.org' }],
  policies: [{ id: 'p', src_registry: 'h', dest_registry: 't' }],
});

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof BridgeError);
    assert.equal(e.code, 'HSB_CONFIG_INVALID');
    return e.message;
  }
  assert.fail('expected a config error');
}

describe('config', () => {
  it('applies defaults, trims URLs and picks the embedded bus without brokers', () => {
    const c = parseConfig(base(), 'c.yaml', {});
    assert.equal(c.server.port, 8080);
    assert.equal(c.bus.kind, 'embedded');
    assert.equal(c.bus.topicPrefix, 'harbor-bridge.');
    assert.equal(c.sources[0]!.url, 'https://harbor.example.com');
    assert.equal(c.policies[0]!.dest_namespace_replace_count, -1);
    assert.ok(Object.isFrozen(c.sources[0]));
  });

  it('takes env overrides: KAFKA_BROKERS, PORT, DATA_DIR, TOPIC_PREFIX, METRICS_PORT', () => {
    assert.equal(parseConfig(base(), 'c.yaml', {}).worker.metricsPort, undefined);
    // Named as the environment variable it came from: the file may not have the field at all.
    assert.match(configError(() => parseConfig(base(), 'c.yaml', { METRICS_PORT: 'http' })), /^METRICS_PORT \(environment\): must be an integer from 0 to 65535, got "http"$/m);
    for (const bad of ['abc', '-1', '65536', '80.5', '0x50']) {
      const msg = configError(() => parseConfig(base(), 'c.yaml', { PORT: bad }));
      assert.match(msg, /^PORT \(environment\): must be an integer from 0 to 65535/m, bad);
      assert.doesNotMatch(msg, /server\.port/);
    }
    assert.equal(parseConfig(base(), 'c.yaml', { PORT: ' 0 ' }).server.port, 0);
    const c = parseConfig(base(), 'c.yaml', { KAFKA_BROKERS: 'a:9092, b:9092', PORT: '9999', DATA_DIR: '/d', TOPIC_PREFIX: 'x.', METRICS_PORT: '9464' });
    assert.equal(c.worker.metricsPort, 9464);
    assert.equal(c.bus.kind, 'kafka');
    assert.deepEqual(c.bus.brokers, ['a:9092', 'b:9092']);
    assert.equal(c.server.port, 9999);
    assert.equal(c.bus.dataDir, '/d');
    assert.equal(c.bus.topicPrefix, 'x.');
    // An empty variable is unset (a compose file's `${TOPIC_PREFIX}` with nothing behind it); the file can still say "".
    assert.equal(parseConfig(base(), 'c.yaml', { TOPIC_PREFIX: '' }).bus.topicPrefix, 'harbor-bridge.');
    assert.equal(parseConfig({ ...base(), bus: { topicPrefix: '' } }, 'c.yaml', { TOPIC_PREFIX: '' }).bus.topicPrefix, '');
  });

  it('notes KAFKA_BROKERS overriding an explicit bus.kind: embedded, and only that', () => {
    const notesOf = (bus: unknown, env: NodeJS.ProcessEnv) => {
      const notes: string[] = [];
      const c = parseConfig({ ...base(), bus }, 'c.yaml', env, { collectNotes: notes });
      return { kind: c.bus.kind, notes };
    };
    const overridden = notesOf({ kind: 'embedded' }, { KAFKA_BROKERS: 'k:9092' });
    assert.equal(overridden.kind, 'kafka');
    assert.deepEqual(overridden.notes, ['KAFKA_BROKERS is set in the environment, so the bridge uses Kafka (k:9092) although c.yaml says bus.kind: embedded; unset KAFKA_BROKERS to use the embedded bus']);
    // Filling in for a file that does not choose, or agreeing with it, is what the variable is for.
    assert.deepEqual(notesOf({}, { KAFKA_BROKERS: 'k:9092' }).notes, []);
    assert.deepEqual(notesOf({ kind: 'kafka', brokers: ['a:1'] }, { KAFKA_BROKERS: 'k:9092' }).notes, []);
    assert.deepEqual(notesOf({ kind: 'embedded' }, {}).notes, []);
  });

  it('resolves secrets given inline, as ${ENV}, ${ENV:-default} and file:', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hsb-secret-'));
    writeFileSync(join(dir, 'sk'), 'from-file\n');
    assert.deepEqual(resolveSecret('plain', {}), { ok: true, value: 'plain' });
    assert.deepEqual(resolveSecret('Bearer ${TOK}', { TOK: 'abc' }), { ok: true, value: 'Bearer abc' });
    assert.deepEqual(resolveSecret('${NOPE:-fallback}', {}), { ok: true, value: 'fallback' });
    assert.deepEqual(resolveSecret(`file:${join(dir, 'sk')}`, {}), { ok: true, value: 'from-file' });
    assert.equal(resolveSecret('${MISSING}', {}).ok, false);
    // `:-` treats an empty variable as unset, as shells do; plain `${X}` keeps the empty value.
    assert.deepEqual(resolveSecret('${BRIDGE_API_TOKEN:-dev-api-token}', { BRIDGE_API_TOKEN: '' }), { ok: true, value: 'dev-api-token' });
    assert.deepEqual(resolveSecret('${BRIDGE_API_TOKEN:-dev-api-token}', { BRIDGE_API_TOKEN: 'set' }), { ok: true, value: 'set' });
    assert.deepEqual(resolveSecret('a${EMPTY}b', { EMPTY: '' }), { ok: true, value: 'ab' });
    const cfg = base();
    cfg.sources[0]!.webhookSecrets = ['${HOOK}'];
    assert.equal(parseConfig(cfg, 'c.yaml', { HOOK: 'x1' }).sources[0]!.webhookSecrets[0], 'x1');
  });

  it('names the file, the field and the problem, without echoing secret values', () => {
    const cfg: any = base();
    cfg.sources[0].webhookSecrets = ['${WEBHOOK_SECRET_UNSET}'];
    cfg.targets[0].url = 'not a url';
    const msg = configError(() => parseConfig(cfg, '/etc/bridge.yaml', {}));
    assert.match(msg, /\/etc\/bridge\.yaml: sources\.0\.webhookSecrets\.0: environment variable WEBHOOK_SECRET_UNSET is not set/);
    assert.match(msg, /\/etc\/bridge\.yaml: targets\.0\.url: /);
    const refs: any = base();
    refs.policies[0].dest_registry = 'nowhere';
    refs.targets[0].credentials = { username: 'u', password: 'hunter2-secret' };
    const refMsg = configError(() => parseConfig(refs, '/etc/bridge.yaml', {}));
    assert.match(refMsg, /\/etc\/bridge\.yaml: policies\.0\.dest_registry: unknown target "nowhere"/);
    assert.doesNotMatch(refMsg, /hunter2/);
  });

  it('says which variable or file left a secret empty, and that ${...} is not expanded outside secrets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hsb-empty-'));
    writeFileSync(join(dir, 'empty'), '\n');
    const cfg: any = base();
    cfg.sources[0].webhookSecrets = ['${HOOK}', `file:${join(dir, 'empty')}`, '${A:-}${B}'];
    cfg.targets[0].url = '${TARGET_URL}';
    cfg.sources[0].url = 'not a url';
    const msg = configError(() => parseConfig(cfg, 'c.yaml', { HOOK: '', B: '', TARGET_URL: 'https://reg.example.org' }));
    assert.match(msg, /^c\.yaml: sources\.0\.webhookSecrets\.0: secret resolves to an empty string: \$\{HOOK\} expands to nothing$/m);
    assert.match(msg, new RegExp(`^c\\.yaml: sources\\.0\\.webhookSecrets\\.1: secret file ${join(dir, 'empty').replaceAll('.', '\\.')} is empty$`, 'm'));
    assert.match(msg, /^c\.yaml: sources\.0\.webhookSecrets\.2: secret resolves to an empty string: \$\{A\}, \$\{B\} expand to nothing$/m);
    // Taken as written, even with the variable set: only secrets expand.
    assert.match(msg, /^c\.yaml: targets\.0\.url: Invalid URL \(\$\{\.\.\.\} is expanded only in secret fields: .*; write this value out\)$/m);
    // No hint where the value has no reference, nor for an unset secret.
    assert.match(msg, /^c\.yaml: sources\.0\.url: Invalid URL$/m);
    cfg.sources[0].webhookSecrets = ['${HOOK_UNSET}'];
    assert.match(configError(() => parseConfig(cfg, 'c.yaml', {})), /webhookSecrets\.0: environment variable HOOK_UNSET is not set$/m);
  });

  it('refuses a source without a webhook secret unless it says insecure: true', () => {
    const cfg: any = base();
    cfg.sources[0].webhookSecrets = [];
    assert.match(configError(() => parseConfig(cfg, 'c.yaml', {})), /sources\.0\.webhookSecrets: a source needs at least one webhook secret/);
    cfg.sources[0].insecure = true;
    assert.equal(parseConfig(cfg, 'c.yaml', {}).sources[0]!.insecure, true);
  });

  it('rejects unknown keys, duplicate ids and an swr target without a region', () => {
    const cfg: any = base();
    cfg.sources.push({ ...cfg.sources[0] });
    cfg.targets.push({ id: 'swr', kind: 'swr' });
    cfg.server = { prot: 1 };
    const msg = configError(() => parseConfig(cfg, 'c.yaml', {}));
    assert.match(msg, /sources\.1\.id: duplicate id "h"/);
    assert.match(msg, /targets\.1\.region: an swr target needs a region/);
    assert.match(msg, /server: Unrecognized key.*prot/);
  });

  it('bounds server.publishTimeoutMs (a timer cannot wait longer than about 24 days; senders give up long before)', () => {
    assert.match(configError(() => parseConfig({ ...base(), server: { publishTimeoutMs: 3_000_000_000 } }, 'c.yaml', {})), /server\.publishTimeoutMs: .*600000/);
    assert.equal(parseConfig({ ...base(), server: { publishTimeoutMs: 600_000 } }, 'c.yaml', {}).server.publishTimeoutMs, 600_000);
  });

  it('refuses, at load, an SWR domain that is not a DNS domain and a dest_namespace whose organisation SWR would refuse', () => {
    const swr = (extra: Record<string, unknown>, policy: Record<string, unknown> = {}) => ({
      ...base(),
      targets: [{ id: 's', kind: 'swr', region: 'eu-west-101', credentials: { accessKey: 'AK', secretKey: 'SK' }, ...extra }],
      policies: [{ id: 'p', src_registry: 'h', dest_registry: 's', ...policy }],
    });
    assert.match(configError(() => parseConfig(swr({ domain: 'https://myhuaweicloud.eu' }), 'c.yaml', {})), /^c\.yaml: targets\.0\.domain: a DNS domain such as myhuaweicloud\.com/m);
    assert.match(configError(() => parseConfig(swr({ domain: 'myhuaweicloud.eu/x' }), 'c.yaml', {})), /targets\.0\.domain/);
    assert.equal(parseConfig(swr({ domain: 'myhuaweicloud.eu' }), 'c.yaml', {}).targets[0]!.domain, 'myhuaweicloud.eu');
    assert.match(configError(() => parseConfig(swr({}, { dest_namespace: '1bad--org' }), 'c.yaml', {})),
      /^c\.yaml: policies\.0\.dest_namespace: SWR organisation "1bad--org": organisation name must start with a lowercase letter$/m);
    // Only the organisation is known here; the repository part is checked once the artifact's path is rewritten.
    assert.equal(parseConfig(swr({}, { dest_namespace: 'team/1x' }), 'c.yaml', {}).policies[0]!.dest_namespace, 'team/1x');
    assert.equal(parseConfig(swr({}, { dest_namespace: 'team-a/mirror' }), 'c.yaml', {}).policies[0]!.dest_namespace, 'team-a/mirror');
    // A plain registry has no organisations: the same namespace is fine there.
    assert.equal(parseConfig({ ...base(), policies: [{ id: 'p', src_registry: 'h', dest_registry: 't', dest_namespace: '1bad-org' }] }, 'c.yaml', {}).policies[0]!.dest_namespace, '1bad-org');
  });

  it('refuses a policy platform that is not os/arch[/variant], naming the file and field (every copy would fail)', () => {
    const cfg: any = base();
    cfg.policies[0].platforms = ['linux/arm64/v8', 'linux'];
    assert.match(configError(() => parseConfig(cfg, '/etc/bridge.yaml', {})), /^\/etc\/bridge\.yaml: policies\.0\.platforms\.1: expects os\/arch\[\/variant\], not "linux"$/m);
    cfg.policies[0].platforms = ['linux/amd64', 'linux/arm/v7'];
    assert.deepEqual(parseConfig(cfg, 'c.yaml', {}).policies[0]!.platforms, ['linux/amd64', 'linux/arm/v7']);
  });

  it('reports unreadable files and bad YAML with the file name', () => {
    assert.match(configError(() => loadConfig('/nonexistent/bridge.yaml', {})), /\/nonexistent\/bridge\.yaml: cannot read config file \(ENOENT\)/);
    // A relative path says where it was looked for, and why when npm started the bridge elsewhere.
    assert.equal(configError(() => loadConfig('no-such-bridge.yaml', {})), `no-such-bridge.yaml: cannot read config file (ENOENT: looked for ${resolve('no-such-bridge.yaml')})`);
    assert.match(configError(() => loadConfig('no-such-bridge.yaml', { INIT_CWD: '/somewhere/else' })),
      new RegExp(`looked for .*no-such-bridge\\.yaml; npm runs the bridge from ${process.cwd().replaceAll('.', '\\.')}, not /somewhere/else: give the config's absolute path\\)$`));
    const dir = mkdtempSync(join(tmpdir(), 'hsb-yaml-'));
    writeFileSync(join(dir, 'bad.yaml'), 'sources: [\n');
    assert.match(configError(() => loadConfig(join(dir, 'bad.yaml'), {})), /bad\.yaml: not valid YAML/);
  });

  it('never quotes the YAML around a syntax error (it may hold a secret)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hsb-yaml-'));
    writeFileSync(join(dir, 'leak.yaml'), 'sources:\n  - id: a\n    credentials: { username: u, password: "s3cr3t-Pa55 }\n');
    const msg = configError(() => loadConfig(join(dir, 'leak.yaml'), {}));
    assert.match(msg, /leak\.yaml: not valid YAML at line \d+, column \d+ \([A-Z_]+\)/);
    assert.doesNotMatch(msg, /s3cr3t/);
    writeFileSync(join(dir, 'tokens.yaml'), 'server:\n  apiTokens: [tok-SECRET-123\n');
    assert.doesNotMatch(configError(() => loadConfig(join(dir, 'tokens.yaml'), {})), /SECRET/);
  });

  it('refuses a YAML tag it cannot resolve, without printing the line (it may hold a secret)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hsb-yaml-'));
    writeFileSync(join(dir, 'tag.yaml'), 'sources:\n  - id: a\n    credentials: { username: u, password: !vault "vault-SECRET-9" }\n');
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const msg = configError(() => loadConfig(join(dir, 'tag.yaml'), {}));
      assert.match(msg, /tag\.yaml: YAML the bridge does not load at line 3, column \d+ \(TAG_RESOLVE_FAILED\)/);
      assert.doesNotMatch(msg, /SECRET/);
      await new Promise((r) => setImmediate(r)); // process warnings are emitted on a later tick
      assert.deepEqual(warnings.map((w) => w.message), [], 'the parser printed nothing');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('reports a section that is not a mapping at its field, env overrides or not', () => {
    for (const env of [{}, { KAFKA_BROKERS: 'k:9092', PORT: '9000' }]) {
      assert.match(configError(() => parseConfig({ ...base(), bus: 'kafka' }, 'c.yaml', env)), /c\.yaml: bus: .*expected object/);
      assert.match(configError(() => parseConfig({ ...base(), server: 8080 }, 'c.yaml', env)), /c\.yaml: server: .*expected object/);
    }
  });

  it('refuses a user or password in any URL without repeating it, and a query or fragment', () => {
    const withSource = (url: string) => ({ ...base(), sources: [{ ...base().sources[0]!, url }] });
    const userinfo = configError(() => parseConfig(withSource('https://robot:Passw0rd@harbor.example.com'), 'c.yaml', {}));
    assert.match(userinfo, /c\.yaml: sources\.0\.url: no user or password in the URL: put them under `credentials`/);
    assert.doesNotMatch(userinfo, /Passw0rd|robot/);
    assert.match(configError(() => parseConfig(withSource('https://robot@harbor.example.com'), 'c.yaml', {})), /sources\.0\.url: no user or password/);
    const swr = { ...base(), targets: [{ id: 's', kind: 'swr', region: 'cn-north-4', apiUrl: 'https://ak:sk@swr-api.example.com', credentials: { accessKey: 'a', secretKey: 'b' } }] };
    assert.match(configError(() => parseConfig(swr, 'c.yaml', {})), /targets\.0\.apiUrl: no user or password/);
    assert.match(configError(() => parseConfig(withSource('https://harbor.example.com/?x=1'), 'c.yaml', {})), /sources\.0\.url: a base URL without query or fragment/);
    assert.match(configError(() => parseConfig(withSource('https://harbor.example.com/#top'), 'c.yaml', {})), /sources\.0\.url: a base URL without query or fragment/);
  });

  it('checks tls.caFile when the config loads', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hsb-ca-'));
    const missing = { ...base(), sources: [{ ...base().sources[0]!, tls: { caFile: join(dir, 'nope.pem') } }] };
    assert.match(configError(() => parseConfig(missing, 'c.yaml', {})), /c\.yaml: sources\.0\.tls\.caFile: cannot read CA file .*nope\.pem \(ENOENT\)/);
    writeFileSync(join(dir, 'junk.pem'), 'not a certificate\n');
    const junk = { ...base(), targets: [{ ...base().targets[0]!, tls: { caFile: join(dir, 'junk.pem') } }] };
    assert.match(configError(() => parseConfig(junk, 'c.yaml', {})), /c\.yaml: targets\.0\.tls\.caFile: .*junk\.pem holds no PEM certificate/);
    writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const ok = { ...base(), targets: [{ ...base().targets[0]!, tls: { caFile: join(dir, 'ca.pem') } }] };
    assert.equal(parseConfig(ok, 'c.yaml', {}).targets[0]!.tls.caFile, join(dir, 'ca.pem'));
  });

  it('refuses unknown fields in a policy at every level, with a hint for Harbor\'s replicate_deletion', () => {
    const cfg: any = base();
    cfg.policies[0].replicate_deletion = true;
    cfg.policies[0].dest_namspace = 'x';
    cfg.policies[0].toString = 'x';
    const msg = configError(() => parseConfig(cfg, 'c.yaml', {}));
    assert.match(msg, /unknown field "toString"(;|\n|$)/, 'no hint taken from Object.prototype');
    assert.doesNotMatch(msg, /native code/);
    assert.match(msg, /c\.yaml: policies\.0: unknown field "replicate_deletion": use "deletion"/);
    assert.match(msg, /unknown field "dest_namspace"/);
    cfg.policies[0] = { ...base().policies[0], filters: [{ type: 'tag', value: 'rc*', decorations: 'excludes' }], trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 3 * * *', timezone: 'UTC' } } };
    const nested = configError(() => parseConfig(cfg, 'c.yaml', {}));
    assert.match(nested, /c\.yaml: policies\.0\.filters\.0: unknown field "decorations"/);
    assert.match(nested, /c\.yaml: policies\.0\.trigger\.trigger_settings: unknown field "timezone"/);
    cfg.policies[0] = { ...base().policies[0], deletion: true };
    assert.equal(parseConfig(cfg, 'c.yaml', {}).policies[0]!.deletion, true);
  });

  it('loads every YAML example in the README', () => {
    assert.ok(loadYamlExamples('../../../README.md') >= 2, 'the README shows at least the full example and the SWR one');
  });

  it('loads the example configuration of DESIGN.md (../shared, beside the checkout)', () => {
    assert.equal(loadYamlExamples('../../../../shared/DESIGN.md'), 1);
  });

  /** Loads each ```yaml block of a document (relative to this file) as a config file; returns how many. */
  function loadYamlExamples(doc: string): number {
    const text = readFileSync(resolve(import.meta.dirname, doc), 'utf8');
    const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const dir = mkdtempSync(join(tmpdir(), 'hsb-readme-'));
    writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    writeFileSync(join(dir, 'sk'), 'secret-key\n');
    writeFileSync(join(dir, 'key.pem'), '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n');
    blocks.forEach((text, i) => {
      // The examples' files exist on a user's machine; here they are stand-ins.
      const local = text.replaceAll('/etc/harbor/ca.pem', join(dir, 'ca.pem')).replaceAll('/run/secrets/swr_sk', join(dir, 'sk'))
        .replaceAll('/etc/kafka/ca.pem', join(dir, 'ca.pem')).replaceAll('/etc/kafka/client.pem', join(dir, 'ca.pem')).replaceAll('/etc/kafka/client-key.pem', join(dir, 'key.pem'));
      const env = Object.fromEntries([...local.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => [m[1]!, `value-of-${m[1]}`]));
      const file = join(dir, `example-${i}.yaml`);
      writeFileSync(file, local);
      const c = loadConfig(file, env);
      assert.ok(c.sources.length > 0 && c.targets.length > 0, `${doc} yaml block ${i} has sources and targets`);
    });
    return blocks.length;
  }

  it('loads the shipped example config', () => {
    const c = loadConfig(resolve(import.meta.dirname, '../../../config/example.yaml'), {});
    assert.equal(c.bus.kind, 'embedded');
    assert.equal(c.policies.length, 1);
    // Its API token and webhook secret default to values printed in the README.
    assert.equal(c.server.host, '127.0.0.1');
    // Also when a compose file or shell passes the variables set but empty.
    const empty = loadConfig(resolve(import.meta.dirname, '../../../config/example.yaml'), { BRIDGE_API_TOKEN: '', HARBOR_WEBHOOK_SECRET: '' });
    assert.deepEqual(empty.server.apiTokens, ['dev-api-token']);
    assert.deepEqual(empty.sources[0]!.webhookSecrets, ['Bearer dev-webhook-secret']);
  });
});

describe('bus tls and sasl (Kafka)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hsb-kafka-tls-'));
  const ca = join(dir, 'ca.pem');
  const key = join(dir, 'key.pem');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  writeFileSync(key, '-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n');
  const withBus = (bus: Record<string, unknown>) => ({ ...base(), bus: { kind: 'kafka', brokers: ['kafka-1.example.com:9093'], ...bus } });

  it('takes TLS files and a SASL login whose password is a secret; TLS is on with the section present, verification on by default', () => {
    writeFileSync(join(dir, 'pw'), 'from-file\n');
    const c = parseConfig(withBus({
      tls: { caFile: ca, certFile: ca, keyFile: key },
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'harbor-bridge', password: '${KAFKA_PASSWORD}' },
    }), 'c.yaml', { KAFKA_PASSWORD: 'pw-from-env' });
    assert.deepEqual(c.bus.tls, { insecure: false, caFile: ca, certFile: ca, keyFile: key });
    assert.deepEqual(c.bus.sasl, { mechanism: 'scram-sha-512', username: 'harbor-bridge', password: 'pw-from-env' });
    assert.equal(parseConfig(withBus({ sasl: { mechanism: 'plain', username: 'u', password: `file:${join(dir, 'pw')}` } }), 'c.yaml', {}).bus.sasl!.password, 'from-file');
    assert.deepEqual(parseConfig(withBus({ tls: {} }), 'c.yaml', {}).bus.tls, { insecure: false });
    const plain = parseConfig(withBus({}), 'c.yaml', {});
    assert.equal(plain.bus.tls, undefined);
    assert.equal(plain.bus.sasl, undefined);
  });

  it('names the field of a TLS file that is missing, not a PEM of its kind, encrypted, or without its pair', () => {
    const msg = (tls: Record<string, unknown>) => configError(() => parseConfig(withBus({ tls }), 'c.yaml', {}));
    assert.match(msg({ caFile: join(dir, 'nope.pem') }), /^c\.yaml: bus\.tls\.caFile: cannot read CA file .*nope\.pem \(ENOENT\)$/m);
    assert.match(msg({ certFile: key, keyFile: key }), /^c\.yaml: bus\.tls\.certFile: .*key\.pem holds no PEM certificate$/m);
    assert.match(msg({ certFile: ca, keyFile: ca }), /^c\.yaml: bus\.tls\.keyFile: .*ca\.pem holds no PEM private key$/m);
    writeFileSync(join(dir, 'enc.pem'), '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n');
    assert.match(msg({ certFile: ca, keyFile: join(dir, 'enc.pem') }), /^c\.yaml: bus\.tls\.keyFile: .*enc\.pem is an encrypted private key; give an unencrypted PEM key/m);
    // The traditional form: an RSA key with its encryption in a header.
    writeFileSync(join(dir, 'enc-rsa.pem'), '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMIIB\n-----END RSA PRIVATE KEY-----\n');
    assert.match(msg({ certFile: ca, keyFile: join(dir, 'enc-rsa.pem') }), /^c\.yaml: bus\.tls\.keyFile: .*enc-rsa\.pem is an encrypted private key/m);
    assert.match(msg({ certFile: ca }), /^c\.yaml: bus\.tls\.keyFile: a client certificate \(certFile\) needs its private key \(keyFile\)$/m);
    assert.match(msg({ keyFile: key }), /^c\.yaml: bus\.tls\.certFile: a client key \(keyFile\) needs its certificate \(certFile\)$/m);
    assert.match(msg({ caFile: ca, verify: false }), /^c\.yaml: bus\.tls: Unrecognized key: "verify"$/m);
  });

  it('names the SASL field at fault without echoing the password, and resolves the password even for the bus-only commands', () => {
    const bad = configError(() => parseConfig(withBus({ sasl: { mechanism: 'gssapi', username: 'u', password: 'hunter2-kafka' } }), 'c.yaml', {}));
    assert.match(bad, /^c\.yaml: bus\.sasl\.mechanism: .*"plain"\|"scram-sha-256"\|"scram-sha-512"/m);
    assert.doesNotMatch(bad, /hunter2/);
    assert.match(configError(() => parseConfig(withBus({ sasl: { mechanism: 'plain', password: 'p' } }), 'c.yaml', {})), /^c\.yaml: bus\.sasl\.username: /m);
    const unset = withBus({ sasl: { mechanism: 'plain', username: 'u', password: '${KAFKA_PASSWORD}' } });
    assert.match(configError(() => parseConfig(unset, 'c.yaml', {})), /^c\.yaml: bus\.sasl\.password: environment variable KAFKA_PASSWORD is not set$/m);
    // status, dlq and bus inspect load leniently (no registry secrets needed), but they log in to Kafka themselves.
    const lenient: any = structuredClone(unset);
    lenient.sources[0].credentials = { username: 'u', password: '${HARBOR_UNSET}' };
    const msg = configError(() => parseConfig(lenient, 'c.yaml', {}, { lenientSecrets: true }));
    assert.match(msg, /bus\.sasl\.password: environment variable KAFKA_PASSWORD is not set/);
    assert.doesNotMatch(msg, /HARBOR_UNSET/);
  });
});

describe('target credentials', () => {
  const withTarget = (credentials: unknown) => ({
    sources: [{ id: 'h', url: 'https://harbor.example.com', webhookSecrets: ['s'] }],
    targets: [{ id: 'swr', kind: 'swr', region: 'cn-north-4', credentials }],
  });

  it('takes an AK/SK pair or a login pair', () => {
    assert.deepEqual(parseConfig(withTarget({ accessKey: 'ak', secretKey: '${SK}' }), 'c.yaml', { SK: 'sk' }).targets[0]!.credentials, { accessKey: 'ak', secretKey: 'sk' });
    assert.deepEqual(parseConfig(withTarget({ username: 'cn-north-4@ak', password: 'p' }), 'c.yaml', {}).targets[0]!.credentials, { username: 'cn-north-4@ak', password: 'p' });
  });

  it('reports an unset secret at its own field, not as an invalid union', () => {
    const msg = configError(() => parseConfig(withTarget({ accessKey: '${EU_AK}', secretKey: 'sk' }), 'c.yaml', {}));
    assert.match(msg, /c\.yaml: targets\.0\.credentials\.accessKey: environment variable EU_AK is not set/);
    assert.match(configError(() => parseConfig(withTarget({ accessKey: 'ak' }), 'c.yaml', {})), /targets\.0\.credentials\.secretKey: /);
  });
});
