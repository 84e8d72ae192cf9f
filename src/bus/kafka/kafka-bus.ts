// Types only: kafkajs itself must load after client.ts has put the faster modules in place.
import type { Admin, Consumer, ConsumerRunConfig, IHeaders, Kafka } from 'kafkajs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../observability/logger.ts';
import { silentLogger } from '../../observability/logger.ts';
import { BridgeError } from '../../errors.ts';
import { TOPICS, type Bus, type BusInspection, type BusMessage, type ConsumerHandle, type OutgoingRecord, type Subscription, type TopicName, type BatchHandler, type Redelivery } from '../port.ts';
import { decodeValue, encodeValue } from '../codec.ts';
import { Batcher } from './batcher.ts';
import { kafkaClient, TOPIC_CONFIG_RESOURCE, type KafkaLogRole } from './client.ts';
import { kafkaError, type KafkaSecurity } from './security.ts';
import { fastProduceEncoding } from './produce-encoding.ts';
import { linearGrouping } from './partition-grouping.ts';
import { singleCopyFraming } from './request-framing.ts';
import { IdempotentProducer, type OutgoingMessage } from './producer.ts';

export interface KafkaBusOptions extends KafkaSecurity {
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
  /** First wait before a consumer that kafkajs gave up on is started again (doubling to a minute). */
  consumerRestartMs?: number;
  /** 'command': kafkajs' own errors are logged at debug (see kafkajsLogLevel); default 'daemon'. */
  logRole?: KafkaLogRole;
}

interface Pending { topic: string; message: OutgoingMessage }

/** Topics read as "the latest record per key": `policies`, and `dlq` (letters keyed by id, a replay tombstones them). */
const COMPACTED: readonly TopicName[] = ['policies', 'dlq'];

/** Heartbeat answers that mean this member's assignment is over (kafkajs' isRebalancing, plus eviction). */
const GROUP_MOVED_ON = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'NOT_COORDINATOR_FOR_GROUP']);

