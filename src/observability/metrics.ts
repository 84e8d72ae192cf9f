import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// Every metric the bridge exports, created once per process around a Registry passed in,
// so tests get their own registry and nothing is global.
export function createMetrics(registry = new Registry(), opts: { defaults?: boolean } = {}) {
  if (opts.defaults) collectDefaultMetrics({ register: registry, prefix: 'hsb_' }); // hsb_process_cpu_seconds_total, hsb_nodejs_heap_size_used_bytes, ...
  const r = [registry];
  // Webhooks are counted in plain numbers and added to hsb_webhooks_total when it is read (a scrape):
  // prom-client hashes the label set on every inc, which cost about 1% of a webhook's CPU at full speed.
  const webhookTally = new Map<string, { labels: WebhookLabels; n: number }>();
  const webhooks = new Counter({
    name: 'hsb_webhooks_total', help: 'Webhooks received, by source, payload format, event type and result',
    labelNames: ['source', 'format', 'type', 'result'] as const, registers: r,
    collect() {
      for (const t of webhookTally.values()) {
        if (t.n === 0) continue;
        this.inc(t.labels, t.n);
        t.n = 0;
      }
    },
  });
  // A reset (registry.resetMetrics) clears what is still to be added as well.
  const resetCounter = webhooks.reset.bind(webhooks);
  webhooks.reset = () => {
    webhookTally.clear();
    resetCounter();
  };
  return {
    registry,
    webhooks,
    /** One webhook in hsb_webhooks_total (label values bounded by the caller). */
    countWebhook(labels: WebhookLabels): void {
      const key = `${labels.source}\0${labels.format}\0${labels.type}\0${labels.result}`;
      const t = webhookTally.get(key);
      if (t !== undefined) t.n++;
      else webhookTally.set(key, { labels: { ...labels }, n: 1 });
    },
    publishSeconds: new Histogram({
      name: 'hsb_publish_seconds', help: 'Time to make a webhook durable on the bus (broker acknowledgement)',
      labelNames: ['topic'] as const, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: r,
    }),
    tasks: new Counter({
      name: 'hsb_tasks_total', help: 'Replication tasks finished, by target and outcome',
      labelNames: ['target', 'outcome'] as const, registers: r,
    }),
    plannedTasks: new Counter({
      name: 'hsb_planned_tasks_total', help: 'Tasks planned from events, by policy',
      labelNames: ['policy'] as const, registers: r,
    }),
    copySeconds: new Histogram({
      name: 'hsb_copy_seconds', help: 'Duration of one artifact copy', labelNames: ['target'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900], registers: r,
    }),
    copyBytes: new Counter({
      name: 'hsb_copy_bytes_total', help: 'Blob bytes transferred to targets (mounted and skipped blobs excluded)',
      labelNames: ['target'] as const, registers: r,
    }),
    blobs: new Counter({
      name: 'hsb_blobs_total', help: 'Blobs handled, by how they reached the target (skipped, mounted, uploaded)',
      labelNames: ['target', 'how'] as const, registers: r,
    }),
    replicationLagSeconds: new Histogram({
      name: 'hsb_event_to_replicated_seconds', help: "Harbor's occur_at to the task's successful end",
      labelNames: ['target'] as const, buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600], registers: r,
    }),
    inflightTasks: new Gauge({ name: 'hsb_inflight_tasks', help: 'Tasks being executed now', registers: r }),
    inflightBytes: new Gauge({
      name: 'hsb_inflight_bytes', help: 'Progress of in-flight tasks: bytes done and total',
      labelNames: ['kind'] as const, registers: r,
    }),
    consumerLag: new Gauge({
      name: 'hsb_consumer_lag', help: 'Records not yet consumed, per topic and partition',
      labelNames: ['group', 'topic', 'partition'] as const, registers: r,
    }),
    retryPending: new Gauge({ name: 'hsb_retry_pending', help: 'Tasks waiting on the retry topic', registers: r }),
    dlqRecords: new Gauge({ name: 'hsb_dlq_records', help: 'Records on the dead-letter topic, tombstones of replayed letters included until compaction (alert on hsb_dlq_letters)', registers: r }),
    dlqLetters: new Gauge({ name: 'hsb_dlq_letters', help: 'Dead letters waiting for a replay (what `dlq list` shows)', registers: r }),
    busUp: new Gauge({ name: 'hsb_bus_up', help: '1 when the bus producer is connected', labelNames: ['kind'] as const, registers: r }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
export interface WebhookLabels { source: string; format: string; type: string; result: string }
