// One member of a consumer group on the embedded bus. Membership and partition ownership are rows
// in the database with an expiry, so members in other processes see each other, and a member that
// dies without cleaning up (SIGKILL) loses its partitions once its lease expires.

import type { EventEmitter } from 'node:events';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../observability/logger.ts';
import type { BatchContext, BatchHandler, BusMessage, ConsumerHandle, Redelivery, Subscription, TopicName } from '../port.ts';
import { assignedPartitions, type TopicPartition } from './assignment.ts';
import type { BusStore, StoredRecord } from './store.ts';

export interface GroupConsumerOptions {
  store: BusStore;
  /** In-process wake-ups: 'append' (topic, partition) after a publish, 'group' (group) on joins and leaves. */
  hub: EventEmitter;
  memberId: string;
  subscription: Subscription;
  onBatch: BatchHandler;
  partitions: number;
  leaseMs: number;
  heartbeatMs: number;
  maxBatch: number;
  retryBackoffMs: number;
  maxRetryBackoffMs: number;
  stopTimeoutMs: number;
  logger: Logger;
}

interface Worker {
  tp: TopicPartition;
  ac: AbortController;
  /** Set when the partition is being handed to another member; its lease is released on exit. */
  revoked: boolean;
  done: Promise<void>;
}

/** Delay before re-delivering a failed batch: doubles per consecutive failure, capped. */
export function retryDelay(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
}

export function toMessage(topic: TopicName, r: StoredRecord): BusMessage {
  return {
    topic,
    partition: r.partition,
    offset: String(r.offset),
    key: r.key,
    value: r.value === null ? null : JSON.parse(r.value),
    timestamp: r.ts,
    headers: JSON.parse(r.headers) as Record<string, string>,
  };
}

/** The offset to commit for a redelivery: never past the batch (a handler cannot skip records it was not given). */
function redeliveryOffset(r: Redelivery, rows: readonly StoredRecord[]): number {
  const from = Number(r.redeliverFrom);
  if (!Number.isInteger(from) || from < 0) return rows[0]!.offset;
  return Math.min(rows[rows.length - 1]!.offset + 1, from);
}

const tpKey = (tp: TopicPartition): string => `${tp.topic}\u0000${tp.partition}`;

export class GroupConsumer implements ConsumerHandle {
  readonly #o: GroupConsumerOptions;
  readonly #group: string;
  readonly #topics: TopicName[];
  readonly #workers = new Map<string, Worker>();
  #timer: NodeJS.Timeout | undefined;
  #rebalanceQueued = false;
  #stopping: Promise<void> | undefined;
  readonly #onGroup = (group: string): void => {
    if (group === this.#group) this.#queueRebalance();
  };

  constructor(o: GroupConsumerOptions) {
    this.#o = o;
    this.#group = o.subscription.group;
    this.#topics = [...new Set(o.subscription.topics)];
  }

