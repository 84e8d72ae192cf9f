// A read-only client for the parts of Harbor's REST API the bridge needs: the version probe,
// replication policies and registries (the importer), projects and repositories (listing when the
// registry catalog is refused), and artifacts with their labels (label filters), for Harbor 2.x
// (`/api/v2.0/...`) and 1.10 (`/api/...`). Basic auth (robot names such as `robot$bridge` included); lists are paged with
// `page`/`page_size` and followed through the `Link: <...>; rel="next"` header, with
// `X-Total-Count` as a fallback when Link is absent.
import { request, type Dispatcher } from 'undici';
import { z } from 'zod';
import { BridgeError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { quoteUpstream } from '../observability/scrub.ts';
import type { SourceConfig, TlsConfig } from '../config/schema.ts';
import { createAgent } from '../registry/agent.ts';
import { tlsErrorCode } from '../registry/errors.ts';

export type HarborApiVersion = 'v2' | 'v1';

// Shapes as Harbor serves them. Harbor 2.x omits zero values (go-swagger `omitempty`: a disabled
// policy has no `enabled`, `deletion: false` is absent), 1.10 sends every field, so optional
// fields are read leniently here and a missing boolean means false.
export const HarborRegistrySchema = z.looseObject({
  id: z.number().int(),
  name: z.string().nullish(),
  url: z.string().nullish(),
  type: z.string().nullish(),
});

export const HarborFilterSchema = z.looseObject({
  type: z.string(),
  value: z.unknown(),
  decoration: z.string().nullish(),
});

export const HarborPolicySchema = z.looseObject({
  id: z.number().int(),
  name: z.string().nullish(),
  description: z.string().nullish(),
  src_registry: HarborRegistrySchema.nullish(),
  dest_registry: HarborRegistrySchema.nullish(),
  dest_namespace: z.string().nullish(),
  dest_namespace_replace_count: z.number().int().nullish(),
  filters: z.array(HarborFilterSchema).nullish(),
  trigger: z.looseObject({
    type: z.string().nullish(),
    trigger_settings: z.looseObject({ cron: z.string().nullish() }).nullish(),
  }).nullish(),
  /** 1.10 and 2.x; 2.x sends `replicate_deletion` too and marks `deletion` deprecated. */
  deletion: z.boolean().nullish(),
  replicate_deletion: z.boolean().nullish(),
  override: z.boolean().nullish(),
  enabled: z.boolean().nullish(),
  speed: z.number().int().nullish(),
  copy_by_chunk: z.boolean().nullish(),
});

const NamedSchema = z.looseObject({ name: z.string() });

/** 2.x `Artifact` (with_tag, with_label): tags and labels are lists of objects with a `name`. */
export const HarborArtifactSchema = z.looseObject({
  digest: z.string(),
  tags: z.array(NamedSchema).nullish(),
  labels: z.array(NamedSchema).nullish(),
});

/** 1.10 `TagDetail` (`/api/repositories/{repo}/tags`): one entry per tag, labels on the tag. */
export const HarborV1TagSchema = z.looseObject({
  name: z.string(),
  digest: z.string(),
  labels: z.array(NamedSchema).nullish(),
});

/** An artifact as the label filters need it: its digest, tags and label names. */
export interface HarborArtifact {
  digest: string;
  tags: string[];
  labels: string[];
}

export type HarborRegistry = z.infer<typeof HarborRegistrySchema>;
export type HarborPolicy = z.infer<typeof HarborPolicySchema>;

export interface HarborApiOptions {
  /** Harbor's base URL (the `url` of a configured source). */
  baseUrl: string;
  username?: string;
  password?: string;
  tls?: Partial<TlsConfig>;
  /** Names the source in errors. */
  sourceId: string;
  logger: Logger;
  dispatcher?: Dispatcher;
  /** Harbor 2.x refuses page_size above 100; 1.10 caps it at 500. */
  pageSize?: number;
  timeoutMs?: number;
}

const MAX_PAGES = 10_000;

export class HarborApi {
  readonly #base: URL;
  readonly #auth: string | undefined;
  readonly #user: string | undefined;
  readonly #sourceId: string;
  readonly #dispatcher: Dispatcher;
  readonly #ownDispatcher: boolean;
  readonly #pageSize: number;
  readonly #timeoutMs: number;
  readonly #log: Logger;

  constructor(o: HarborApiOptions) {
    this.#base = new URL(o.baseUrl.replace(/\/+$/, '') + '/');
    this.#user = o.username;
    this.#auth = o.username !== undefined ? `Basic ${Buffer.from(`${o.username}:${o.password ?? ''}`, 'utf8').toString('base64')}` : undefined;
    this.#sourceId = o.sourceId;
    this.#ownDispatcher = !o.dispatcher;
    this.#dispatcher = o.dispatcher ?? createAgent({ tls: o.tls, idleTimeoutMs: o.timeoutMs ?? 30_000 });
    this.#pageSize = o.pageSize ?? 100;
    this.#timeoutMs = o.timeoutMs ?? 30_000;
    this.#log = o.logger.child({ component: 'harbor-api', source: o.sourceId });
  }

  /** The client for a configured Harbor source: its URL, credentials and TLS settings. */
  static forSource(source: Pick<SourceConfig, 'id' | 'url' | 'credentials' | 'tls'>, logger: Logger): HarborApi {
    return new HarborApi({
      baseUrl: source.url,
      username: source.credentials?.username,
      password: source.credentials?.password,
      tls: source.tls,
      sourceId: source.id,
      logger,
    });
  }

  /** `v2` when `/api/v2.0/systeminfo` answers, `v1` (1.10 and earlier) when only `/api/systeminfo` does. */
  async detectVersion(signal?: AbortSignal): Promise<{ api: HarborApiVersion; harborVersion: string | undefined }> {
    const v2 = await this.#get('api/v2.0/systeminfo', [200, 404], {}, signal);
    if (v2.status === 200) return { api: 'v2', harborVersion: versionOf(v2.body) };
    const v1 = await this.#get('api/systeminfo', [200, 404], {}, signal);
    if (v1.status === 200) return { api: 'v1', harborVersion: versionOf(v1.body) };
    throw new BridgeError('HSB_HARBOR_NOT_HARBOR', `source ${this.#sourceId}: ${this.#base.origin} answers neither /api/v2.0/systeminfo nor /api/systeminfo; is it a Harbor?`, {
      retryable: false, context: { source: this.#sourceId },
    });
  }

  /** Every replication policy, all pages, as raw JSON objects (validated one by one by the importer). */
  listPolicies(api: HarborApiVersion): Promise<unknown[]> {
    return this.#listAll(api === 'v2' ? 'api/v2.0/replication/policies' : 'api/replication/policies');
  }

  async listRegistries(api: HarborApiVersion): Promise<HarborRegistry[]> {
    const raw = await this.#listAll(api === 'v2' ? 'api/v2.0/registries' : 'api/registries');
    const out: HarborRegistry[] = [];
    for (const r of raw) {
      const parsed = HarborRegistrySchema.safeParse(r);
      if (parsed.success) out.push(parsed.data);
      else this.#log.warn({ issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) }, 'ignoring a registry entry Harbor sent in an unexpected shape');
    }
    return out;
  }

  /**
   * Every repository (`project/repo`) these credentials can see, project by project: 2.x lists a
   * project's repositories by project name, 1.10 by `project_id` (it has no /api/v2.0).
   */
  async listRepositories(signal?: AbortSignal): Promise<string[]> {
    const version = (await this.detectVersion(signal)).api;
    const out: string[] = [];
    for (const p of await this.#listAll(version === 'v2' ? 'api/v2.0/projects' : 'api/projects', {}, [], signal)) {
      const { name, project_id: id } = (p ?? {}) as { name?: unknown; project_id?: unknown };
      if (typeof name !== 'string' || name === '') continue;
      const repositories = version === 'v2'
        ? await this.#listAll(`api/v2.0/projects/${encodeURIComponent(name)}/repositories`, {}, [], signal)
        : typeof id === 'number' ? await this.#listAll('api/repositories', { project_id: String(id) }, [], signal) : [];
      for (const r of repositories) {
        const full = (r as { name?: unknown } | null)?.name;
        if (typeof full === 'string' && full !== '') out.push(full);
      }
    }
    return out;
  }

  /**
   * Every artifact of a repository with its tags and label names. 2.x: one paged list of
   * artifacts. 1.10 puts labels on tags: one entry per tag, so a digest may appear more than once.
   * An unknown repository is empty.
   */
  async listArtifacts(api: HarborApiVersion, repository: string, signal?: AbortSignal): Promise<HarborArtifact[]> {
    if (api === 'v1') {
      const res = await this.#get(`api/repositories/${repositoryPath(repository)}/tags`, [200, 404], { detail: 'true' }, signal);
      if (res.status === 404 || res.body === null) return [];
      if (!Array.isArray(res.body)) throw this.#error('HSB_HARBOR_RESPONSE', `the tags of ${repository} are not a JSON array`, res.status, false);
      return res.body.map((t) => this.#parse(HarborV1TagSchema, t, repository)).map((t) => ({ digest: t.digest, tags: [t.name], labels: names(t.labels) }));
    }
    const raw = await this.#listAll(v2ArtifactsPath(repository), { with_tag: 'true', with_label: 'true' }, [404], signal);
    return raw.map((a) => this.#parse(HarborArtifactSchema, a, repository)).map((a) => ({ digest: a.digest, tags: names(a.tags), labels: names(a.labels) }));
  }

  /** The label names of one artifact (by tag or digest), or undefined when Harbor does not have it. */
  async artifactLabels(api: HarborApiVersion, repository: string, reference: string, signal?: AbortSignal): Promise<string[] | undefined> {
    if (api === 'v1') {
      // 1.10 labels tags; an artifact pushed by digest is found through its tags.
      if (reference.includes(':')) {
        const found = (await this.listArtifacts(api, repository, signal)).filter((a) => a.digest === reference);
        return found.length === 0 ? undefined : [...new Set(found.flatMap((a) => a.labels))];
      }
      const res = await this.#get(`api/repositories/${repositoryPath(repository)}/tags/${encodeURIComponent(reference)}`, [200, 404], {}, signal);
      if (res.status === 404 || res.body === null) return undefined;
      return names(this.#parse(HarborV1TagSchema, res.body, repository).labels);
    }
    const res = await this.#get(`${v2ArtifactsPath(repository)}/${encodeURIComponent(reference)}`, [200, 404], { with_label: 'true', with_tag: 'false' }, signal);
    if (res.status === 404 || res.body === null) return undefined;
    return names(this.#parse(HarborArtifactSchema, res.body, repository).labels);
  }

  async close(): Promise<void> {
    if (this.#ownDispatcher) await this.#dispatcher.close();
  }

  #parse<T extends z.ZodType>(schema: T, value: unknown, repository: string): z.infer<T> {
    const r = schema.safeParse(value);
    if (r.success) return r.data;
    throw this.#error('HSB_HARBOR_RESPONSE', `an artifact of ${repository} came back in an unexpected shape (${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ').slice(0, 300)})`, 200, false);
  }

  /** `absent`: statuses that mean "nothing here" (an empty list) rather than an error. */
  async #listAll(path: string, query: Record<string, string> = {}, absent: number[] = [], signal?: AbortSignal): Promise<unknown[]> {
    const items: unknown[] = [];
    let page = 1;
    for (let n = 0; n < MAX_PAGES; n++) {
      const res = await this.#get(path, [200, ...absent], { ...query, page: String(page), page_size: String(this.#pageSize) }, signal);
      if (res.status !== 200) {
        // "Nothing here" only as the first answer: a list that vanishes half-way is an error.
        if (page === 1 && items.length === 0) break;
        throw this.#error('HSB_HARBOR_RESPONSE', `${path} answered ${res.status} on page ${page}`, res.status, true);
      }
      if (!Array.isArray(res.body)) {
        // go-swagger answers an empty list as `[]`; tolerate `null` from older servers.
        if (res.body === null) break;
        throw this.#error('HSB_HARBOR_RESPONSE', `${path} did not return a JSON array`, res.status, false);
      }
      items.push(...res.body);
      const next = nextPage(res.headers.link, page);
      const total = Number(res.headers.total ?? NaN);
      if (next !== undefined) page = next;
      else if (Number.isFinite(total) && items.length < total && res.body.length > 0) page += 1;
      else break;
    }
    this.#log.debug({ path, count: items.length }, 'listed');
    return items;
  }

  async #get(path: string, expect: number[], query: Record<string, string> = {}, signal?: AbortSignal): Promise<{ status: number; body: unknown; headers: { link?: string; total?: string } }> {
    const url = new URL(path, this.#base);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: 'GET',
        dispatcher: this.#dispatcher,
        headers: { accept: 'application/json', ...(this.#auth ? { authorization: this.#auth } : {}) },
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(this.#timeoutMs)]) : AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (e) {
      // A certificate problem does not go away by itself: fix tls.caFile / tls.insecure.
      const tls = tlsErrorCode(e);
      if (tls) {
        throw new BridgeError('HSB_HARBOR_TLS', `source ${this.#sourceId}: TLS connection to Harbor at ${this.#base.origin} failed: ${tls}`, {
          retryable: false, context: { source: this.#sourceId, errno: tls }, cause: e,
        });
      }
      throw new BridgeError('HSB_HARBOR_UNREACHABLE', `source ${this.#sourceId}: cannot reach Harbor at ${this.#base.origin}: ${(e as Error).message}`, {
        retryable: true, context: { source: this.#sourceId }, cause: e,
      });
    }
    const text = await res.body.text();
    const header = (n: string) => {
      const v = res.headers[n];
      return Array.isArray(v) ? v.join(', ') : v;
    };
    if (!expect.includes(res.statusCode)) {
      const why = harborMessage(text);
      if (res.statusCode === 401) {
        throw this.#error('HSB_HARBOR_UNAUTHORIZED', `Harbor refused the credentials${this.#user ? ` of "${this.#user}"` : ' (none configured)'} on ${url.pathname}${why ? `: ${why}` : ''}`, 401, false);
      }
      if (res.statusCode === 403) {
        const need = url.pathname.includes('/replication/') || url.pathname.endsWith('/registries')
          ? 'a system administrator or a system robot account allowed to list replication policies and registries'
          : 'an account (or robot) that may read the projects, repositories and artifacts to replicate';
        throw this.#error('HSB_HARBOR_FORBIDDEN', `"${this.#user ?? 'anonymous'}" may not read ${url.pathname}${why ? ` (${why})` : ''}: use ${need}`, 403, false);
      }
      throw this.#error('HSB_HARBOR_RESPONSE', `GET ${url.pathname} answered ${res.statusCode}${why ? `: ${why}` : ''}`, res.statusCode, res.statusCode >= 500 || res.statusCode === 429);
    }
    let body: unknown = null;
    if (res.statusCode === 200) {
      try {
        body = text === '' ? null : JSON.parse(text);
      } catch {
        throw this.#error('HSB_HARBOR_RESPONSE', `GET ${url.pathname} did not return JSON`, res.statusCode, false);
      }
    }
    return { status: res.statusCode, body, headers: { link: header('link'), total: header('x-total-count') } };
  }

  #error(code: string, message: string, status: number, retryable: boolean): BridgeError {
    return new BridgeError(code, `source ${this.#sourceId}: ${message}`, { retryable, context: { source: this.#sourceId, status } });
  }
}

/**
 * 2.x addresses a repository as project + the rest, the rest URL-encoded twice when it holds a
 * `/` (Harbor decodes the path once before routing): `proj/a/b` → `projects/proj/repositories/a%252Fb`.
 */
export function v2ArtifactsPath(repository: string): string {
  const slash = repository.indexOf('/');
  const project = slash < 0 ? repository : repository.slice(0, slash);
  const rest = slash < 0 ? '' : repository.slice(slash + 1);
  return `api/v2.0/projects/${encodeURIComponent(project)}/repositories/${encodeURIComponent(encodeURIComponent(rest))}/artifacts`;
}

/** 1.10 routes `/api/repositories/*` with the slashes of the repository kept. */
function repositoryPath(repository: string): string {
  return repository.split('/').map(encodeURIComponent).join('/');
}

function names(list: readonly { name: string }[] | null | undefined): string[] {
  return (list ?? []).map((x) => x.name);
}

/** The page number a `Link` header's rel="next" entry points at (Harbor's own URLs are relative). */
export function nextPage(link: string | undefined, current: number): number | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]*)>(.*)/.exec(part.trim());
    if (!m || !/;\s*rel="?next"?/i.test(m[2]!)) continue;
    const page = Number(new URL(m[1]!, 'http://x/').searchParams.get('page'));
    // Only ever move forward: a server that links back to the same page must not loop.
    return Number.isInteger(page) && page > current ? page : current + 1;
  }
  return undefined;
}

/** Harbor 2.x errors are `{"errors":[{"code","message"}]}`, 1.10's `{"code":401,"message":"..."}`. */
export function harborMessage(text: string): string {
  try {
    const j = JSON.parse(text) as { errors?: { code?: string; message?: string }[]; message?: string };
    if (Array.isArray(j.errors) && j.errors.length) return quoteUpstream(j.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; '));
    if (typeof j.message === 'string') return quoteUpstream(j.message);
  } catch { /* not JSON */ }
  return quoteUpstream(text);
}

function versionOf(body: unknown): string | undefined {
  const v = (body as { harbor_version?: unknown } | null)?.harbor_version;
  return typeof v === 'string' ? v : undefined;
}
