import { setTimeout as sleep } from 'node:timers/promises';
import type { Bus, BusMessage, BatchContext, ConsumerHandle, Redelivery } from '../bus/port.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { BridgeError, toBridgeError } from '../errors.ts';
import { executeWithRetries } from './attempts.ts';
import { decideFailure } from './failure.ts';
import type { Outcome } from './execute.ts';
import type { Endpoints } from './endpoints.ts';
import { Limiter } from './limiter.ts';
import { ReplicationTaskSchema, taskKey, type ReplicationTask } from './task.ts';
import { DeadLetterSchema, taskLetter, unparsableRecordLetter } from './dead-letter.ts';
import { Progress } from './progress.ts';
import { CopyPool } from './copy-pool.ts';
import { checked } from '../bus/checked.ts';
import { publishOutcome, resultRecord, type OutcomeRecord } from './outcome.ts';
import type { PolicyTable } from '../policy/table.ts';

export const REPLICATOR_GROUP = 'replicator';
/** `tasks.retry` has a consumer group of its own, so that retries never share a fetch with fresh tasks. */
export const retryGroupOf = (group: string): string => `${group}.retry`;

/** A retry due within this is waited for in its batch; one due later is redelivered when due. */
const RETRY_WAIT_MS = 1000;
/**
 * Bounds of what a partition keeps in memory while retries wait: retries run past a held one
 * (remembered by offset, so the re-read skips them), and held retries. Past them the held ones
 * move to the end of `tasks.retry`.
 */
const MAX_PASSED = 50_000;
const MAX_HELD = 10_000;

export interface ReplicatorDeps {
  config: Config;
  bus: Bus;
  endpoints: Endpoints;
  metrics: Metrics;
  logger: Logger;
  progress?: Progress;
  group?: string;
  /** Retries run past held ones before the held ones move to the end of `tasks.retry` (default MAX_PASSED). */
  retryPassLimit?: number;
  /** The live policy table: a task planned before its policy was removed is dropped (recorded as skipped). */
  policies?: Pick<PolicyTable, 'removedAt'>;
}

/**
 * Consumer groups over `tasks` and `tasks.retry` (one each). Each task ends in exactly one durable
 * outcome (result, retry record or dead letter) before its batch is committed.
 */
export class Replicator {
  readonly #d: ReplicatorDeps;
  readonly #limiter: Limiter;
  readonly #pool: CopyPool;
  readonly #log: Logger;
  readonly progress: Progress;
  #handles: ConsumerHandle[] = [];
  readonly #subscribed = new Set<string>();
  #stopping = new AbortController();
  #draining = false;
  /** Tasks between their start and their recorded outcome. */
  #running = 0;
  #onIdle: (() => void) | undefined;
  /** Per `tasks.retry` partition: retries held until due, and offsets already run past them. */
  readonly #retryState = new Map<number, { held: Map<string, { due: number; m: BusMessage }>; passed: Set<string>; next: bigint; commit: bigint }>();

  constructor(deps: ReplicatorDeps) {
    this.#d = deps;
    this.#limiter = new Limiter(deps.config.worker.concurrency);
    this.#pool = new CopyPool({ concurrency: deps.config.worker.transfers });
    this.#log = deps.logger.child({ component: 'replicator' });
    this.progress = deps.progress ?? new Progress(deps.metrics);
  }

