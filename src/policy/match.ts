import type { Filter, Policy } from './model.ts';
import { globMatch } from './glob.ts';

// Harbor's replication filters (pkg/reg/filter): every filter must pass. `name` globs the full
// `project/repo` path; `tag` globs each tag and keeps the artifact when any tag passes every tag
// filter (an untagged artifact is matched as the tag ""); `label` needs all of its labels on the
// artifact. `resource` (`image` or `artifact`) narrows nothing: Harbor 2.x validates it but builds
// no filter from it (pkg/reg/filter BuildArtifactFilters takes tag and label filters; the adapters
// use name), and both values copy every artifact, images, charts and other OCI artifacts alike.
// `excludes` inverts a tag or label filter. Empty patterns and empty label lists pass everything, `excludes` or not.

export type ArtifactRef = {
  repository: string;
  /** Empty for an untagged artifact (e.g. a push by digest). */
  tags: string[];
  /** Unknown labels (webhook events carry none) count as no labels, as for a fresh push in Harbor. */
  labels?: string[];
};

export type FilterKind = 'name' | 'tag' | 'label';

type PolicyFilters = Pick<Policy, 'filters'>;

function ofType(policy: PolicyFilters, type: Filter['type']): Filter[] {
  return policy.filters.filter((f) => f.type === type);
}

// The schema makes name/tag values strings; an array (unvalidated input) passes if any entry does.
// Harbor skips a filter with an empty pattern whatever its decoration: `excludes ""` excludes nothing.
function globPasses(f: Filter, name: string): boolean {
  const patterns = (typeof f.value === 'string' ? [f.value] : f.value).filter((p) => p !== '');
  if (patterns.length === 0) return true;
  return passes(f, patterns.some((p) => globMatch(p, name)));
}

function passes(f: Filter, matched: boolean): boolean {
  return f.decoration === 'excludes' ? !matched : matched;
}

/** Every name filter passes for the full repository path (`project/repo`). */
export function nameMatches(policy: PolicyFilters, repository: string): boolean {
  return ofType(policy, 'name').every((f) => globPasses(f, repository));
}

/** Every tag filter passes for one tag; `undefined` (untagged) is matched as "". */
export function tagMatches(policy: PolicyFilters, tag: string | undefined): boolean {
  return ofType(policy, 'tag').every((f) => globPasses(f, tag ?? ''));
}

/** The tags Harbor would replicate from a tagged artifact: those passing every tag filter. */
export function matchingTags(policy: PolicyFilters, tags: readonly string[]): string[] {
  return tags.filter((t) => tagMatches(policy, t));
}

/** Every label filter passes: `matches` needs all its labels present, `excludes` needs one missing. */
export function labelsMatch(policy: PolicyFilters, labels: readonly string[] = []): boolean {
  const have = new Set(labels);
  return ofType(policy, 'label').every((f) => {
    const want = typeof f.value === 'string' ? (f.value === '' ? [] : [f.value]) : f.value;
    if (want.length === 0) return true;
    return passes(f, want.every((l) => have.has(l)));
  });
}

/** The policy has a label filter that is not empty (an empty one passes everything). */
export function hasLabelFilters(policy: PolicyFilters): boolean {
  return ofType(policy, 'label').some((f) => (typeof f.value === 'string' ? f.value !== '' : f.value.length > 0));
}

/** The first filter kind that rejects the artifact (name, label, tag), or undefined. */
export function firstMismatch(policy: PolicyFilters, artifact: ArtifactRef): FilterKind | undefined {
  if (!nameMatches(policy, artifact.repository)) return 'name';
  if (!labelsMatch(policy, artifact.labels)) return 'label';
  const tagged = artifact.tags.length > 0;
  if (tagged ? matchingTags(policy, artifact.tags).length === 0 : !tagMatches(policy, undefined)) return 'tag';
  return undefined;
}

export function matchesPolicy(policy: PolicyFilters, artifact: ArtifactRef): boolean {
  return firstMismatch(policy, artifact) === undefined;
}
