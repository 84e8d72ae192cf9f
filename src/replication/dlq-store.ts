// The dead-letter queue as operators see it: the `dlq` topic read compacted (letters are keyed by
// their id; a replay writes a tombstone), listed with filters, and replayed onto `tasks`.
import type { Bus, OutgoingRecord } from '../bus/port.ts';
import { BridgeError, toBridgeError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { DeadLetterSchema, type DeadLetter } from './dead-letter.ts';
import { ReplicationTaskSchema, taskKey, type ReplicationTask } from './task.ts';

export interface DlqFilter {
  target?: string;
  policy?: string;
  /** Error code, e.g. HSB_REGISTRY_DENIED. */
  code?: string;
}

export interface DlqListQuery extends DlqFilter {
  limit?: number;
  offset?: number;
}

export interface DlqReplayRequest {
  ids?: string[];
  all?: boolean;
  /** Narrows the selection (with `all` or `ids`). */
  filter?: DlqFilter;
}

export interface DlqReplayResult {
  replayed: string[];
  /** Requested ids that were not replayed; `reasons` says why for each. */
  missing: string[];
  reasons: Record<string, string>;
}

export interface DlqStoreDeps {
  bus: Bus;
  logger: Logger;
}

interface Stored {
  letter: DeadLetter;
  /** Every record key holding this letter: its id, or the task key under the earlier contract. */
  keys: string[];
}

export const NOT_FOUND_REASON = 'no dead letter with this id';
export const UNPARSEABLE_REASON = 'the original record could not be parsed as a task; fix it and publish it to `tasks` by hand';

/** Whether a letter passes a filter; letters without a task match only code filters. */
export function matchesDlqFilter(l: DeadLetter, f: DlqFilter): boolean {
  if (f.code !== undefined && l.error.code !== f.code) return false;
  if (f.target !== undefined && l.task?.targetId !== f.target) return false;
  if (f.policy !== undefined && l.task?.policyId !== f.policy) return false;
  return true;
}

/**
 * The letter's task; for a task record the version that wrote the letter could not read (a newer
 * task schema, during an upgrade), the record itself when this version reads it.
 */
function taskOf(l: DeadLetter): ReplicationTask | undefined {
  if (l.task) return l.task;
  if (l.source.topic !== 'tasks' && l.source.topic !== 'tasks.retry') return undefined;
  const parsed = ReplicationTaskSchema.safeParse(l.raw);
  return parsed.success ? parsed.data : undefined;
}

/** The task a replay publishes: as it failed, but a fresh start with no due time or last error. */
export function replayTask(task: ReplicationTask): ReplicationTask {
  const { notBefore: _n, lastError: _e, ...rest } = task;
  return ReplicationTaskSchema.parse({ ...rest, attempt: 0, origin: 'replay', replays: (task.replays ?? 0) + 1 });
}

export class DlqStore {
  readonly #bus: Bus;
  readonly #log: Logger;

  constructor(deps: DlqStoreDeps) {
    this.#bus = deps.bus;
    this.#log = deps.logger.child({ component: 'dlq' });
  }

  /** Current dead letters, newest first. */
  async list(q: DlqListQuery = {}): Promise<{ items: DeadLetter[]; total: number }> {
    const all = [...(await this.#read()).values()].map((s) => s.letter).filter((l) => matchesDlqFilter(l, q));
    const offset = Math.max(0, q.offset ?? 0);
    const limit = Math.max(0, q.limit ?? 100);
    return { items: all.slice(offset, offset + limit), total: all.length };
  }

  /**
   * Republishes each selected letter's task to `tasks` (attempt 0, origin replay), then tombstones
   * the letter. In that order: a crash in between replays it twice (harmless, tasks are
   * level-triggered) but never loses it.
   */
  async replay(req: DlqReplayRequest): Promise<DlqReplayResult> {
    if (!req.all && !req.ids?.length) {
      throw new BridgeError('HSB_DLQ_SELECTION', 'say which dead letters to replay: ids, or all');
    }
    const current = await this.#read();
    const filter = req.filter ?? {};
    // A Map: ids are the caller's, and `__proto__` must be an id like any other.
    const reasons = new Map<string, string>();
    const chosen: Stored[] = [];
    const wanted = req.all ? [...current.keys()] : [...new Set(req.ids)];
    for (const id of wanted) {
      // A task id finds its newest letter too (a replayed task's letter is `<task id>.replay-N`).
      const s = current.get(id) ?? [...current.values()].find((x) => x.letter.task?.id === id);
      if (!s || !matchesDlqFilter(s.letter, filter)) {
        if (!req.all) reasons.set(id, s ? 'does not match the filter' : NOT_FOUND_REASON);
        continue;
      }
      if (!s.letter.task) {
        reasons.set(id, UNPARSEABLE_REASON);
        continue;
      }
      if (!chosen.includes(s)) chosen.push(s); // named twice (by its id and its task's id): replayed once
    }
    if (chosen.length) {
      const tasks: OutgoingRecord[] = chosen.map((s) => {
        const task = replayTask(s.letter.task!);
        return { key: taskKey(task), value: task, headers: { 'hsb-replay-of': s.letter.id } };
      });
      await this.#bus.publish('tasks', tasks); // each checked by replayTask
      await this.#bus.publish('dlq', chosen.flatMap((s) => s.keys.map((key) => ({ key, value: null }))));
      this.#log.info({ replayed: chosen.length, ids: chosen.slice(0, 50).map((s) => s.letter.id) }, 'dead letters replayed');
    }
    return { replayed: chosen.map((s) => s.letter.id), missing: [...reasons.keys()], reasons: Object.fromEntries(reasons) };
  }

  /** id → letter, newest first, from the compacted topic; invalid records are logged and skipped. */
  async #read(): Promise<Map<string, Stored>> {
    let raw: Map<string, unknown>;
    try {
      raw = await this.#bus.readCompacted('dlq');
    } catch (e) {
      throw toBridgeError(e, 'HSB_BUS_UNAVAILABLE'); // unknown errors (e.g. not connected yet) count as transient
    }
    const byId = new Map<string, Stored>();
    for (const [key, value] of raw) {
      const parsed = DeadLetterSchema.safeParse(value);
      if (!parsed.success) {
        this.#log.warn({ key, issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`) }, 'skipping an invalid record on the dlq topic');
        continue;
      }
      // A task record its writer could not read, which this version reads, is a task letter like any other.
      const letter = parsed.data.task ? parsed.data : { ...parsed.data, task: taskOf(parsed.data) ?? null };
      const seen = byId.get(letter.id);
      if (!seen) byId.set(letter.id, { letter, keys: [key] });
      else {
        seen.keys.push(key);
        if (Date.parse(letter.failedAt) > Date.parse(seen.letter.failedAt)) seen.letter = letter;
      }
    }
    const sorted = [...byId.values()].sort((a, b) => Date.parse(b.letter.failedAt) - Date.parse(a.letter.failedAt) || (a.letter.id < b.letter.id ? -1 : a.letter.id > b.letter.id ? 1 : 0));
    return new Map(sorted.map((s) => [s.letter.id, s]));
  }
}
