import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { BridgeError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import { SharedFlight } from '../registry/shared-flight.ts';
import { signRequest } from './signer.ts';
import { repoPathParam, validateOrgName } from './names.ts';
import { SWR_CODE_BUSY, SWR_CODE_ORG_EXISTS, isSwrCode, parseSwrErrorBody, swrErrorFromResponse, type SwrOperation } from './api-errors.ts';

export type SwrApiAuth =
  | { kind: 'aksk'; accessKey: string; secretKey: string }
  | { kind: 'token'; token: string }
  /** No management API use (login pair only, or an edition whose API differs): organisations are assumed to exist. */
  | { kind: 'none'; why?: string };

export interface SwrApiOptions {
  apiUrl: string;
  auth: SwrApiAuth;
  /** Bring your own undici dispatcher; otherwise one Agent is made from `tls` and closed by close(). */
  dispatcher?: Dispatcher;
  tls?: { insecure?: boolean; caFile?: string | undefined };
  /** Clock used for X-Sdk-Date (injectable for tests). */
  now?: () => Date;
  logger?: Logger;
  timeoutMs?: number;
  /** Extra attempts after a throttled answer, waiting Retry-After (or a backoff) in between. */
  throttleRetries?: number;
  /** A Retry-After longer than this is not waited for in-process; the error carries it instead. */
  maxRetryAfterMs?: number;
}

export interface SwrNamespace {
  id?: number;
  name: string;
  creator_name?: string;
  /** 7 manage, 3 write, 1 read. */
  auth?: number;
}

export type EnsureNamespaceResult = 'created' | 'existing' | 'cached' | 'unmanaged';

interface SwrResponse {
  status: number;
  body: string;
  retryAfter: string | string[] | undefined;
}

const WRITE_AUTH = 3;
/** SWR's 403s for a caller without a permission (its error-code appendix), as opposed to 4039001 "not yours". */
const SWR_CODES_NO_PERMISSION = new Set(['SVCSTG.SWR.4037017', 'SVCSTG.SWR.4039002']);

/** Client for the parts of SWR's management API the bridge needs: organisations and tag deletion. */
export class SwrApi {
  readonly apiUrl: string;
  #auth: SwrApiAuth;
  #dispatcher: Dispatcher;
  #ownDispatcher: Agent | undefined;
  #now: () => Date;
  #log: Logger;
  #timeoutMs: number;
  #throttleRetries: number;
  #maxRetryAfterMs: number;
  #known = new Set<string>();
  readonly #ensuring = new SharedFlight<EnsureNamespaceResult>();

  constructor(opts: SwrApiOptions) {
    const u = new URL(opts.apiUrl);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new BridgeError('HSB_SWR_CONFIG', `SWR apiUrl must be http(s): ${opts.apiUrl}`);
    this.apiUrl = opts.apiUrl.replace(/\/+$/, '');
    this.#auth = opts.auth;
    if (opts.dispatcher) {
      this.#dispatcher = opts.dispatcher;
    } else {
      // Added to the public roots, as for the registry: a private registry's CA must not cost the
      // trust in SWR's public API host.
      let ca: string[] | undefined;
      try {
        ca = opts.tls?.caFile ? [...rootCertificates, readFileSync(opts.tls.caFile, 'utf8')] : undefined;
      } catch (e) {
        throw new BridgeError('HSB_SWR_CONFIG', `cannot read SWR CA file ${opts.tls?.caFile}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e });
      }
      this.#ownDispatcher = new Agent({ connect: { rejectUnauthorized: !opts.tls?.insecure, ...(ca ? { ca } : {}) } });
      this.#dispatcher = this.#ownDispatcher;
    }
    this.#now = opts.now ?? (() => new Date());
    this.#log = opts.logger ?? silentLogger;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#throttleRetries = opts.throttleRetries ?? 2;
    this.#maxRetryAfterMs = opts.maxRetryAfterMs ?? 10_000;
  }

  /** How management calls are authenticated (never the secret itself). */
  get authKind(): SwrApiAuth['kind'] {
    return this.#auth.kind;
  }

  /** Whether this client can call the management API at all. */
  get managed(): boolean {
    return this.#auth.kind !== 'none';
  }

  /** Namespaces known to exist and be usable (created or verified by this process). */
  knownNamespaces(): string[] {
    return [...this.#known];
  }

  /** Drop a namespace from the cache (e.g. after a push was refused for it). */
  forgetNamespace(ns: string): void {
    this.#known.delete(ns);
  }

  /**
   * Make sure organisation `ns` exists and is ours. Creates it (201), or on 409 (exists) or 403
   * (these credentials may not create organisations) checks with GET that they can see it with
   * write access; if not, another tenant owns the name (SWR organisation names are global per
   * region) → HSB_SWR_NAMESPACE_TAKEN, or after a 403 the refusal to create it.
   * Results are cached; concurrent calls for one name share one round trip.
   */
  async ensureNamespace(ns: string, signal?: AbortSignal): Promise<EnsureNamespaceResult> {
    validateOrgName(ns);
    if (this.#known.has(ns)) return 'cached';
    if (this.#auth.kind === 'none') return 'unmanaged';
    // Shared by the tasks that need it, bounded by the API timeout rather than by one task's signal.
    return this.#ensuring.run(ns, () => this.#ensure(ns), signal);
  }

  async #ensure(ns: string): Promise<EnsureNamespaceResult> {
    const created = await this.#call('createNamespace', 'POST', '/v2/manage/namespaces', { namespace: ns }, { namespace: ns });
    if (created.status === 201 || created.status === 200) {
      this.#known.add(ns);
      this.#log.info({ namespace: ns }, 'created SWR organisation');
      return 'created';
    }
    // 409 means "exists" only with that code (or none); SWR's busy 409 is a throttle (#call waited it out).
    // 403: these credentials may not create organisations (an IAM user given Write on organisations
    // made in the console); the organisation may still exist and be writable for them.
    const conflict = parseSwrErrorBody(created.body).code;
    const exists = created.status === 409 && (conflict === undefined || conflict === SWR_CODE_ORG_EXISTS);
    if (!exists && created.status !== 403) throw this.#error('createNamespace', created, { namespace: ns });
    const found = await this.getNamespace(ns);
    if (!found && created.status === 403) throw this.#error('createNamespace', created, { namespace: ns });
    if (!found) {
      throw new BridgeError('HSB_SWR_NAMESPACE_TAKEN', `SWR organisation "${ns}" exists but is not visible to these credentials; another tenant owns it — choose another dest_namespace`, {
        retryable: false,
        context: { namespace: ns },
      });
    }
    if (found.auth !== undefined && found.auth < WRITE_AUTH) {
      throw new BridgeError('HSB_SWR_NAMESPACE_TAKEN', `SWR organisation "${ns}" is visible but read-only to these credentials (auth ${found.auth}); grant write access or choose another dest_namespace`, {
        retryable: false,
        context: { namespace: ns, auth: found.auth },
      });
    }
    this.#known.add(ns);
    return 'existing';
  }

  /** GET one organisation; undefined when it does not exist for us (404, or 403 for a foreign one). */
  async getNamespace(ns: string, signal?: AbortSignal): Promise<SwrNamespace | undefined> {
    validateOrgName(ns);
    const res = await this.#call('getNamespace', 'GET', `/v2/manage/namespaces/${encodeURIComponent(ns)}`, undefined, { namespace: ns }, signal);
    if (res.status === 404 || res.status === 403) {
      // 403 that is really an auth problem (gateway code), or SWR saying these credentials lack a
      // permission (rather than that the organisation is someone else's), must surface as such.
      const err = this.#error('getNamespace', res, { namespace: ns });
      const swrCode = parseSwrErrorBody(res.body).code;
      if (res.status === 403 && (err.code !== 'HSB_SWR_FORBIDDEN' || (swrCode !== undefined && SWR_CODES_NO_PERMISSION.has(swrCode)))) throw err;
      return undefined;
    }
    if (res.status !== 200) throw this.#error('getNamespace', res, { namespace: ns });
    try {
      const body = JSON.parse(res.body) as SwrNamespace;
      return { ...body, name: body.name ?? ns };
    } catch {
      return { name: ns };
    }
  }

  /**
   * Delete tag `tag` of `ns/repository` (repository may be nested; SWR wants `/` as `$`).
   * Returns true when deleted, false when SWR says it does not exist (already gone).
   */
  async deleteTag(ns: string, repository: string, tag: string, signal?: AbortSignal): Promise<boolean> {
    validateOrgName(ns);
    if (this.#auth.kind === 'none') {
      throw new BridgeError('HSB_SWR_NO_API_CREDENTIALS', this.#auth.why ?? 'deleting a tag in SWR needs AK/SK or an IAM token for the management API', {
        retryable: false,
        context: { namespace: ns, repository, tag },
      });
    }
    const path = `/v2/manage/namespaces/${encodeURIComponent(ns)}/repos/${encodeURIComponent(repoPathParam(repository))}/tags/${encodeURIComponent(tag)}`;
    const res = await this.#call('deleteTag', 'DELETE', path, undefined, { namespace: ns, repository, tag }, signal);
    if (res.status === 204 || res.status === 200) return true;
    // Gone only when SWR says so: a 404 from the API gateway ("API does not exist", a wrong apiUrl)
    // deleted nothing.
    if (res.status === 404 && isSwrCode(parseSwrErrorBody(res.body).code)) return false;
    throw this.#error('deleteTag', res, { namespace: ns, repository, tag });
  }

  async close(): Promise<void> {
    await this.#ownDispatcher?.close();
  }

  #error(operation: SwrOperation, res: SwrResponse, where: { namespace?: string; repository?: string; tag?: string }): BridgeError {
    return swrErrorFromResponse({ status: res.status, body: res.body, retryAfter: res.retryAfter, operation, ...where, now: this.#now().getTime() });
  }

  /** One logical call: sign, send, and wait out throttling a bounded number of times. */
  async #call(
    operation: SwrOperation,
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    json: unknown,
    where: { namespace?: string; repository?: string; tag?: string },
    signal?: AbortSignal,
  ): Promise<SwrResponse> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.#send(operation, method, path, json, where, signal);
      if (res.status < 400 || res.status === 404 || (res.status === 409 && parseSwrErrorBody(res.body).code !== SWR_CODE_BUSY)) return res;
      const err = this.#error(operation, res, where);
      if (err.code !== 'HSB_SWR_THROTTLED') return res;
      const wait = typeof err.context.retryAfterMs === 'number' ? err.context.retryAfterMs : 500 * 2 ** attempt;
      if (attempt >= this.#throttleRetries || wait > this.#maxRetryAfterMs) return res;
      this.#log.warn({ operation, namespace: where.namespace, waitMs: wait, attempt }, 'SWR API throttled; waiting');
      await sleep(wait, undefined, signal ? { signal } : undefined);
    }
  }

  async #send(
    operation: SwrOperation,
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    json: unknown,
    where: { namespace?: string; repository?: string; tag?: string },
    signal?: AbortSignal,
  ): Promise<SwrResponse> {
    const url = new URL(this.apiUrl + path);
    const body = json === undefined ? '' : JSON.stringify(json);
    const headers: Record<string, string> = { 'Content-Type': 'application/json;charset=utf-8' };
    if (this.#auth.kind === 'token') headers['X-Auth-Token'] = this.#auth.token;
    else if (this.#auth.kind === 'aksk') {
      Object.assign(headers, signRequest({ method, url, headers, body, ak: this.#auth.accessKey, sk: this.#auth.secretKey, date: this.#now() }));
    }
    try {
      const res = await request(url, {
        method,
        headers,
        body: json === undefined ? null : body,
        dispatcher: this.#dispatcher,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        ...(signal ? { signal } : {}),
      });
      const text = await res.body.text();
      this.#log.debug({ operation, method, path, status: res.statusCode }, 'SWR API call');
      return { status: res.statusCode, body: text, retryAfter: res.headers['retry-after'] };
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new BridgeError('HSB_SWR_UNAVAILABLE', `SWR ${operation} could not reach ${url.host}: ${(e as Error).message}`, {
        retryable: true,
        cause: e,
        context: { operation, host: url.host, ...where },
      });
    }
  }
}
