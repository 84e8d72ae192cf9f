/**
 * TEST DOUBLE — not Huawei's code and not a complete SWR. A real HTTP server on 127.0.0.1
 * that follows the *published* behaviour of SWR's management API closely enough to test the
 * bridge against it without a Huawei Cloud account:
 *
 * - Authentication as Huawei's API gateway does it: `X-Auth-Token` (IAM token) or AK/SK
 *   "SDK-HMAC-SHA256" signatures. The signature is recomputed here from the request as
 *   received (method, raw path, query, the signed headers, body) with the tenant's SK — an
 *   implementation written separately from src/swr/signer.ts so each checks the other.
 *   Failures answer 401 in the gateway's shape
 *   `{"error_msg":"Incorrect IAM authentication information: ...","error_code":"APIG.0301","request_id":"..."}`;
 *   an X-Sdk-Date more than 15 minutes from the server clock is rejected the same way
 *   ("signature expired, signature time:..., server time:...").
 * - Organisations (`POST /v2/manage/namespaces` → 201; `GET /v2/manage/namespaces/{ns}` →
 *   200 `{id,name,creator_name,auth}` or 404): names are global, so a name another tenant
 *   owns answers 409 on create and 404 (or 403, configurable) on GET; names are checked
 *   against SWR's rules (400); each tenant has an organisation quota (default 5, then 400
 *   SVCSTG.SWR.4000097). `auth` is the caller's own right: 7 for the owner, or what
 *   grantNamespace gave another tenant (an IAM user given Read or Write on the organisation).
 *   A tenant without the right to create organisations gets 403 on POST.
 * - Tag delete (`DELETE /v2/manage/namespaces/{ns}/repos/{repo with / as $}/tags/{tag}` →
 *   204, or 404 when absent), against an in-memory tag list or a hook that deletes the tag
 *   from a real registry.
 * - Throttling: 429 `APIG.0308` from the gateway (per-tenant requests/s, optional), or
 *   injected answers (429/503, or SWR's own SVCSTG.SWR.4031042) with an optional Retry-After.
 * - SWR's own errors come as `{"errorCode":"SVCSTG.SWR.x","errorMessage":"..."}`, or wrapped
 *   in an array as the error-code appendix shows (option `swrErrorShape`).
 *
 * Codes are those of SWR's published error-code appendix (409 4090060 organisation exists, 404
 * 4040058 organisation not found, 403 4039001 not yours, 403 4037017 no right to create organisations, 409 4090023 system busy, 403 4031032 /
 * 4031042 request limits).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const DOUBLE_CODES = {
  iamAuth: 'APIG.0301',
  apiNotFound: 'APIG.0101',
  gatewayThrottled: 'APIG.0308',
  invalidParam: 'SVCSTG.SWR.4000014',
  orgQuota: 'SVCSTG.SWR.4000097',
  tooManyRequests: 'SVCSTG.SWR.4031042',
  notFound: 'SVCSTG.SWR.4040010',
  requestsExceeded: 'SVCSTG.SWR.4031032',
  busy: 'SVCSTG.SWR.4090023',
  orgExists: 'SVCSTG.SWR.4090060',
  orgNotFound: 'SVCSTG.SWR.4040058',
  notYours: 'SVCSTG.SWR.4039001',
  noOrgPermission: 'SVCSTG.SWR.4037017',
  noPermission: 'SVCSTG.SWR.4039002',
} as const;

export interface SwrDoubleTenant {
  /** Tenant (account) name; also reported as creator_name. */
  name: string;
  ak: string;
  sk: string;
  /** IAM tokens accepted for this tenant via X-Auth-Token. */
  tokens?: string[];
  /**
   * false: an IAM user without the right to create organisations (`swr:namespace:createNamespace`):
   * POST /v2/manage/namespaces answers 403 SVCSTG.SWR.4037017 whether or not the name exists.
   */
  canCreateNamespaces?: boolean;
}

export interface SwrDeleteTagEvent {
  tenant: string;
  namespace: string;
  repository: string;
  tag: string;
}

export interface SwrApiDoubleOptions {
  tenants: SwrDoubleTenant[];
  /** Organisations per tenant (SWR's default quota is 5). */
  orgQuota?: number;
  /** Largest accepted |X-Sdk-Date − server time|. */
  maxSkewMs?: number;
  /** Server clock in ms. */
  now?: () => number;
  swrErrorShape?: 'object' | 'array';
  /** Status of GET for an organisation that exists but belongs to another tenant. */
  foreignNamespaceStatus?: 403 | 404;
  /** Gateway throttle per tenant per second (unlimited when absent). */
  requestsPerSecond?: number;
  /** Delete the tag for real (e.g. in a registry); resolve false when it does not exist. */
  onDeleteTag?: (ev: SwrDeleteTagEvent) => boolean | Promise<boolean>;
}