export class KafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  readonly #kafka: Kafka;
  readonly #opts: Required<Omit<KafkaBusOptions, 'logger' | 'logRole' | keyof KafkaSecurity>>;
  readonly #security: KafkaSecurity;
  readonly #log: Logger;
  readonly #logRole: KafkaLogRole;
  readonly #producer: IdempotentProducer;
  #admin: Admin | undefined;
  /** Set while a failed publish waits for the brokers to answer again. */
  #probe: NodeJS.Timeout | undefined;
  /** connect() got as far as the topics: publishes go to the producer (which connects on demand). */
  #opened = false;
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
      consumerRestartMs: opts.consumerRestartMs ?? 5000,
    };
    this.#security = { ...(opts.tls ? { tls: opts.tls } : {}), ...(opts.sasl ? { sasl: opts.sasl } : {}) };
    this.#log = (opts.logger ?? silentLogger).child({ component: 'kafka-bus' });
    this.#logRole = opts.logRole ?? 'daemon';
    const log = this.#log;
    const client = { brokers: this.#opts.brokers, clientId: this.#opts.clientId, requestTimeoutMs: this.#opts.requestTimeoutMs, security: this.#security, logRole: this.#logRole };
    this.#kafka = kafkaClient(client, (level, message, extra) => log[level]({ kafkajs: extra }, message));
    if (!fastProduceEncoding) log.warn('kafkajs module layout not recognised: Produce requests use kafkajs\' own (slower) encoder');
    if (!linearGrouping) log.warn('kafkajs module layout not recognised: records are sorted into partitions by kafkajs\' own (slower) grouping');
    if (!singleCopyFraming) log.warn('kafkajs module layout not recognised: requests are framed by kafkajs\' own (slower) code');
    this.#producer = new IdempotentProducer(this.#kafka);
  }

  topicName(topic: TopicName): string {
    return this.#opts.topicPrefix + topic;
  }

  groupName(group: string): string {
    return this.#opts.topicPrefix + group;
  }

  async connect(): Promise<void> {
    try {
      this.#admin = this.#kafka.admin();
      await this.#admin.connect();
      await this.#ensureTopics();
      this.#opened = true;
      await this.#producer.connect();
    } catch (e) {
      // Coded and named (a refused login, a failed handshake), so the start-up log says why /readyz is 503.
      throw kafkaError(e, `connect to ${this.#opts.brokers.join(', ')}`, this.#security);
    }
  }

  async #ensureTopics(): Promise<void> {
    const admin = this.#admin!;
    const existing = new Set(await admin.listTopics());
    const missing = TOPICS.filter((t) => !existing.has(this.topicName(t)));
    if (this.#logRole === 'daemon') await this.#checkCompaction(COMPACTED.filter((t) => existing.has(this.topicName(t))));
    if (!missing.length) return;
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((t) => ({
        topic: this.topicName(t),
        numPartitions: this.#opts.partitions,
        replicationFactor: this.#opts.replicationFactor,
        configEntries: COMPACTED.includes(t) ? [{ name: 'cleanup.policy', value: 'compact' }] : [],
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

  /**
   * Topics an operator created beforehand may lack compaction: their records would then expire
   * after retention.ms, and with them API-made policies or dead letters. Said when a daemon
   * connects; a broker that refuses DescribeConfigs to the bridge's user leaves it unchecked (debug).
   */
  async #checkCompaction(topics: readonly TopicName[]): Promise<void> {
    if (topics.length === 0) return;
    const names = new Map(topics.map((t) => [this.topicName(t), t]));
    let described;
    try {
      described = await this.#admin!.describeConfigs({
        includeSynonyms: false,
        resources: [...names.keys()].map((name) => ({ type: TOPIC_CONFIG_RESOURCE, name, configNames: ['cleanup.policy'] })),
      });
    } catch (e) {
      this.#log.debug({ err: (e as Error).message }, 'could not read the cleanup.policy of existing topics');
      return;
    }
    for (const r of described.resources) {
      const policy = r.configEntries.find((c) => c.configName === 'cleanup.policy')?.configValue ?? '';
      if (r.errorCode !== 0 || policy.split(',').map((p) => p.trim()).includes('compact')) continue;
      const what = names.get(r.resourceName) === 'dlq' ? 'dead letters' : 'policies made through the API or imported from Harbor';
      this.#log.warn({ topic: r.resourceName, cleanupPolicy: policy },
        `topic ${r.resourceName} is not compacted (cleanup.policy=${policy}): its ${what} are deleted after the topic's retention; set cleanup.policy=compact on it`);
    }
  }

  /** Connected, and the last publish did not fail (or the brokers have answered since). */
  isReady(): boolean {
    return this.#producer.isReady() && this.#probe === undefined;
  }

  /**
   * A failed publish makes the bus unready (/readyz 503, hsb_bus_up 0) until the brokers answer
   * a metadata request again: without webhooks to publish, nothing else would notice them back.
   */
  #publishFailed(): void {
    if (this.#probe !== undefined || !this.#opened) return;
    const names = [this.topicName('events')];
    let asking = false;
    const probe: NodeJS.Timeout = setInterval(() => {
      // One request at a time, and only this probe's own answer may end it.
      if (asking) return;
      asking = true;
      void this.#admin?.fetchTopicMetadata({ topics: names }).then(() => {
        if (this.#probe !== probe) return;
        clearInterval(probe);
        this.#probe = undefined;
        this.#log.info('brokers answer again: bus ready');
      }, () => undefined).finally(() => { asking = false; });
    }, 2000);
    probe.unref();
    this.#probe = probe;
  }

  publish(topic: TopicName, records: OutgoingRecord[]): Promise<void> {
    if (!this.#opened) return Promise.reject(new BridgeError('HSB_BUS_NOT_CONNECTED', 'bus not connected', { retryable: true }));
    if (records.length === 0) return Promise.resolve();
    const name = this.topicName(topic);
    let pending: Pending[];
    try {
      pending = records.map((r) => ({ topic: name, message: { key: r.key, value: encodeValue(r.value), headers: r.headers } }));
    } catch (e) {
      return Promise.reject(new BridgeError('HSB_BUS_INVALID_RECORD', 'a record value is not serialisable as JSON', { context: { topic }, cause: e }));
    }
    return this.#batcher.add(pending);
  }

  async #send(items: Pending[]): Promise<void> {
    const byTopic = new Map<string, OutgoingMessage[]>();
    for (const { topic, message } of items) {
      let list = byTopic.get(topic);
      if (!list) byTopic.set(topic, list = []);
      list.push(message);
    }
    try {
      await this.#producer.send([...byTopic].map(([topic, messages]) => ({ topic, messages })));
    } catch (e) {
      this.#publishFailed();
      throw kafkaError(e, `publish to ${[...byTopic.keys()].join(', ')}`, this.#security);
    }
  }

  async subscribe(sub: Subscription, onBatch: BatchHandler): Promise<ConsumerHandle> {
    const heartbeatInterval = Math.min(3000, Math.floor(this.#opts.sessionTimeoutMs / 3));
    const consumer = this.#kafka.consumer({
      // Groups live under the topic prefix too: two bridges sharing a cluster must not share work.
      groupId: this.groupName(sub.group),
      sessionTimeout: this.#opts.sessionTimeoutMs,
      rebalanceTimeout: 60000,
      heartbeatInterval,
      maxWaitTimeInMs: 250,
      retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
    });
    const abort = new AbortController();
    const entry = { consumer, abort };
    const active = new Set<Promise<void>>();
    const track = async (work: () => Promise<void>): Promise<void> => {
      const p = work();
      active.add(p);
      try { await p; } finally { active.delete(p); }
    };
    // kafkajs learns of a rebalance only from a heartbeat answer, and rejoins only after every
    // running batch has returned: a handler that is not told keeps working on partitions that
    // are being handed to another member. So each batch heartbeats on its own timer too, and a
    // heartbeat that says the group moved on aborts every running batch (the rebalance revokes
    // all partitions of this member).
    const running = new Set<AbortController>();
    /** Redeliveries: per partition, the timer that brings the fetch back to the held record. */
    const rewinds = new Map<number, NodeJS.Timeout>();
    const revokeAll = (why: string) => {
      for (const c of running) c.abort(new BridgeError('HSB_BUS_REBALANCE', why, { retryable: true }));
    };
    // A rewind armed before a rebalance must not seek a partition this member may no longer own
    // (kafkajs would keep the seek for when it comes back); after the rejoin the fetch starts at
    // the commits, which are at the held records, so nothing held is skipped.
    const dropRewinds = () => {
      for (const t of rewinds.values()) clearTimeout(t);
      rewinds.clear();
    };
    consumer.on(consumer.events.REBALANCING, dropRewinds);
    consumer.on(consumer.events.GROUP_JOIN, dropRewinds);
    // kafkajs restarts a consumer after a retriable failure only: one it deems final (a refused SASL
    // login after a password rotation, say) would leave the group without this member for good,
    // while the producer, /readyz and hsb_bus_up look healthy. It is started again here, with backoff.
    let restartDelay = this.#opts.consumerRestartMs;
    let restartTimer: NodeJS.Timeout | undefined;
    const restart = (why: unknown) => {
      if (abort.signal.aborted) return;
      const err = kafkaError(why, `consumer group ${this.groupName(sub.group)}`, this.#security);
      this.#log.error({ group: sub.group, code: err.code, err: err.message, retryInMs: restartDelay }, 'Kafka consumer stopped; starting it again');
      restartTimer = setTimeout(() => {
        if (abort.signal.aborted) return;
        consumer.connect().then(() => consumer.run(runConfig)).then(
          () => { restartDelay = this.#opts.consumerRestartMs; },
          (e: unknown) => restart(e),
        );
      }, restartDelay);
      restartTimer.unref();
      restartDelay = Math.min(60000, restartDelay * 2);
    };
    consumer.on(consumer.events.CRASH, (event) => {
      revokeAll('consumer crashed');
      // A restarted consumer reads from the commits, which are at the held records.
      dropRewinds();
      if (!event.payload.restart) restart(event.payload.error);
    });
    this.#consumers.add(entry);
    try {
      await consumer.connect();
    } catch (e) {
      throw kafkaError(e, `consumer group ${this.groupName(sub.group)}`, this.#security);
    }
    const prefix = this.#opts.topicPrefix;
    for (const t of sub.topics) await consumer.subscribe({ topic: this.topicName(t), fromBeginning: sub.fromBeginning ?? true });
    const runConfig: ConsumerRunConfig = {
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.#opts.partitions,
      eachBatch: (payload) => track(async () => {
        const { batch, heartbeat, isRunning, isStale, resolveOffset } = payload;
        if (!batch.messages.length || !isRunning() || isStale()) return;
        const topic = batch.topic.slice(prefix.length) as TopicName;
        const messages: BusMessage[] = batch.messages.map((m) => ({
          topic, partition: batch.partition, offset: m.offset, key: m.key?.toString('utf8') ?? '',
          value: decodeValue(m.value, `${batch.topic}/${batch.partition}@${m.offset}`),
          timestamp: Number(m.timestamp), headers: headersOf(m.headers),
        }));
        const mine = new AbortController();
        running.add(mine);
        const beat = async () => {
          try {
            await heartbeat();
          } catch (e) {
            const type = (e as { type?: string }).type;
            if (type && GROUP_MOVED_ON.has(type)) revokeAll(`group rebalancing (${type})`);
            throw e;
          }
        };
        const timer = setInterval(() => { beat().catch(() => undefined); }, heartbeatInterval);
        let redelivery: Redelivery | void = undefined;
        try {
          redelivery = await onBatch(messages, { heartbeat: beat, signal: AbortSignal.any([abort.signal, mine.signal]) });
        } catch (e) {
          // Revoked: nothing is committed and the new owner reads it again. Returning (rather than
          // failing the batch, which kafkajs would retry with backoff) lets this member rejoin now.
          if (!mine.signal.aborted) throw e;
        } finally {
          clearInterval(timer);
          running.delete(mine);
        }
        if (mine.signal.aborted) return;
        if (isStale()) return;
        if (redelivery) {
          // Go on reading this partition (the handler holds what it has not run); the commit stays
          // at the held record, and the partition is read again from there at `until`.
          const last = batch.messages[batch.messages.length - 1]!.offset;
          const from = clampOffset(redelivery.redeliverFrom, BigInt(batch.messages[0]!.offset), BigInt(last) + 1n);
          resolveOffset(last);
          await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: from.toString() }]);
          if (abort.signal.aborted) return;
          const key = batch.partition;
          clearTimeout(rewinds.get(key));
          const until = redelivery.until;
          const rewindAt = () => {
            const t = setTimeout(() => {
              if (rewinds.get(key) !== t || abort.signal.aborted) return;
              if (Date.now() < until) return rewindAt();
              rewinds.delete(key);
              try {
                consumer.seek({ topic: batch.topic, partition: batch.partition, offset: from.toString() });
              } catch (e) {
                this.#log.debug({ err: (e as Error).message, topic: batch.topic, partition: batch.partition }, 'rewind after a redelivery skipped');
              }
            }, Math.max(1, until - Date.now()));
            t.unref();
            rewinds.set(key, t);
          };
          rewindAt();
          return;
        }
        // Nothing held (any more): a rewind armed by an earlier batch would bring back records now committed.
        clearTimeout(rewinds.get(batch.partition));
        rewinds.delete(batch.partition);
        // The whole batch settled: commit past its last record.
        const last = batch.messages[batch.messages.length - 1]!.offset;
        resolveOffset(last);
        await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
      }),
    };
    await consumer.run(runConfig);
    return {
      stop: async () => {
        abort.abort();
        clearTimeout(restartTimer);
        dropRewinds();
        this.#consumers.delete(entry);
        // A batch whose handler finished as the stop came gets its commit in before the disconnect.
        await Promise.allSettled(active);
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
      // Sorted as the embedded bus lists them: the broker answers in no particular order.
      topics.push({ topic: t, partitions: offs.map((o) => ({ partition: o.partition, high: o.high, low: o.low })).sort((a, b) => a.partition - b.partition) });
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
      offsets.sort((a, b) => byName(a.topic, b.topic) || a.partition - b.partition);
      if (offsets.length) groups.push({ group: g.groupId.slice(prefix.length), offsets });
    }
    groups.sort((a, b) => byName(a.group, b.group));
    return { kind: 'kafka', topics, groups };
  }

  async close(): Promise<void> {
    for (const c of [...this.#consumers]) {
      c.abort.abort();
      await c.consumer.disconnect().catch(() => undefined);
    }
    this.#consumers.clear();
    this.#opened = false;
    clearInterval(this.#probe);
    this.#probe = undefined;
    await this.#producer.close().catch(() => undefined);
    await this.#admin?.disconnect().catch(() => undefined);
  }
}

/** A redelivery's commit offset, never past the batch's end; one that does not parse commits nothing new (`fallback`). */
function clampOffset(offset: string, fallback: bigint, end: bigint): bigint {
  let o: bigint;
  try {
    o = BigInt(offset);
  } catch {
    return fallback;
  }
  return o < 0n ? fallback : o > end ? end : o;
}

function headersOf(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) if (v !== undefined) out[k] = Array.isArray(v) ? String(v[0]) : String(v);
  return out;
}

/** Code-unit order, as the embedded bus's SQLite lists groups and topics. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
