import { BridgeError } from '../errors.ts';

// SWR's published naming rules (API reference, "Creating an Organization" and
// "Deleting an Image with a Specified Tag"). Checked before any traffic so a bad policy
// rewrite fails once, permanently, instead of after a round trip per task.

/** Organisation: 1–64 chars of [a-z0-9._-], starts with a letter, ends with a letter or
 * digit; separators never touch each other, except that two underscores may. */
const ORG_RE = /^[a-z][a-z0-9]*(?:(?:[._-]|__)[a-z0-9]+)*$/;
export const SWR_ORG_MAX = 64;

/** Repository (the path after the organisation): 1–128 chars of [a-z0-9./_-], starts and
 * ends with a letter or digit, same separator rule, slashes allowed as separators. */
const REPO_RE = /^[a-z0-9]+(?:(?:[./_-]|__)[a-z0-9]+)*$/;
export const SWR_REPO_MAX = 128;

export function orgNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'organisation name is empty';
  if (name.length > SWR_ORG_MAX) return `organisation name is longer than ${SWR_ORG_MAX} characters`;
  if (!/^[a-z0-9._-]+$/.test(name)) return 'organisation name may only contain lowercase letters, digits, ".", "_" and "-"';
  if (!/^[a-z]/.test(name)) return 'organisation name must start with a lowercase letter';
  if (!/[a-z0-9]$/.test(name)) return 'organisation name must end with a lowercase letter or digit';
  if (!ORG_RE.test(name)) return 'organisation name has adjacent separators (only "__" is allowed)';
  return undefined;
}

export function repoNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'repository name is empty';
  if (name.length > SWR_REPO_MAX) return `repository name is longer than ${SWR_REPO_MAX} characters`;
  if (!/^[a-z0-9./_-]+$/.test(name)) return 'repository name may only contain lowercase letters, digits, ".", "/", "_" and "-"';
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'repository name must start and end with a lowercase letter or digit';
  if (!REPO_RE.test(name)) return 'repository name has adjacent separators (only "__" is allowed)';
  return undefined;
}

/**
 * What SWR would refuse in a policy's `dest_namespace` for an SWR target, known before any
 * artifact is planned: its first segment is the organisation of every repository it names.
 */
export function destNamespaceProblem(destNamespace: string): string | undefined {
  if (destNamespace === '') return undefined;
  const org = destNamespace.split('/')[0]!;
  const problem = orgNameProblem(org);
  return problem === undefined ? undefined : `SWR organisation "${org}": ${problem}`;
}

/** An SWR domain suffix as endpoints are built from it (no leading or trailing dots, lower case); undefined when it is not a DNS domain. */
export function swrDomain(raw: string): string | undefined {
  const domain = raw.replace(/^\.+|\.+$/g, '').toLowerCase();
  return /^[a-z0-9-]+(?:\.[a-z0-9-]+)+$/.test(domain) ? domain : undefined;
}

export function isValidOrgName(name: string): boolean {
  return orgNameProblem(name) === undefined;
}

export function isValidRepoName(name: string): boolean {
  return repoNameProblem(name) === undefined;
}

export interface SwrPath {
  /** The SWR organisation (first path segment). */
  namespace: string;
  /** Everything after the organisation, slashes kept. */
  repository: string;
}

/** Split `org/rest` without validating; undefined when there is no `/`. */
export function splitSwrPath(path: string): SwrPath | undefined {
  const i = path.indexOf('/');
  if (i <= 0 || i === path.length - 1) return undefined;
  return { namespace: path.slice(0, i), repository: path.slice(i + 1) };
}

function nameInvalid(path: string, reason: string): BridgeError {
  return new BridgeError('HSB_SWR_NAME_INVALID', `"${path}" is not a valid SWR repository path: ${reason}`, {
    retryable: false,
    context: { path, reason },
  });
}

/** Validate a destination repository (`org/repo[/more]`) against SWR's rules and split it.
 * Throws BridgeError HSB_SWR_NAME_INVALID (not retryable). */
export function validateSwrPath(destRepository: string): SwrPath {
  const split = splitSwrPath(destRepository);
  if (!split) throw nameInvalid(destRepository, 'SWR needs "<organisation>/<repository>"');
  const orgProblem = orgNameProblem(split.namespace);
  if (orgProblem) throw nameInvalid(destRepository, `organisation "${split.namespace}": ${orgProblem}`);
  const repoProblem = repoNameProblem(split.repository);
  if (repoProblem) throw nameInvalid(destRepository, repoProblem);
  return split;
}

/** Throws HSB_SWR_NAME_INVALID unless `name` is a valid organisation name. */
export function validateOrgName(name: string): void {
  const problem = orgNameProblem(name);
  if (problem) throw nameInvalid(name, problem);
}

/** SWR's management API takes nested repositories with `/` written as `$`. */
export function repoPathParam(repository: string): string {
  return repository.replaceAll('/', '$');
}