export interface ThrottleSpec {
  /** How many upcoming authenticated requests to throttle. */
  count: number;
  status?: 429 | 503 | 403;
  /** Retry-After header value, sent verbatim. */
  retryAfter?: string;
  /** 'apig' → APIG.0308 gateway body; 'swr' → SVCSTG.SWR.4031042 SWR body; 'swr-limit' → 403 4031032; 'busy' → 409 4090023. */
  shape?: 'apig' | 'swr' | 'swr-limit' | 'busy';
}

export interface RecordedRequest {
  method: string;
  /** Raw request target as received (still percent-encoded). */
  url: string;
  tenant: string | undefined;
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

export interface SwrApiDouble {
  url: string;
  requests: RecordedRequest[];
  addNamespace(tenant: string, namespace: string): void;
  /** Lets `tenant` see another tenant's organisation with SWR's `auth` level (1 read, 3 edit, 7 manage). */
  grantNamespace(tenant: string, namespace: string, auth: 1 | 3 | 7): void;
  /** `tenant` (an IAM user of the owner's account without SWR rights) gets 403 4039002 on GET. */
  denyNamespace(tenant: string, namespace: string): void;
  namespacesOf(tenant: string): string[];
  addTag(namespace: string, repository: string, tag: string): void;
  tagsOf(namespace: string, repository: string): string[];
  throttleNext(spec: ThrottleSpec): void;
  close(): Promise<void>;
}

// --- signature check, written independently of src/swr/signer.ts -------------------------

const UNRESERVED = /^[A-Za-z0-9\-_.~]$/;
function pct(s: string): string {
  return [...Buffer.from(s, 'utf8')]
    .map((b) => (UNRESERVED.test(String.fromCharCode(b)) ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0')))
    .join('');
}
function dec(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function expectedSignature(req: IncomingMessage, body: Buffer, signedHeaders: string[], sk: string, xSdkDate: string): { signature: string; canonical: string } {
  const raw = req.url ?? '/';
  const q = raw.indexOf('?');
  const rawPath = q < 0 ? raw : raw.slice(0, q);
  const rawQuery = q < 0 ? '' : raw.slice(q + 1);
  let uri = rawPath.split('/').map((s) => pct(dec(s))).join('/');
  if (!uri.endsWith('/')) uri += '/';
  const query = rawQuery
    .split('&')
    .filter(Boolean)
    .map((kv) => {
      const [k = '', v = ''] = kv.split('=');
      return [pct(dec(k.replace(/\+/g, ' '))), pct(dec(v.replace(/\+/g, ' ')))] as [string, string];
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  let headerBlock = '';
  for (const h of signedHeaders) {
    const v = req.headers[h];
    headerBlock += `${h}:${(Array.isArray(v) ? v.join(',') : (v ?? '')).trim()}\n`;
  }
  const contentSha = req.headers['x-sdk-content-sha256'];
  const bodyHash = typeof contentSha === 'string' ? contentSha : createHash('sha256').update(body).digest('hex');
  const canonical = `${(req.method ?? 'GET').toUpperCase()}\n${uri}\n${query}\n${headerBlock}\n${signedHeaders.join(';')}\n${bodyHash}`;
  const sts = `SDK-HMAC-SHA256\n${xSdkDate}\n${createHash('sha256').update(canonical).digest('hex')}`;
  return { signature: createHmac('sha256', sk).update(sts).digest('hex'), canonical };
}

function parseSdkDate(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

function fmtSdkDate(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

// --- names, as SWR documents them ----------------------------------------------------------

const ORG = /^[a-z][a-z0-9]*(?:(?:[._-]|__)[a-z0-9]+)*$/;

// --- server ------------------------------------------------------------------------------

export async function startSwrApiDouble(opts: SwrApiDoubleOptions): Promise<SwrApiDouble> {
  const now = opts.now ?? (() => Date.now());
  const quota = opts.orgQuota ?? 5;
  const maxSkew = opts.maxSkewMs ?? 15 * 60 * 1000;
  const byAk = new Map(opts.tenants.map((t) => [t.ak, t]));
  const byToken = new Map<string, SwrDoubleTenant>();
  for (const t of opts.tenants) for (const tok of t.tokens ?? []) byToken.set(tok, t);
  const owners = new Map<string, { tenant: string; id: number }>();
  const grants = new Map<string, Map<string, 0 | 1 | 3 | 7>>();
  const tags = new Map<string, Set<string>>();
  const throttles: ThrottleSpec[] = [];
  const windows = new Map<string, { second: number; count: number }>();
  const requests: RecordedRequest[] = [];
  let nextId = 1000;

  const requestId = () => randomBytes(16).toString('hex');

  function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { ...(text ? { 'content-type': 'application/json;charset=utf-8' } : {}), ...headers });
    res.end(text);
  }
  const apig = (res: ServerResponse, status: number, code: string, msg: string, headers?: Record<string, string>) =>
    send(res, status, { error_msg: msg, error_code: code, request_id: requestId() }, headers);
  const swr = (res: ServerResponse, status: number, code: string, msg: string, headers?: Record<string, string>) => {
    const o = { errorCode: code, errorMessage: msg, detail: '' };
    send(res, status, opts.swrErrorShape === 'array' ? [o] : o, headers);
  };

  function authenticate(req: IncomingMessage, body: Buffer, res: ServerResponse): SwrDoubleTenant | undefined {
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string') {
      const t = byToken.get(token);
      if (!t) apig(res, 401, DOUBLE_CODES.iamAuth, 'Incorrect IAM authentication information: decrypt token fail');
      return t;
    }
    const auth = req.headers.authorization;
    const m = typeof auth === 'string' ? /^SDK-HMAC-SHA256\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)$/.exec(auth) : null;
    if (!m) {
      apig(res, 401, DOUBLE_CODES.iamAuth, 'Incorrect IAM authentication information: Authorization not found or malformed');
      return undefined;
    }
    const [, ak = '', signedList = '', signature = ''] = m;
    const tenant = byAk.get(ak);
    if (!tenant) {
      apig(res, 401, DOUBLE_CODES.iamAuth, 'Incorrect IAM authentication information: Get secretKey failed,ak:******,err:ak not exist');
      return undefined;
    }
    const xDate = req.headers['x-sdk-date'];
    const signedAt = typeof xDate === 'string' ? parseSdkDate(xDate) : undefined;
    const signed = signedList.split(';');
    if (signedAt === undefined || !signed.includes('x-sdk-date') || !signed.includes('host')) {
      apig(res, 401, DOUBLE_CODES.iamAuth, 'Incorrect IAM authentication information: verify aksk signature fail, x-sdk-date and host must be signed');
      return undefined;
    }
    const serverNow = now();
    if (Math.abs(serverNow - signedAt) > maxSkew) {
      apig(res, 401, DOUBLE_CODES.iamAuth, `Incorrect IAM authentication information: signature expired, signature time:${xDate as string},server time:${fmtSdkDate(serverNow)}`);
      return undefined;
    }
    const want = expectedSignature(req, body, signed, tenant.sk, xDate as string);
    const a = Buffer.from(want.signature);
    const b = Buffer.from(signature);
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      apig(res, 401, DOUBLE_CODES.iamAuth, `Incorrect IAM authentication information: verify aksk signature fail, canonicalRequest:${want.canonical.replaceAll('\n', '|')}`);
      return undefined;
    }
    return tenant;
  }

  function throttled(tenant: SwrDoubleTenant, res: ServerResponse): boolean {
    const t = throttles[0];
    if (t) {
      if (--t.count <= 0) throttles.shift();
      const headers = t.retryAfter !== undefined ? { 'retry-after': t.retryAfter } : undefined;
      if (t.shape === 'swr') swr(res, t.status ?? 403, DOUBLE_CODES.tooManyRequests, 'Too many requests', headers);
      else if (t.shape === 'swr-limit') swr(res, 403, DOUBLE_CODES.requestsExceeded, 'The number of requests exceeds the maximum number allowed', headers);
      else if (t.shape === 'busy') swr(res, 409, DOUBLE_CODES.busy, 'The system is busy. Try again later', headers);
      else apig(res, t.status ?? 429, DOUBLE_CODES.gatewayThrottled, 'The throttling threshold has been reached: policy user over ratelimit', headers);
      return true;
    }
    if (opts.requestsPerSecond !== undefined) {
      const second = Math.floor(now() / 1000);
      const w = windows.get(tenant.name);
      const cur = w && w.second === second ? w : { second, count: 0 };
      cur.count++;
      windows.set(tenant.name, cur);
      if (cur.count > opts.requestsPerSecond) {
        apig(res, 429, DOUBLE_CODES.gatewayThrottled, `The throttling threshold has been reached: policy user over ratelimit,limit:${opts.requestsPerSecond},time:1 second`);
        return true;
      }
    }
    return false;
  }

  async function route(req: IncomingMessage, body: Buffer, res: ServerResponse, tenant: SwrDoubleTenant): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const segs = path.split('/').slice(1).map(dec);
    const method = req.method ?? 'GET';
    // /v2/manage/namespaces
    if (segs.length === 3 && segs[0] === 'v2' && segs[1] === 'manage' && segs[2] === 'namespaces' && method === 'POST') {
      let ns: unknown;
      try {
        ns = (JSON.parse(body.toString('utf8')) as { namespace?: unknown }).namespace;
      } catch {
        return swr(res, 400, DOUBLE_CODES.invalidParam, 'Invalid param: request body is not JSON');
      }
      if (typeof ns !== 'string' || ns.length < 1 || ns.length > 64 || !ORG.test(ns)) {
        return swr(res, 400, DOUBLE_CODES.invalidParam, 'Invalid param: namespace');
      }
      if (tenant.canCreateNamespaces === false) return swr(res, 403, DOUBLE_CODES.noOrgPermission, 'You do not have permission to modify or manage any organization');
      if (owners.has(ns)) return swr(res, 409, DOUBLE_CODES.orgExists, 'Namespace already exists');
      const mine = [...owners.values()].filter((o) => o.tenant === tenant.name).length;
      if (mine >= quota) return swr(res, 400, DOUBLE_CODES.orgQuota, `The number of namespaces exceeds the upper limit (${quota})`);
      owners.set(ns, { tenant: tenant.name, id: nextId++ });
      return send(res, 201);
    }
    if (segs.length === 4 && segs[0] === 'v2' && segs[1] === 'manage' && segs[2] === 'namespaces' && method === 'GET') {
      const ns = segs[3] ?? '';
      const o = owners.get(ns);
      if (!o) return swr(res, 404, DOUBLE_CODES.orgNotFound, 'Namespace not found');
      const granted = grants.get(ns)?.get(tenant.name);
      if (o.tenant !== tenant.name && granted === 0) return swr(res, 403, DOUBLE_CODES.noPermission, 'You do not have the permission to perform this operation');
      if (o.tenant !== tenant.name && granted !== undefined) return send(res, 200, { id: o.id, name: ns, creator_name: o.tenant, auth: granted });
      if (o.tenant !== tenant.name) {
        return opts.foreignNamespaceStatus === 403
          ? swr(res, 403, DOUBLE_CODES.notYours, 'The resource does not belong to you')
          : swr(res, 404, DOUBLE_CODES.orgNotFound, 'Namespace not found');
      }
      return send(res, 200, { id: o.id, name: ns, creator_name: tenant.name, auth: 7 });
    }
    // /v2/manage/namespaces/{ns}/repos/{repo$nested}/tags/{tag}
    if (segs.length === 8 && segs[0] === 'v2' && segs[1] === 'manage' && segs[2] === 'namespaces' && segs[4] === 'repos' && segs[6] === 'tags' && method === 'DELETE') {
      const ns = segs[3] ?? '';
      const repository = (segs[5] ?? '').replaceAll('$', '/');
      const tag = segs[7] ?? '';
      const o = owners.get(ns);
      if (!o || o.tenant !== tenant.name) return swr(res, 404, DOUBLE_CODES.notFound, 'The image does not exist');
      let deleted: boolean;
      if (opts.onDeleteTag) deleted = await opts.onDeleteTag({ tenant: tenant.name, namespace: ns, repository, tag });
      else deleted = tags.get(`${ns}/${repository}`)?.delete(tag) ?? false;
      return deleted ? send(res, 204) : swr(res, 404, DOUBLE_CODES.notFound, 'The image does not exist');
    }
    return apig(res, 404, DOUBLE_CODES.apiNotFound, 'The API does not exist or has not been published in the environment');
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let tenantName: string | undefined;
      res.on('finish', () => {
        requests.push({ method: req.method ?? '', url: req.url ?? '', tenant: tenantName, status: res.statusCode, headers: { ...req.headers } });
      });
      const tenant = authenticate(req, body, res);
      if (!tenant) return;
      tenantName = tenant.name;
      if (throttled(tenant, res)) return;
      route(req, body, res, tenant).catch((e: unknown) => {
        if (!res.headersSent) swr(res, 500, 'SVCSTG.SWR.5000007', `Internal server error: ${(e as Error).message}`);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    addNamespace(tenant, namespace) {
      owners.set(namespace, { tenant, id: nextId++ });
    },
    denyNamespace(tenant, namespace) {
      if (!grants.has(namespace)) grants.set(namespace, new Map());
      grants.get(namespace)!.set(tenant, 0);
    },
    grantNamespace(tenant, namespace, auth) {
      if (!grants.has(namespace)) grants.set(namespace, new Map());
      grants.get(namespace)!.set(tenant, auth);
    },
    namespacesOf(tenant) {
      return [...owners].filter(([, o]) => o.tenant === tenant).map(([n]) => n);
    },
    addTag(namespace, repository, tag) {
      const k = `${namespace}/${repository}`;
      if (!tags.has(k)) tags.set(k, new Set());
      tags.get(k)?.add(tag);
    },
    tagsOf(namespace, repository) {
      return [...(tags.get(`${namespace}/${repository}`) ?? [])];
    },
    throttleNext(spec) {
      throttles.push({ ...spec });
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      });
    },
  };
}
