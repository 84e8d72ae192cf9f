// The embedded bus's SQLite file: schema and every statement. Thin and synchronous (node:sqlite is
// DatabaseSync); each method is one short transaction, so several processes can share the file.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { BridgeError } from '../../errors.ts';
import { isViewGroup, type TopicName } from '../port.ts';
import type { GroupMemberView, TopicPartition } from './assignment.ts';

export interface StoredRecord {
  partition: number;
  offset: number;
  key: string;
  /** JSON text, or null for a tombstone. */
  value: string | null;
  headers: string;
  ts: number;
}

export interface AppendRecord {
  partition: number;
  key: string;
  value: string | null;
  headers: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partitions (
  topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
  PRIMARY KEY (topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
  topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
  key TEXT NOT NULL, value TEXT, headers TEXT NOT NULL, ts INTEGER NOT NULL,
  PRIMARY KEY (topic, partition, offset)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_key ON records (topic, key, offset);
CREATE TABLE IF NOT EXISTS group_offsets (
  grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, PRIMARY KEY (grp, topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
  grp TEXT NOT NULL, member_id TEXT NOT NULL, topics TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (grp, member_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
  grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, member_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL, PRIMARY KEY (grp, topic, partition)) WITHOUT ROWID;
`;

/** The database file in the data dir. */
export const BUS_FILE = 'bus.sqlite';

export class BusStore {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #s: Record<string, StatementSync>;

  constructor(dataDir: string, opts: { busyTimeoutMs?: number } = {}) {
    // Dead letters and results hold error messages: a new data directory is the owner's only.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.path = join(dataDir, BUS_FILE);
    try {
      this.#db = new DatabaseSync(this.path);
      // WAL lets readers run beside the writer; FULL makes a resolved COMMIT survive power loss.
      this.#db.exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=${opts.busyTimeoutMs ?? 5000};`);
      this.#db.exec(SCHEMA);
    } catch (e) {
      throw storeError(e, 'open');
    }
    const p = (sql: string): StatementSync => this.#db.prepare(sql);
    this.#s = {
      metaGet: p('SELECT v FROM meta WHERE k = ?'),
      metaSet: p('INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)'),
      partInit: p('INSERT OR IGNORE INTO partitions (topic, partition, next_offset) VALUES (?, ?, 0)'),
      partNext: p('SELECT next_offset AS n FROM partitions WHERE topic = ? AND partition = ?'),
      partSet: p('UPDATE partitions SET next_offset = ? WHERE topic = ? AND partition = ?'),
      partAll: p('SELECT topic, partition, next_offset AS n FROM partitions ORDER BY topic, partition'),
      insert: p('INSERT INTO records (topic, partition, offset, key, value, headers, ts) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      fetch: p('SELECT partition, offset, key, value, headers, ts FROM records WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?'),
      low: p('SELECT MIN(offset) AS low FROM records WHERE topic = ? AND partition = ?'),
      compacted: p('SELECT key, value, MAX(offset) AS o FROM records WHERE topic = ? GROUP BY key'),
      committed: p('SELECT next_offset AS n FROM group_offsets WHERE grp = ? AND topic = ? AND partition = ?'),
      commit: p(`INSERT INTO group_offsets (grp, topic, partition, next_offset, updated_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (grp, topic, partition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at`),
      groupOffsets: p('SELECT grp, topic, partition, next_offset AS n FROM group_offsets ORDER BY grp, topic, partition'),
      memberUpsert: p(`INSERT INTO members (grp, member_id, topics, expires_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (grp, member_id) DO UPDATE SET topics = excluded.topics, expires_at = excluded.expires_at`),
      memberDelete: p('DELETE FROM members WHERE grp = ? AND member_id = ?'),
      membersExpire: p('DELETE FROM members WHERE grp = ? AND expires_at < ?'),
      membersLive: p('SELECT member_id, topics FROM members WHERE grp = ?'),
      leaseGet: p('SELECT member_id, expires_at FROM leases WHERE grp = ? AND topic = ? AND partition = ?'),
      leasePut: p(`INSERT INTO leases (grp, topic, partition, member_id, expires_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (grp, topic, partition) DO UPDATE SET member_id = excluded.member_id, expires_at = excluded.expires_at`),
      leaseRenew: p('UPDATE leases SET expires_at = ? WHERE grp = ? AND member_id = ?'),
      leasesOf: p('SELECT topic, partition FROM leases WHERE grp = ? AND member_id = ?'),
      leaseRelease: p('DELETE FROM leases WHERE grp = ? AND topic = ? AND partition = ? AND member_id = ?'),
      leasesReleaseAll: p('DELETE FROM leases WHERE grp = ? AND member_id = ?'),
      prune: p('DELETE FROM records WHERE topic = ? AND partition = ? AND offset < ? AND ts < ?'),
      pruneCompacted: p(`DELETE FROM records WHERE topic = ? AND partition = ? AND offset < ? AND ts < ?
        AND (value IS NULL OR offset < (SELECT MAX(r2.offset) FROM records r2 WHERE r2.topic = records.topic AND r2.key = records.key))`),
      leasesOrphaned: p('DELETE FROM leases WHERE grp = ? AND expires_at < ? AND member_id NOT IN (SELECT member_id FROM members WHERE grp = ?)'),
    };
  }

  /** The partition count is fixed at creation: changing it would move keys and break their order. */
  ensureLayout(topics: readonly TopicName[], partitions: number): void {
    this.#tx(() => {
      this.#s.metaSet!.run('partitions', String(partitions));
      const stored = Number((this.#s.metaGet!.get('partitions') as { v: string }).v);
      if (stored !== partitions) {
        throw new BridgeError('HSB_BUS_CONFIG', 'the embedded bus was created with a different partition count', {
          context: { path: this.path, stored, configured: partitions },
        });
      }
      for (const t of topics) for (let p = 0; p < partitions; p++) this.#s.partInit!.run(t, p);
    });
  }

  /** Appends all records in one transaction; returns their offsets. */
  append(topic: TopicName, records: readonly AppendRecord[], now: number): number[] {
    return this.#tx(() => {
      const next = new Map<number, number>();
      const offsets = records.map((r) => {
        let o = next.get(r.partition);
        if (o === undefined) {
          const row = this.#s.partNext!.get(topic, r.partition) as { n: number } | undefined;
          if (!row) throw new BridgeError('HSB_BUS_INVALID_RECORD', 'unknown topic partition', { context: { topic, partition: r.partition } });
          o = row.n;
        }
        this.#s.insert!.run(topic, r.partition, o, r.key, r.value, r.headers, now);
        next.set(r.partition, o + 1);
        return o;
      });
      for (const [p, o] of next) this.#s.partSet!.run(o, topic, p);
      return offsets;
    });
  }

  fetch(topic: TopicName, partition: number, from: number, limit: number): StoredRecord[] {
    return this.#s.fetch!.all(topic, partition, from, limit) as unknown as StoredRecord[];
  }

  /** Next offset per (topic, partition): the high watermark. */
  highWatermarks(): { topic: TopicName; partition: number; high: number }[] {
    return (this.#s.partAll!.all() as { topic: TopicName; partition: number; n: number }[]).map((r) => ({ topic: r.topic, partition: r.partition, high: r.n }));
  }

  lowWatermark(topic: TopicName, partition: number, high: number): number {
    const row = this.#s.low!.get(topic, partition) as { low: number | null };
    return row.low ?? high;
  }

  latestPerKey(topic: TopicName): { key: string; value: string | null }[] {
    return this.#s.compacted!.all(topic) as { key: string; value: string | null }[];
  }

  committed(group: string, topic: TopicName, partition: number): number | undefined {
    return (this.#s.committed!.get(group, topic, partition) as { n: number } | undefined)?.n;
  }

  allCommitted(): { group: string; topic: TopicName; partition: number; next: number }[] {
    return (this.#s.groupOffsets!.all() as { grp: string; topic: TopicName; partition: number; n: number }[])
      .map((r) => ({ group: r.grp, topic: r.topic, partition: r.partition, next: r.n }));
  }

  /** Commits only while `memberId` holds the partition's lease (fencing); false if it lost it. */
  commitIfOwner(group: string, memberId: string, tp: TopicPartition, next: number, now: number, leaseMs: number): boolean {
    return this.#tx(() => {
      const lease = this.#s.leaseGet!.get(group, tp.topic, tp.partition) as { member_id: string } | undefined;
      if (lease?.member_id !== memberId) return false;
      this.#s.commit!.run(group, tp.topic, tp.partition, next, now);
      this.#s.leasePut!.run(group, tp.topic, tp.partition, memberId, now + leaseMs);
      return true;
    });
  }

  /**
   * One heartbeat: renew this member and its leases, drop expired members and their leases, and
   * return the live members plus the partitions this member still holds.
   */
  heartbeat(group: string, memberId: string, topics: readonly TopicName[], now: number, leaseMs: number): { members: GroupMemberView[]; held: TopicPartition[] } {
    return this.#tx(() => {
      this.#s.memberUpsert!.run(group, memberId, JSON.stringify(topics), now + leaseMs);
      this.#s.membersExpire!.run(group, now);
      this.#s.leasesOrphaned!.run(group, now, group);
      this.#s.leaseRenew!.run(now + leaseMs, group, memberId);
      const members = (this.#s.membersLive!.all(group) as { member_id: string; topics: string }[])
        .map((m) => ({ memberId: m.member_id, topics: JSON.parse(m.topics) as TopicName[] }));
      const held = this.#s.leasesOf!.all(group, memberId) as unknown as TopicPartition[];
      return { members, held };
    });
  }

  /** Takes a partition if its lease is free, expired or already ours. */
  tryAcquire(group: string, memberId: string, tp: TopicPartition, now: number, leaseMs: number): boolean {
    return this.#tx(() => {
      const lease = this.#s.leaseGet!.get(group, tp.topic, tp.partition) as { member_id: string; expires_at: number } | undefined;
      if (lease && lease.member_id !== memberId && lease.expires_at >= now) return false;
      this.#s.leasePut!.run(group, tp.topic, tp.partition, memberId, now + leaseMs);
      return true;
    });
  }

  /**
   * Where a partition's consumption starts. A group with no committed offset gets its start
   * committed at once, so the start is stable, inspect shows its lag, and pruning waits for it.
   */
  initOffset(group: string, memberId: string, tp: TopicPartition, fromBeginning: boolean, now: number): number {
    return this.#tx(() => {
      const c = this.committed(group, tp.topic, tp.partition);
      if (c !== undefined) return c;
      const start = fromBeginning ? 0 : (this.#s.partNext!.get(tp.topic, tp.partition) as { n: number }).n;
      const lease = this.#s.leaseGet!.get(group, tp.topic, tp.partition) as { member_id: string } | undefined;
      if (lease?.member_id === memberId) this.#s.commit!.run(group, tp.topic, tp.partition, start, now);
      return start;
    });
  }

  release(group: string, memberId: string, tp: TopicPartition): void {
    this.#s.leaseRelease!.run(group, tp.topic, tp.partition, memberId);
  }

  leave(group: string, memberId: string): void {
    this.#tx(() => {
      this.#s.leasesReleaseAll!.run(group, memberId);
      this.#s.memberDelete!.run(group, memberId);
    });
  }

  /** Drops the offsets of groups with no live member whose last commit is older than `cutoff`; returns their names. */
  expireGroups(cutoff: number, now: number): string[] {
    return this.#tx(() => {
      const gone = (this.#db.prepare(`SELECT grp FROM group_offsets GROUP BY grp HAVING MAX(updated_at) < ?
        AND grp NOT IN (SELECT grp FROM members WHERE expires_at >= ?)`).all(cutoff, now) as { grp: string }[]).map((r) => r.grp);
      const del = this.#db.prepare('DELETE FROM group_offsets WHERE grp = ?');
      for (const g of gone) del.run(g);
      return gone;
    });
  }

  /**
   * Deletes records older than `cutoff` that every group has committed past. For compacted topics
   * the latest record of each key is kept unless it is a tombstone. Returns the number deleted.
   */
  prune(cutoff: number, compacted: ReadonlySet<TopicName>): number {
    return this.#tx(() => {
      const commits = this.allCommitted();
      let deleted = 0;
      for (const { topic, partition, high } of this.highWatermarks()) {
        // A group that consumes the topic but never committed this partition holds it at 0; a view never holds.
        const groups = new Set(commits.filter((c) => c.topic === topic && !isViewGroup(c.group)).map((c) => c.group));
        let bound = high;
        for (const g of groups) {
          bound = Math.min(bound, commits.find((c) => c.group === g && c.topic === topic && c.partition === partition)?.next ?? 0);
        }
        if (bound === 0) continue;
        const stmt = compacted.has(topic) ? this.#s.pruneCompacted! : this.#s.prune!;
        deleted += Number(stmt.run(topic, partition, bound, cutoff).changes);
      }
      return deleted;
    });
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  #tx<T>(fn: () => T): T {
    try {
      // IMMEDIATE takes the write lock up front, so a read-then-write never deadlocks on upgrade.
      this.#db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      throw storeError(e, 'begin');
    }
    try {
      const out = fn();
      this.#db.exec('COMMIT');
      return out;
    } catch (e) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw e instanceof BridgeError ? e : storeError(e, 'transaction');
    }
  }
}

function storeError(e: unknown, op: string): BridgeError {
  const message = e instanceof Error ? e.message : String(e);
  // SQLITE_BUSY after busy_timeout: another process holds the write lock; trying later can help.
  const busy = /busy|locked/i.test(message);
  return new BridgeError(busy ? 'HSB_BUS_UNAVAILABLE' : 'HSB_BUS_STORE', `embedded bus ${op} failed: ${message}`, { retryable: busy, cause: e });
}
