// The embedded bus: the Bus port on one node:sqlite file, for installs without Kafka. Several
// processes may share the file (same dataDir); consumer groups coordinate through leases in it.
//
// Topics carry no delivery schedule: a `tasks.retry` record is delivered as soon as it is
// published, and its consumer waits for the due time written in the record, as on Kafka.

import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { BridgeError } from '../../errors.ts';
import { silentLogger, type Logger } from '../../observability/logger.ts';
import { encodeValue } from '../codec.ts';
import {
  TOPICS, type BatchHandler, type Bus, type BusInspection, type ConsumerHandle, type OutgoingRecord, type Subscription, type TopicName,
} from '../port.ts';
import { GroupConsumer } from './group-consumer.ts';
import { partitionFor } from '../partition.ts';
import { BusStore, type AppendRecord } from './store.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

export const EmbeddedBusOptionsSchema = z.object({
  dataDir: z.string().min(1),
  /** Fixed when the file is created; a different value later is refused (it would move keys). */
  partitions: z.number().int().min(1).max(1024).default(6),
  /** Records older than this are pruned once every group has committed past them. */
  retentionMs: z.number().int().positive().default(7 * DAY_MS),
  /**
   * A group with no live member that has not committed for this long is forgotten (as Kafka's
   * offsets.retention.minutes), so a one-off reader (`status`, a process's policy view) that went
   * away does not hold records back forever.
   */
  groupExpiryMs: z.number().int().positive().default(7 * DAY_MS),
  /** How often other processes' publishes are looked for; in-process publishes wake consumers at once. */
  pollIntervalMs: z.number().int().positive().default(250),
  /** A member (and its partitions) not heard from for this long is presumed dead. */
  sessionTimeoutMs: z.number().int().positive().default(10_000),
  heartbeatIntervalMs: z.number().int().positive().default(1_000),
  pruneIntervalMs: z.number().int().positive().default(5 * 60_000),
  maxBatchSize: z.number().int().positive().default(200),
  retryBackoffMs: z.number().int().positive().default(200),
  maxRetryBackoffMs: z.number().int().positive().default(5_000),
  /** How long close()/stop() waits for in-flight batches. */
  stopTimeoutMs: z.number().int().positive().default(10_000),
  /** Topics compacted by key: pruning keeps each key's latest value. */
  compactedTopics: z.array(z.enum(TOPICS)).default(['policies']),
}).strict();

export type EmbeddedBusOptions = z.input<typeof EmbeddedBusOptionsSchema> & { logger?: Logger };

// One emitter per database file, so buses and consumers in one process wake each other at once.
const hubs = new Map<string, EventEmitter>();
function hubFor(path: string): EventEmitter {
  let hub = hubs.get(path);
  if (!hub) {
    hub = new EventEmitter();
    hub.setMaxListeners(0);
    hubs.set(path, hub);
  }
  return hub;
}

const topicSet = new Set<string>(TOPICS);

export class EmbeddedBus implements Bus {
  readonly kind = 'embedded' as const;
  readonly #o: z.infer<typeof EmbeddedBusOptionsSchema>;
  readonly #logger: Logger;
  #store: BusStore | undefined;
  #hub: EventEmitter | undefined;
  readonly #consumers = new Set<GroupConsumer>();
  #pollTimer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  #seenHigh = new Map<string, number>();
  #closed = false;

  constructor(opts: EmbeddedBusOptions) {
    const { logger, ...rest } = opts;
    this.#o = EmbeddedBusOptionsSchema.parse(rest);
    this.#logger = logger ?? silentLogger;
  }

