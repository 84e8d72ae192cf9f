// Shared set-up for the ingest HTTP tests: a config as users write it, the real app on a loopback
// port, the real buses, and ways to see what reached the `events` topic.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { parseConfig } from '../../../src/config/load.ts';
import type { Config } from '../../../src/config/schema.ts';
import type { Bus } from '../../../src/bus/port.ts';
import { EmbeddedBus } from '../../../src/bus/embedded/sqlite-bus.ts';
import { createApp } from '../../../src/http/app.ts';
import { createMetrics, type Metrics } from '../../../src/observability/metrics.ts';
import { silentLogger } from '../../../src/observability/logger.ts';

export const SECRET = 'Bearer s3cret-current';
export const OLD_SECRET = 'Bearer s3cret-previous';

const fixtureDir = new URL('../../fixtures/harbor/', import.meta.url);
export const FIXTURE_NAMES: string[] = readdirSync(fixtureDir).filter((f) => f.endsWith('.json')).sort();

/** A fixture payload as Harbor sends it (parsed, so tests can vary it). */
export function fixture(name: string): Record<string, any> {
  return JSON.parse(readFileSync(new URL(`${name}.json`, fixtureDir), 'utf8')) as Record<string, any>;
}

/** A config as users write it; env is empty so KAFKA_BROKERS from the test command changes nothing. */
export function testConfig(opts: { sources?: unknown[]; server?: Record<string, unknown> } = {}): Config {
  return parseConfig({
    server: { port: 0, host: '127.0.0.1', ...opts.server },
    sources: opts.sources ?? [
      { id: 'harbor-prod', url: 'https://harbor.example.com', webhookSecrets: [SECRET, OLD_SECRET] },
      { id: 'registry-dev', url: 'https://registry.example.org', kind: 'registry', webhookSecrets: [SECRET] },
    ],
    targets: [{ id: 'swr', kind: 'swr', region: 'cn-north-4', credentials: { accessKey: 'AK', secretKey: 'SK' } }],
  }, '<test>', {});
}

export interface RunningApp {
  server: Server;
  url: string;
  metrics: Metrics;
  close(): Promise<void>;
}

/** The real app factory behind a real HTTP server on a random loopback port. */
export async function startApp(config: Config, bus: Bus): Promise<RunningApp> {
  const metrics = createMetrics();
  const server = createServer(createApp({ config, bus, metrics, logger: silentLogger }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return {
    server, metrics, url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}

export async function embeddedBus(): Promise<{ bus: EmbeddedBus; cleanup(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'hsb-ingest-'));
  const bus = new EmbeddedBus({ dataDir: dir, partitions: 3 });
  await bus.connect();
  return { bus, cleanup: async () => { await bus.close(); rmSync(dir, { recursive: true, force: true }); } };
}

/** Records in the `events` topic so far (sum of partition high-water marks minus low). */
export async function eventCount(bus: Bus): Promise<number> {
  const inspection = await bus.inspect();
  const events = inspection.topics.find((t) => t.topic === 'events');
  return (events?.partitions ?? []).reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0);
}

export interface TopicRecord { key: string; value: any; partition: number; offset: string }

/**
 * Everything in a Kafka topic right now, read with a plain kafkajs consumer (not the bus under
 * test): stops when every partition reached the high-water mark read at the start.
 */
export async function readTopic(brokers: string, topic: string, timeoutMs = 20000): Promise<TopicRecord[]> {
  const kafka = new Kafka({ brokers: [brokers], clientId: 'ingest-test-reader', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const pending = new Map(ends.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => [p.partition, BigInt(p.high)]));
  const out: TopicRecord[] = [];
  if (pending.size === 0) return out;
  const consumer = kafka.consumer({ groupId: `ingest-test-reader-${process.pid}-${Date.now()}-${Math.random()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let done!: () => void;
    const finished = new Promise<void>((r) => { done = r; });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const end = pending.get(partition);
        if (end === undefined || BigInt(message.offset) >= end) return;
        out.push({ key: message.key?.toString('utf8') ?? '', value: JSON.parse(message.value!.toString('utf8')), partition, offset: message.offset });
        if (BigInt(message.offset) + 1n >= end) {
          pending.delete(partition);
          if (pending.size === 0) done();
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([finished, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`reading ${topic} timed out`)), timeoutMs); })]);
    clearTimeout(timer);
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/** Sum of a counter's samples whose labels include `labels`. */
export async function counterValue(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  if (!metric) return 0;
  return (metric.values as { value: number; labels: Record<string, string | number> }[])
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((n, v) => n + v.value, 0);
}

/** A v2 Default PUSH_ARTIFACT payload, as Harbor 2.x sends it, for a given repository and tag. */
export function pushArtifact(repository: string, tag: string, digest: string, occurAt = 1700000000): Record<string, unknown> {
  const slash = repository.indexOf('/');
  return {
    type: 'PUSH_ARTIFACT',
    occur_at: occurAt,
    operator: 'robot$ci',
    event_data: {
      resources: [{ digest, tag, resource_url: `harbor.example.com/${repository}:${tag}` }],
      repository: {
        date_created: 1699990000,
        name: repository.slice(slash + 1),
        namespace: repository.slice(0, slash),
        repo_full_name: repository,
        repo_type: 'private',
      },
    },
  };
}

/** A deterministic sha256 digest for test number n. */
export function digestFor(n: number): string {
  return `sha256:${n.toString(16).padStart(64, '0')}`;
}

/** The same bus with its publish replaced (a broker that refuses or hangs), through the port. */
export function withPublish(bus: Bus, publish: Bus['publish']): Bus {
  return {
    kind: bus.kind,
    connect: () => bus.connect(),
    publish,
    subscribe: (sub, onBatch) => bus.subscribe(sub, onBatch),
    readCompacted: (topic) => bus.readCompacted(topic),
    inspect: () => bus.inspect(),
    isReady: () => bus.isReady(),
    close: () => bus.close(),
  };
}
