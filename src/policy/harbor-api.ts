// A read-only client for the parts of Harbor's REST API the policy importer needs: the version
// probe, replication policies and registries, for Harbor 2.x (`/api/v2.0/...`) and 1.10
// (`/api/...`). Basic auth (robot names such as `robot$bridge` included); lists are paged with
// `page`/`page_size` and followed through the `Link: <...>; rel="next"` header, with
// `X-Total-Count` as a fallback when Link is absent.
import { request, type Dispatcher } from 'undici';
import { z } from 'zod';
import { BridgeError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { TlsConfig } from '../config/schema.ts';
import { createAgent } from '../registry/agent.ts';

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

  /** `v2` when `/api/v2.0/systeminfo` answers, `v1` (1.10 and earlier) when only `/api/systeminfo` does. */
  async detectVersion(): Promise<{ api: HarborApiVersion; harborVersion: string | undefined }> {
    const v2 = await this.#get('api/v2.0/systeminfo', [200, 404]);
    if (v2.status === 200) return { api: 'v2', harborVersion: versionOf(v2.body) };
    const v1 = await this.#get('api/systeminfo', [200, 404]);
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

  async close(): Promise<void> {
    if (this.#ownDispatcher) await this.#dispatcher.close();
  }

  async #listAll(path: string): Promise<unknown[]> {
    const items: unknown[] = [];
    let page = 1;
    for (let n = 0; n < MAX_PAGES; n++) {
      const res = await this.#get(path, [200], { page: String(page), page_size: String(this.#pageSize) });
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

  async #get(path: string, expect: number[], query: Record<string, string> = {}): Promise<{ status: number; body: unknown; headers: { link?: string; total?: string } }> {
    const url = new URL(path, this.#base);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: 'GET',
        dispatcher: this.#dispatcher,
        headers: { accept: 'application/json', ...(this.#auth ? { authorization: this.#auth } : {}) },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (e) {
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
        throw this.#error('HSB_HARBOR_FORBIDDEN', `"${this.#user ?? 'anonymous'}" may not read ${url.pathname}${why ? ` (${why})` : ''}: use a system administrator or a system robot account allowed to list replication policies and registries`, 403, false);
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
    if (Array.isArray(j.errors) && j.errors.length) return j.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    if (typeof j.message === 'string') return j.message;
  } catch { /* not JSON */ }
  return text.trim().slice(0, 200);
}

function versionOf(body: unknown): string | undefined {
  const v = (body as { harbor_version?: unknown } | null)?.harbor_version;
  return typeof v === 'string' ? v : undefined;
}
