// A stand-in for one SWR region, for end-to-end tests: the management-API test double
// (swr-api-double.ts) plus a real registry (Debian's docker-registry) whose htpasswd holds only
// the SWR logins `<project>@<AK>` with the password SWR derives from the AK/SK. That password is
// computed here with openssl, independently of src/swr/credentials.ts, so a push the registry
// accepts proves the bridge derived the login correctly.
//
// Both sit behind a small recording proxy with one shared, ordered timeline, so a test can say
// "the organisation was created before the first registry request for it" and "no request for
// this name reached SWR at all". Tests inspect the registry directly (not through the proxy), so
// the timeline holds only the bridge's own traffic.
import { execFileSync } from 'node:child_process';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startRegistry, type TestRegistry } from './registry.ts';
import { startSwrApiDouble, type SwrApiDouble, type SwrDeleteTagEvent, type SwrDoubleTenant } from './swr-api-double.ts';
import type { Creds } from './images.ts';

export const DOCKER_ACCEPT = [
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');

export interface TimelineEntry {
  /** Position in the shared timeline (registry: when the request arrived; API: when it was answered). */
  seq: number;
  via: 'api' | 'registry';
  method: string;
  /** Request target as sent (still percent-encoded). */
  url: string;
  /** Decoded path. */
  path: string;
  status?: number;
  /** The user name of a Basic Authorization header, when there was one. */
  basicUser?: string;
  /** API only: the request body as text. */
  body?: string;
  /** API only: the Authorization header (signatures are not secrets; the SK never travels). */
  authorization?: string;
}

export interface StartSwrStackOptions {
  /** Login prefix (`<project>@<AK>`); SWR uses the region's project name. Default cn-north-4. */
  project?: string;
  /** Tenants of the double; each gets a registry login. */
  tenants: SwrDoubleTenant[];
  orgQuota?: number;
}

export interface SwrStack {
  project: string;
  tenants: SwrDoubleTenant[];
  double: SwrApiDouble;
  /** The real registry, for direct inspection by tests. */
  registry: TestRegistry;
  /** Registry URL to configure in the bridge (through the recording proxy). */
  registryUrl: string;
  /** Management API URL to configure in the bridge (through the recording proxy). */
  apiUrl: string;
  timeline: TimelineEntry[];
  /** Tag deletes the double carried out in the registry. */
  deletedTags: SwrDeleteTagEvent[];
  /** The SWR login of a tenant, derived with openssl. */
  login(tenant: string): Creds;
  /** A `kind: swr` target for the bridge config using this tenant's AK/SK. */
  target(id: string, tenant: string, extra?: Record<string, unknown>): Record<string, unknown>;
  stop(): Promise<void>;
}

/** SWR's long-term login password, as its documentation derives it: openssl HMAC-SHA256(SK, AK), hex. */
export function opensslLoginPassword(ak: string, sk: string): string {
  const out = execFileSync('openssl', ['dgst', '-sha256', '-hmac', sk, '-r'], { input: ak, encoding: 'utf8' });
  const hex = out.trim().split(/\s+/)[0] ?? '';
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`unexpected openssl output: ${out}`);
  return hex;
}