  /** Subscribes to `tasks` and `tasks.retry`; a call after a failed one subscribes what is missing. */
  async start(): Promise<void> {
    const group = this.#d.group ?? REPLICATOR_GROUP;
    for (const [g, topic] of [[group, 'tasks'], [retryGroupOf(group), 'tasks.retry']] as const) {
      if (this.#subscribed.has(topic)) continue;
      const handler = topic === 'tasks.retry' ? (batch: BusMessage[], ctx: BatchContext) => this.#onRetryBatch(batch, ctx) : (batch: BusMessage[], ctx: BatchContext) => this.#onBatch(batch, ctx);
      this.#handles.push(await this.#d.bus.subscribe({ group: g, topics: [topic], fromBeginning: true }, handler));
      this.#subscribed.add(topic);
    }
  }

  /**
   * Stop taking tasks; those already copying get `worker.shutdownTimeoutMs` to finish and record
   * their outcome, then whatever is left is abandoned uncommitted (delivered again elsewhere).
   */
  async stop(): Promise<void> {
    this.#draining = true;
    const timeUp = new AbortController();
    const deadline = sleep(this.#d.config.worker.shutdownTimeoutMs, undefined, { signal: timeUp.signal }).catch(() => undefined);
    try {
      await Promise.race([this.#drained(), deadline]);
      this.#stopping.abort();
      // Bounded too: a consumer that cannot reach its broker must not keep the process from exiting.
      const stopped = Promise.all(this.#handles.map((h) => h.stop()));
      stopped.catch(() => undefined);
      await Promise.race([stopped, sleep(this.#d.config.worker.shutdownTimeoutMs, undefined, { signal: timeUp.signal }).catch(() => undefined)]);
    } finally {
      timeUp.abort();
    }
  }

  #drained(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => { this.#onIdle = resolve; });
  }

  /** Work not started before stop(): held until the hard stop, then given back uncommitted. */
  async #refuseWhileDraining(): Promise<void> {
    if (!this.#draining) return;
    if (!this.#stopping.signal.aborted) await new Promise((r) => this.#stopping.signal.addEventListener('abort', r, { once: true }));
    throw new BridgeError('HSB_ABORTED', 'stopping', { retryable: true });
  }

  async #onBatch(batch: BusMessage[], ctx: BatchContext): Promise<void> {
    // Per key in order; different keys in parallel, bounded by the process-wide limiter.
    const byKey = new Map<string, BusMessage[]>();
    for (const m of batch) {
      const list = byKey.get(m.key);
      if (list) list.push(m);
      else byKey.set(m.key, [m]);
    }
    const beat = setInterval(() => { ctx.heartbeat().catch(() => undefined); }, 3000);
    try {
      // allSettled: a failing key must not leave its siblings running after the batch rejected.
      const settled = await Promise.allSettled([...byKey.values()].map(async (msgs) => {
        for (const m of msgs) await this.#handleRecord(m, ctx);
      }));
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
    } finally {
      clearInterval(beat);
    }
  }

  /**
   * `tasks.retry`: what is due runs now; a retry due later is held (its offset and record, in
   * memory) while the partition is read on, so the retries behind it run when due; the commit
   * stays at the first held retry, and the partition is read again from there when the earliest
   * held one is due. Records already run past a held one are skipped then. So one failing target's
   * long waits never hold back another target's retries. Past the memory bounds the held retries
   * move to the end of `tasks.retry`, their due times kept.
   */
  async #onRetryBatch(batch: BusMessage[], ctx: BatchContext): Promise<void | Redelivery> {
    const partition = batch[0]!.partition;
    const start = BigInt(batch[0]!.offset);
    let st = this.#retryState.get(partition);
    // A batch that neither goes on from the last one nor comes back to the commit asked for: the
    // partition was with another member meanwhile (its commit moved on). What was held is stale.
    if (st && start !== st.next && start !== st.commit) st = undefined;
    st ??= { held: new Map<string, { due: number; m: BusMessage }>(), passed: new Set<string>(), next: start, commit: start };
    const now = Date.now();
    const run: BusMessage[] = [];
    for (const m of batch) {
      if (st.passed.has(m.offset)) continue;
      const due = dueTime(m.value);
      if (due <= now + RETRY_WAIT_MS) {
        run.push(m);
        st.held.delete(m.offset);
      } else {
        st.held.set(m.offset, { due, m });
      }
    }
    await this.#onBatch(run, ctx);
    const end = BigInt(batch[batch.length - 1]!.offset) + 1n;
    for (const m of run) st.passed.add(m.offset);
    // Records at or past the commit (min(from, end)) can be read again: their passed marks stay.
    const prune = (floor: bigint) => { for (const o of st.passed) if (BigInt(o) < floor) st.passed.delete(o); };
    const settle = () => {
      st.held.clear();
      prune(end);
      st.next = end;
      st.commit = end;
      if (st.passed.size === 0) this.#retryState.delete(partition);
      else this.#retryState.set(partition, st);
    };
    if (st.held.size === 0) return settle();
    const from = [...st.held.keys()].reduce((a, b) => (BigInt(a) < BigInt(b) ? a : b));
    prune(BigInt(from) < end ? BigInt(from) : end);
    if (st.passed.size > (this.#d.retryPassLimit ?? MAX_PASSED) || st.held.size > MAX_HELD) {
      const moved = [...st.held.values()].map(({ m }) => ({ key: m.key, value: m.value, headers: m.headers }));
      await this.#d.bus.publish('tasks.retry', moved);
      this.#log.info({ partition, moved: moved.length }, 'retries not due yet moved to the end of tasks.retry');
      // Held records read ahead of this batch come again: their copies are at the end now.
      for (const o of st.held.keys()) if (BigInt(o) >= end) st.passed.add(o);
      return settle();
    }
    st.next = end;
    st.commit = BigInt(from) < end ? BigInt(from) : end;
    this.#retryState.set(partition, st);
    const earliest = Math.min(...[...st.held.values()].map((h) => h.due));
    return { redeliverFrom: from, until: earliest };
  }

  /** A metric label only for a configured target: a task record may name any id, and labels must stay bounded. */
  #targetLabel(id: unknown): string {
    return typeof id === 'string' && this.#d.config.targets.some((t) => t.id === id) ? id : 'unknown';
  }

  async #handleRecord(m: BusMessage, ctx: BatchContext): Promise<void> {
    const parsed = ReplicationTaskSchema.safeParse(m.value);
    if (!parsed.success) {
      const err = new BridgeError('HSB_TASK_INVALID', `invalid task record: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      const letter = unparsableRecordLetter(m, err);
      await this.#d.bus.publish('dlq', checked('dlq', DeadLetterSchema, [{ key: letter.id, value: letter }]));
      // Counted where operators watch dead letters.
      this.#d.metrics.tasks.inc({ target: this.#targetLabel((m.value as { targetId?: unknown } | null)?.targetId), outcome: 'dlq' });
      return;
    }
    const task = parsed.data;
    const removed = this.#d.policies?.removedAt(task.policyId);
    if (removed !== undefined && Date.parse(task.createdAt) <= removed) {
      // Deleting a policy stops its queued work too (retries would otherwise run to the DLQ for hours).
      const note = `policy ${task.policyId} was deleted after this task was planned; dropped`;
      if (await this.#publishOutcome(task, m, [resultRecord(task, { status: 'skipped', bytes: 0, note }, 0)], this.#log.child({ task: task.id }))) {
        this.#d.metrics.tasks.inc({ target: this.#targetLabel(task.targetId), outcome: 'skipped' });
        this.#log.info({ task: task.id, policy: task.policyId }, note);
      }
      return;
    }
    if (task.notBefore) await this.#waitUntil(new Date(task.notBefore), ctx);
    await this.#refuseWhileDraining();
    await this.#limiter.run(async () => {
      await this.#refuseWhileDraining();
      this.#running++;
      try {
        await this.#run(task, m, ctx);
      } finally {
        if (--this.#running === 0 && this.#draining) this.#onIdle?.();
      }
    });
  }

  async #run(task: ReplicationTask, m: BusMessage, ctx: BatchContext): Promise<void> {
    const log = this.#log.child({ task: task.id, policy: task.policyId, target: task.targetId, repository: task.repository, ref: task.tag ?? task.digest, attempt: task.attempt });
    // Monotonic: a clock stepped back during a copy must not make a duration negative.
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    this.#d.metrics.inflightTasks.inc();
    const progress = this.progress.begin(task);
    let outcome: Outcome;
    try {
      outcome = await this.#attempts(task, ctx, log, (p) => progress.update(p.bytesDone, p.bytesTotal));
    } catch (e) {
      if (ctx.signal.aborted || this.#stopping.signal.aborted) throw e; // abandoned: not committed, delivered again
      await this.#recordFailure(task, m, toBridgeError(e), elapsed(), log);
      return;
    } finally {
      progress.end();
      this.#d.metrics.inflightTasks.dec();
    }
    // Recorded before the batch commits; a bus failure here fails the batch, which is delivered again.
    const durationMs = elapsed();
    if (!await this.#publishOutcome(task, m, [resultRecord(task, outcome, durationMs)], log)) return;
    const target = this.#targetLabel(task.targetId);
    this.#d.metrics.tasks.inc({ target, outcome: outcome.status });
    this.#d.metrics.copySeconds.observe({ target }, durationMs / 1000);
    if (outcome.bytes) this.#d.metrics.copyBytes.inc({ target }, outcome.bytes);
    if (outcome.blobs) {
      this.#d.metrics.blobs.inc({ target, how: 'uploaded' }, outcome.blobs.uploaded);
      this.#d.metrics.blobs.inc({ target, how: 'mounted' }, outcome.blobs.mounted);
      this.#d.metrics.blobs.inc({ target, how: 'skipped' }, outcome.blobs.skipped);
    }
    this.#d.metrics.replicationLagSeconds.observe({ target }, Math.max(0, (Date.now() - Date.parse(task.occurredAt)) / 1000));
    log.info({ status: outcome.status, digest: outcome.digest, bytes: outcome.bytes, blobs: outcome.blobs, note: outcome.note, ms: durationMs }, 'task finished');
  }

  /** A failed task ends on the retry topic or in the DLQ, and as a result record either way. */
  async #recordFailure(task: ReplicationTask, m: BusMessage, err: BridgeError, durationMs: number, log: Logger): Promise<void> {
    const decision = decideFailure(task, err, this.#d.config.worker, new Date());
    if (decision.kind === 'retry') {
      const retry: OutcomeRecord = { topic: 'tasks.retry', schema: ReplicationTaskSchema, record: { key: taskKey(task), value: decision.task } };
      if (!await this.#publishOutcome(task, m, [retry, resultRecord(task, { status: 'retry', bytes: 0 }, durationMs, err)], log)) return;
      log.warn({ code: err.code, err: err.message, dueAt: decision.dueAt.toISOString() }, 'task failed; scheduled on the retry topic');
    } else {
      const letter = taskLetter(task, m, err, task.attempt + 1);
      // Keyed by the letter's id: `dlq` is compacted and a replay writes a tombstone for it.
      const dead: OutcomeRecord = { topic: 'dlq', schema: DeadLetterSchema, record: { key: letter.id, value: letter } };
      if (!await this.#publishOutcome(task, m, [dead, resultRecord(task, { status: 'dlq', bytes: 0 }, durationMs, err)], log)) return;
      log.error({ code: err.code, err: err.message, reason: decision.reason }, 'task dead-lettered');
    }
    this.#d.metrics.tasks.inc({ target: this.#targetLabel(task.targetId), outcome: decision.kind });
  }

  /** Bounded in-process retries for transient errors; abort on shutdown, rebalance or a stall. */
  #attempts(task: ReplicationTask, ctx: BatchContext, log: Logger, onProgress: (p: { bytesDone: number; bytesTotal: number }) => void): Promise<Outcome> {
    return executeWithRetries(task, this.#d.endpoints.source(task.sourceId), this.#d.endpoints.target(task.targetId), {
      attempts: this.#d.config.worker.attempts,
      stallTimeoutMs: this.#d.config.worker.stallTimeoutMs,
      signal: AbortSignal.any([ctx.signal, this.#stopping.signal]),
      logger: log,
      pool: this.#pool,
      onProgress,
    });
  }

  async #waitUntil(due: Date, ctx: BatchContext): Promise<void> {
    // Sleep in short steps, heartbeating, so the group sees us alive and a rebalance interrupts us.
    while (Date.now() < due.getTime()) {
      await this.#refuseWhileDraining();
      if (ctx.signal.aborted || this.#stopping.signal.aborted) throw new BridgeError('HSB_ABORTED', 'stopping', { retryable: true });
      await sleep(Math.min(1000, due.getTime() - Date.now()));
      await ctx.heartbeat();
    }
  }

  /** Writes a task's outcome; false when a record failed its schema and the task went to the DLQ instead. */
  async #publishOutcome(task: ReplicationTask, m: BusMessage, records: OutcomeRecord[], log: Logger): Promise<boolean> {
    const published = await publishOutcome(this.#d.bus, m, records);
    if (published.ok) return true;
    log.error({ code: published.error.code, err: published.error.message }, 'task outcome does not match its schema; the task record is dead-lettered as it came');
    this.#d.metrics.tasks.inc({ target: this.#targetLabel(task.targetId), outcome: 'dlq' });
    return false;
  }
}

/** When a retry record is due (epoch ms): its `notBefore`; now for anything else (checked when it runs). */
function dueTime(value: unknown): number {
  const at = (value as { notBefore?: unknown } | null)?.notBefore;
  const t = typeof at === 'string' ? Date.parse(at) : NaN;
  return Number.isFinite(t) ? t : 0;
}
