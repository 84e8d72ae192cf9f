// Reconciler: per policy, list the source's matching repositories and tags, compare with the
// target by digest and emit a task for every difference. Heals webhooks Harbor never delivered.
// The listing is I/O; the decision is diffPolicy (./diff.ts, pure).
import type { Bus } from '../bus/port.ts';
import type { Config, SourceConfig } from '../config/schema.ts';
import { BridgeError, toBridgeError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { HarborApi, type HarborArtifact } from '../policy/harbor-api.ts';
import { hasLabelFilters, matchesPolicy, nameMatches, tagMatches } from '../policy/match.ts';
import { HarborLabels, labelsByReference } from '../policy/harbor-labels.ts';
import type { Policy } from '../policy/model.ts';
import { copiesReferrers, planTarget, type PlanTarget, type SourceListing } from '../policy/plan.ts';
import { referrerTagSubject } from '../registry/referrers.ts';
import type { PolicyTable } from '../policy/table.ts';
import type { RegistryClient } from '../registry/client.ts';
import { destinationOf, diffPolicy, signatureSubjects, type ReconcileSkip } from './diff.ts';
import type { Endpoints } from './endpoints.ts';
import { Limiter } from './limiter.ts';
import { ReplicationTaskSchema, taskKey, type ReplicationTask } from './task.ts';
import { targetDigestOf, transformsManifest } from './copy.ts';
import { indexChildren } from './copy-plan.ts';
import { isRefusal } from '../registry/errors.ts';
import { checked } from '../bus/checked.ts';
import { passRetryDelayMs } from '../policy/scheduler.ts';
import { setTimeout as sleep } from 'node:timers/promises';

/** Source digest + copy variant → the digest the copy writes; content-addressed, so never stale. */
const convertedCache = new Map<string, string>();
/** Source manifest (by digest, so it never changes) → its children's digests ([] for an image). */
const childrenCache = new Map<string, readonly string[]>();
const MAX_CACHED = 100_000;
/** Bounded, least recently used first out (Map order; a hit re-inserts). */
function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  cache.delete(key);
  if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
  cache.set(key, value);
}

/** The policies a start-up pass (and its retries) covers: manual ones replicate only when asked. */
function passedAtStart(p: Policy): boolean {
  return p.trigger.type !== 'manual';
}

/** Whether `key` is new to `seen` (recording it): for warnings said once per source. */
function firstFor(seen: Set<string>, key: string): boolean {
  if (seen.has(key)) return false;
  seen.add(key);
  return true;
}

export interface ReconcilerDeps {
  config: Config;
  endpoints: Endpoints;
  logger: Logger;
  metrics?: Metrics;
  /** Default bus for publish() when none is passed. */
  bus?: Bus;
  /** Policies for passes that are not given a table (default: the config's). */
  table?: PolicyTable;
  /** Registry requests in flight per policy plan (listings and manifest HEADs). */
  concurrency?: number;
  /** Artifact labels for policies with label filters (default: read from each Harbor source's API). */
  labels?: HarborLabels;
  now?: () => Date;
}

export interface ReconcilePlan {
  policyId: string;
  tasks: ReplicationTask[];
  skipped: ReconcileSkip[];
  /** What the plan leaves alone on purpose (see DiffResult.notes); not counted as skipped. */
  notes: string[];
  /** Why each task was planned, by task id. */
  reasons: Map<string, string>;
  /** Tags (and untagged artifacts) already equal in the target. */
  unchanged: number;
}

export interface PolicyPassResult extends ReconcilePlan {
  /** Listing or publishing failed: the plan is incomplete (and nothing was published). */
  error?: { code: string; message: string };
}

export interface PassSummary {
  policies: PolicyPassResult[];
  tasks: number;
  skipped: number;
  /** Policies whose pass failed. */
  failed: number;
  published: number;
}

export interface PlanOptions {
  signal?: AbortSignal;
  /** Shares source listings between the policies of one pass. */
  cache?: PassCache;
  /** The caller reports skipped repositories and failed policies itself (`sync` prints them): not logged here too. */
  quiet?: boolean;
}

