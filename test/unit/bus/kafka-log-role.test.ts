// kafkajs' own log lines: warnings in a daemon, debug in a one-shot command, whose last line says
// what failed. Unreachable brokers are a closed loopback port.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { logLevel } from 'kafkajs';
import { kafkajsLogLevel } from '../../../src/bus/kafka/client.ts';
import { createBus } from '../../../src/bus/create.ts';
import { ConfigSchema } from '../../../src/config/schema.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { freePort } from '../../support/registry.ts';
import { writeConfig } from '../../support/bridge-process.ts';

const MAIN = resolve(import.meta.dirname, '../../../src/cli/main.ts');

describe('kafkajsLogLevel', () => {
  it('a daemon logs kafkajs errors as warnings; a command logs them at debug', () => {
    assert.equal(kafkajsLogLevel(logLevel.ERROR, 'daemon'), 'warn');
    assert.equal(kafkajsLogLevel(logLevel.ERROR, 'command'), 'debug');
  });

  it('kafkajs warnings are debug for both', () => {
    assert.equal(kafkajsLogLevel(logLevel.WARN, 'daemon'), 'debug');
    assert.equal(kafkajsLogLevel(logLevel.WARN, 'command'), 'debug');
  });
});

describe('createBus on unreachable Kafka', () => {
  async function connectLog(daemon: boolean): Promise<{ level: number; kafkajs?: unknown }[]> {
    const entries: { level: number; kafkajs?: unknown }[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, cb) { entries.push(JSON.parse(chunk.toString())); cb(); } });
    const config = ConfigSchema.parse({
      bus: { kind: 'kafka', brokers: [`127.0.0.1:${await freePort()}`] },
      sources: [{ id: 'h', url: 'http://127.0.0.1:1', webhookSecrets: ['s'] }],
      targets: [{ id: 't', kind: 'registry', url: 'http://127.0.0.1:2' }],
    });
    const bus = createBus(config, createLogger('debug', sink), daemon ? { daemon: true } : {});
    await assert.rejects(bus.connect(), { code: 'HSB_BUS_UNAVAILABLE' });
    await bus.close().catch(() => undefined);
    return entries.filter((e) => e.kafkajs !== undefined);
  }

  it('for a command, kafkajs\' connection retries are logged at debug only', async () => {
    const entries = await connectLog(false);
    assert.ok(entries.length > 0, 'kafkajs logged its retries');
    assert.deepEqual(entries.filter((e) => e.level > 20), []);
  });

  it('for a daemon (run, serve, work), they stay warnings', async () => {
    const entries = await connectLog(true);
    assert.ok(entries.some((e) => e.level === 40));
  });

  it('`status` prints its own error line and no kafkajs log lines', async () => {
    const config = writeConfig({
      sources: [{ id: 'h', url: 'http://127.0.0.1:1', webhookSecrets: ['s'] }],
      targets: [{ id: 't', kind: 'registry', url: 'http://127.0.0.1:2' }],
    });
    const env: NodeJS.ProcessEnv = { ...process.env, KAFKA_BROKERS: `127.0.0.1:${await freePort()}` };
    delete env.LOG_LEVEL;
    const r = await promisify(execFile)(process.execPath, ['--no-warnings', MAIN, 'status', '--config', config], { env }).then(
      () => assert.fail('status succeeded'),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^reading the bus failed: bus unavailable: connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED/m);
    assert.equal(r.stderr, '');
  });

  it('a command warns that KAFKA_BROKERS overrides the file\'s bus.kind: embedded', async () => {
    const config = writeConfig({
      bus: { kind: 'embedded' },
      sources: [{ id: 'h', url: 'http://127.0.0.1:1', webhookSecrets: ['s'] }],
      targets: [{ id: 't', kind: 'registry', url: 'http://127.0.0.1:2' }],
    });
    const brokers = `127.0.0.1:${await freePort()}`;
    const env: NodeJS.ProcessEnv = { ...process.env, KAFKA_BROKERS: brokers };
    delete env.LOG_LEVEL;
    const r = await promisify(execFile)(process.execPath, ['--no-warnings', MAIN, 'status', '--config', config], { env }).then(
      () => assert.fail('status succeeded'),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string });
    assert.deepEqual(lines.map((l) => l.level), [40]);
    assert.equal(lines[0]!.msg, `KAFKA_BROKERS is set in the environment, so the bridge uses Kafka (${brokers}) although ${config} says bus.kind: embedded; unset KAFKA_BROKERS to use the embedded bus`);
  });
});