  start(): void {
    this.#o.hub.on('group', this.#onGroup);
    this.#tick();
    this.#timer = setInterval(() => this.#tick(), this.#o.heartbeatMs);
    this.#timer.unref();
    // Tell other in-process members at once; other processes notice on their next heartbeat.
    this.#o.hub.emit('group', this.#group);
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#o.hub.off('group', this.#onGroup);
    const running = [...this.#workers.values()];
    for (const w of running) w.ac.abort(new Error('consumer stopping'));
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => { timer = setTimeout(resolve, this.#o.stopTimeoutMs); });
    await Promise.race([Promise.allSettled(running.map((w) => w.done)), bound]);
    clearTimeout(timer);
    // A batch still running after the bound cannot commit: its lease is gone (fencing).
    try {
      this.#o.store.leave(this.#group, this.#o.memberId);
    } catch (e) {
      this.#o.logger.warn({ err: e, group: this.#group }, 'embedded bus: leaving the group failed; leases expire on their own');
    }
    this.#o.hub.emit('group', this.#group);
  }

  #queueRebalance(): void {
    if (this.#rebalanceQueued || this.#stopping) return;
    this.#rebalanceQueued = true;
    setImmediate(() => {
      this.#rebalanceQueued = false;
      this.#tick();
    });
  }

  /** Heartbeat and rebalance: renew leases, give up partitions now owed to others, take free ones. */
  #tick(): void {
    if (this.#stopping) return;
    const { store, memberId, partitions, leaseMs } = this.#o;
    try {
      const now = Date.now();
      const { members, held } = store.heartbeat(this.#group, memberId, this.#topics, now, leaseMs);
      const heldKeys = new Set(held.map(tpKey));
      const wanted = assignedPartitions(members, memberId, partitions);
      const wantedKeys = new Set(wanted.map(tpKey));
      for (const [k, w] of this.#workers) {
        if (!heldKeys.has(k)) {
          // Lease taken over (this process stalled past its expiry): stop without committing.
          w.ac.abort(new Error('partition lost'));
        } else if (!wantedKeys.has(k) && !w.revoked) {
          w.revoked = true;
          w.ac.abort(new Error('partition reassigned'));
        }
      }
      for (const tp of wanted) {
        const k = tpKey(tp);
        if (this.#workers.has(k)) continue;
        if (store.tryAcquire(this.#group, memberId, tp, now, leaseMs)) this.#startWorker(tp);
      }
    } catch (e) {
      this.#o.logger.warn({ err: e, group: this.#group }, 'embedded bus: heartbeat failed');
    }
  }

  #startWorker(tp: TopicPartition): void {
    const k = tpKey(tp);
    const w: Worker = { tp, ac: new AbortController(), revoked: false, done: Promise.resolve() };
    this.#workers.set(k, w);
    w.done = this.#run(w)
      .catch((e: unknown) => this.#o.logger.error({ err: e, group: this.#group, ...tp }, 'embedded bus: partition worker crashed'))
      .finally(() => {
        this.#workers.delete(k);
        if (!w.revoked || this.#stopping) return;
        try {
          this.#o.store.release(this.#group, this.#o.memberId, tp);
        } catch (e) {
          this.#o.logger.warn({ err: e, group: this.#group, ...tp }, 'embedded bus: releasing a partition failed; it expires on its own');
        }
        this.#o.hub.emit('group', this.#group);
      });
  }

  async #run(w: Worker): Promise<void> {
    const { store, memberId, onBatch, maxBatch, leaseMs, logger } = this.#o;
    const { tp } = w;
    const signal = w.ac.signal;
    const ctx: BatchContext = {
      heartbeat: async () => this.#tick(),
      signal,
    };
    let pos = store.initOffset(this.#group, memberId, tp, this.#o.subscription.fromBeginning ?? true, Date.now());
    let failures = 0;
    /** A redelivery: where to come back to, and when. */
    let rewind: { at: number; to: number } | undefined;
    while (!signal.aborted) {
      if (rewind && Date.now() >= rewind.at) {
        pos = rewind.to;
        rewind = undefined;
      }
      // A handler that resolves without real I/O would otherwise keep this loop in microtasks and
      // starve timers (heartbeats, other partitions) while records keep coming.
      await yieldToLoop();
      let rows: StoredRecord[];
      try {
        rows = store.fetch(tp.topic, tp.partition, pos, maxBatch);
      } catch (e) {
        failures++;
        logger.warn({ err: e, group: this.#group, ...tp }, 'embedded bus: fetch failed');
        await sleep(retryDelay(failures, this.#o.retryBackoffMs, this.#o.maxRetryBackoffMs), undefined, { signal }).catch(() => {});
        continue;
      }
      if (rows.length === 0) {
        await this.#waitForAppend(tp, signal, rewind ? Math.max(1, rewind.at - Date.now()) : undefined);
        continue;
      }
      const batch = rows.map((r) => toMessage(tp.topic, r));
      let redelivery: Redelivery | void;
      try {
        redelivery = await onBatch(batch, ctx);
      } catch (e) {
        if (signal.aborted) {
          // Stopping or handing the partition over: expected, so one line without a stack.
          logger.info({ group: this.#group, ...tp, offset: batch[0]!.offset, err: (e as Error).message }, 'embedded bus: batch left uncommitted (stopping or partition moved); it is delivered again');
          return;
        }
        failures++;
        const delay = retryDelay(failures, this.#o.retryBackoffMs, this.#o.maxRetryBackoffMs);
        logger.warn({ err: e, group: this.#group, ...tp, offset: batch[0]!.offset, failures, delayMs: delay }, 'embedded bus: batch failed; redelivering');
        await sleep(delay, undefined, { signal }).catch(() => {});
        pos = safe(() => store.committed(this.#group, tp.topic, tp.partition)) ?? pos;
        continue;
      }
      const end = rows[rows.length - 1]!.offset + 1;
      const next = redelivery ? redeliveryOffset(redelivery, rows) : end;
      let owner: boolean;
      try {
        owner = store.commitIfOwner(this.#group, memberId, tp, next, Date.now(), leaseMs);
      } catch (e) {
        // Not committed: the batch comes again (at-least-once), after the same backoff as a failed handler.
        failures++;
        const delay = retryDelay(failures, this.#o.retryBackoffMs, this.#o.maxRetryBackoffMs);
        logger.warn({ err: e, group: this.#group, ...tp, failures, delayMs: delay }, 'embedded bus: commit failed; batch will be redelivered');
        await sleep(delay, undefined, { signal }).catch(() => {});
        continue;
      }
      if (!owner) {
        logger.info({ group: this.#group, ...tp }, 'embedded bus: partition lease lost; stopping its worker');
        return;
      }
      failures = 0;
      // A redelivery reads on from here, and back to the commit at `until` (checked, against the
      // clock, at the top of the loop).
      rewind = redelivery ? { at: redelivery.until, to: next } : undefined;
      pos = redelivery ? end : next;
    }
  }

  /** Resolves on a publish to this partition (in-process, or seen by the bus's poller), abort, or a safety timeout. */
  #waitForAppend(tp: TopicPartition, signal: AbortSignal, maxMs = 5000): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#o.hub.off('append', onAppend);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const onAppend = (topic: TopicName, partition: number): void => {
        if (topic === tp.topic && partition === tp.partition) done();
      };
      const timer = setTimeout(done, Math.min(5000, maxMs));
      this.#o.hub.on('append', onAppend);
      signal.addEventListener('abort', done);
      if (signal.aborted) done();
    });
  }
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
