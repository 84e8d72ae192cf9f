// Tag and repository listing, following `Link: <...>; rel="next"` pages.
import type { Transport } from './transport.ts';
import { CATALOG_SCOPE, repoScope } from './scope.ts';

const PAGE = 1000;
const LIST_MAX_BYTES = 16 * 1024 * 1024;

/** The next page's path+query from a Link header, when there is one. */
export function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(part);
    if (m) return m[1];
  }
  return undefined;
}

async function pages(t: Transport, first: string, scopes: string[], key: 'tags' | 'repositories', repo?: string, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  let next: string | undefined = first;
  for (let i = 0; next && i < 100_000; i++) {
    const res = await t.send({ method: 'GET', path: next, scopes, expect: [200, 404], ctx: repo ? { repo } : {}, signal });
    if (res.status === 404) { await res.discard(); return out; }
    const body = JSON.parse((await t.readBody(res, LIST_MAX_BYTES)).toString('utf8')) as Record<string, unknown>;
    const list = body[key];
    if (Array.isArray(list)) out.push(...list.filter((x): x is string => typeof x === 'string'));
    const link = nextLink(res.header('link'));
    next = link && link !== next ? link : undefined;
  }
  return out;
}

/** Every tag of a repository; [] when the repository does not exist. */
export function tagList(t: Transport, repo: string, signal?: AbortSignal): Promise<string[]> {
  return pages(t, `/v2/${repo}/tags/list?n=${PAGE}`, [repoScope(repo, 'pull')], 'tags', repo, signal);
}

export function catalogList(t: Transport, signal?: AbortSignal): Promise<string[]> {
  return pages(t, `/v2/_catalog?n=${PAGE}`, [CATALOG_SCOPE], 'repositories', undefined, signal);
}
