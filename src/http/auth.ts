import { hash } from 'node:crypto';

/** sha256 as 64 hex characters: a string, so a check allocates no Buffer. */
const digestOf = (s: string): string => hash('sha256', s, 'hex');

/**
 * A constant-time check of a presented header against any of the accepted secrets (several during
 * rotation). Hashing first makes the comparison independent of the lengths involved (what a
 * check costs depends on the presented value's length only); the secrets' digests are computed
 * once, so a request costs one hash whatever the number of secrets.
 */
export function secretMatcher(secrets: readonly string[]): (presented: string | undefined) => boolean {
  const digests = secrets.map(digestOf);
  return (presented) => {
    if (presented === undefined || digests.length === 0) return false;
    const p = digestOf(presented);
    let ok = false;
    // Every secret is compared, so the time does not depend on which one matched.
    for (const d of digests) ok = sameDigest(p, d) || ok;
    return ok;
  };
}

/** Two hex digests of one length compared without an early exit (timingSafeEqual without the Buffers). */
function sameDigest(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
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
