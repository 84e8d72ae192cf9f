// Recent outcomes for `GET /replications` and `status`: this process reads `results` from the
// beginning with a group of its own (so every process sees every partition) and keeps only the
// last `capacity` records, in a ring.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Bus, BusMessage, ConsumerHandle } from '../bus/port.ts';
import type { Logger } from '../observability/logger.ts';
import { TaskResultSchema, type TaskResult } from './task.ts';

export const RESULT_STATUSES = TaskResultSchema.shape.status.options;
export type ResultStatus = TaskResult['status'];
export type ResultCounts = Record<ResultStatus, number>;

/** Groups of read-only views of `results` start with this; `status` leaves them out of the lag table. */
/** One of VIEW_GROUP_PREFIXES (src/bus/port.ts): a view's group never holds records back. */
export const VIEW_GROUP_PREFIX = 'status-';

export function viewGroup(): string {
  return `${VIEW_GROUP_PREFIX}${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

export interface ResultsFilter {
  /** Source or destination repository, exact. */
  repository?: string;
  policy?: string;
  status?: ResultStatus;
  target?: string;
}

export interface ResultsQuery extends ResultsFilter {
  /** 1-based. */
  page?: number;
  pageSize?: number;
}

export interface ResultsPage {
  items: TaskResult[];
  total: number;
  page: number;
  pageSize: number;
}

export interface ResultsStoreDeps {
  bus: Bus;
  logger: Logger;
  capacity?: number;
  /** Default: a fresh per-process group (see viewGroup). */
  group?: string;
}

interface Entry {
  result: TaskResult;
  finishedMs: number;
  /** Arrival order: breaks ties between equal finish times. */
  seq: number;
}

export function matchesResult(r: TaskResult, f: ResultsFilter): boolean {
  if (f.status !== undefined && r.status !== f.status) return false;
  if (f.policy !== undefined && r.policyId !== f.policy) return false;
  if (f.target !== undefined && r.targetId !== f.target) return false;
  if (f.repository !== undefined && r.repository !== f.repository && r.destRepository !== f.repository) return false;
  return true;
}

export function emptyCounts(): ResultCounts {
  return Object.fromEntries(RESULT_STATUSES.map((s) => [s, 0])) as ResultCounts;
}

export class ResultsStore {
  readonly #bus: Bus;
  readonly #log: Logger;
  readonly #capacity: number;
  readonly group: string;
  readonly #ring: (Entry | undefined)[];
  #next = 0;
  #size = 0;
  #seq = 0;
  #invalid = 0;
  readonly #counts = emptyCounts();
  /** Next offset to read per partition, for caughtUp(). */
  readonly #position = new Map<number, bigint>();
  #waiters: (() => void)[] = [];
  #handle: ConsumerHandle | undefined;

  constructor(deps: ResultsStoreDeps) {
    this.#bus = deps.bus;
    this.#log = deps.logger.child({ component: 'results-store' });
    this.#capacity = Math.max(1, Math.floor(deps.capacity ?? 10000));
    this.#ring = new Array<Entry | undefined>(this.#capacity);
    this.group = deps.group ?? viewGroup();
  }

  async start(): Promise<void> {
    if (this.#handle) return;
    this.#handle = await this.#bus.subscribe({ group: this.group, topics: ['results'], fromBeginning: true }, async (batch) => { this.add(batch); });
  }

  async stop(): Promise<void> {
    const h = this.#handle;
    this.#handle = undefined;
    await h?.stop();
  }

  /** Takes records from `results`; invalid ones are counted and skipped. */
  add(batch: BusMessage[]): void {
    for (const m of batch) {
      const next = BigInt(m.offset) + 1n;
      if ((this.#position.get(m.partition) ?? -1n) < next) this.#position.set(m.partition, next);
      if (m.value === null) continue;
      const parsed = TaskResultSchema.safeParse(m.value);
      if (!parsed.success) {
        if (this.#invalid++ % 1000 === 0) this.#log.warn({ partition: m.partition, offset: m.offset, invalid: this.#invalid }, 'skipping invalid records on the results topic');
        continue;
      }
      this.#push(parsed.data);
    }
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  get size(): number {
    return this.#size;
  }

  /** Newest first (by finish time), filtered and paged; `total` counts every match in the ring. */
  query(q: ResultsQuery = {}): ResultsPage {
    const page = Math.max(1, Math.floor(q.page ?? 1));
    const pageSize = Math.max(1, Math.floor(q.pageSize ?? 50));
    const matches: Entry[] = [];
    for (const e of this.#ring) if (e && matchesResult(e.result, q)) matches.push(e);
    matches.sort((a, b) => b.finishedMs - a.finishedMs || b.seq - a.seq);
    const from = (page - 1) * pageSize;
    return { items: matches.slice(from, from + pageSize).map((e) => e.result), total: matches.length, page, pageSize };
  }

  /** Outcomes in the ring by status. */
  counts(): ResultCounts {
    return { ...this.#counts };
  }

  /**
   * Resolves true once every partition has been read up to its `high` (next offset) as it was
   * when asked, false after `timeoutMs`. Partitions with high <= low hold nothing to wait for.
   */
  async caughtUp(ends: { partition: number; high: string; low: string }[], timeoutMs: number): Promise<boolean> {
    const reached = () => ends.every((p) => BigInt(p.high) <= BigInt(p.low) || (this.#position.get(p.partition) ?? -1n) >= BigInt(p.high));
    const deadline = Date.now() + timeoutMs;
    while (!reached()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.#waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return true;
  }

  #push(result: TaskResult): void {
    const old = this.#ring[this.#next];
    if (old) this.#counts[old.result.status]--;
    else this.#size++;
    const finishedMs = Date.parse(result.finishedAt);
    this.#ring[this.#next] = { result, finishedMs: Number.isNaN(finishedMs) ? 0 : finishedMs, seq: this.#seq++ };
    this.#counts[result.status]++;
    this.#next = (this.#next + 1) % this.#capacity;
  }
}
