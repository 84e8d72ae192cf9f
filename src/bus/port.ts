// The bus port: what the bridge needs from Kafka or the embedded bus, and nothing more.
// Keep this small: both adapters implement it and one contract suite tests both.

export const TOPICS = ['events', 'policies', 'tasks', 'tasks.retry', 'results', 'dlq'] as const;

/**
 * Groups of read-only views (a `status` run, a process's policy table): they read to show or
 * follow, so they never hold records back from pruning and are left out of lag reports.
 */
export const VIEW_GROUP_PREFIXES = ['status-', 'policy-follower.'] as const;
export function isViewGroup(group: string): boolean {
  return VIEW_GROUP_PREFIXES.some((p) => group.startsWith(p));
}
export type TopicName = (typeof TOPICS)[number];

/** A record to publish. `value: null` is a tombstone (compacted topics). */
export interface OutgoingRecord {
  key: string;
  value: unknown;
  headers?: Record<string, string>;
}

/** A record as delivered to a consumer; `value` is the parsed JSON, or null for a tombstone. */
export interface BusMessage {
  topic: TopicName;
  partition: number;
  offset: string;
  key: string;
  value: unknown;
  timestamp: number;
  headers: Record<string, string>;
}

export interface Subscription {
  group: string;
  topics: TopicName[];
  /** Where a group with no committed offset starts. Default: earliest. */
  fromBeginning?: boolean;
}

export interface BatchContext {
  /** Tell the group this member is alive; call while long work progresses. */
  heartbeat(): Promise<void>;
  /** Aborted when the consumer is stopping or lost the partition: finish fast, commit nothing new. */
  signal: AbortSignal;
}

/**
 * A handler's answer when it holds records it has not run yet: the commit goes (or stays) at
 * `redeliverFrom`, which may lie before the batch (a record held from an earlier one); reading
 * goes on after the batch meanwhile, and comes back to `redeliverFrom` at `until` (epoch ms),
 * never before. The handler keeps track of what it ran past the held records.
 */
export interface Redelivery {
  redeliverFrom: string;
  until: number;
}

/**
 * Called with records of one partition in offset order. When it resolves, the whole batch is
 * committed (or, with a {@link Redelivery}, the records before it); when it rejects, nothing in the
 * batch is committed and the records are delivered again.
 */
export type BatchHandler = (batch: BusMessage[], ctx: BatchContext) => Promise<void | Redelivery>;

export interface ConsumerHandle {
  stop(): Promise<void>;
}

export interface Bus {
  readonly kind: 'kafka' | 'embedded';
  connect(): Promise<void>;
  /** Resolves once every record is durable (acks=all / synchronous commit); all or nothing per call. */
  publish(topic: TopicName, records: OutgoingRecord[]): Promise<void>;
  subscribe(sub: Subscription, onBatch: BatchHandler): Promise<ConsumerHandle>;
  /** Latest value per key of a compacted topic (tombstones removed), read from the beginning. */
  readCompacted(topic: TopicName): Promise<Map<string, unknown>>;
  /** Depth and committed offsets for `bus inspect` and status. */
  inspect(): Promise<BusInspection>;
  isReady(): boolean;
  close(): Promise<void>;
}

export interface BusInspection {
  kind: 'kafka' | 'embedded';
  topics: { topic: TopicName; partitions: { partition: number; high: string; low: string }[] }[];
  groups: { group: string; offsets: { topic: TopicName; partition: number; committed: string; lag: number }[] }[];
}
