import { BridgeError } from '../errors.ts';

// SWR naming rules (SWR API "Creating an Organization"; repository names as the OCI
// distribution spec). Checked before a task is planned so a bad name is reported once, as a
// policy problem, instead of failing every copy at the target.

export const SWR_ORG_MAX = 64;
export const SWR_REPO_MAX = 128;

// Starts with a letter, ends with a letter or digit; separators `.`, `_`, `-` one at a time,
// or exactly `__`.
const ORG_RE = /^[a-z][a-z0-9]*(?:(?:[._-]|__)[a-z0-9]+)*$/;
// OCI distribution path component.
const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

function nameError(name: string, rule: string): BridgeError {
  return new BridgeError('HSB_SWR_NAME_INVALID', `SWR name "${name}" is invalid: ${rule}`, {
    retryable: false,
    context: { name },
  });
}

/** Why `name` cannot be an SWR organisation, or undefined when it can. */
export function swrOrganisationError(name: string): string | undefined {
  if (name.length < 1 || name.length > SWR_ORG_MAX) return `an organisation name has 1 to ${SWR_ORG_MAX} characters (got ${name.length})`;
  if (!/^[a-z0-9._-]+$/.test(name)) return 'an organisation name uses only lowercase letters, digits, ".", "_" and "-"';
  if (!/^[a-z]/.test(name)) return 'an organisation name starts with a lowercase letter';
  if (!/[a-z0-9]$/.test(name)) return 'an organisation name ends with a lowercase letter or digit';
  if (!ORG_RE.test(name)) return 'in an organisation name ".", "_" and "-" cannot be next to each other, except "__"';
  return undefined;
}

/** Throws HSB_SWR_NAME_INVALID unless `name` is a valid SWR organisation name. */
export function checkSwrOrganisation(name: string): void {
  const why = swrOrganisationError(name);
  if (why) throw nameError(name, why);
}

/**
 * Throws HSB_SWR_NAME_INVALID unless `repository` (`org/path/to/image`) can live in SWR: a valid
 * organisation, then a repository path of at most 128 characters made of OCI name components.
 */
export function checkSwrRepository(repository: string): void {
  const slash = repository.indexOf('/');
  if (slash < 0) throw nameError(repository, 'an SWR repository needs an organisation: "organisation/name"');
  const org = repository.slice(0, slash);
  const why = swrOrganisationError(org);
  if (why) throw nameError(repository, `organisation "${org}": ${why}`);
  const rest = repository.slice(slash + 1);
  if (rest.length > SWR_REPO_MAX) throw nameError(repository, `the repository path after the organisation has at most ${SWR_REPO_MAX} characters (got ${rest.length})`);
  for (const c of rest.split('/')) {
    if (!COMPONENT_RE.test(c)) throw nameError(repository, `path component "${c}" must be lowercase letters and digits separated by ".", "_", "__" or "-"`);
  }
}
