import type { ArtifactEvent } from '../ingest/event.ts';
import { REFERRERS_TASK_SCHEMA_VERSION, TASK_SCHEMA_VERSION, taskId, type ReplicationTask } from '../replication/task.ts';
import type { Policy } from './model.ts';
import { firstMismatch, hasLabelFilters, matchesPolicy, nameMatches, tagMatches } from './match.ts';
import { referrerTagSubject } from '../registry/referrers.ts';
import { defaultManifestFormat } from '../swr/limits.ts';
import type { TargetConfig } from '../config/schema.ts';
import { resolveDestination, type TargetKind } from './rewrite.ts';

// Pure planning: events × policies → tasks, and source listings × policy → reconcile tasks.
// Never throws for a bad policy or name. `skipped` lists policies that wanted the artifact but
// could not get a task (worth a warning); `unmatched` lists routine non-matches (for debugging
// and dry runs, not for logs at warn level).

export type PlanTarget = { kind: TargetKind; manifestFormat?: 'preserve' | 'docker' };

/** A configured target as planning sees it: the manifest format its copies take (SWR Basic: Docker). */
export function planTarget(t: Pick<TargetConfig, 'kind' | 'manifestFormat' | 'edition'>): PlanTarget {
  const manifestFormat = t.manifestFormat ?? (t.kind === 'swr' ? defaultManifestFormat(t.edition) : undefined);
  return { kind: t.kind, ...(manifestFormat ? { manifestFormat } : {}) };
}
export type Skipped = { policyId: string; reason: string };
export type Plan = { tasks: ReplicationTask[]; skipped: Skipped[]; unmatched: Skipped[] };

type Options = ReplicationTask['options'];

function taskOptions(policy: Policy, target: PlanTarget): Options {
  const manifestFormat = policy.manifestFormat ?? target.manifestFormat;
  return {
    deletion: policy.deletion,
    override: policy.override,
    referrers: policy.referrers,
    ...(manifestFormat ? { manifestFormat } : {}),
    ...(policy.platforms ? { platforms: [...policy.platforms] } : {}),
    // Harbor's speed is Kbit/s with -1 / 0 meaning unlimited.
    ...(policy.speed > 0 ? { speedKbps: policy.speed } : {}),
  };
}

/**
 * Whether tasks of `policy` into `target` copy referrers. Then a referrer's tag (cosign's
 * `sha256-<hex>.sig|.att|.sbom`, OCI's `sha256-<hex>`) that the tag filter refuses still follows
 * its subject, as Harbor replicates accessories with their artifact.
 */
export function copiesReferrers(policy: Pick<Policy, 'referrers' | 'manifestFormat'>, target: PlanTarget): boolean {
  return policy.referrers && (policy.manifestFormat ?? target.manifestFormat) !== 'docker';
}

function destination(policy: Policy, repository: string, target: PlanTarget): { dest: string } | { reason: string } {
  try {
    return { dest: resolveDestination(policy, repository, target) };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const message = e instanceof Error ? e.message : String(e);
    return { reason: `rewrite: ${typeof code === 'string' ? `${code} ` : ''}${message}` };
  }
}

/**
 * Tasks for one event: one per enabled, event-based policy of the event's source whose filters
 * match (a push by digest is matched as the tag ""). Deletes plan only for `deletion: true`.
 * Policies of other sources are not mentioned at all.
 * `unmatched` reasons: `disabled`, `trigger:<type>`, `deletion disabled`, `filter:<name|tag|label|resource>`.
 * `skipped` reasons: `unknown target <id>`, `no reference`, `rewrite: <code> <message>`, and for
 * label filters the labels being unknown (`labels` not given) or the artifact deleted.
 * `labels`: the artifact's label names as Harbor's API gave them, when a label filter needs them.
 */
/** Labels could not be read (a plain-registry source, or Harbor's API refused): never plan as if there were none. */
const LABELS_UNKNOWN = 'label filters need the artifact\'s labels, which could not be read from Harbor\'s API (see the log; a plain-registry source has none)';
const LABELS_OF_DELETED = 'label filters: a deleted artifact\'s labels can no longer be read, so its deletion is not replicated by this policy';