  async connect(): Promise<void> {
    if (this.#store) return;
    if (this.#closed) throw new BridgeError('HSB_BUS_CLOSED', 'the embedded bus was closed');
    const store = new BusStore(this.#o.dataDir);
    try {
      store.ensureLayout(TOPICS, this.#o.partitions);
    } catch (e) {
      store.close();
      throw e;
    }
    this.#store = store;
    this.#hub = hubFor(store.path);
    this.#rememberHighs(false);
    this.#pruneTimer = setInterval(() => this.#safePrune(), this.#o.pruneIntervalMs);
    this.#pruneTimer.unref();
    this.#logger.info({ path: store.path, partitions: this.#o.partitions }, 'embedded bus connected');
  }

  isReady(): boolean {
    return this.#store !== undefined && !this.#closed;
  }

  async publish(topic: TopicName, records: OutgoingRecord[]): Promise<void> {
    const store = this.#ready();
    assertTopic(topic);
    if (records.length === 0) return;
    const rows: AppendRecord[] = records.map((r, i) => encode(topic, r, i, this.#o.partitions));
    store.append(topic, rows, Date.now());
    // COMMIT has returned with synchronous=FULL: durable. Now wake in-process readers.
    const hub = this.#hub!;
    for (const p of new Set(rows.map((r) => r.partition))) hub.emit('append', topic, p);
  }

  async subscribe(sub: Subscription, onBatch: BatchHandler): Promise<ConsumerHandle> {
    const store = this.#ready();
    if (!sub.group) throw new BridgeError('HSB_BUS_INVALID_SUBSCRIPTION', 'a subscription needs a group');
    if (sub.topics.length === 0) throw new BridgeError('HSB_BUS_INVALID_SUBSCRIPTION', 'a subscription needs at least one topic', { context: { group: sub.group } });
    sub.topics.forEach(assertTopic);
    const consumer = new GroupConsumer({
      store,
      hub: this.#hub!,
      memberId: `${hostname()}-${process.pid}-${randomUUID()}`,
      subscription: sub,
      onBatch,
      partitions: this.#o.partitions,
      leaseMs: this.#o.sessionTimeoutMs,
      heartbeatMs: this.#o.heartbeatIntervalMs,
      maxBatch: this.#o.maxBatchSize,
      retryBackoffMs: this.#o.retryBackoffMs,
      maxRetryBackoffMs: this.#o.maxRetryBackoffMs,
      stopTimeoutMs: this.#o.stopTimeoutMs,
      logger: this.#logger,
    });
    this.#consumers.add(consumer);
    this.#ensurePoller();
    consumer.start();
    return {
      stop: async () => {
        await consumer.stop();
        this.#consumers.delete(consumer);
        if (this.#consumers.size === 0) this.#stopPoller();
      },
    };
  }

  async readCompacted(topic: TopicName): Promise<Map<string, unknown>> {
    const store = this.#ready();
    assertTopic(topic);
    const out = new Map<string, unknown>();
    for (const { key, value } of store.latestPerKey(topic)) if (value !== null) out.set(key, JSON.parse(value));
    return out;
  }

  async inspect(): Promise<BusInspection> {
    const store = this.#ready();
    const highs = store.highWatermarks();
    const high = new Map(highs.map((h) => [`${h.topic}/${h.partition}`, h.high]));
    const topics: BusInspection['topics'] = TOPICS.map((topic) => ({
      topic,
      partitions: highs.filter((h) => h.topic === topic).map((h) => ({
        partition: h.partition,
        high: String(h.high),
        low: String(store.lowWatermark(topic, h.partition, h.high)),
      })),
    }));
    const groups = new Map<string, BusInspection['groups'][number]>();
    for (const c of store.allCommitted()) {
      let g = groups.get(c.group);
      if (!g) groups.set(c.group, (g = { group: c.group, offsets: [] }));
      const h = high.get(`${c.topic}/${c.partition}`) ?? c.next;
      g.offsets.push({ topic: c.topic, partition: c.partition, committed: String(c.next), lag: Math.max(0, h - c.next) });
    }
    return { kind: 'embedded', topics, groups: [...groups.values()] };
  }

  /** Deletes what retention allows now; runs periodically, exposed for tests and operators. */
  prune(now = Date.now()): number {
    const store = this.#ready();
    const expired = store.expireGroups(now - this.#o.groupExpiryMs, now);
    if (expired.length > 0) this.#logger.info({ groups: expired }, 'embedded bus forgot groups gone for longer than groupExpiryMs');
    const n = store.prune(now - this.#o.retentionMs, new Set(this.#o.compactedTopics));
    if (n > 0) this.#logger.info({ deleted: n }, 'embedded bus pruned records');
    return n;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#consumers].map((c) => c.stop()));
    this.#consumers.clear();
    this.#stopPoller();
    clearInterval(this.#pruneTimer);
    this.#store?.close();
    this.#store = undefined;
  }

  #ready(): BusStore {
    if (!this.#store || this.#closed) throw new BridgeError('HSB_BUS_NOT_CONNECTED', 'the embedded bus is not connected', { retryable: true });
    return this.#store;
  }

  #safePrune(): void {
    try {
      this.prune();
    } catch (e) {
      this.#logger.warn({ err: e }, 'embedded bus: pruning failed');
    }
  }

  // Other processes' publishes: one read of the small partitions table per interval.
  #ensurePoller(): void {
    if (this.#pollTimer) return;
    this.#pollTimer = setInterval(() => this.#rememberHighs(true), this.#o.pollIntervalMs);
    this.#pollTimer.unref();
  }

  #stopPoller(): void {
    clearInterval(this.#pollTimer);
    this.#pollTimer = undefined;
  }

  #rememberHighs(notify: boolean): void {
    try {
      for (const { topic, partition, high } of this.#ready().highWatermarks()) {
        const k = `${topic}/${partition}`;
        if (this.#seenHigh.get(k) !== high) {
          this.#seenHigh.set(k, high);
          if (notify) this.#hub!.emit('append', topic, partition);
        }
      }
    } catch (e) {
      this.#logger.warn({ err: e }, 'embedded bus: polling for new records failed');
    }
  }
}

function assertTopic(topic: string): asserts topic is TopicName {
  if (!topicSet.has(topic)) throw new BridgeError('HSB_BUS_UNKNOWN_TOPIC', 'unknown topic', { context: { topic } });
}

function encode(topic: TopicName, r: OutgoingRecord, index: number, partitions: number): AppendRecord {
  if (typeof r.key !== 'string') throw new BridgeError('HSB_BUS_INVALID_RECORD', 'a record key must be a string', { context: { topic, index } });
  let value: string | null;
  try {
    value = encodeValue(r.value);
  } catch (e) {
    throw new BridgeError('HSB_BUS_INVALID_RECORD', 'a record value is not serialisable as JSON', { context: { topic, index, key: r.key }, cause: e });
  }
  return { partition: partitionFor(r.key, partitions), key: r.key, value: value ?? null, headers: JSON.stringify(r.headers ?? {}) };
}
