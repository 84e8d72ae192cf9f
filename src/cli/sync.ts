// `harbor-swr-bridge sync [--dry-run]`: one reconcile pass over every enabled policy (the config's
// and the `policies` topic's), executed in this process (no task goes through the bus), then exit.
// Non-zero when a policy could not be listed, a repository could not be mapped to the target, or a
// task failed.
import { existsSync } from 'node:fs';
import type { Config } from '../config/schema.ts';
import type { Bus } from '../bus/port.ts';
import { createBus, embeddedBusFile } from '../bus/create.ts';
import type { Policy } from '../policy/model.ts';
import { PolicyStore, effectivePolicies } from '../policy/store.ts';
import { PolicyTable } from '../policy/table.ts';
import { toBridgeError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { executeWithRetries } from '../replication/attempts.ts';
import { Endpoints } from '../replication/endpoints.ts';
import type { Outcome } from '../replication/execute.ts';
import { Limiter } from '../replication/limiter.ts';
import { Reconciler, type PassSummary } from '../replication/reconciler.ts';
import type { ReplicationTask } from '../replication/task.ts';

export interface SyncArgs {
  config: Config;
  dryRun: boolean;
  logger: Logger;
  /** Injected in tests; default: the configured bus, read for its `policies` topic and closed. */
  bus?: Bus;
  /** Where plan and result lines go (default: stdout). */
  out?: (line: string) => void;
  signal?: AbortSignal;
}

const describe = (t: ReplicationTask): string => {
  const ref = t.tag ?? t.digest ?? '';
  const sep = t.tag ? ':' : '@';
  // A referrers task copies signatures of the artifact, not the artifact itself.
  const action = t.options.referrersOf ? 'referrers' : t.action;
  return `${t.policyId} ${action} ${t.sourceId}/${t.repository}${sep}${ref} -> ${t.targetId}/${t.destRepository}${sep}${ref}`;
};

export async function syncCommand(args: SyncArgs): Promise<number> {
  const out = args.out ?? ((line: string) => { process.stdout.write(`${line}\n`); });
  const log = args.logger.child({ command: 'sync' });
  let table: PolicyTable;
  try {
    table = new PolicyTable(await policiesOf(args));
  } catch (e) {
    out(`error: cannot read the policies topic: ${toBridgeError(e).message}`);
    return 1;
  }
  const endpoints = new Endpoints(args.config, args.logger);
  try {
    const reconciler = new Reconciler({ config: args.config, endpoints, logger: args.logger });
    // Skips and failed listings are printed with the plan, not logged as well.
    const pass = await reconciler.runPass({ dryRun: true, table, signal: args.signal, quiet: true });
    const problems = printPlan(pass, out, args.dryRun);
    // The same verdict as the real run would give its plan: a failed listing or a skipped repository is a problem.
    if (args.dryRun) return problems > 0 ? 1 : 0;

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

/**
 * Every policy the bridge runs: the config file's and those created through the API or imported
 * from Harbor, which live only on the `policies` topic. An embedded bus that was never started
 * has no topic yet (and is not created here): a one-shot sync on a fresh machine runs the config's
 * policies, and says so, since a relative data dir run from another directory looks the same.
 */
async function policiesOf(args: SyncArgs): Promise<Policy[]> {
  const cfg = args.config;
  const file = embeddedBusFile(cfg.bus.dataDir);
  if (!args.bus && cfg.bus.kind !== 'kafka' && !existsSync(file)) {
    args.logger.warn({ path: file }, `no embedded bus at ${file}: only the config file's policies are synced `
      + '(policies created through the API or imported are on the bus where the bridge runs: run sync from its directory, or set DATA_DIR)');
    return [...cfg.policies];
  }
  const bus = args.bus ?? createBus(cfg, args.logger);
  try {
    if (!args.bus) await bus.connect();
    const store = new PolicyStore({ bus, table: new PolicyTable(), logger: args.logger });
    return effectivePolicies(cfg.policies, await store.readTopic());
  } finally {
    if (!args.bus) await bus.close().catch(() => undefined);
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
    // Informational (tags a label-filtered policy keeps): printed, never a reason to exit 1.
    for (const n of p.notes) out(`note ${p.policyId}: ${n}`);
    if (dryRun) for (const t of p.tasks) out(`plan ${describe(t)} (${p.reasons.get(t.id) ?? 'difference'})`);
  }
  const unchanged = pass.policies.reduce((n, p) => n + p.unchanged, 0);
  out(`${dryRun ? 'dry run: ' : ''}${pass.tasks} task(s) planned over ${pass.policies.length} policy(ies), ${unchanged} tag(s) or untagged artifact(s) already in step`);
  return problems;
}

function attempts(task: ReplicationTask, args: SyncArgs, endpoints: Endpoints, log: Logger): Promise<Outcome> {
  return executeWithRetries(task, endpoints.source(task.sourceId), endpoints.target(task.targetId), {
    attempts: args.config.worker.attempts,
    stallTimeoutMs: args.config.worker.stallTimeoutMs,
    signal: args.signal,
    logger: log.child({ task: task.id, policy: task.policyId, repository: task.repository, ref: task.tag ?? task.digest }),
  });
}
