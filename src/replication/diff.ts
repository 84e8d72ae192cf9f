// Reconcile diff (pure): what one policy's source holds versus what its target holds, compared by
// digest, as the tasks that make the target equal to the source. Copies come from
// reconcilePlan (src/policy/plan.ts) so task ids, options and filters stay the planner's.
import type { Policy } from '../policy/model.ts';
import { hasLabelFilters, nameMatches, tagMatches } from '../policy/match.ts';
import { copiesReferrers, reconcileEventId, reconcilePlan, referrersTask, type PlanTarget, type SourceListing } from '../policy/plan.ts';
import { referrerTagSubject } from '../registry/referrers.ts';
import { resolveDestination, type TargetKind } from '../policy/rewrite.ts';
import { TASK_SCHEMA_VERSION, taskId, type ReplicationTask } from './task.ts';

/**
 * Per destination repository: tag → digest the target holds now ('' when not looked up: a tag
 * the source lacks needs no digest). A missing repository means empty.
 */
export type TargetState = ReadonlyMap<string, ReadonlyMap<string, string>>;

export interface ReconcileSkip {
  repository?: string;
  reason: string;
}

export interface DiffResult {
  tasks: ReplicationTask[];
  /** Why each task was planned, by task id (for dry runs and logs). */
  reasons: Map<string, string>;
  skipped: ReconcileSkip[];
  /** What the pass leaves alone on purpose (kept tags): said, but not a problem as a skip is. */
  notes: string[];
  /** Tags (and untagged artifacts) already equal in the target. */
  unchanged: number;
}

// Referrer fallback tags (`sha256-<hex>`, `sha256-<hex>.sig`) are written by the copy engine
// or by cosign next to the artifacts; they are never "extra" tags to delete.
const REFERRER_TAG = /^sha256-[0-9a-f]{64}(?:\..+)?$/;

/** The destination repository of `repository` under `policy`, or why there is none. */
export function destinationOf(policy: Policy, repository: string, target: TargetKind | PlanTarget): { dest: string } | { reason: string } {
  try {
    return { dest: resolveDestination(policy, repository, typeof target === 'string' ? { kind: target } : target) };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return { reason: `rewrite: ${typeof code === 'string' ? `${code} ` : ''}${e instanceof Error ? e.message : String(e)}` };
  }
}

/**
 * Tasks for every difference between `source` (already listed with digests) and `target`:
 * a tag missing in the target or on another digest → push task; a target tag (passing the
 * policy's tag filter) that no source repository mapping there has, with `deletion: true`
 * → delete task; equal → nothing. With `override: false` the push task is still planned and the
 * replicator leaves the target's tag alone. Repositories the rewrite rejects are skipped.
 */
export function diffPolicy(
  policy: Policy,
  source: readonly SourceListing[],
  target: TargetState,
  targetKind: TargetKind | PlanTarget,
  now: Date,
  /** Source digest → the digest a copy writes, where it differs (Docker conversion, platform filter). */
  converted: ReadonlyMap<string, string> = new Map(),
  /** Per destination repository, digests found in the target by digest (untagged artifacts). */
  present: ReadonlyMap<string, ReadonlySet<string>> = new Map(),
  /** Source index digest → its children's digests, for the indexes whose children's signatures are compared. */
  children: ReadonlyMap<string, readonly string[]> = new Map(),
): DiffResult {
  const out: DiffResult = { tasks: [], reasons: new Map(), skipped: [], notes: [], unchanged: 0 };
  if (!policy.enabled) return out;
  const eventId = reconcileEventId(policy.id, now);
  // Several source repositories can land in one destination (replace count -1 flattens paths):
  // a target tag is only extra when none of them has it.
  const wantedByDest = new Map<string, { repository: string; tags: Set<string> }>();

  for (const repo of [...source].sort((a, b) => a.repository.localeCompare(b.repository))) {
    if (!nameMatches(policy, repo.repository)) continue;
    const d = destinationOf(policy, repo.repository, targetKind);
    if ('reason' in d) {
      // Only worth reporting when the repository had something to replicate.
      if (repo.tags.some((e) => tagMatches(policy, e.tag === '' ? undefined : e.tag))) out.skipped.push({ repository: repo.repository, reason: d.reason });
      continue;
    }
    const have = target.get(d.dest) ?? new Map<string, string>();
    const seen = wantedByDest.get(d.dest) ?? { repository: repo.repository, tags: new Set<string>() };
    wantedByDest.set(d.dest, seen);
    // Every tag the source has counts, filtered out by labels or kind or not: only a tag the
    // source lacks altogether is deleted (labels are unknown to a registry listing).
    for (const e of repo.tags) if (e.tag !== '') seen.tags.add(e.tag);

    const plan = reconcilePlan(policy, [repo], targetKind, now);
    for (const s of plan.skipped) out.skipped.push({ repository: repo.repository, reason: s.reason });
    const copiedNow = new Set<string>();
    for (const task of plan.tasks) {
      const want = converted.get(task.digest!) ?? task.digest!;
      if (task.tag === undefined) {
        // Untagged: present when found by digest, or when a target tag points at it.
        if (present.get(d.dest)?.has(want) || [...have.values()].includes(want)) { out.unchanged++; continue; }
        out.tasks.push(task);
        copiedNow.add(task.digest!);
        out.reasons.set(task.id, 'untagged digest missing in target');
        continue;
      }
      const current = have.get(task.tag);
      if (current === want) { out.unchanged++; continue; }
      out.tasks.push(task);
      copiedNow.add(task.digest!);
      out.reasons.set(task.id, current === undefined
        ? 'missing in target'
        : `target has ${short(current)}, source ${short(task.digest!)}${policy.override || referrerTagSubject(task.tag) !== undefined ? '' : ' (override off: the target keeps its tag)'}`);
    }
    if (copiesReferrers(policy, typeof targetKind === 'string' ? { kind: targetKind } : targetKind)) {
      for (const task of signatureTasks({ policy, repo, dest: d.dest, have, wanted: plan.tasks, copiedNow, converted, children, eventId, now })) {
        out.tasks.push(task.task);
        out.reasons.set(task.task.id, task.reason);
      }
    }
  }

  if (!policy.deletion) return out;
  // A tag the source no longer has left no labels to read: whether it passed the label filter is
  // unknown, so a label-filtered policy deletes nothing (as its event path does), and says so.
  const labelled = hasLabelFilters(policy);
  let kept = 0;
  const at = now.toISOString();
  for (const [dest, { repository, tags }] of [...wantedByDest].sort(([a], [b]) => a.localeCompare(b))) {
    const have = target.get(dest);
    if (!have) continue;
    for (const [tag, digest] of [...have].sort(([a], [b]) => a.localeCompare(b))) {
      if (tags.has(tag) || REFERRER_TAG.test(tag) || !tagMatches(policy, tag)) continue;
      if (labelled) { kept++; continue; }
      const task = deleteTask(policy, targetKind, { eventId, at, repository, dest, tag, digest });
      out.tasks.push(task);
      out.reasons.set(task.id, digest ? `not in source (target has ${short(digest)})` : 'not in source');
    }
  }
  // The policy's own rule, not a repository left out: a note, so `sync` does not fail on it.
  if (kept > 0) out.notes.push(`deletion: ${kept} target tag(s) the source no longer has are kept: label filters cannot be evaluated for an artifact that is gone`);
  return out;
}

