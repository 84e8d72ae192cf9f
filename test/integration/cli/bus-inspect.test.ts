// `harbor-swr-bridge bus inspect` against both buses: topics, depths and group offsets.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { writeConfig } from '../../support/bridge-process.ts';
import { sharedBrokers, uniquePrefix } from '../../support/kafka.ts';
import { EmbeddedBus } from '../../../src/bus/embedded/sqlite-bus.ts';
import { KafkaBus } from '../../../src/bus/kafka/kafka-bus.ts';
import type { Bus, BusInspection } from '../../../src/bus/port.ts';

const run = promisify(execFile);
const MAIN = resolve(import.meta.dirname, '../../../src/cli/main.ts');
const configFile = writeConfig({
  sources: [{ id: 'h', url: 'http://127.0.0.1:1', webhookSecrets: ['s'] }],
  targets: [{ id: 't', kind: 'registry', url: 'http://127.0.0.1:2' }],
});

async function seed(bus: Bus): Promise<void> {
  await bus.connect();
  await bus.publish('events', [1, 2, 3].map((i) => ({ key: `k${i}`, value: { i } })));
  const handle = await bus.subscribe({ group: 'inspect-test', topics: ['events'] }, async () => undefined);
  // Consumed and committed: the group shows no lag.
  for (const deadline = Date.now() + 30000; ; await new Promise((r) => setTimeout(r, 100))) {
    const g = (await bus.inspect()).groups.find((x) => x.group === 'inspect-test');
    const lag = g?.offsets.filter((o) => o.topic === 'events').reduce((n, o) => n + o.lag, 0);
    if (g && lag === 0 && g.offsets.some((o) => o.committed !== '0')) break;
    if (Date.now() > deadline) throw new Error('the test group did not commit the seeded records');
  }
  await handle.stop();
  await bus.close();
}

for (const kind of ['embedded', 'kafka'] as const) {
  describe(`bus inspect on the ${kind} bus`, () => {
    it('prints every topic with its depth and the groups with their committed offsets', async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'hsb-inspect-'));
      const prefix = uniquePrefix('inspect');
      const env = kind === 'kafka'
        ? { ...process.env, KAFKA_BROKERS: sharedBrokers(), TOPIC_PREFIX: prefix }
        : { ...process.env, KAFKA_BROKERS: '', DATA_DIR: dataDir };
      await seed(kind === 'kafka' ? new KafkaBus({ brokers: [sharedBrokers()], topicPrefix: prefix }) : new EmbeddedBus({ dataDir }));
      const json = await run(process.execPath, [MAIN, 'bus', 'inspect', '--json', '--config', configFile], { env });
      const ins = JSON.parse(json.stdout) as BusInspection;
      assert.equal(ins.kind, kind);
      assert.deepEqual(ins.topics.map((t) => t.topic), ['events', 'policies', 'tasks', 'tasks.retry', 'results', 'dlq']);
      const events = ins.topics.find((t) => t.topic === 'events')!;
      assert.equal(events.partitions.reduce((n, p) => n + Number(p.high) - Number(p.low), 0), 3);
      const group = ins.groups.find((g) => g.group === 'inspect-test');
      assert.ok(group, 'the consumer group is listed');
      assert.equal(group.offsets.filter((o) => o.topic === 'events').reduce((n, o) => n + o.lag, 0), 0, 'the group has consumed everything');
      const text = await run(process.execPath, [MAIN, 'bus', 'inspect', '--config', configFile], { env });
      assert.match(text.stdout, new RegExp(`^bus: ${kind} \\(`));
      if (kind === 'embedded') assert.ok(text.stdout.startsWith(`bus: embedded (${join(dataDir, 'bus.sqlite')})`), 'names the database file');
      else assert.ok(text.stdout.startsWith(`bus: kafka (${sharedBrokers()}, topic prefix ${prefix})`), 'names the brokers and the prefix');
      assert.match(text.stdout, /^\s+events\s+\d+\s+3\s/m);
      assert.match(text.stdout, /inspect-test\s+events/);
    });
  });
}

describe('commands that read the embedded bus, where there is none', () => {
  it('status, dlq and bus inspect say where they looked, exit 1, and create nothing', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'hsb-nobus-'));
    const env = { ...process.env, KAFKA_BROKERS: '', DATA_DIR: 'data' };
    for (const args of [['status'], ['dlq', 'list'], ['dlq', 'replay', '--all'], ['bus', 'inspect']]) {
      const r = await run(process.execPath, [MAIN, ...args, '--config', configFile], { env, cwd: elsewhere }).then(
        () => assert.fail(`${args.join(' ')} succeeded`),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, /no embedded bus at .*hsb-nobus-[^/]*\/data\/bus\.sqlite: start the bridge first/, args.join(' '));
      assert.match(r.stderr, /working directory, here .*hsb-nobus-/, args.join(' '));
      assert.equal(existsSync(join(elsewhere, 'data')), false, `${args.join(' ')} created nothing`);
    }
  });
});
