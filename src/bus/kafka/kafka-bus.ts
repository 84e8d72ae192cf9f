import { Kafka, logLevel, type Admin, type Consumer, type ICustomPartitioner, type Producer, type Message, type IHeaders } from 'kafkajs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../observability/logger.ts';
import { silentLogger } from '../../observability/logger.ts';
import { BridgeError } from '../../errors.ts';
import { TOPICS, type Bus, type BusInspection, type BusMessage, type ConsumerHandle, type OutgoingRecord, type Subscription, type TopicName, type BatchHandler } from '../port.ts';
import { busUnavailable, decodeValue, encodeValue } from '../codec.ts';
import { Batcher } from './batcher.ts';
import { murmur2, partitionFor } from '../partition.ts';

export interface KafkaBusOptions {
  brokers: string[];
  clientId?: string;
  topicPrefix?: string;
  partitions?: number;
  replicationFactor?: number;
  logger?: Logger;
  /** Per-request deadline towards the broker; keep below the webhook deadline. */
  requestTimeoutMs?: number;
  /** How long a silent member keeps its partitions; also how long a crashed worker's partitions wait. */
  sessionTimeoutMs?: number;
}

interface Pending { topic: TopicName; record: OutgoingRecord }

export class KafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  readonly #kafka: Kafka;
  readonly #opts: Required<Omit<KafkaBusOptions, 'logger'>>;
  readonly #log: Logger;
  #producer: Producer | undefined;
  /** The current producer once connected; undefined after a failure, so the next send makes a new one. */
  #live: Promise<Producer> | undefined;
  #admin: Admin | undefined;
  #ready = false;
  readonly #consumers = new Set<{ consumer: Consumer; abort: AbortController }>();
  readonly #batcher = new Batcher<Pending>((items) => this.#send(items));

  constructor(opts: KafkaBusOptions) {
    this.#opts = {
      brokers: opts.brokers,
      clientId: opts.clientId ?? 'harbor-swr-bridge',
      topicPrefix: opts.topicPrefix ?? 'harbor-bridge.',
      partitions: opts.partitions ?? 6,
      replicationFactor: opts.replicationFactor ?? -1,
      requestTimeoutMs: opts.requestTimeoutMs ?? 1500,
      sessionTimeoutMs: opts.sessionTimeoutMs ?? 10000,
    };
    this.#log = (opts.logger ?? silentLogger).child({ component: 'kafka-bus' });
    const log = this.#log;
    this.#kafka = new Kafka({
      clientId: this.#opts.clientId,
      brokers: this.#opts.brokers,
      connectionTimeout: 1000,
      requestTimeout: this.#opts.requestTimeoutMs,
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 },
      logLevel: logLevel.WARN,
      logCreator: () => ({ level, log: entry }) => {
        const { message, ...rest } = entry;
        if (level <= logLevel.ERROR) log.warn({ kafkajs: rest }, message);
        else log.debug({ kafkajs: rest }, message);
      },
    });
  }

  topicName(topic: TopicName): string {
    return this.#opts.topicPrefix + topic;
  }

  groupName(group: string): string {
    return this.#opts.topicPrefix + group;
  }

  async connect(): Promise<void> {
    this.#admin = this.#kafka.admin();
    await this.#admin.connect();
    await this.#ensureTopics();
    await this.#connectedProducer();
  }

  #connectedProducer(): Promise<Producer> {
    if (this.#live) return this.#live;
    const producer = this.#kafka.producer({
      idempotent: true,
      maxInFlightRequests: 5,
      createPartitioner: javaCompatiblePartitioner,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 500 },
    });
    // Ready once connect() resolved, not on kafkajs' 'producer.connect' event: that fires before the
    // idempotent producer has its producer id, and a send in that window goes out without one (and
    // can fail after it was written). Ready stays true across replacements; close() ends it.
    this.#producer = producer;
    const live = producer.connect().then(() => {
      this.#ready = true;
      return producer;
    });
    this.#live = live;
    live.catch(() => this.#retire(producer));
    return live;
  }

  /**
   * Called after any failed send. kafkajs rolls an idempotent producer's sequence numbers back when
   * a request fails, yet a request that timed out may have been written; the broker would then take
   * the next batch with the same sequence for a duplicate, acknowledge it and drop it. A new producer
   * gets a new producer id, whose sequences start afresh.
   */
  #retire(producer: Producer): void {
    if (this.#producer !== producer) return;
    this.#live = undefined;
    void producer.disconnect().catch(() => undefined);
  }

  async #ensureTopics(): Promise<void> {
    const admin = this.#admin!;
    const existing = new Set(await admin.listTopics());
    const missing = TOPICS.filter((t) => !existing.has(this.topicName(t)));
    if (!missing.length) return;
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((t) => ({
        topic: this.topicName(t),
        numPartitions: this.#opts.partitions,
        replicationFactor: this.#opts.replicationFactor,
        // `dlq` too: letters are keyed by id and a replay tombstones them, so the latest per key is the DLQ.
        configEntries: t === 'policies' || t === 'dlq' ? [{ name: 'cleanup.policy', value: 'compact' }] : [],
      })),
    }).catch((e: Error & { type?: string }) => {
      // Another process may have created them at the same moment.
      if (e.type !== 'TOPIC_ALREADY_EXISTS' && !/already exists/i.test(e.message)) throw e;
    });
    // A new topic's leaders take a moment to be known everywhere; the first publish must not
    // spend its short retry budget on "not the leader".
    const names = missing.map((t) => this.topicName(t));
    for (const deadline = Date.now() + 15000; Date.now() < deadline; await sleep(100)) {
      const meta = await admin.fetchTopicMetadata({ topics: names }).catch(() => undefined);
      if (meta && meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    }
  }

  isReady(): boolean {
    return this.#ready;
  }

  publish(topic: TopicName, records: OutgoingRecord[]): Promise<void> {
    if (!this.#producer) return Promise.reject(new BridgeError('HSB_BUS_NOT_CONNECTED', 'bus not connected', { retryable: true }));
    if (records.length === 0) return Promise.resolve();
    return this.#batcher.add(records.map((record) => ({ topic, record })));
  }

  async #send(items: Pending[]): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    for (const { topic, record } of items) {
      const name = this.topicName(topic);
      const list = byTopic.get(name) ?? [];
      list.push({ key: record.key, value: encodeValue(record.value), headers: record.headers });
      byTopic.set(name, list);
    }
    let producer: Producer | undefined;
    try {
      producer = await this.#connectedProducer();
      await producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
    } catch (e) {
      if (producer) this.#retire(producer);
      throw busUnavailable(e, `publish to ${[...byTopic.keys()].join(', ')}`);
    }
  }

  async subscribe(sub: Subscription, onBatch: BatchHandler): Promise<ConsumerHandle> {
    const consumer = this.#kafka.consumer({
      // Groups live under the topic prefix too: two bridges sharing a cluster must not share work.
      groupId: this.groupName(sub.group),
      sessionTimeout: this.#opts.sessionTimeoutMs,
      rebalanceTimeout: 60000,
      heartbeatInterval: Math.min(3000, Math.floor(this.#opts.sessionTimeoutMs / 3)),
      maxWaitTimeInMs: 250,
      retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
    });
    const abort = new AbortController();
    const entry = { consumer, abort };
    this.#consumers.add(entry);
    await consumer.connect();
    const prefix = this.#opts.topicPrefix;
    for (const t of sub.topics) await consumer.subscribe({ topic: this.topicName(t), fromBeginning: sub.fromBeginning ?? true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.#opts.partitions,
      eachBatch: async ({ batch, heartbeat, isRunning, isStale, resolveOffset }) => {
        if (!batch.messages.length || !isRunning() || isStale()) return;
        const topic = batch.topic.slice(prefix.length) as TopicName;
        const messages: BusMessage[] = batch.messages.map((m) => ({
          topic, partition: batch.partition, offset: m.offset, key: m.key?.toString('utf8') ?? '',
          value: decodeValue(m.value, `${batch.topic}/${batch.partition}@${m.offset}`),
          timestamp: Number(m.timestamp), headers: headersOf(m.headers),
        }));
        await onBatch(messages, { heartbeat, signal: abort.signal });
        // The whole batch settled: commit past its last record.
        if (isStale()) return;
        const last = batch.messages[batch.messages.length - 1]!.offset;
        resolveOffset(last);
        await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
      },
    });
    return {
      stop: async () => {
        abort.abort();
        this.#consumers.delete(entry);
        await consumer.disconnect();
      },
    };
  }

  async readCompacted(topic: TopicName): Promise<Map<string, unknown>> {
    const admin = this.#admin!;
    const name = this.topicName(topic);
    const ends = await admin.fetchTopicOffsets(name);
    const target = new Map(ends.map((p) => [p.partition, BigInt(p.high)]));
    const out = new Map<string, unknown>();
    const pendingParts = new Set(ends.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => p.partition));
    if (pendingParts.size === 0) return out;
    const group = this.groupName(`compacted.${process.pid}.${Date.now()}`);
    const consumer = this.#kafka.consumer({ groupId: group, maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: name, fromBeginning: true });
      let done!: () => void;
      const finished = new Promise<void>((r) => { done = r; });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const key = message.key?.toString('utf8') ?? '';
          if (message.value === null) out.delete(key);
          else out.set(key, decodeValue(message.value, `${name}/${partition}@${message.offset}`));
          if (BigInt(message.offset) + 1n >= (target.get(partition) ?? 0n)) {
            pendingParts.delete(partition);
            if (pendingParts.size === 0) done();
          }
        },
      });
      const timeout = new AbortController();
      await Promise.race([finished, sleep(30000, undefined, { signal: timeout.signal }).then(() => { throw new BridgeError('HSB_BUS_TIMEOUT', `reading ${name} did not finish in 30 s`, { retryable: true }); }, () => undefined)])
        .finally(() => timeout.abort());
    } finally {
      await consumer.disconnect();
      await admin.deleteGroups([group]).catch(() => undefined);
    }
    return out;
  }

  async inspect(): Promise<BusInspection> {
    const admin = this.#admin!;
    const topics: BusInspection['topics'] = [];
    for (const t of TOPICS) {
      const offs = await admin.fetchTopicOffsets(this.topicName(t)).catch(() => []);
      topics.push({ topic: t, partitions: offs.map((o) => ({ partition: o.partition, high: o.high, low: o.low })) });
    }
    const { groups: list } = await admin.listGroups();
    const groups: BusInspection['groups'] = [];
    const prefix = this.#opts.topicPrefix;
    for (const g of list) {
      if (!g.groupId.startsWith(prefix) || g.groupId.startsWith(`${prefix}compacted.`)) continue;
      const offsets: BusInspection['groups'][number]['offsets'] = [];
      for (const t of topics) {
        const fetched = await admin.fetchOffsets({ groupId: g.groupId, topics: [this.topicName(t.topic)] }).catch(() => []);
        const parts = fetched[0]?.partitions ?? [];
        // A group that consumes the topic but never committed a partition is still behind on it.
        if (!parts.some((p) => p.offset !== '-1')) continue;
        for (const p of parts) {
          const part = t.partitions.find((x) => x.partition === p.partition);
          const committed = p.offset === '-1' ? (part?.low ?? '0') : p.offset;
          offsets.push({ topic: t.topic, partition: p.partition, committed, lag: Number(BigInt(part?.high ?? committed) - BigInt(committed)) });
        }
      }
      if (offsets.length) groups.push({ group: g.groupId.slice(prefix.length), offsets });
    }
    return { kind: 'kafka', topics, groups };
  }

  async close(): Promise<void> {
    for (const c of [...this.#consumers]) {
      c.abort.abort();
      await c.consumer.disconnect().catch(() => undefined);
    }
    this.#consumers.clear();
    this.#ready = false;
    await this.#producer?.disconnect().catch(() => undefined);
    await this.#admin?.disconnect().catch(() => undefined);
  }
}

/**
 * kafkajs' DefaultPartitioner (Java-compatible: keyed records by murmur2 over all partitions, others
 * round-robin over those with a leader), computed with our 32-bit murmur2.
 */
export const javaCompatiblePartitioner: ICustomPartitioner = () => {
  let next = 0;
  return ({ partitionMetadata, message }) => {
    if (message.partition !== undefined && message.partition !== null) return message.partition;
    const key = message.key;
    if (typeof key === 'string') return partitionFor(key, partitionMetadata.length);
    if (key) return (murmur2(key) & 0x7fffffff) % partitionMetadata.length;
    const available = partitionMetadata.filter((p) => p.leader >= 0);
    const pool = available.length > 0 ? available : partitionMetadata;
    return pool[next++ % pool.length]!.partitionId;
  };
};

function headersOf(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) if (v !== undefined) out[k] = Array.isArray(v) ? String(v[0]) : String(v);
  return out;
}