function basicUser(header: string | undefined): string | undefined {
  const m = header ? /^Basic\s+(\S+)$/i.exec(header) : null;
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? decoded : decoded.slice(0, i);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** A pass-through proxy that appends every request to `timeline`. Host is forwarded unchanged,
 * so the registry's Location headers and the API signature (which covers Host) point at the proxy. */
async function recordingProxy(upstreamUrl: string, via: TimelineEntry['via'], timeline: TimelineEntry[], next: () => number): Promise<{ url: string; server: Server }> {
  const upstream = new URL(upstreamUrl);
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const entry: TimelineEntry = {
      seq: 0, via, method: req.method ?? 'GET', url, path: safeDecode(url.split('?')[0] ?? '/'),
      ...(basicUser(req.headers.authorization) !== undefined ? { basicUser: basicUser(req.headers.authorization) } : {}),
    };
    // Registry: ordered by arrival (the moment traffic reached it). API: by answer, so "created
    // before the push" means the 201 was out before the first registry request arrived.
    if (via === 'registry') { entry.seq = next(); timeline.push(entry); }
    if (via === 'api') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => { entry.body = Buffer.concat(chunks).toString('utf8'); });
      if (req.headers.authorization) entry.authorization = req.headers.authorization;
    }
    const up = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: url, headers: req.headers });
    up.on('response', (ur) => {
      entry.status = ur.statusCode;
      if (via === 'api') { entry.seq = next(); timeline.push(entry); }
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/**
 * The registry API deletes manifests, not tags; SWR deletes tags. The double's hook does it the
 * only way a plain registry allows: delete the manifest when this tag is its only tag.
 */
async function deleteTagInRegistry(registry: TestRegistry, creds: Creds, repo: string, tag: string): Promise<boolean> {
  const auth = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
  const head = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { authorization: auth, accept: DOCKER_ACCEPT } });
  if (head.status === 404) return false;
  const digest = head.headers.get('docker-content-digest');
  if (head.status !== 200 || !digest) throw new Error(`HEAD ${repo}:${tag} answered ${head.status}`);
  const list = await fetch(`${registry.url}/v2/${repo}/tags/list`, { headers: { authorization: auth } });
  const tags = ((await list.json()) as { tags?: string[] | null }).tags ?? [];
  for (const other of tags) {
    if (other === tag) continue;
    const h = await fetch(`${registry.url}/v2/${repo}/manifests/${other}`, { method: 'HEAD', headers: { authorization: auth, accept: DOCKER_ACCEPT } });
    if (h.headers.get('docker-content-digest') === digest) throw new Error(`the test stack cannot delete ${repo}:${tag}: ${other} shares its manifest`);
  }
  const del = await fetch(`${registry.url}/v2/${repo}/manifests/${digest}`, { method: 'DELETE', headers: { authorization: auth } });
  if (del.status !== 202) throw new Error(`DELETE ${repo}@${digest} answered ${del.status}`);
  return true;
}

export async function startSwrStack(opts: StartSwrStackOptions): Promise<SwrStack> {
  const project = opts.project ?? 'cn-north-4';
  const logins = new Map(opts.tenants.map((t) => [t.name, { username: `${project}@${t.ak}`, password: opensslLoginPassword(t.ak, t.sk) }]));
  const login = (tenant: string): Creds => {
    const l = logins.get(tenant);
    if (!l) throw new Error(`no tenant ${tenant} in this SWR stack`);
    return l;
  };
  const registry = await startRegistry({ auth: 'basic', users: [...logins.values()] });
  const deletedTags: SwrDeleteTagEvent[] = [];
  const double = await startSwrApiDouble({
    tenants: opts.tenants,
    ...(opts.orgQuota !== undefined ? { orgQuota: opts.orgQuota } : {}),
    onDeleteTag: async (ev) => {
      const deleted = await deleteTagInRegistry(registry, login(ev.tenant), `${ev.namespace}/${ev.repository}`, ev.tag);
      if (deleted) deletedTags.push(ev);
      return deleted;
    },
  });
  const timeline: TimelineEntry[] = [];
  let seq = 0;
  const next = () => ++seq;
  const [reg, api] = await Promise.all([recordingProxy(registry.url, 'registry', timeline, next), recordingProxy(double.url, 'api', timeline, next)]);

  return {
    project, tenants: opts.tenants, double, registry, registryUrl: reg.url, apiUrl: api.url, timeline, deletedTags, login,
    target: (id, tenant, extra = {}) => {
      const t = opts.tenants.find((x) => x.name === tenant);
      if (!t) throw new Error(`no tenant ${tenant} in this SWR stack`);
      return { id, kind: 'swr', project, registryUrl: reg.url, apiUrl: api.url, credentials: { accessKey: t.ak, secretKey: t.sk }, ...extra };
    },
    async stop() {
      for (const s of [reg.server, api.server]) s.closeAllConnections();
      await Promise.all([
        ...[reg.server, api.server].map((s) => new Promise<void>((r) => s.close(() => r()))),
        double.close(),
        registry.stop(),
      ]);
    },
  };
}
