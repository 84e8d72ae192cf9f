// `harbor-swr-bridge sync [--dry-run]`: one reconcile pass over every enabled policy, executed in
// this process (no bus), then exit. Non-zero when a policy could not be listed, a repository
// could not be mapped to the target, or a task failed.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/schema.ts';
import { BridgeError, toBridgeError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { backoffMs, retryPolicy } from '../registry/retry-policy.ts';
import { Endpoints } from '../replication/endpoints.ts';
import { executeTask, type Outcome } from '../replication/execute.ts';
import { Limiter } from '../replication/limiter.ts';
import { Reconciler, type PassSummary } from '../replication/reconciler.ts';
import type { ReplicationTask } from '../replication/task.ts';

export interface SyncArgs {
  config: Config;
  dryRun: boolean;
  logger: Logger;
  /** Where plan and result lines go (default: stdout). */
  out?: (line: string) => void;
  signal?: AbortSignal;
}

const describe = (t: ReplicationTask): string => {
  const ref = t.tag ?? t.digest ?? '';
  const sep = t.tag ? ':' : '@';
  return `${t.policyId} ${t.action} ${t.sourceId}/${t.repository}${sep}${ref} -> ${t.targetId}/${t.destRepository}${sep}${ref}`;
};

export async function syncCommand(args: SyncArgs): Promise<number> {
  const out = args.out ?? ((line: string) => { process.stdout.write(`${line}\n`); });
  const log = args.logger.child({ command: 'sync' });
  const endpoints = new Endpoints(args.config, args.logger);
  try {
    const reconciler = new Reconciler({ config: args.config, endpoints, logger: args.logger });
    const pass = await reconciler.runPass({ dryRun: true, signal: args.signal });
    const problems = printPlan(pass, out, args.dryRun);
    if (args.dryRun) return pass.failed > 0 ? 1 : 0;

    const tasks = pass.policies.flatMap((p) => p.tasks);
    let failed = 0;
    const limiter = new Limiter(args.config.worker.concurrency);
    const run = (t: ReplicationTask) => limiter.run(async () => {
      const started = Date.now();
      try {
        const o = await attempts(t, args, endpoints, log);
        out(`${o.status} ${describe(t)}${o.digest ? ` ${o.digest}` : ''} bytes=${o.bytes} ms=${Date.now() - started}${o.note ? ` (${o.note})` : ''}`);
      } catch (e) {
        const err = toBridgeError(e);
        failed++;
        out(`failed ${describe(t)} ${err.code}: ${err.message}`);
      }
    });
    // Copies first, deletions after: a deletion on a plain registry removes a manifest, which
    // must not race a copy that is about to point another tag at it.
    await Promise.all(tasks.filter((t) => t.action !== 'delete').map(run));
    await Promise.all(tasks.filter((t) => t.action === 'delete').map(run));
    out(`sync: ${tasks.length - failed} of ${tasks.length} task(s) succeeded, ${failed} failed, ${problems} problem(s) in planning`);
    return failed > 0 || problems > 0 ? 1 : 0;
  } finally {
    await endpoints.close();
  }
}

/** Prints the plan; returns how many policies or repositories could not be planned. */
function printPlan(pass: PassSummary, out: (line: string) => void, dryRun: boolean): number {
  let problems = 0;
  for (const p of pass.policies) {
    if (p.error) {
      problems++;
      out(`error ${p.policyId}: ${p.error.code}: ${p.error.message}`);
      continue;
    }
    for (const s of p.skipped) {
      problems++;
      out(`skip ${p.policyId}${s.repository ? ` ${s.repository}` : ''}: ${s.reason}`);
    }
    if (dryRun) for (const t of p.tasks) out(`plan ${describe(t)} (${p.reasons.get(t.id) ?? 'difference'})`);
  }
  const unchanged = pass.policies.reduce((n, p) => n + p.unchanged, 0);
  out(`${dryRun ? 'dry run: ' : ''}${pass.tasks} task(s) planned over ${pass.policies.length} policy(ies), ${unchanged} tag(s) already in step`);
  return problems;
}

/** Bounded in-process retries for transient errors, with a stall timeout as the replicator has. */
async function attempts(task: ReplicationTask, args: SyncArgs, endpoints: Endpoints, log: Logger): Promise<Outcome> {
  const { attempts: max, stallTimeoutMs } = args.config.worker;
  const src = endpoints.source(task.sourceId);
  const dst = endpoints.target(task.targetId);
  const tlog = log.child({ task: task.id, policy: task.policyId, repository: task.repository, ref: task.tag ?? task.digest });
  for (let i = 0; ; i++) {
    const stall = new AbortController();
    const arm = () => setTimeout(() => stall.abort(new BridgeError('HSB_TASK_STALLED', `no progress for ${stallTimeoutMs} ms`, { retryable: true })), stallTimeoutMs);
    let timer = arm();
    const signal = args.signal ? AbortSignal.any([args.signal, stall.signal]) : stall.signal;
    try {
      return await executeTask(task, src, dst, {
        signal,
        logger: tlog,
        onProgress: () => { clearTimeout(timer); timer = arm(); },
      });
    } catch (e) {
      const err = stall.signal.aborted ? (stall.signal.reason as BridgeError) : toBridgeError(e);
      if (!err.retryable || i + 1 >= max || args.signal?.aborted) throw err;
      const wait = Number(err.context.retryAfterMs) || backoffMs(i, { ...retryPolicy, baseMs: 500, maxMs: 10_000 });
      tlog.warn({ code: err.code, err: err.message, attempt: i + 1, wait }, 'transient failure, retrying');
      await sleep(wait, undefined, args.signal ? { signal: args.signal } : undefined).catch(() => undefined);
    } finally {
      clearTimeout(timer);
    }
  }
}
