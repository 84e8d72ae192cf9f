import { createHash, timingSafeEqual } from 'node:crypto';

const digestOf = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Constant-time check of a presented header against any of the accepted secrets (several during
 * rotation). Hashing first makes the comparison independent of the lengths involved.
 */
export function matchesAnySecret(presented: string | undefined, secrets: readonly string[]): boolean {
  if (presented === undefined) return false;
  const p = digestOf(presented);
  let ok = false;
  for (const s of secrets) ok = timingSafeEqual(p, digestOf(s)) || ok;
  return ok;
}

/** Accepts `Bearer <token>` against the configured API tokens. */
export function bearerMatches(header: string | undefined, tokens: readonly string[]): boolean {
  if (!header) return false;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  return m !== null && matchesAnySecret(m[1], tokens);
}
