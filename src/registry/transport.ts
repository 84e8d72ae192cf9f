// The one place that talks HTTP to a registry: authentication, retries with backoff (honouring
// Retry-After), the per-registry concurrency and requests/s limits, and status→error mapping.
// Resource modules (manifest.ts, blob.ts, upload.ts, ...) only describe requests.
import type { Readable } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import { request, type Dispatcher } from 'undici';
import type { Logger } from '../observability/logger.ts';
import { Authenticator, type Credentials } from './auth.ts';
import { parseWwwAuthenticate } from './www-authenticate.ts';
import { registryError, registryErrorFromStatus, registryErrorFromThrown, isAbortError, type RegistryErrorCtx } from './errors.ts';
import { backoffMs, isRetryableStatus, parseRetryAfter, sleep, type RetryPolicy } from './retry-policy.ts';
import { ByteRateLimiter, RateLimiter, Semaphore, kbpsToBytesPerSecond } from './limits.ts';
import { BridgeError } from '../errors.ts';

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export interface RegistryRequest {
  method: Method;
  /** `/v2/...` relative to the registry, or an absolute URL (upload Location, redirect). */
  path: string;
  query?: Record<string, string | string[] | undefined>;
  headers?: Record<string, string>;
  /** A Buffer or a factory that reopens the body: both can be resent on retry. */
  body?: Buffer | (() => Readable | Promise<Readable>);
  /** A one-shot body: the request is never retried. */
  stream?: Readable;
  /** Token scopes the request needs. */
  scopes: readonly string[];
  /** Statuses that are answers; anything else becomes a BridgeError. */
  expect: readonly number[];
  ctx?: RegistryErrorCtx;
  signal?: AbortSignal;
  /** Retry on 408/429/5xx/connection errors; default: methods without a one-shot body. */
  retry?: boolean;
  /**
   * Keep the request's concurrency slot until an answered body has been read or destroyed, not just
   * until its headers: a blob download then counts against `limits.concurrency` while it streams.
   * The caller must consume or destroy the body (as any streamed body), or the slot stays taken.
   */
  holdWhileStreaming?: boolean;
  /** Runs each retry's wait, so a caller can lend out a slot of its own meanwhile (an upload's transfer slot). */
  idle?: <T>(wait: () => Promise<T>) => Promise<T>;
}

export interface RegistryResponse {
  status: number;
  headers: IncomingHttpHeaders;
  header(name: string): string | undefined;
  body: Dispatcher.ResponseData['body'];
  url: URL;
  /** Reads and drops a small body (or gives up on a large one) so the connection is reused. */
  discard(): Promise<void>;
}

export interface TransportOptions {
  baseUrl: string;
  credentials?: Credentials;
  dispatcher: Dispatcher;
  concurrency: number;
  requestsPerSecond?: number;
  /** Upload bandwidth cap for this registry, in Kbit/s (Harbor's `speed`). */
  speedKbps?: number;
  retry: RetryPolicy;
  logger: Logger;
}

const MAX_ERROR_BODY = 64 * 1024;

async function readText(body: Dispatcher.ResponseData['body'], limit = MAX_ERROR_BODY): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body as AsyncIterable<Buffer>) {
      if (n < limit) chunks.push(c);
      n += c.length;
    }
  } catch { /* a broken error body still leaves the status to report */ }
  return Buffer.concat(chunks).toString('utf8').slice(0, limit);
}

