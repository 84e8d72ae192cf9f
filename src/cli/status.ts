// `harbor-swr-bridge status [--url http://host:port] [--json] [--recent N] [--timeout MS]`: what the
// bus says (recent outcomes on `results`, pending retries, dead letters, consumer-group lag) and,
// with --url, the in-flight tasks of a running bridge from its /api/v1/replications.
import { parseArgs } from 'node:util';
import type { Bus, BusInspection } from '../bus/port.ts';
import { busLabel, createBus } from '../bus/create.ts';
import type { Config } from '../config/schema.ts';
import { isBridgeError } from '../errors.ts';
import { isLoopbackHost } from './loopback.ts';
import type { Logger } from '../observability/logger.ts';
import { DlqStore } from '../replication/dlq-store.ts';
import { UNRESOLVED_SECRET } from '../config/secret.ts';
import type { InFlight } from '../replication/progress.ts';
import { ResultsStore, type ResultCounts } from '../replication/results-store.ts';
import { isViewGroup } from '../bus/port.ts';
import { DEFAULT_REPLICATOR_GROUP, queueDepths } from '../replication/routes.ts';
import type { TaskResult } from '../replication/task.ts';

export interface Output {
  write(s: string): unknown;
}

export interface StatusCommandArgs {
  config: Config;
  args: string[];
  logger: Logger;
  out?: Output;
  /** Usage errors (default stderr). */
  err?: Output;
  /** Injected in tests; default: the configured bus, connected and closed here. */
  bus?: Bus;
  env?: NodeJS.ProcessEnv;
  /** The replicator's consumer group, whose commits on `tasks.retry` say what is still pending. */
  replicatorGroup?: string;
}

export interface GroupLag {
  group: string;
  topic: string;
  partitions: number;
  lag: number;
}

export interface StatusReport {
  bus: Bus['kind'];
  results: { read: number; complete: boolean; counts: ResultCounts; recentFailures: TaskResult[] };
  queues: { retryPending: number; dlq: number; dlqRecords: number };
  groups: GroupLag[];
  bridge?: { url: string; inflight?: InFlight[]; error?: string };
}

export const STATUS_USAGE = 'usage: harbor-swr-bridge status [--url http://host:port] [--json] [--recent N] [--timeout MS]\n';

/** Lag per group and topic, leaving out read-only views (their own groups). Pure. */
export function groupLags(ins: BusInspection): GroupLag[] {
  const out = new Map<string, GroupLag>();
  for (const g of ins.groups) {
    if (isViewGroup(g.group)) continue;
    for (const o of g.offsets) {
      const k = `${g.group}\0${o.topic}`;
      const e = out.get(k) ?? { group: g.group, topic: o.topic, partitions: 0, lag: 0 };
      e.partitions++;
      e.lag += o.lag;
      out.set(k, e);
    }
  }
  return [...out.values()].sort((a, b) => a.group.localeCompare(b.group) || a.topic.localeCompare(b.topic));
}

export async function statusCommand(a: StatusCommandArgs): Promise<number> {
  const out = a.out ?? process.stdout;
  const env = a.env ?? process.env;
  let opts;
  try {
    opts = parseArgs({
      args: a.args,
      allowPositionals: false,
      strict: true,
      options: {
        url: { type: 'string' },
        json: { type: 'boolean', default: false },
        recent: { type: 'string', default: '10000' },
        timeout: { type: 'string', default: '15000' },
        config: { type: 'string', short: 'c' },
      },
    }).values;
  } catch (e) {
    (a.err ?? process.stderr).write(`${(e as Error).message}\n${STATUS_USAGE}`);
    return 2;
  }
  const recent = Number(opts.recent);
  const timeoutMs = Number(opts.timeout);
  if (!Number.isInteger(recent) || recent < 1 || !Number.isInteger(timeoutMs) || timeoutMs < 1) {
    (a.err ?? process.stderr).write(`--recent and --timeout take positive integers\n${STATUS_USAGE}`);
    return 2;
  }

  const bus = a.bus ?? createBus(a.config, a.logger, { existing: true });
  let report: StatusReport;
  try {
    if (!a.bus) await bus.connect();
    report = await readStatus(bus, a.logger, recent, timeoutMs, a.replicatorGroup ?? DEFAULT_REPLICATOR_GROUP);
  } catch (e) {
    out.write(`reading the bus failed: ${isBridgeError(e) ? e.message : (e as Error).message}\n`);
    return 1;
  } finally {
    if (!a.bus) await bus.close().catch(() => undefined);
  }

  if (opts.url) {
    const configured = a.config.server.apiTokens.find((t) => t !== UNRESOLVED_SECRET);
    const token = env.BRIDGE_API_TOKEN || configured;
    // The bridge serves plain HTTP itself, so this is how its API is reached without a TLS proxy in
    // front; but the token then crosses the network in clear, which the operator should know.
    const target = URL.parse(opts.url);
    if (token && target?.protocol === 'http:' && !isLoopbackHost(target.host)) {
      (a.err ?? process.stderr).write(`warning: the API token goes to ${target.host} over plain http; put a TLS proxy in front of the bridge and use https:// beyond a trusted network\n`);
    }
    report.bridge = await fetchInflight(opts.url, token);
  }
  out.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : render(report, busLabel(a.config)));
  return report.bridge?.error ? 1 : 0;
}

