import type { Bus } from '../bus/port.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { queueDepths } from '../replication/routes.ts';
import { REPLICATOR_GROUP } from '../replication/replicator.ts';

/** Samples consumer lag per partition, pending retries and dead letters from the bus on an interval. */
export function startQueueMetrics(bus: Bus, metrics: Metrics, logger: Logger, groups: readonly string[], intervalMs = 15000, dlqLetters?: () => Promise<number>): () => void {
  let dlqDepth: number | undefined;
  const sample = async () => {
    metrics.busUp.set({ kind: bus.kind }, bus.isReady() ? 1 : 0);
    if (!bus.isReady()) return;
    try {
      const ins = await bus.inspect();
      metrics.consumerLag.reset();
      for (const g of ins.groups) {
        if (!groups.includes(g.group)) continue;
        for (const o of g.offsets) metrics.consumerLag.set({ group: g.group, topic: o.topic, partition: String(o.partition) }, o.lag);
      }
      const q = queueDepths(ins, REPLICATOR_GROUP);
      metrics.retryPending.set(q.retryPending);
      metrics.dlqRecords.set(q.dlqRecords);
      // The letters are counted by reading the compacted topic: only when it changed.
      if (dlqLetters && q.dlqRecords !== dlqDepth) {
        metrics.dlqLetters.set(await dlqLetters());
        dlqDepth = q.dlqRecords;
      }
    } catch (e) {
      logger.debug({ err: (e as Error).message }, 'queue metrics sample failed');
    }
  };
  const timer = setInterval(() => { void sample(); }, intervalMs);
  timer.unref();
  void sample();
  return () => clearInterval(timer);
}
