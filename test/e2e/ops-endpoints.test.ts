// What a platform sees of the daemons: health, metrics and the DLQ API of `serve`, `work` and `run`
// processes of the real CLI, on the embedded bus, and on a Kafka address where no broker listens.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '../../scripts/kafka/broker.ts';
import { NODE, eventually, startBridgeProcess, writeConfig, type BridgeProcess } from '../support/bridge-process.ts';
import { harborV2Payload, postWebhook } from '../support/harbor-payloads.ts';

const SECRET = 'Bearer ops-secret';
const config = {
  server: { apiTokens: ['api-token'] },
  sources: [{ id: 'h', url: 'https://harbor.example.com', webhookSecrets: [SECRET] }],
  targets: [{ id: 't', kind: 'registry', url: 'https://registry.example.org' }],
  policies: [{ id: 'all', src_registry: 'h', dest_registry: 't' }],
};

describe('e2e: daemons as operations see them', { timeout: 120000 }, () => {
  const running: BridgeProcess[] = [];
  after(async () => { await Promise.all(running.map((p) => p.stop())); });
  const start = async (command: string, env: Record<string, string | undefined>) => {
    const p = await startBridgeProcess({ config, command, env });
    running.push(p);
    return p;
  };

  it('a work process serves /livez, /readyz and /metrics on METRICS_PORT, and no webhooks', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hsb-ops-'));
    const metricsPort = await freePort();
    const w = await start('work', { KAFKA_BROKERS: undefined, DATA_DIR: dataDir, METRICS_PORT: String(metricsPort) });
    await w.waitForLog(/workers started/);
    const base = `http://127.0.0.1:${metricsPort}`;
    assert.equal((await fetch(`${base}/livez`)).status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', bus: 'embedded', busConnected: true });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    // The worker's own series: consumer lag is measured by work processes only.
    assert.match(metrics, /^hsb_consumer_lag\{/m);
    assert.match(metrics, /^# TYPE hsb_tasks_total counter/m);
    const hook = await postWebhook(base, 'h', harborV2Payload('PUSH_ARTIFACT', 'library/app', { tag: 'v1', digest: `sha256:${'a'.repeat(64)}` }), SECRET);
    assert.equal(hook.status, 404, 'a work process takes no webhooks');
    // It does not take the webhook port either: `serve` may run beside it with the same config.
    await assert.rejects(fetch(`${w.url}/livez`));
  });

  it('without METRICS_PORT a work process listens nowhere', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hsb-ops-'));
    const w = await start('work', { KAFKA_BROKERS: undefined, DATA_DIR: dataDir, METRICS_PORT: undefined });
    await w.waitForLog(/workers started/);
    assert.doesNotMatch(w.logs(), /"msg":"listening"/);
    await assert.rejects(fetch(`${w.url}/livez`));
  });

  it('serve mounts the DLQ routes under /api/v1 behind the bearer token', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hsb-ops-'));
    const s = await start('serve', { KAFKA_BROKERS: undefined, DATA_DIR: dataDir });
    await s.waitReady();
    const auth = { authorization: 'Bearer api-token', 'content-type': 'application/json' };
    assert.equal((await fetch(`${s.url}/api/v1/dlq`)).status, 401);
    assert.equal((await fetch(`${s.url}/api/v1/dlq`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    const list = await fetch(`${s.url}/api/v1/dlq`, { headers: auth });
    assert.equal(list.status, 200);
    assert.deepEqual((await list.json() as { total: number }).total, 0);
    assert.equal((await fetch(`${s.url}/api/v1/dlq/replay`, { method: 'POST', body: '{"all":true}', headers: { 'content-type': 'application/json' } })).status, 401);
    const replay = await fetch(`${s.url}/api/v1/dlq/replay`, { method: 'POST', body: '{"all":true}', headers: auth });
    assert.equal(replay.status, 200);
    assert.deepEqual((await replay.json() as { replayed: string[] }).replayed, []);
  });

  it('with no command and no --config, runs `run` with the file named by BRIDGE_CONFIG', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hsb-ops-'));
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, BRIDGE_CONFIG: writeConfig(config), PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'debug' };
    delete env.KAFKA_BROKERS;
    const child = spawn(NODE, [join(import.meta.dirname, '../../src/cli/main.ts')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    try {
      await eventually(async () => /workers started/.test(out), 20000, 'workers started');
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200, 'ingest and API in the same process');
      assert.match(out, /"level":20/, 'LOG_LEVEL=debug is honoured');
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });

  it('serve with an unreachable broker: live, not ready, and webhooks get 503 + Retry-After', async () => {
    const nobody = await freePort();
    const s = await start('serve', { KAFKA_BROKERS: `127.0.0.1:${nobody}`, TOPIC_PREFIX: 'ops-down.' });
    await eventually(async () => {
      try { return (await fetch(`${s.url}/livez`)).status === 200; } catch { return false; }
    }, 20000, 'serve listening');
    const ready = await fetch(`${s.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), { status: 'not_ready', bus: 'kafka', busConnected: false });
    const hook = await postWebhook(s.url, 'h', harborV2Payload('PUSH_ARTIFACT', 'library/app', { tag: 'v1', digest: `sha256:${'a'.repeat(64)}` }), SECRET);
    assert.equal(hook.status, 503);
    assert.equal(hook.headers.get('retry-after'), '5');
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /^hsb_webhooks_total\{source="h",format="harbor-v2",type="PUSH_ARTIFACT",result="unavailable"\} 1$/m);
    // A sample for docs/alerts.yaml's HarborSwrBridgeBusDown, though the bus never connected.
    assert.match(metrics, /^hsb_bus_up\{kind="kafka"\} 0$/m);
  });
});