async function readStatus(bus: Bus, logger: Logger, capacity: number, timeoutMs: number, replicatorGroup: string): Promise<StatusReport> {
  const ins = await bus.inspect();
  const results = new ResultsStore({ bus, logger, capacity });
  let complete: boolean;
  await results.start();
  try {
    complete = await results.caughtUp(ins.topics.find((t) => t.topic === 'results')?.partitions ?? [], timeoutMs);
  } finally {
    await results.stop();
  }
  const dlq = await new DlqStore({ bus, logger }).list({ limit: 0 });
  const depths = queueDepths(ins, replicatorGroup);
  const failures = [
    ...results.query({ status: 'dlq', pageSize: 5 }).items,
    ...results.query({ status: 'retry', pageSize: 5 }).items,
  ].sort((x, y) => Date.parse(y.finishedAt) - Date.parse(x.finishedAt)).slice(0, 5);
  return {
    bus: bus.kind,
    results: { read: results.size, complete, counts: results.counts(), recentFailures: failures },
    queues: { retryPending: depths.retryPending, dlq: dlq.total, dlqRecords: depths.dlqRecords },
    groups: groupLags(ins),
  };
}

/**
 * `path` (relative) under the bridge's base URL, path prefix kept: a bridge behind a proxy at
 * https://h/bridge (with or without the trailing slash) is asked at https://h/bridge/<path>.
 */
export function bridgeUrl(base: string, path: string): URL {
  const u = new URL(base);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return new URL(path, u);
}

async function fetchInflight(base: string, token: string | undefined): Promise<NonNullable<StatusReport['bridge']>> {
  let url: URL;
  try {
    url = bridgeUrl(base, 'api/v1/replications?page_size=1');
  } catch {
    return { url: base, error: 'not a valid URL' };
  }
  try {
    const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(10000) });
    if (!res.ok) {
      const hint = res.status === 401 || res.status === 403 ? ' (set BRIDGE_API_TOKEN or server.apiTokens)'
        // A `work` process's METRICS_PORT answers only /livez, /readyz and /metrics.
        : res.status === 404 ? ' (--url takes the address of a `run` or `serve` process, where the API is)' : '';
      return { url: base, error: `HTTP ${res.status}${hint}` };
    }
    const body = (await res.json()) as { inflight?: InFlight[] };
    return { url: base, inflight: body.inflight ?? [] };
  } catch (e) {
    return { url: base, error: fetchFailure(e) };
  }
}

/** undici says only "fetch failed"; the reason (ECONNREFUSED, a TLS error) is in its cause. */
function fetchFailure(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError') return 'no answer within 10 s';
  const cause = err.cause?.message ?? err.cause?.code;
  return cause ? `${err.message}: ${cause}` : err.message;
}

function render(r: StatusReport, bus: string): string {
  const lines: string[] = [];
  const c = r.results.counts;
  lines.push(`bus: ${bus}`);
  lines.push(`recent results (${r.results.read} read from results${r.results.complete ? '' : ', stopped before the end'}): `
    + `done ${c.done}, skipped ${c.skipped}, deleted ${c.deleted}, retry ${c.retry}, dlq ${c.dlq}`);
  lines.push(`queues: ${plural(r.queues.retryPending, 'pending retry', 'pending retries')}, ${plural(r.queues.dlq, 'dead letter')}`);
  if (r.results.recentFailures.length) {
    // Outcomes as recorded: a failure stays listed after its dead letter was replayed (the replay's outcome is a result of its own).
    lines.push('', 'recent failures (newest first; replayed ones stay listed):');
    lines.push(formatTable(['FINISHED', 'STATUS', 'TARGET', 'REPOSITORY', 'REFERENCE', 'RETRIES', 'ERROR'],
      r.results.recentFailures.map((f) => [f.finishedAt, f.status, f.targetId, f.destRepository, f.reference, String(f.attempt), clip(f.error ? `${f.error.code}: ${f.error.message}` : '', 80)])));
  }
  lines.push('', 'consumer groups:');
  lines.push(r.groups.length ? formatTable(['GROUP', 'TOPIC', 'PARTITIONS', 'LAG'], r.groups.map((g) => [g.group, g.topic, String(g.partitions), String(g.lag)])) : '  (none have committed offsets)');
  if (r.bridge) {
    lines.push('', `in flight at ${r.bridge.url}:`);
    if (r.bridge.error) lines.push(`  could not ask the bridge: ${r.bridge.error}`);
    else if (!r.bridge.inflight?.length) lines.push('  (none)');
    else {
      lines.push(formatTable(['TASK', 'TARGET', 'REPOSITORY', 'REFERENCE', 'ATTEMPT', 'PROGRESS', 'STARTED'],
        r.bridge.inflight.map((t) => [t.taskId.slice(0, 12), t.targetId, t.destRepository, t.reference, String(t.attempt), progress(t), t.startedAt])));
    }
  }
  return `${lines.join('\n')}\n`;
}

function progress(t: InFlight): string {
  if (!t.bytesTotal) return t.bytesDone ? bytes(t.bytesDone) : '-';
  return `${bytes(t.bytesDone)} / ${bytes(t.bytesTotal)} (${Math.floor((100 * t.bytesDone) / t.bytesTotal)}%)`;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

/** `1 dead letter`, `2 dead letters`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function clip(s: string, max: number): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** A plain-text table, two-space indented, columns padded to the widest cell. */
export function formatTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `  ${cells.map((x, i) => (i === cells.length - 1 ? x : x.padEnd(widths[i]!))).join('  ')}`.trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
