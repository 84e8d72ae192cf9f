// Registry authentication: anonymous, basic, or bearer tokens from the realm the registry's
// challenge names (distribution token spec). Tokens are cached per merged scope set until
// shortly before expiry; concurrent requests for the same scope share one token fetch.
import type { Challenge } from './www-authenticate.ts';
import { mergeScopes } from './scope.ts';
import { SharedFlight } from './shared-flight.ts';
import { registryError, registryErrorFromStatus, type RegistryErrorCtx } from './errors.ts';

export interface Credentials { username: string; password: string }

export type TokenFetch = (url: URL, headers: Record<string, string>, signal?: AbortSignal) => Promise<{ status: number; body: string }>;

interface CachedToken { token: string; expiresAt: number }

export const basicAuthorization = (c: Credentials) => `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;

/** Seconds a token without `expires_in` lives (distribution token spec default). */
const DEFAULT_TOKEN_TTL_S = 60;

export class Authenticator {
  #mode: 'unknown' | 'anonymous' | 'basic' | 'bearer' = 'unknown';
  #bearer?: { realm: string; service?: string };
  readonly #tokens = new Map<string, CachedToken>();
  readonly #fetches = new SharedFlight<string>();
  readonly #creds?: Credentials;
  readonly #fetch: TokenFetch;
  readonly #ctx: RegistryErrorCtx;
  readonly #now: () => number;
  tokenFetches = 0;

  readonly #secure: boolean;

  constructor(opts: { credentials?: Credentials; fetchToken: TokenFetch; ctx?: RegistryErrorCtx; now?: () => number; secureRegistry?: boolean }) {
    this.#secure = opts.secureRegistry ?? false;
    this.#creds = opts.credentials;
    this.#fetch = opts.fetchToken;
    this.#ctx = opts.ctx ?? {};
    this.#now = opts.now ?? Date.now;
  }

  get mode() { return this.#mode; }

  /** The Authorization header for a request needing `scopes`, or undefined (anonymous / not yet challenged). */
  async authorization(scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    if (this.#mode === 'basic' && this.#creds) return basicAuthorization(this.#creds);
    if (this.#mode === 'bearer') return `Bearer ${await this.#token(mergeScopes(scopes), signal)}`;
    return undefined;
  }

  /**
   * Learns from a 401. Returns true when a retry with new credentials can succeed: first bearer
   * challenge, an expired/insufficient token (refetched once), or a first basic challenge.
   */
  async challenged(challenges: Challenge[], scopes: readonly string[], sent: string | undefined, signal?: AbortSignal): Promise<boolean> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer?.params.realm) {
      this.#mode = 'bearer';
      this.#bearer = { realm: bearer.params.realm, service: bearer.params.service };
      const wanted = mergeScopes([...scopes, ...(bearer.params.scope ? [bearer.params.scope] : [])]);
      // Drop a cached token the registry just refused; fetch a fresh one.
      this.#tokens.delete(wanted.join(' '));
      this.#tokens.delete(mergeScopes(scopes).join(' '));
      await this.#token(wanted, signal);
      if (wanted.join(' ') !== mergeScopes(scopes).join(' ')) {
        // Keep the token under the request's own key too, so the retry uses it.
        const t = this.#tokens.get(wanted.join(' '));
        if (t) this.#tokens.set(mergeScopes(scopes).join(' '), t);
      }
      return true;
    }
    if (basic) {
      if (!this.#creds || sent?.startsWith('Basic ')) return false;
      this.#mode = 'basic';
      return true;
    }
    return false;
  }

  #token(scopes: string[], signal?: AbortSignal): Promise<string> {
    const key = scopes.join(' ');
    const cached = this.#tokens.get(key);
    if (cached && cached.expiresAt > this.#now()) return Promise.resolve(cached.token);
    // Bounded by the transport's timeouts rather than by any one caller's signal.
    return this.#fetches.run(key, () => this.#fetchToken(scopes), signal);
  }

  async #fetchToken(scopes: string[]): Promise<string> {
    const b = this.#bearer;
    if (!b) throw registryError('HSB_REGISTRY_PROTOCOL', 'bearer token needed but no realm known', this.#ctx);
    let url: URL;
    try {
      url = new URL(b.realm);
    } catch {
      throw registryError('HSB_REGISTRY_PROTOCOL', 'registry announced an invalid token realm', this.#ctx);
    }
    // An HTTPS registry naming a plain-HTTP realm would have the password sent in clear.
    if (this.#secure && this.#creds && url.protocol !== 'https:') {
      throw registryError('HSB_REGISTRY_PROTOCOL', `the registry's token realm ${url.origin} is not HTTPS; credentials are not sent to it`, this.#ctx);
    }
    if (b.service) url.searchParams.set('service', b.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#creds) {
      // URLSearchParams percent-encodes robot names (`robot$x`); the header carries them in base64.
      url.searchParams.set('account', this.#creds.username);
      headers.authorization = basicAuthorization(this.#creds);
    }
    this.tokenFetches++;
    const res = await this.#fetch(url, headers);
    if (res.status !== 200) {
      const e = registryErrorFromStatus(res.status === 403 ? 401 : res.status, res.body, { ...this.#ctx, method: 'token' });
      throw e;
    }
    let j: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      j = JSON.parse(res.body) as typeof j;
    } catch {
      throw registryError('HSB_REGISTRY_PROTOCOL', 'token server answered with invalid JSON', this.#ctx);
    }
    const token = typeof j.token === 'string' && j.token ? j.token : typeof j.access_token === 'string' ? j.access_token : '';
    if (!token) throw registryError('HSB_REGISTRY_PROTOCOL', 'token server answered without a token', this.#ctx);
    const ttlMs = (typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : DEFAULT_TOKEN_TTL_S) * 1000;
    // Refresh early: a token must not expire between our check and the registry's.
    const margin = Math.min(30_000, ttlMs / 10);
    this.#tokens.set(scopes.join(' '), { token, expiresAt: this.#now() + ttlMs - margin });
    return token;
  }
}
