// Token scopes (`repository:<name>:<actions>`), merged per resource so one token request can
// carry every permission a copy needs (target push+pull, mount source pull).
export type Action = 'pull' | 'push' | 'delete' | '*';

export const repoScope = (repo: string, ...actions: Action[]) => `repository:${repo}:${actions.join(',')}`;
export const CATALOG_SCOPE = 'registry:catalog:*';

interface Parsed { type: string; name: string; actions: string[] }

export function parseScope(s: string): Parsed | undefined {
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return { type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',').filter(Boolean) };
}

/** Merges scopes for the same resource, sorted so equal sets give equal cache keys. */
export function mergeScopes(scopes: readonly string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  const passthrough = new Set<string>();
  for (const s of scopes.flatMap((x) => x.split(' ')).filter(Boolean)) {
    const p = parseScope(s);
    if (!p) { passthrough.add(s); continue; }
    const key = `${p.type}:${p.name}`;
    const set = byResource.get(key) ?? new Set<string>();
    p.actions.forEach((a) => set.add(a));
    byResource.set(key, set);
  }
  const order = ['pull', 'push', 'delete'];
  const rank = (a: string) => (order.indexOf(a) < 0 ? 99 : order.indexOf(a));
  const merged = [...byResource].map(([k, set]) => `${k}:${[...set].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).join(',')}`);
  return [...merged, ...passthrough].sort();
}

/** True when the granted scopes cover every action asked for. */
export function scopesCover(granted: readonly string[], wanted: readonly string[]): boolean {
  const g = new Map<string, Set<string>>();
  for (const s of granted) {
    const p = parseScope(s);
    if (p) g.set(`${p.type}:${p.name}`, new Set(p.actions));
  }
  return wanted.every((s) => {
    const p = parseScope(s);
    if (!p) return granted.includes(s);
    const have = g.get(`${p.type}:${p.name}`);
    return !!have && (have.has('*') || p.actions.every((a) => have.has(a)));
  });
}
