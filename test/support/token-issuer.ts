// A small Docker-registry token server for tests. It checks basic credentials, grants what the
// ACL allows and signs RS256 JWTs carrying an `x5c` header, which distribution 2.8 verifies
// against the `rootcertbundle` (registry/auth/token/token.go, parseAndVerifyCertChain).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { generateKeyPairSync, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, writeFile, readFile, rm } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

const run = promisify(execFile);

export interface TokenUser { username: string; password: string }
export interface Access { type: string; name: string; actions: string[] }
export interface TokenRequestRecord { account?: string; user?: string; service?: string; scopes: string[]; granted: Access[]; status: number }

export interface TokenIssuerOptions {
  users?: TokenUser[];
  service?: string;
  issuer?: string;
  /** Lifetime of issued tokens in seconds (the registry rejects them after `exp`). */
  ttlSeconds?: number;
  /** Anonymous callers get pull on every repository when true. */
  anonymousPull?: boolean;
  /** Narrows what a user may do; default: authenticated users get everything they ask for. */
  acl?: (user: string | undefined, access: Access) => string[];
}

export interface TokenIssuer {
  url: string;          // realm
  service: string;
  issuer: string;
  certFile: string;     // rootcertbundle for the registry
  requests: TokenRequestRecord[];
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** Parses `repository:foo/bar:pull,push` (names may hold colons only in the registry type). */
export function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) };
}

export function signJwt(claims: object, key: KeyObject, certDer: Buffer): string {
  const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
}

function basicUser(req: IncomingMessage): { user: string; password: string } | undefined {
  const h = req.headers.authorization;
  if (!h?.startsWith('Basic ')) return undefined;
  const raw = Buffer.from(h.slice(6), 'base64').toString('utf8');
  const i = raw.indexOf(':');
  if (i < 0) return undefined;
  return { user: raw.slice(0, i), password: raw.slice(i + 1) };
}

export async function startTokenIssuer(opts: TokenIssuerOptions = {}): Promise<TokenIssuer> {
  const dir = await mkdtemp(join(tmpdir(), 'hsb-token-'));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await run('openssl', ['req', '-x509', '-new', '-key', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=hsb-test-token-issuer']);
  const certDer = Buffer.from(new X509Certificate(await readFile(certFile)).raw);

  const service = opts.service ?? 'hsb-test-registry';
  const issuer = opts.issuer ?? 'hsb-test-issuer';
  const ttl = opts.ttlSeconds ?? 300;
  const users = opts.users ?? [];
  const requests: TokenRequestRecord[] = [];

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname !== '/token') { res.writeHead(404).end(); return; }
    const creds = basicUser(req);
    const scopes = u.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const record: TokenRequestRecord = { account: u.searchParams.get('account') ?? undefined, user: creds?.user, service: u.searchParams.get('service') ?? undefined, scopes, granted: [], status: 200 };
    requests.push(record);
    if (creds && !users.some((x) => x.username === creds.user && x.password === creds.password)) {
      record.status = 401;
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    const user = creds?.user;
    for (const s of scopes) {
      const a = parseScope(s);
      if (!a) continue;
      const allowed = opts.acl ? opts.acl(user, a) : user ? a.actions : (opts.anonymousPull ? a.actions.filter((x) => x === 'pull') : []);
      if (allowed.length) record.granted.push({ ...a, actions: allowed });
    }
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt({ iss: issuer, sub: user ?? '', aud: service, exp: now + ttl, nbf: now - 10, iat: now, jti: randomUUID(), access: record.granted }, privateKey, certDer);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: ttl, issued_at: new Date(now * 1000).toISOString() }));
  };

  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/token`,
    service, issuer, certFile, requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
