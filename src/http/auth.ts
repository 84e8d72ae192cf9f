import { hash, timingSafeEqual } from 'node:crypto';

const digestOf = (s: string): Buffer => hash('sha256', s, 'buffer');

/**
 * A constant-time check of a presented header against any of the accepted secrets (several during
 * rotation). Hashing first makes the comparison independent of the lengths involved; the secrets'
 * digests are computed once, so a request costs one hash whatever the number of secrets.
 */
export function secretMatcher(secrets: readonly string[]): (presented: string | undefined) => boolean {
  const digests = secrets.map(digestOf);
  return (presented) => {
    if (presented === undefined || digests.length === 0) return false;
    const p = digestOf(presented);
    let ok = false;
    // Every secret is compared, so the time does not depend on which one matched.
    for (const d of digests) ok = timingSafeEqual(p, d) || ok;
    return ok;
  };
}

/** One-off form of `secretMatcher(secrets)(presented)`. */
export function matchesAnySecret(presented: string | undefined, secrets: readonly string[]): boolean {
  return secretMatcher(secrets)(presented);
}

/** Accepts `Bearer <token>` against the configured API tokens. */
export function bearerMatches(header: string | undefined, tokens: readonly string[]): boolean {
  if (!header) return false;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  return m !== null && matchesAnySecret(m[1], tokens);
}