export function planTasks(
  event: ArtifactEvent,
  policies: readonly Policy[],
  targets: ReadonlyMap<string, PlanTarget>,
  now: Date,
  labels?: readonly string[],
): Plan {
  const tasks: ReplicationTask[] = [];
  const skipped: Skipped[] = [];
  const unmatched: Skipped[] = [];
  // OCI tags cannot hold ':', so a "tag" that does is a digest (Harbor v2 sends the digest as
  // the tag for pushes by digest): plan it as untagged.
  const byDigest = event.tag !== undefined && event.tag.includes(':');
  const tag = byDigest ? undefined : event.tag;
  const digest = event.digest ?? (byDigest ? event.tag : undefined);
  const reference = tag ?? digest;
  // A push the tag filter may refuse that can still be a signature: a referrer tag names its
  // subject; an untagged push may be an OCI 1.1 referrer (cosign 3, notation), as its manifest says.
  const named = tag !== undefined ? referrerTagSubject(tag) : undefined;
  const follower: { digest: string; of: 'digest' | 'subject' } | undefined = event.action !== 'push' ? undefined
    : named !== undefined ? { digest: named, of: 'digest' }
    : tag === undefined && digest !== undefined ? { digest, of: 'subject' } : undefined;
  for (const policy of policies) {
    if (policy.src_registry !== event.sourceId) continue;
    const skip = (reason: string) => skipped.push({ policyId: policy.id, reason });
    const pass = (reason: string) => unmatched.push({ policyId: policy.id, reason });
    if (!policy.enabled) { pass('disabled'); continue; }
    if (policy.trigger.type !== 'event_based') { pass(`trigger:${policy.trigger.type}`); continue; }
    if (event.action === 'delete' && !policy.deletion) { pass('deletion disabled'); continue; }
    // A signature pushed after its artifact, which the tag filter refuses: its tag and labels are not
    // the artifact's, so only the repository filter applies, and the task copies it only into a
    // target that holds the artifact. A referrer tag the filter takes is an ordinary tag.
    const referrersTarget = follower !== undefined ? targets.get(policy.dest_registry) : undefined;
    if (follower && referrersTarget && copiesReferrers(policy, referrersTarget) && !tagMatches(policy, tag)) {
      if (!nameMatches(policy, event.repository)) { pass('filter:name'); continue; }
      const d = destination(policy, event.repository, referrersTarget);
      if ('reason' in d) { skip(d.reason); continue; }
      tasks.push(referrersTask({ eventId: event.id, policy, repository: event.repository, dest: d.dest, digest: follower.digest, of: follower.of, options: taskOptions(policy, referrersTarget), origin: 'event', occurredAt: event.occurredAt, createdAt: now.toISOString() }));
      continue;
    }
    if (hasLabelFilters(policy) && event.action === 'delete') { skip(LABELS_OF_DELETED); continue; }
    if (hasLabelFilters(policy) && labels === undefined) { skip(LABELS_UNKNOWN); continue; }
    const mismatch = firstMismatch(policy, { repository: event.repository, tags: tag !== undefined ? [tag] : [], ...(labels ? { labels: [...labels] } : {}) });
    if (mismatch) { pass(`filter:${mismatch}`); continue; }
    const target = targets.get(policy.dest_registry);
    if (!target) { skip(`unknown target ${policy.dest_registry}`); continue; }
    if (reference === undefined) { skip('no reference'); continue; }
    const d = destination(policy, event.repository, target);
    if ('reason' in d) { skip(d.reason); continue; }
    tasks.push({
      schema: TASK_SCHEMA_VERSION,
      id: taskId(event.id, policy.id, reference),
      eventId: event.id,
      action: event.action,
      origin: 'event',
      sourceId: event.sourceId,
      repository: event.repository,
      ...(tag !== undefined ? { tag } : {}),
      ...(digest !== undefined ? { digest } : {}),
      targetId: policy.dest_registry,
      destRepository: d.dest,
      policyId: policy.id,
      options: taskOptions(policy, target),
      attempt: 0,
      occurredAt: event.occurredAt,
      createdAt: now.toISOString(),
    });
  }
  return { tasks, skipped, unmatched };
}

