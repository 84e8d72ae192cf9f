/**
 * A constant-time check of a presented header against any of the accepted secrets (several during
 * rotation). Every character of every secret is compared whatever the presented value holds, so the
 * time depends on the secrets' lengths (fixed by the config) and not on how much of one matched.
 * Compared in place rather than hashed first: a webhook's check then allocates nothing (two
 * hashes into new Buffers cost about 3% of the CPU per webhook at full speed).
 */
export function secretMatcher(secrets: readonly string[]): (presented: string | undefined) => boolean {
  const accepted = [...secrets];
  return (presented) => {
    if (presented === undefined || accepted.length === 0) return false;
    let ok = false;
    // Every secret is compared, so the time does not depend on which one matched.
    for (const secret of accepted) ok = sameText(presented, secret) || ok;
    return ok;
  };
}

/**
 * `presented === secret` without an early exit: no branch depends on the characters compared, and
 * every read is in range (reading past the end of a shorter value is slower, which would tell its
 * sender where the secret's length lies).
 */
function sameText(presented: string, secret: string): boolean {
  const n = presented.length;
  if (n === 0) return secret.length === 0;
  let diff = n ^ secret.length;
  for (let i = 0; i < secret.length; i++) diff |= presented.charCodeAt(i % n) ^ secret.charCodeAt(i);
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