/** Memo of source listings for one pass, so policies sharing a source list it once. */
export class PassCache {
  readonly #m = new Map<string, Promise<unknown>>();
  get<T>(key: string, load: () => Promise<T>): Promise<T> {
    let p = this.#m.get(key) as Promise<T> | undefined;
    if (!p) {
      p = load();
      this.#m.set(key, p);
      // A failure is not remembered: the next policy may try again.
      p.catch(() => this.#m.delete(key));
    }
    return p;
  }
}

export class Reconciler {
  readonly #d: ReconcilerDeps;
  readonly #log: Logger;
  readonly #now: () => Date;
  readonly #targets: Map<string, PlanTarget>;
  readonly #labels: HarborLabels;
  /** Sources whose unreadable artifact API was reported at warn level (once per source, per process). */
  readonly #warnedUntagged = new Set<string>();

  /** Sources already reported as refusing look-ups of signature tags. */
  readonly #refusing = new Set<string>();

  constructor(deps: ReconcilerDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ component: 'reconciler' });
    this.#labels = deps.labels ?? new HarborLabels(deps.config, this.#log);
    this.#now = deps.now ?? (() => new Date());
    // As the planner builds them, so reconcile tasks carry the same options as event tasks.
    this.#targets = new Map(deps.config.targets.map((t) => [t.id, planTarget(t)]));
  }

  /** The tasks that would make the policy's target equal to its source now. */
  async plan(policy: Policy, opts: PlanOptions = {}): Promise<ReconcilePlan> {
    const empty: ReconcilePlan = { policyId: policy.id, tasks: [], skipped: [], notes: [], reasons: new Map(), unchanged: 0 };
    if (!policy.enabled) return empty;
    const target = this.#targets.get(policy.dest_registry);
    if (!target) return { ...empty, skipped: [{ reason: `unknown target ${policy.dest_registry}` }] };
    const source = this.#d.config.sources.find((s) => s.id === policy.src_registry);
    if (!source) return { ...empty, skipped: [{ reason: `unknown source ${policy.src_registry}` }] };
    const src = this.#d.endpoints.source(source.id).client;
    const dst = this.#d.endpoints.target(policy.dest_registry).client;
    const cache = opts.cache ?? new PassCache();
    const { signal } = opts;
    const limit = new Limiter(this.#d.concurrency ?? 8);
    const started = Date.now();

    const repos = (await cache.get(`repos\0${source.id}`, () => this.#repositories(source, src, signal))).filter((r) => nameMatches(policy, r));
    // cosign tags the tag filter refuses are still compared: they follow their artifacts (see copiesReferrers).
    const follows = copiesReferrers(policy, target);
    const compared = (tags: readonly string[]) => tags.filter((t) => tagMatches(policy, t) || (follows && referrerTagSubject(t, { cosignOnly: true }) !== undefined));

    // Source: repository → matching tags → digests.
    const listing: SourceListing[] = await Promise.all(repos.map(async (repository) => {
      const tags = compared(await cache.get(`tags\0${source.id}\0${repository}`, () => limit.run(() => src.listTags(repository, signal))));
      const entries = await Promise.all(tags.map(async (tag) => {
        // Signature tags are optional content: a source refusing their look-up has none.
        const optional = follows && referrerTagSubject(tag) !== undefined;
        const digest = await cache.get(`head\0${source.id}\0${repository}\0${tag}`, () => limit.run(async () => (await src.headManifest(repository, tag, signal))?.digest))
          .catch((e: unknown) => {
            if (!optional || !isRefusal(e) || signal?.aborted) throw e;
            if (firstFor(this.#refusing, source.id)) {
              this.#log.warn({ source: source.id, tag, code: (e as { code?: string }).code }, 'the source refuses look-ups of signature tags: taken as absent (said once per source)');
            }
            return undefined;
          });
        return digest ? { tag, digest } : undefined; // deleted between listing and HEAD
      }));
      return { repository, tags: entries.filter((e) => e !== undefined) };
    }));
    // Harbor's scheduled replication also takes untagged artifacts (matched as the tag "").
    if (source.kind === 'harbor' && tagMatches(policy, undefined)) await this.#addUntagged(source.id, listing, cache, limit, signal);
    if (hasLabelFilters(policy)) await this.#attachLabels(source.id, listing, cache, limit, signal);

    // Target: destination repository → tag → digest, heading only the tags the source also has
    // (a tag only the target has needs no digest to be deleted).
    const wanted = new Map<string, Set<string>>();
    for (const repo of listing) {
      const d = destinationOf(policy, repo.repository, target);
      if ('reason' in d) continue;
      const set = wanted.get(d.dest) ?? new Set<string>();
      for (const e of repo.tags) set.add(e.tag);
      wanted.set(d.dest, set);
    }
    const state = new Map<string, Map<string, string>>();
    await Promise.all([...wanted].map(async ([dest, sourceTags]) => {
      const tags = compared(await limit.run(() => dst.listTags(dest, signal)));
      const have = new Map<string, string>();
      await Promise.all(tags.map(async (tag) => {
        if (!sourceTags.has(tag)) { have.set(tag, ''); return; }
        const h = await limit.run(() => dst.headManifest(dest, tag, signal));
        if (h) have.set(tag, h.digest);
      }));
      state.set(dest, have);
    }));

    const converted = await this.#convertedDigests(policy, source.id, src, listing, state, target, limit, signal);
    const present = await this.#untaggedPresent(policy, listing, state, converted, target, dst, limit, signal);
    const children = follows ? await this.#indexChildren(policy, source.id, src, listing, state, target, limit, signal) : new Map<string, readonly string[]>();
    const diff = diffPolicy(policy, listing, state, target, this.#now(), converted, present, children);
    if (!opts.quiet) for (const s of diff.skipped) this.#log.warn({ policy: policy.id, repository: s.repository, reason: s.reason }, 'reconcile skipped a repository');
    if (!opts.quiet) for (const note of diff.notes) this.#log.info({ policy: policy.id, note }, 'reconcile left target tags alone');
    this.#log.info({
      policy: policy.id, repositories: listing.length, tags: listing.reduce((n, r) => n + r.tags.length, 0),
      tasks: diff.tasks.length, unchanged: diff.unchanged, skipped: diff.skipped.length, ms: Date.now() - started,
    }, 'reconcile planned');
    return { policyId: policy.id, tasks: diff.tasks, skipped: diff.skipped, notes: diff.notes, reasons: diff.reasons, unchanged: diff.unchanged };
  }

  /** Puts tasks on the `tasks` topic, keyed per destination repository like event tasks. */
  async publish(tasks: readonly ReplicationTask[], bus: Bus | undefined = this.#d.bus): Promise<void> {
    if (tasks.length === 0) return;
    if (!bus) throw new BridgeError('HSB_INTERNAL', 'reconciler: no bus to publish to');
    await bus.publish('tasks', checked('tasks', ReplicationTaskSchema, tasks.map((t) => ({ key: taskKey(t), value: t }))));
    const byPolicy = new Map<string, number>();
    for (const t of tasks) byPolicy.set(t.policyId, (byPolicy.get(t.policyId) ?? 0) + 1);
    for (const [policy, n] of byPolicy) this.#d.metrics?.plannedTasks.inc({ policy }, n);
  }

  /** One policy: plan and publish. The hook for the policy scheduler's `onFire`. */
  async reconcileAndPublish(policy: Policy, bus: Bus, opts: PlanOptions = {}): Promise<ReconcilePlan> {
    const plan = await this.plan(policy, opts);
    await this.publish(plan.tasks, bus);
    if (plan.tasks.length) this.#log.info({ policy: policy.id, tasks: plan.tasks.length }, 'reconcile tasks published');
    return plan;
  }

  /**
   * One pass over every enabled policy (of `table`, else the deps' table, else the config).
   * A policy whose listing fails is reported and the pass goes on. With `dryRun` or no bus,
   * nothing is published.
   */
  async runPass(opts: { dryRun: boolean; bus?: Bus; table?: PolicyTable; signal?: AbortSignal; include?: (p: Policy) => boolean; quiet?: boolean }): Promise<PassSummary> {
    const policies = (opts.table ?? this.#d.table)?.list() ?? this.#d.config.policies;
    const cache = new PassCache();
    const summary: PassSummary = { policies: [], tasks: 0, skipped: 0, failed: 0, published: 0 };
    for (const policy of policies) {
      if (!policy.enabled || (opts.include && !opts.include(policy))) continue;
      if (opts.signal?.aborted) break;
      try {
        const plan = await this.plan(policy, { signal: opts.signal, cache, quiet: opts.quiet });
        if (!opts.dryRun && opts.bus) {
          await this.publish(plan.tasks, opts.bus);
          summary.published += plan.tasks.length;
        }
        summary.policies.push(plan);
        summary.tasks += plan.tasks.length;
        summary.skipped += plan.skipped.length;
      } catch (e) {
        const err = toBridgeError(e);
        if (!opts.quiet) this.#log.error({ policy: policy.id, code: err.code, err: err.message }, 'reconcile of this policy failed');
        summary.policies.push({ policyId: policy.id, tasks: [], skipped: [], notes: [], reasons: new Map(), unchanged: 0, error: { code: err.code, message: err.message } });
        summary.failed++;
      }
    }
    return summary;
  }

  /**
   * "On start": event-based and scheduled policies (manual ones replicate only when asked).
   * Catches up on whatever happened while the bridge was down.
   */
  startupPass(table: PolicyTable, bus: Bus, signal?: AbortSignal): Promise<PassSummary> {
    return this.runPass({ dryRun: false, bus, table, signal, include: passedAtStart });
  }

  /**
   * After the start-up pass: each policy whose pass failed (its source or target unreachable at
   * start) is passed again after growing delays until it succeeds, is removed or disabled, or
   * `signal` aborts. A worker started during an outage then heals what it missed without a restart;
   * an event-based policy has no schedule that would.
   */
  async retryFailed(first: PassSummary, table: PolicyTable, bus: Bus, signal: AbortSignal, delayMs: (attempt: number) => number = passRetryDelayMs): Promise<void> {
    let failed = new Set(first.policies.filter((p) => p.error).map((p) => p.policyId));
    for (let attempt = 0; failed.size > 0 && !signal.aborted; attempt++) {
      const delay = delayMs(attempt);
      this.#log.info({ policies: [...failed], retryInSeconds: Math.round(delay / 1000) }, 'start-up reconcile failed for some policies; they are tried again');
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        return;
      }
      const waiting = failed;
      const pass = await this.runPass({ dryRun: false, bus, table, signal, include: (p) => waiting.has(p.id) && passedAtStart(p) });
      failed = new Set(pass.policies.filter((p) => p.error).map((p) => p.policyId));
    }
  }

  /**
   * Label filters: each listed tag gets its artifact's labels from Harbor's API (one artifact
   * listing per repository, shared by the pass). A source that is not a Harbor gets none, and
   * the plan then skips the policy with the reason.
   */
  async #attachLabels(sourceId: string, listing: SourceListing[], cache: PassCache, limit: Limiter, signal?: AbortSignal): Promise<void> {
    const labels = this.#labels.forSource(sourceId);
    if (!labels) return;
    await Promise.all(listing.map(async (repo) => {
      if (repo.tags.length === 0) return;
      const artifacts = await cache.get(`labels\0${sourceId}\0${repo.repository}`, () => limit.run(() => labels.listing(repo.repository, signal)));
      const { byTag, byDigest } = labelsByReference(artifacts);
      // A tag pushed after Harbor listed its artifacts has no labels yet, as in Harbor itself.
      repo.tags = repo.tags.map((e) => ({ ...e, labels: (e.tag === '' ? byDigest.get(e.digest) : byTag.get(e.tag)) ?? [] }));
    }));
  }

  /**
   * Where a copy transforms the manifest (Docker format, a platform filter), the target holds
   * another digest than the source even when in step: for each tag whose digests differ, the
   * digest a copy would write, so a converged tag is not planned again on every pass. Remembered
   * per source digest (conversion is deterministic), so later passes cost no requests.
   */
  async #convertedDigests(policy: Policy, sourceId: string, src: RegistryClient, listing: readonly SourceListing[], state: ReadonlyMap<string, ReadonlyMap<string, string>>, target: PlanTarget, limit: Limiter, signal?: AbortSignal): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const manifestFormat = policy.manifestFormat ?? this.#d.endpoints.target(policy.dest_registry).manifestFormat;
    const platforms = policy.platforms ?? [];
    if (!transformsManifest({ manifestFormat, platforms })) return out;
    const variant = `${manifestFormat}\0${[...platforms].sort().join(',')}`;
    await Promise.all(listing.flatMap((repo) => {
      const d = destinationOf(policy, repo.repository, target);
      const have = 'reason' in d ? undefined : state.get(d.dest);
      // Tags the target holds on another digest, and untagged artifacts (looked up by digest).
      return repo.tags.filter((e) => e.tag === '' || (have?.get(e.tag) && have.get(e.tag) !== e.digest)).map(async (e) => {
        const key = `${e.digest}\0${variant}`;
        let digest = convertedCache.get(key);
        if (digest === undefined) {
          // A source this cannot convert is left to the copy, which reports why.
          digest = await limit.run(() => targetDigestOf(src, repo.repository, e.digest, { manifestFormat, platforms, signal })).catch(() => undefined);
          if (digest === undefined) return;
          remember(convertedCache, key, digest);
        }
        if (digest !== e.digest) out.set(e.digest, digest);
      });
    }));
    this.#log.debug({ policy: policy.id, source: sourceId, converted: out.size }, 'reconcile compared converted digests');
    return out;
  }

  /**
   * Untagged artifacts of a Harbor 2.x source (its API lists them; the registry API cannot), as
   * entries with an empty tag. Harbor's listing leaves out index children and accessories, which
   * are copied with their parent. An API that cannot be read (1.10, a plain registry configured as
   * `kind: harbor`, missing rights) leaves the pass comparing tags only, and says so once.
   */
  async #addUntagged(sourceId: string, listing: SourceListing[], cache: PassCache, limit: Limiter, signal?: AbortSignal): Promise<void> {
    const api = this.#labels.forSource(sourceId);
    if (!api) return;
    const usable = await cache.get(`untagged\0${sourceId}`, () => api.apiVersion(signal).then((v) => v === 'v2', (e: unknown) => {
      this.#untaggedUnreadable(sourceId, e);
      return false;
    }));
    if (!usable) return;
    await Promise.all(listing.map(async (repo) => {
      let artifacts: HarborArtifact[];
      try {
        artifacts = await cache.get(`labels\0${sourceId}\0${repo.repository}`, () => limit.run(() => api.listing(repo.repository, signal)));
      } catch (e) {
        this.#untaggedUnreadable(sourceId, e, repo.repository);
        return;
      }
      const listed = new Set(repo.tags.map((e) => e.digest));
      for (const a of artifacts) {
        if (a.tags.length > 0 || listed.has(a.digest)) continue;
        listed.add(a.digest);
        repo.tags.push({ tag: '', digest: a.digest, labels: a.labels });
      }
    }));
  }

  #untaggedUnreadable(sourceId: string, e: unknown, repository?: string): void {
    const err = toBridgeError(e);
    // Keyed by source, not repository: a robot without "list artifact" is refused in every
    // repository alike, which would be one warning per repository (per policy, to the reader).
    this.#log[firstFor(this.#warnedUntagged, sourceId) ? 'warn' : 'debug']({ source: sourceId, repository, code: err.code, err: err.message },
      'untagged artifacts are not compared: Harbor\'s artifact API could not be read; tags are (said once per source)');
  }

  /**
   * For each untagged artifact the policy takes whose (converted) digest no target tag points at:
   * whether the target holds it by digest. Destination repository → digests found.
   */
  async #untaggedPresent(policy: Policy, listing: readonly SourceListing[], state: ReadonlyMap<string, ReadonlyMap<string, string>>, converted: ReadonlyMap<string, string>, target: PlanTarget, dst: RegistryClient, limit: Limiter, signal?: AbortSignal): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    await Promise.all(listing.flatMap((repo) => {
      const d = destinationOf(policy, repo.repository, target);
      if ('reason' in d) return [];
      const tagged = new Set(state.get(d.dest)?.values() ?? []);
      return repo.tags
        .filter((e) => e.tag === '' && matchesPolicy(policy, { repository: repo.repository, tags: [], ...(e.labels ? { labels: e.labels } : {}), ...(e.kind ? { kind: e.kind } : {}) }))
        .map((e) => converted.get(e.digest) ?? e.digest)
        .filter((want) => !tagged.has(want))
        .map(async (want) => {
          if (!(await limit.run(() => dst.headManifest(d.dest, want, signal)))) return;
          const set = out.get(d.dest) ?? new Set<string>();
          set.add(want);
          out.set(d.dest, set);
        });
    }));
    return out;
  }

  /**
   * Children of the listing's indexes, in repositories with cosign tags to compare whose artifact
   * the listing does not hold (an index's child signed by `cosign sign --recursive`). Manifests are
   * read by digest, so what was read once is remembered across passes.
   */
  async #indexChildren(policy: Policy, sourceId: string, src: RegistryClient, listing: readonly SourceListing[], state: ReadonlyMap<string, ReadonlyMap<string, string>>, target: PlanTarget, limit: Limiter, signal?: AbortSignal): Promise<Map<string, readonly string[]>> {
    const out = new Map<string, readonly string[]>();
    await Promise.all(listing.flatMap((repo) => {
      const d = destinationOf(policy, repo.repository, target);
      if ('reason' in d) return [];
      const listed = new Set(repo.tags.map((e) => e.digest));
      const have = state.get(d.dest);
      if (![...signatureSubjects(policy, repo, have).keys()].some((s) => !listed.has(s))) return [];
      // Only artifacts the pass may leave in step: untagged ones, and tags the target has on the same digest.
      const artifacts = new Set(repo.tags.filter((e) => referrerTagSubject(e.tag) === undefined && (e.tag === '' || have?.get(e.tag) === e.digest)).map((e) => e.digest));
      return [...artifacts].map(async (digest) => {
        const key = `${sourceId}\0${repo.repository}\0${digest}`;
        let kids = childrenCache.get(key);
        if (kids === undefined) {
          // Unreadable now (deleted meanwhile, say): its children's signatures wait for the next pass.
          const m = await limit.run(() => src.getManifest(repo.repository, digest, undefined, signal)).catch(() => undefined);
          if (!m) return;
          kids = indexChildren(m.bytes, m.mediaType);
        }
        remember(childrenCache, key, kids);
        if (kids.length > 0) out.set(digest, kids);
      });
    }));
    return out;
  }

  /** Repositories of a source: the registry catalog, or Harbor's project API when robots may not read the catalog. */
  async #repositories(source: SourceConfig, client: RegistryClient, signal?: AbortSignal): Promise<string[]> {
    try {
      return await client.catalog(signal);
    } catch (e) {
      const err = toBridgeError(e);
      const status = Number(err.context.status);
      if (source.kind !== 'harbor' || (status !== 401 && status !== 403)) throw err;
      this.#log.info({ source: source.id, status }, 'the registry catalog is not readable with these credentials; listing repositories through Harbor\'s API');
      const api = HarborApi.forSource(source, this.#log);
      try {
        return await api.listRepositories(signal);
      } finally {
        await api.close();
      }
    }
  }
}