/**
 * cosign tags (`sha256-<hex>.sig|.att|.sbom`) the tag filter refuses (one it takes is an ordinary
 * tag) that the target lacks or holds on another digest, as one referrers task per artifact. The
 * artifact must be one the pass leaves in step: a wanted tag or untagged artifact the target
 * already holds as it is (one copied in this pass brings its referrers itself; a converted one has
 * another digest), or a child of such an index.
 */
export function signatureTasks(a: {
  policy: Policy; repo: SourceListing; dest: string; have: ReadonlyMap<string, string>;
  wanted: readonly ReplicationTask[]; copiedNow: ReadonlySet<string>; converted: ReadonlyMap<string, string>;
  children: ReadonlyMap<string, readonly string[]>; eventId: string; now: Date;
}): { task: ReplicationTask; reason: string }[] {
  const { policy, repo, have } = a;
  const options = a.wanted[0]?.options;
  if (!options) return [];
  const inStep = new Set(a.wanted.map((t) => t.digest!).filter((d) => !a.copiedNow.has(d) && !a.converted.has(d)));
  for (const d of [...inStep]) for (const child of a.children.get(d) ?? []) inStep.add(child);
  const at = a.now.toISOString();
  return [...signatureSubjects(policy, repo, have)].filter(([subject]) => inStep.has(subject)).map(([subject, tag]) => ({
    task: referrersTask({ eventId: a.eventId, policy, repository: repo.repository, dest: a.dest, digest: subject, of: 'digest', options, origin: 'reconcile', occurredAt: at, createdAt: at }),
    reason: `${tag} ${have.has(tag) ? 'differs in' : 'missing in'} target`,
  }));
}

/**
 * cosign tags of the listing that the tag filter refuses and the target lacks or holds on another
 * digest: artifact digest → the first such tag.
 */
export function signatureSubjects(policy: Policy, repo: SourceListing, have: ReadonlyMap<string, string> | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of repo.tags) {
    const subject = referrerTagSubject(e.tag, { cosignOnly: true });
    if (subject && !out.has(subject) && have?.get(e.tag) !== e.digest && !tagMatches(policy, e.tag)) out.set(subject, e.tag);
  }
  return out;
}

/**
 * A delete task in the planner's shape. The replicator re-reads `repository:tag` in the source
 * when it runs: still absent → the tag goes; back again → it is copied instead.
 */
function deleteTask(
  policy: Policy,
  targetKind: TargetKind | PlanTarget,
  d: { eventId: string; at: string; repository: string; dest: string; tag: string; digest: string },
): ReplicationTask {
  // Push and delete tasks share options; take them from the planner with a stand-in listing.
  const probe = reconcilePlan({ ...policy, filters: [] }, [{ repository: d.repository, tags: [{ tag: d.tag, digest: d.digest }] }], targetKind, new Date(d.at));
  const options = probe.tasks[0]?.options ?? { deletion: true, override: policy.override, referrers: policy.referrers };
  return {
    schema: TASK_SCHEMA_VERSION,
    id: taskId(d.eventId, policy.id, `delete:${d.dest}:${d.tag}`),
    eventId: d.eventId,
    action: 'delete',
    origin: 'reconcile',
    sourceId: policy.src_registry,
    repository: d.repository,
    tag: d.tag,
    // The target's digest, when known, is a hint only (the replicator re-reads the source).
    ...(d.digest ? { digest: d.digest } : {}),
    targetId: policy.dest_registry,
    destRepository: d.dest,
    policyId: policy.id,
    options,
    attempt: 0,
    occurredAt: d.at,
    createdAt: d.at,
  };
}

function short(digest: string): string {
  const i = digest.indexOf(':');
  return i < 0 ? digest : digest.slice(0, i + 13);
}
