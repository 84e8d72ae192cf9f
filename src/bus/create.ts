import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import type { Bus } from './port.ts';
import { KafkaBus } from './kafka/kafka-bus.ts';
import { EmbeddedBus } from './embedded/sqlite-bus.ts';

export function createBus(config: Config, logger: Logger): Bus {
  const b = config.bus;
  if (b.kind === 'kafka') {
    return new KafkaBus({ brokers: b.brokers, clientId: b.clientId, topicPrefix: b.topicPrefix, partitions: b.partitions, logger, requestTimeoutMs: Math.min(1500, config.server.publishTimeoutMs) });
  }
  // `dlq` is compacted too: no group consumes it, so age-based pruning would drop dead letters.
  return new EmbeddedBus({ dataDir: b.dataDir, partitions: b.partitions, logger, compactedTopics: ['policies', 'dlq'], retentionMs: b.retentionHours * 3600_000 });
}
