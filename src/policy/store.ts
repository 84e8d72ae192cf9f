// The `policies` topic as every process sees it. The compacted topic (key = policy id, value
// `{ schema: 1, policy, origin }`, tombstone on delete) is the one source of truth: the config
// file, the REST API and the Harbor importer all publish to it, and each process builds its
// PolicyTable from it and follows it live.
//
// start() fills the table from readCompacted(), then replays the topic through a consumer group
// of its own (unique per process, so every process sees every record). Replayed records are held
// aside until the replay has reached the end offsets seen after the snapshot, and only then
// applied, so the table never steps back to an older version of a policy while catching up.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import type { Bus, BusMessage, ConsumerHandle, OutgoingRecord } from '../bus/port.ts';
import type { Logger } from '../observability/logger.ts';
import { PolicySchema, type Policy, type PolicyInput } from './model.ts';
import type { PolicyTable } from './table.ts';

/** Where a record came from; seed() only ever removes what the config file put there. */
export type PolicyOrigin = 'config' | 'api' | 'import';

export const PolicyRecordSchema = z.object({
  schema: z.literal(1),
  policy: PolicySchema,
  origin: z.enum(['config', 'api', 'import']).optional(),
});
export type PolicyRecord = z.infer<typeof PolicyRecordSchema>;

export interface PolicyStoreOptions {
  bus: Bus;
  table: PolicyTable;
  logger: Logger;
  /** Consumer group for following the topic; default unique per store instance. */
  group?: string;
  /** Give up waiting for end offsets the replay cannot reach (compacted-away tails) after this much silence. */
  catchUpIdleMs?: number;
  /** How long put()/delete() wait to see their own record applied locally. */
  applyTimeoutMs?: number;
}

export interface PublishSummary {
  created: string[];
  updated: string[];
  unchanged: string[];
  removed: string[];
}

type Decoded = { ok: true; record: PolicyRecord | null } | { ok: false };

interface Waiter {
  canonical: string;
  resolve: () => void;
}

export class PolicyStore {
  readonly #bus: Bus;
  readonly #table: PolicyTable;
  readonly #log: Logger;
  readonly #group: string;
  readonly #idleMs: number;
  readonly #applyTimeoutMs: number;
  /** Canonical JSON of what the table holds per id: skips no-op updates (the table's version stays put). */
  readonly #applied = new Map<string, string>();
  readonly #waiters = new Map<string, Set<Waiter>>();
  #handle: ConsumerHandle | undefined;
  #live = false;
  #staging = new Map<string, Policy | null>();
  #pending = new Map<number, bigint>();
  #lastActivity = 0;
  #caughtUp: (() => void) | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #started: Promise<void> | undefined;
  #loaded = false;

  constructor(o: PolicyStoreOptions) {
    this.#bus = o.bus;
    this.#table = o.table;
    this.#log = o.logger.child({ component: 'policy-store' });
    // A view group (VIEW_GROUP_PREFIXES): it never holds records back from pruning.
    this.#group = o.group ?? `policy-follower.${hostname()}.${process.pid}.${randomUUID().slice(0, 8)}`;
    this.#idleMs = o.catchUpIdleMs ?? 3000;
    this.#applyTimeoutMs = o.applyTimeoutMs ?? 5000;
  }

  /**
   * Publishes the config file's policies where the topic lacks them or holds something else, and
   * tombstones policies an earlier config put there that the config no longer has (`prune`).
   * Policies created through the API or the importer are never touched.
   */
  async seed(configPolicies: readonly Policy[], opts: { prune?: boolean } = {}): Promise<PublishSummary> {
    const current = await this.#snapshot();
    const summary = await this.#publishAll(configPolicies, 'config', current);
    if (opts.prune ?? true) {
      const keep = new Set(configPolicies.map((p) => p.id));
      const gone = [...current].filter(([id, r]) => r.origin === 'config' && !keep.has(id)).map(([id]) => id);
      if (gone.length) {
        await this.#bus.publish('policies', gone.map((id) => ({ key: id, value: null })));
        this.#log.info({ policies: gone }, 'removed policies that the config file no longer lists');
        summary.removed.push(...gone);
      }
    }
    for (const id of summary.updated) {
      if (current.get(id)?.origin !== 'config') this.#log.warn({ policy: id }, 'the config file replaces a version of this policy set through the API or an import');
    }
    if (summary.created.length || summary.updated.length) this.#log.info({ created: summary.created, updated: summary.updated }, 'published config-file policies');
    return summary;
  }