function headerValue(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export class Transport {
  readonly base: URL;
  readonly auth: Authenticator;
  readonly #dispatcher: Dispatcher;
  readonly #sem: Semaphore;
  readonly #rps?: RateLimiter;
  /** Shared by every blob upload to this registry. */
  readonly bandwidth?: ByteRateLimiter;
  readonly #retry: RetryPolicy;
  readonly #log: Logger;
  /** Requests sent, for tests and metrics. */
  requests = 0;

  constructor(opts: TransportOptions) {
    this.base = new URL(opts.baseUrl);
    this.#dispatcher = opts.dispatcher;
    this.#sem = new Semaphore(opts.concurrency);
    this.#rps = opts.requestsPerSecond ? new RateLimiter(opts.requestsPerSecond) : undefined;
    this.bandwidth = opts.speedKbps ? new ByteRateLimiter(kbpsToBytesPerSecond(opts.speedKbps)) : undefined;
    this.#retry = opts.retry;
    this.#log = opts.logger;
    this.auth = new Authenticator({
      credentials: opts.credentials,
      ctx: { registry: this.base.host },
      secureRegistry: this.base.protocol === 'https:',
      fetchToken: (url, headers, signal) => this.#fetchToken(url, headers, signal),
    });
  }

  get registry(): string { return this.base.host; }
  get logger(): Logger { return this.#log; }
  get retryPolicy(): RetryPolicy { return this.#retry; }

  url(path: string, query?: RegistryRequest['query']): URL {
    const u = new URL(path, this.base);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined) continue;
      for (const x of Array.isArray(v) ? v : [v]) u.searchParams.append(k, x);
    }
    return u;
  }

  /** Sends a request; resolves with an expected status (body unread) or throws a BridgeError. */
  async send(req: RegistryRequest): Promise<RegistryResponse> {
    const url = this.url(req.path, req.query);
    // Credentials only ever go to the registry's own origin (never to a redirect or foreign upload host).
    const sameOrigin = url.origin === this.base.origin;
    const ctx: RegistryErrorCtx = { registry: this.base.host, method: req.method, ...req.ctx };
    const canRetry = req.retry ?? !req.stream;
    let authRetried = false;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...req.headers };
      let authz: string | undefined;
      let res: Dispatcher.ResponseData;
      let release: (() => void) | undefined;
      let streaming = false;
      const started = performance.now();
      try {
        release = await this.#sem.acquire(req.signal);
        await this.#rps?.take(req.signal);
        // Only once the slot is ours: a request queued behind long transfers would otherwise go out
        // with a token that expired while it waited (and a streamed upload would start over).
        authz = sameOrigin ? await this.auth.authorization(req.scopes, req.signal).catch((e: unknown) => { throw registryErrorFromThrown(e, ctx, req.signal); }) : undefined;
        if (authz) headers.authorization = authz;
        const body = req.stream ?? (typeof req.body === 'function' ? await req.body() : req.body);
        this.requests++;
        res = await request(url, { method: req.method, headers, body, dispatcher: this.#dispatcher, signal: req.signal });
        if (req.holdWhileStreaming && req.expect.includes(res.statusCode)) {
          // 'close' follows the end of the body, its destruction and an aborted request alike.
          res.body.once('close', release);
          streaming = true;
          if (res.body.closed) release(); // already over (an abort in between): release is idempotent
        }
      } catch (e) {
        release?.();
        const err = registryErrorFromThrown(e, ctx, req.signal);
        // Our own errors (e.g. a body stream that failed its size check) are final for this request.
        if (e instanceof BridgeError || isAbortError(e) || req.signal?.aborted || !err.retryable || !canRetry || attempt + 1 >= this.#retry.attempts) {
          this.#log.debug({ registry: this.base.host, method: req.method, path: url.pathname, err: err.code }, 'registry request failed');
          throw err;
        }
        const wait = backoffMs(attempt, this.#retry);
        this.#log.debug({ registry: this.base.host, method: req.method, path: url.pathname, err: err.code, waitMs: wait }, 'registry request failed; retrying');
        await waitIdle(req, () => sleep(wait, req.signal)).catch((x: unknown) => { throw registryErrorFromThrown(x, ctx, req.signal); });
        continue;
      } finally {
        // The slot covers sending and waiting for headers; other bodies stream outside it.
        if (!streaming) release?.();
      }
      const status = res.statusCode;
      this.#log.debug({ registry: this.base.host, method: req.method, path: url.pathname, status, ms: Math.round(performance.now() - started) }, 'registry request');
      if (req.expect.includes(status)) {
        return { status, headers: res.headers, header: (n) => headerValue(res.headers, n), body: res.body, url, discard: () => res.body.dump({ limit: 64 * 1024 }).catch(() => {}) };
      }
      const text = await readText(res.body);
      if (status === 401 && sameOrigin && !authRetried) {
        authRetried = true;
        const again = await this.auth.challenged(parseWwwAuthenticate(res.headers['www-authenticate']), req.scopes, authz, req.signal)
          .catch((e: unknown) => { throw registryErrorFromThrown(e, ctx, req.signal); });
        // A one-shot body cannot be resent here; the caller (upload) resumes with the fresh token.
        if (again && req.stream) throw registryError('HSB_REGISTRY_AUTH_EXPIRED', `credentials refreshed after a 401 on a streamed request (${req.method} ${url.pathname})`, { ...ctx, status });
        if (again) { attempt--; continue; }
      }
      // Still 401 with a fresh token that says "insufficient_scope": the credentials are good, the grant is missing.
      if (status === 401 && authRetried && parseWwwAuthenticate(res.headers['www-authenticate']).some((c) => c.params['error'] === 'insufficient_scope')) {
        throw registryError('HSB_REGISTRY_DENIED', `registry denied access (${req.method} ${url.pathname}): the credentials are accepted but lack ${req.scopes.join(' ') || 'the needed scope'}`, { ...ctx, status });
      }
      const retryAfterMs = parseRetryAfter(headerValue(res.headers, 'retry-after'));
      const err = registryErrorFromStatus(status, text, { ...ctx, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
      const tooLong = retryAfterMs !== undefined && retryAfterMs > this.#retry.maxRetryAfterMs;
      if (!isRetryableStatus(status) || !canRetry || tooLong || attempt + 1 >= this.#retry.attempts) throw err;
      const wait = backoffMs(attempt, this.#retry, retryAfterMs);
      this.#log.debug({ registry: this.base.host, method: req.method, path: url.pathname, status, waitMs: wait }, 'registry busy; retrying');
      await waitIdle(req, () => sleep(wait, req.signal)).catch((x: unknown) => { throw registryErrorFromThrown(x, ctx, req.signal); });
    }
  }

  /** Reads a whole (small) body, capped; larger bodies fail instead of filling memory. */
  async readBody(res: RegistryResponse, max: number, ctx: RegistryErrorCtx = {}): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of res.body as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > max) {
          // Leaving the loop by throwing destroys the body (and its connection).
          throw registryError('HSB_REGISTRY_TOO_LARGE', `response body exceeds ${max} bytes`, { registry: this.base.host, ...ctx });
        }
        chunks.push(c);
      }
    } catch (e) {
      throw registryErrorFromThrown(e, { registry: this.base.host, ...ctx });
    }
    return Buffer.concat(chunks);
  }

  async #fetchToken(url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<{ status: number; body: string }> {
    const ctx: RegistryErrorCtx = { registry: this.base.host, method: 'token' };
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await request(url, { method: 'GET', headers, dispatcher: this.#dispatcher, signal });
        const body = await readText(res.body);
        if (isRetryableStatus(res.statusCode) && attempt + 1 < this.#retry.attempts) {
          await sleep(backoffMs(attempt, this.#retry, parseRetryAfter(headerValue(res.headers, 'retry-after'))), signal);
          continue;
        }
        return { status: res.statusCode, body };
      } catch (e) {
        const err = registryErrorFromThrown(e, ctx);
        if (!err.retryable || signal?.aborted || attempt + 1 >= this.#retry.attempts) throw err;
        await sleep(backoffMs(attempt, this.#retry), signal);
      }
    }
  }
}

function waitIdle(req: RegistryRequest, wait: () => Promise<unknown>): Promise<unknown> {
  return req.idle ? req.idle(wait) : wait();
}