/** A task that copies referrers of `digest` (`of: 'digest'`) or of its subject into a target that already holds their artifact (see execute.ts). */
export function referrersTask(a: {
  eventId: string; policy: Policy; repository: string; dest: string; digest: string; of: 'digest' | 'subject'; options: Options;
  origin: 'event' | 'reconcile'; occurredAt: string; createdAt: string;
}): ReplicationTask {
  return {
    schema: REFERRERS_TASK_SCHEMA_VERSION,
    // A reconcile pass shares one event id across repositories: the repository is part of the reference.
    id: taskId(a.eventId, a.policy.id, `referrers:${a.origin === 'reconcile' ? `${a.repository}:` : ''}${a.digest}`),
    eventId: a.eventId,
    action: 'push',
    origin: a.origin,
    sourceId: a.policy.src_registry,
    repository: a.repository,
    digest: a.digest,
    targetId: a.policy.dest_registry,
    destRepository: a.dest,
    policyId: a.policy.id,
    options: { ...a.options, ...(a.options.platforms ? { platforms: [...a.options.platforms] } : {}), referrersOf: a.of },
    attempt: 0,
    occurredAt: a.occurredAt,
    createdAt: a.createdAt,
  };
}

export type SourceListing = {
  repository: string;
  /** An entry with an empty tag stands for an untagged artifact (planned by digest). */
  tags: { tag: string; digest: string; labels?: string[]; kind?: 'image' | 'artifact' }[];
};

/** Event id shared by one reconcile pass of a policy: `reconcile:<policyId>:<YYYY-MM-DDTHH:MM>`. */
export function reconcileEventId(policyId: string, now: Date): string {
  return `reconcile:${policyId}:${now.toISOString().slice(0, 16)}`;
}

/**
 * Reconcile plan for one policy over a source listing: a push task per matching tag (any
 * trigger type; disabled policies plan nothing). Repositories the rewrite rejects are skipped
 * with the reason, once each.
 */
export function reconcilePlan(
  policy: Policy,
  listing: readonly SourceListing[],
  target: TargetKind | PlanTarget,
  now: Date,
): Plan {
  const tasks: ReplicationTask[] = [];
  const skipped: Skipped[] = [];
  if (!policy.enabled) return { tasks, skipped, unmatched: [{ policyId: policy.id, reason: 'disabled' }] };
  if (hasLabelFilters(policy) && listing.some((r) => r.tags.some((e) => e.labels === undefined))) {
    return { tasks, skipped: [{ policyId: policy.id, reason: LABELS_UNKNOWN }], unmatched: [] };
  }
  const t: PlanTarget = typeof target === 'string' ? { kind: target } : target;
  const eventId = reconcileEventId(policy.id, now);
  const at = now.toISOString();
  const options = taskOptions(policy, t);
  for (const repo of listing) {
    const wanted = repo.tags.filter((e) => matchesPolicy(policy, {
      repository: repo.repository,
      tags: e.tag === '' ? [] : [e.tag],
      ...(e.labels ? { labels: e.labels } : {}),
      ...(e.kind ? { kind: e.kind } : {}),
    }));
    if (wanted.length === 0) continue;
    const d = destination(policy, repo.repository, t);
    if ('reason' in d) { skipped.push({ policyId: policy.id, reason: `${repo.repository}: ${d.reason}` }); continue; }
    for (const e of wanted) {
      const reference = e.tag === '' ? e.digest : e.tag;
      tasks.push({
        schema: TASK_SCHEMA_VERSION,
        // One pass shares an event id, so the repository is part of the reference.
        id: taskId(eventId, policy.id, `${repo.repository}:${reference}`),
        eventId,
        action: 'push',
        origin: 'reconcile',
        sourceId: policy.src_registry,
        repository: repo.repository,
        ...(e.tag === '' ? {} : { tag: e.tag }),
        digest: e.digest,
        targetId: policy.dest_registry,
        destRepository: d.dest,
        policyId: policy.id,
        options: { ...options, ...(options.platforms ? { platforms: [...options.platforms] } : {}) },
        attempt: 0,
        occurredAt: at,
        createdAt: at,
      });
    }
  }
  return { tasks, skipped, unmatched: [] };
}

/** The tasks of {@link reconcilePlan}. */
export function reconcileTasks(
  policy: Policy,
  listing: readonly SourceListing[],
  targetKind: TargetKind | PlanTarget,
  now: Date,
): ReplicationTask[] {
  return reconcilePlan(policy, listing, targetKind, now).tasks;
}