  /** Publishes several policies at once (all or nothing), skipping those the topic already holds as given. */
  async publishAll(policies: readonly PolicyInput[], origin: PolicyOrigin): Promise<PublishSummary> {
    return this.#publishAll(policies.map((p) => PolicySchema.parse(p)), origin, await this.#snapshot());
  }

  /** The topic's current records (compacted view), without following it. */
  readTopic(): Promise<Map<string, PolicyRecord>> {
    return this.#snapshot();
  }

  /** True once start() has built the table (it then stays true while the store follows the topic). */
  isLoaded(): boolean {
    return this.#loaded;
  }

  /** Builds the table from the topic, then follows it. Resolves once the table has caught up. */
  start(): Promise<void> {
    // A failed start (bus down) may be retried by calling start() again.
    this.#started ??= this.#start().then(() => { this.#loaded = true; }, async (e: unknown) => {
      this.#started = undefined;
      clearInterval(this.#idleTimer);
      await this.#handle?.stop().catch(() => undefined);
      this.#handle = undefined;
      throw e;
    });
    return this.#started;
  }

  async #start(): Promise<void> {
    this.#live = false;
    this.#staging = new Map();
    for (const p of this.#table.list()) this.#applied.set(p.id, canonical(p));
    const snapshot = await this.#snapshot();
    for (const id of this.#table.list().map((p) => p.id)) if (!snapshot.has(id)) this.#apply(id, null);
    for (const [id, r] of snapshot) this.#apply(id, r.policy);
    this.#log.info({ policies: snapshot.size }, 'policy table built from the policies topic');

    this.#pending = await this.#endOffsets();
    const caughtUp = new Promise<void>((resolve) => { this.#caughtUp = resolve; });
    if (this.#pending.size === 0) this.#goLive('empty');
    this.#handle = await this.#bus.subscribe({ group: this.#group, topics: ['policies'], fromBeginning: true }, (batch) => this.#onBatch(batch));
    this.#lastActivity = Date.now();
    if (!this.#live) {
      this.#idleTimer = setInterval(() => {
        if (!this.#live && Date.now() - this.#lastActivity >= this.#idleMs) {
          this.#log.warn({ partitions: [...this.#pending.keys()] }, 'policies replay went quiet before reaching the end offsets (compacted tail); following from here');
          this.#goLive('idle');
        }
      }, Math.min(500, this.#idleMs));
      this.#idleTimer.unref();
    }
    await caughtUp;
  }

  /** Publishes a policy; resolves once it is durable and (when following) applied to the local table. */
  async put(input: PolicyInput, origin: PolicyOrigin = 'api'): Promise<Policy> {
    const policy = PolicySchema.parse(input);
    const seen = this.#expect(policy.id, canonical(policy));
    await this.#bus.publish('policies', [recordFor(policy, origin)]).catch((e) => { seen.cancel(); throw e; });
    await seen.wait;
    return policy;
  }

  /** Publishes a tombstone; resolves once durable and (when following) removed from the local table. */
  async delete(id: string): Promise<void> {
    const seen = this.#expect(id, 'null');
    await this.#bus.publish('policies', [{ key: id, value: null }]).catch((e) => { seen.cancel(); throw e; });
    await seen.wait;
  }

  async stop(): Promise<void> {
    clearInterval(this.#idleTimer);
    this.#idleTimer = undefined;
    const h = this.#handle;
    this.#handle = undefined;
    await h?.stop();
    for (const set of this.#waiters.values()) for (const w of set) w.resolve();
    this.#waiters.clear();
    this.#caughtUp?.();
  }

  async #onBatch(batch: BusMessage[]): Promise<void> {
    this.#lastActivity = Date.now();
    for (const m of batch) {
      const d = this.#decode(m.key, m.value, `${m.partition}@${m.offset}`);
      if (d.ok) {
        const policy = d.record?.policy ?? null;
        if (this.#live) this.#apply(m.key, policy);
        else this.#staging.set(m.key, policy);
      }
      if (!this.#live) {
        const end = this.#pending.get(m.partition);
        if (end !== undefined && BigInt(m.offset) + 1n >= end) this.#pending.delete(m.partition);
      }
    }
    if (!this.#live && this.#pending.size === 0) this.#goLive('caught-up');
  }

  #goLive(why: string): void {
    if (this.#live) return;
    // The replay reached offsets taken after the snapshot: what it holds is at least as new.
    for (const [id, p] of this.#staging) this.#apply(id, p);
    this.#staging = new Map();
    this.#live = true;
    clearInterval(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#log.debug({ why, policies: this.#table.list().length }, 'following the policies topic live');
    this.#caughtUp?.();
  }

  #apply(id: string, policy: Policy | null): void {
    const c = policy ? canonical(policy) : 'null';
    if ((this.#applied.get(id) ?? 'null') !== c) {
      this.#table.set(id, policy);
      if (policy) this.#applied.set(id, c);
      else this.#applied.delete(id);
    } else if (policy === null) {
      // A tombstone for a policy this process never held (read at start-up): its queued tasks are stale too.
      this.#table.markRemoved(id);
    }
    const set = this.#waiters.get(id);
    if (!set) return;
    for (const w of set) {
      if (w.canonical === c) {
        w.resolve();
        set.delete(w);
      }
    }
    if (set.size === 0) this.#waiters.delete(id);
  }

  /** A promise for "this value of `id` reached the local table"; settles at once when not following. */
  #expect(id: string, c: string): { wait: Promise<void>; cancel: () => void } {
    if (!this.#handle) return { wait: Promise.resolve(), cancel: () => undefined };
    let waiter!: Waiter;
    let timer: NodeJS.Timeout | undefined;
    const wait = new Promise<void>((resolve) => {
      waiter = { canonical: c, resolve: () => { clearTimeout(timer); resolve(); } };
    });
    const cancel = () => {
      waiter.resolve();
      this.#waiters.get(id)?.delete(waiter);
    };
    timer = setTimeout(() => {
      this.#log.warn({ policy: id }, 'a published policy change was not seen on the policies topic in time');
      cancel();
    }, this.#applyTimeoutMs);
    let set = this.#waiters.get(id);
    if (!set) this.#waiters.set(id, (set = new Set()));
    set.add(waiter);
    return { wait, cancel };
  }

  async #publishAll(policies: readonly Policy[], origin: PolicyOrigin, current: Map<string, PolicyRecord>): Promise<PublishSummary> {
    const summary: PublishSummary = { created: [], updated: [], unchanged: [], removed: [] };
    const records: OutgoingRecord[] = [];
    for (const p of policies) {
      const have = current.get(p.id);
      // A different origin is a change too: the config file takes over a policy it now lists.
      if (have && have.origin === origin && canonical(have.policy) === canonical(p)) {
        summary.unchanged.push(p.id);
        continue;
      }
      (have ? summary.updated : summary.created).push(p.id);
      records.push(recordFor(p, origin));
    }
    if (records.length) await this.#bus.publish('policies', records);
    return summary;
  }

  async #snapshot(): Promise<Map<string, PolicyRecord>> {
    const out = new Map<string, PolicyRecord>();
    for (const [key, value] of await this.#bus.readCompacted('policies')) {
      const d = this.#decode(key, value, 'snapshot');
      if (d.ok && d.record) out.set(key, d.record);
    }
    return out;
  }

  /** High-water marks of the policies topic's non-empty partitions. */
  async #endOffsets(): Promise<Map<number, bigint>> {
    const info = await this.#bus.inspect();
    const parts = info.topics.find((t) => t.topic === 'policies')?.partitions ?? [];
    return new Map(parts.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => [p.partition, BigInt(p.high)]));
  }

  #decode(key: string, value: unknown, where: string): Decoded {
    if (value === null) return { ok: true, record: null };
    const r = PolicyRecordSchema.safeParse(value);
    if (!r.success) {
      this.#log.error({ policy: key, at: where, issues: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) }, 'ignoring a policies record that does not match the policy schema');
      return { ok: false };
    }
    if (r.data.policy.id !== key) {
      this.#log.error({ policy: key, at: where, recordId: r.data.policy.id }, 'ignoring a policies record whose key is not its policy id');
      return { ok: false };
    }
    return { ok: true, record: r.data };
  }
}

function recordFor(policy: Policy, origin: PolicyOrigin): OutgoingRecord {
  const value: PolicyRecord = { schema: 1, policy, origin };
  return { key: policy.id, value };
}

/** JSON with sorted keys and no undefined members: equal policies compare equal as strings. */
export function canonical(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => [k, sortKeys(x)]));
  }
  return v;
}

/**
 * The policies a process started with `configPolicies` would hold once seed() ran: the config
 * file's own (they replace the topic's version), plus those the API or an import published, minus
 * those an earlier config put there and this one no longer lists (seed() prunes them).
 */
export function effectivePolicies(configPolicies: readonly Policy[], topic: ReadonlyMap<string, PolicyRecord>): Policy[] {
  const fromConfig = new Set(configPolicies.map((p) => p.id));
  const others = [...topic].filter(([id, r]) => !fromConfig.has(id) && r.origin !== 'config').map(([, r]) => r.policy);
  return [...configPolicies, ...others];
}

