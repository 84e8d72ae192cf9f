// A connected bus of either kind on fresh topics (a new Kafka topic prefix on the shared broker, or
// a new embedded data dir), with a config that points at the same bus for the CLI commands.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../../src/bus/port.ts';
import { KafkaBus } from '../../src/bus/kafka/kafka-bus.ts';
import { EmbeddedBus } from '../../src/bus/embedded/sqlite-bus.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { sharedBrokers, uniquePrefix } from './kafka.ts';

export interface BusHarness {
  bus: Bus;
  config: Config;
  prefix: string;
  cleanup(): Promise<void>;
}

function configFor(bus: Record<string, unknown>, server: Record<string, unknown>): Config {
  return parseConfig({
    server: { port: 0, host: '127.0.0.1', ...server },
    bus,
    sources: [{ id: 'harbor', url: 'https://harbor.example.com', webhookSecrets: ['s'] }],
    targets: [{ id: 'swr', kind: 'swr', region: 'cn-north-4', credentials: { accessKey: 'AK', secretKey: 'SK' } }, { id: 'backup', kind: 'registry', url: 'https://backup.example.org' }],
  }, '<test>', {});
}

/** One factory per bus kind; `name` tags topic prefixes and temp dirs, `server` extends the config. */
export function busHarnesses(name: string, server: Record<string, unknown> = {}): Record<'kafka' | 'embedded', () => Promise<BusHarness>> {
  return {
    kafka: async () => {
      const prefix = uniquePrefix(name);
      const brokers = [sharedBrokers()];
      const bus = new KafkaBus({ brokers, topicPrefix: prefix, partitions: 3, clientId: `${name}-${prefix}` });
      await bus.connect();
      return { bus, prefix, config: configFor({ kind: 'kafka', brokers, topicPrefix: prefix, partitions: 3, clientId: `${name}-cli-${prefix}` }, server), cleanup: () => bus.close() };
    },
    embedded: async () => {
      const dataDir = mkdtempSync(join(tmpdir(), `hsb-${name}-`));
      const bus = new EmbeddedBus({ dataDir, partitions: 3 });
      await bus.connect();
      return {
        bus, prefix: 'embedded.', config: configFor({ kind: 'embedded', dataDir, partitions: 3 }, server),
        cleanup: async () => { await bus.close(); rmSync(dataDir, { recursive: true, force: true }); },
      };
    },
  };
}
