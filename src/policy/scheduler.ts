// Fires scheduled policies on their cron (Harbor's 6-field dialect, UTC). What a fire does (a
// reconcile pass) belongs to the caller's `onFire`. A policy first seen, newly enabled, or whose
// cron changed starts counting from now: missed slots are not replayed (as Harbor), and slots
// missed while this process was busy or asleep coalesce into one fire. A run that fails is tried
// again after a growing delay (passRetryDelayMs) until it succeeds or the policy's next slot fires.
import type { Logger } from '../observability/logger.ts';
import { nextRun, parseCron, type CronSchedule } from './cron.ts';
import type { Policy } from './model.ts';
import type { PolicyTable } from './table.ts';

/** Wait before the next try of a failed reconcile pass: 30 s, doubling, at most 15 min. */
export function passRetryDelayMs(attempt: number): number {
  return Math.min(15 * 60_000, 30_000 * 2 ** Math.min(attempt, 10));
}

export interface Fire {
  policy: Policy;
  /** The schedule slot being fired (the latest one not after now): the same in every process. */
  at: Date;
}

export interface DueResult {
  due: Fire[];
  /** The new per-policy reference times; policies no longer scheduled are dropped. */
  lastRun: Map<string, Date>;
  /** The earliest upcoming slot over all scheduled policies, if any. */
  next: Date | undefined;
}

const schedules = new Map<string, CronSchedule | null>();

function scheduleOf(cron: string): CronSchedule | null {
  let s = schedules.get(cron);
  if (s === undefined) {
    try {
      s = parseCron(cron);
    } catch {
      s = null;
    }
    if (schedules.size > 1000) schedules.clear();
    schedules.set(cron, s);
  }
  return s;
}

/** The cron a policy fires on, or undefined when it is not an enabled scheduled policy. */
export function cronOf(p: Policy): string | undefined {
  if (!p.enabled || p.trigger.type !== 'scheduled') return undefined;
  return p.trigger.trigger_settings?.cron || undefined;
}

/**
 * Pure: which policies are due at `now`, given when each was last run (or first seen).
 * A policy with no entry in `lastRun` is not due; it starts counting from `now`.
 */
export function dueFires(policies: readonly Policy[], lastRun: ReadonlyMap<string, Date>, now: Date): DueResult {
  const due: Fire[] = [];
  const out = new Map<string, Date>();
  let next: Date | undefined;
  for (const p of policies) {
    const cron = cronOf(p);
    const schedule = cron === undefined ? null : scheduleOf(cron);
    if (!schedule) continue;
    const last = lastRun.get(p.id);
    let ref = now;
    if (last !== undefined) {
      const first = safeNext(schedule, last);
      if (first && first.getTime() <= now.getTime()) {
        due.push({ policy: p, at: latestSlot(schedule, first, now) });
      } else {
        ref = last;
      }
    }
    out.set(p.id, ref);
    const upcoming = safeNext(schedule, ref.getTime() > now.getTime() ? ref : now);
    if (upcoming && (!next || upcoming < next)) next = upcoming;
  }
  return { due, lastRun: out, next };
}

function safeNext(s: CronSchedule, after: Date): Date | undefined {
  try {
    return nextRun(s, after);
  } catch {
    return undefined;
  }
}

/** The last slot not after `now`, walking from `first` (bounded: a long sleep jumps to `first`'s successors quickly). */
function latestSlot(s: CronSchedule, first: Date, now: Date): Date {
  let slot = first;
  for (let i = 0; i < 100_000; i++) {
    const n = safeNext(s, slot);
    if (!n || n.getTime() > now.getTime()) return slot;
    slot = n;
  }
  return slot;
}

export interface PolicySchedulerOptions {
  table: PolicyTable;
  onFire: (policy: Policy, at: Date) => Promise<void>;
  now?: () => Date;
  logger: Logger;
  /** How often the table is checked for changes (and the longest a timer sleeps). */
  pollMs?: number;
  /** Wait before trying a failed run again, by attempt (0 for the first retry); default passRetryDelayMs. */
  retryDelayMs?: (attempt: number) => number;
}

/** A failed run waiting to be tried again: the same slot, at `due` (epoch ms). */
interface Retry { slot: Date; attempt: number; due: number }

