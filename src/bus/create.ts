import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import { BridgeError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Bus } from './port.ts';
import { KafkaBus } from './kafka/kafka-bus.ts';
import { EmbeddedBus } from './embedded/sqlite-bus.ts';
import { BUS_FILE } from './embedded/store.ts';

export interface CreateBusOptions {
  /**
   * Only an embedded bus that is already there (commands that read it: status, dlq, bus inspect).
   * A relative data dir follows the working directory; run from elsewhere, these commands would
   * otherwise create a new, empty bus and report nothing as if all were well.
   */
  existing?: boolean;
  /**
   * A long-running process (run, serve, work): kafkajs' own errors are logged as warnings. Without
   * it the bus serves a one-shot command, whose last line says what failed, and kafkajs' connection
   * retries before that line are logged at debug.
   */
  daemon?: boolean;
}

export function createBus(config: Config, logger: Logger, opts: CreateBusOptions = {}): Bus {
  const b = config.bus;
  if (opts.existing && b.kind === 'embedded' && !existsSync(embeddedBusFile(b.dataDir))) {
    throw new BridgeError('HSB_BUS_NOT_FOUND', `no embedded bus at ${embeddedBusFile(b.dataDir)}: start the bridge first, or point bus.dataDir `
      + `(DATA_DIR) at its data directory (a relative one is taken from the working directory, here ${process.cwd()})`, { context: { path: embeddedBusFile(b.dataDir) } });
  }
  if (b.kind === 'kafka') {
    return new KafkaBus({
      brokers: b.brokers, clientId: b.clientId, topicPrefix: b.topicPrefix, partitions: b.partitions, logger, requestTimeoutMs: Math.min(1500, config.server.publishTimeoutMs),
      logRole: opts.daemon ? 'daemon' : 'command',
      ...(b.tls ? { tls: b.tls } : {}), ...(b.sasl ? { sasl: b.sasl } : {}),
    });
  }
  // `dlq` is compacted too: no group consumes it, so age-based pruning would drop dead letters.
  return new EmbeddedBus({ dataDir: b.dataDir, partitions: b.partitions, logger, compactedTopics: ['policies', 'dlq'], retentionMs: b.retentionHours * 3600_000 });
}

/** The embedded bus's database file, as an absolute path. */
export function embeddedBusFile(dataDir: string): string {
  return resolve(dataDir, BUS_FILE);
}

/** Which bus a command reads, for its output: the embedded bus's file, or Kafka's brokers and topic prefix. */
export function busLabel(config: Config): string {
  const b = config.bus;
  return b.kind === 'embedded' ? `embedded (${embeddedBusFile(b.dataDir)})` : `kafka (${b.brokers.join(', ')}${b.topicPrefix ? `, topic prefix ${b.topicPrefix}` : ''})`;
}