export class PolicyScheduler {
  readonly #table: PolicyTable;
  readonly #onFire: PolicySchedulerOptions['onFire'];
  readonly #now: () => Date;
  readonly #log: Logger;
  readonly #pollMs: number;
  readonly #retryDelayMs: (attempt: number) => number;
  readonly #retries = new Map<string, Retry>();
  #lastRun = new Map<string, Date>();
  readonly #crons = new Map<string, string>();
  readonly #running = new Map<string, Promise<void>>();
  #version = -1;
  #next: Date | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;

  constructor(o: PolicySchedulerOptions) {
    this.#table = o.table;
    this.#onFire = o.onFire;
    this.#now = o.now ?? (() => new Date());
    this.#log = o.logger.child({ component: 'policy-scheduler' });
    this.#pollMs = o.pollMs ?? 1000;
    this.#retryDelayMs = o.retryDelayMs ?? passRetryDelayMs;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#tick();
  }

  /** Stops arming timers and waits for fires in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([...this.#running.values()]);
  }

  /** The earliest upcoming fire, for status output. */
  get nextFire(): Date | undefined {
    return this.#next;
  }

  #tick(): void {
    if (this.#stopped) return;
    const now = this.#now();
    const policies = this.#table.list();
    if (this.#table.version !== this.#version) {
      this.#version = this.#table.version;
      // A changed cron starts afresh from now rather than firing for the old schedule's slots.
      for (const p of policies) {
        const cron = cronOf(p);
        if (cron !== undefined && this.#crons.get(p.id) !== cron) {
          if (this.#crons.has(p.id)) this.#lastRun.delete(p.id);
          this.#crons.set(p.id, cron);
          if (!scheduleOf(cron)) this.#log.error({ policy: p.id, cron }, 'cannot parse this policy\'s cron; it will not fire');
        }
      }
      const live = new Set(policies.filter((p) => cronOf(p) !== undefined).map((p) => p.id));
      for (const id of this.#crons.keys()) if (!live.has(id)) this.#crons.delete(id);
      // A retry belongs to the schedule it failed under.
      for (const id of this.#retries.keys()) if (!this.#crons.has(id) || !this.#lastRun.has(id)) this.#retries.delete(id);
    }
    const r = dueFires(policies, this.#lastRun, now);
    this.#lastRun = r.lastRun;
    this.#next = r.next;
    for (const f of r.due) {
      // The new slot's run replaces a retry of an older one.
      this.#retries.delete(f.policy.id);
      this.#fire(f);
    }
    for (const p of policies) {
      const retry = this.#retries.get(p.id);
      if (retry === undefined || retry.due > now.getTime() || this.#running.has(p.id)) continue;
      this.#log.info({ policy: p.id, at: retry.slot.toISOString(), attempt: retry.attempt + 1 }, 'retrying a failed scheduled run');
      this.#fire({ policy: p, at: retry.slot }, retry.attempt + 1);
    }
    const delay = r.next ? Math.max(0, r.next.getTime() - now.getTime()) : this.#pollMs;
    this.#timer = setTimeout(() => this.#tick(), Math.min(delay, this.#pollMs));
    this.#timer.unref();
  }

  #fire({ policy, at }: Fire, attempt = 0): void {
    if (this.#running.has(policy.id)) {
      this.#log.warn({ policy: policy.id, at: at.toISOString() }, 'skipping a scheduled run: the previous one is still going');
      return;
    }
    if (attempt === 0) this.#log.info({ policy: policy.id, at: at.toISOString() }, 'scheduled policy fired');
    // Called on a later microtask, so a synchronous throw still passes through the handlers below.
    const run = Promise.resolve()
      .then(() => this.#onFire(policy, at))
      .then(() => { this.#retries.delete(policy.id); }, (e: unknown) => {
        // Runs of one policy never overlap (see above), so no other retry of it is pending.
        const delay = this.#retryDelayMs(attempt);
        this.#retries.set(policy.id, { slot: at, attempt, due: this.#now().getTime() + delay });
        this.#log.error({ policy: policy.id, err: (e as Error).message, retryInSeconds: Math.round(delay / 1000) }, 'scheduled run failed; it is tried again');
      })
      .finally(() => { this.#running.delete(policy.id); });
    this.#running.set(policy.id, run);
  }
}
