// Runs Debian's distribution 2.8 (`docker-registry serve`) on 127.0.0.1 for tests: filesystem
// storage in a temp dir, deletes enabled, and no auth, htpasswd basic auth or bearer tokens
// from test/support/token-issuer.ts.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile, rm, readdir, stat } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { readFile } from 'node:fs/promises';
import { startTokenIssuer, type TokenIssuer, type TokenIssuerOptions, type TokenUser } from './token-issuer.ts';

const run = promisify(execFile);

export type RegistryAuth = 'none' | 'basic' | 'token';

export interface StartRegistryOptions {
  auth?: RegistryAuth;
  users?: TokenUser[];
  deleteEnabled?: boolean;
  /** Extra token-issuer options (ttl, acl, anonymous pull) when auth is 'token'. */
  token?: Omit<TokenIssuerOptions, 'users'>;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Serve HTTPS with a fresh self-signed certificate for 127.0.0.1 (its PEM in `caFile`). */
  tls?: boolean;
}

export interface TestRegistry {
  url: string;          // http://127.0.0.1:port
  host: string;         // 127.0.0.1:port
  dir: string;          // temp dir; storage under dir/data
  auth: RegistryAuth;
  users: TokenUser[];
  tokenIssuer?: TokenIssuer;
  /** With `tls`: the self-signed certificate to trust. */
  caFile?: string;
  logs(): string;
  /** Blob digests present in storage (the registry's own view, not a client's counters). */
  storedBlobs(): Promise<string[]>;
  /** Repositories that link the blob in storage (a mount or an upload created the link). */
  blobLinkedIn(repo: string, digest: string): Promise<boolean>;
  stop(): Promise<void>;
}

// Registries still running when the test process exits (a crash, a forgotten stop()) die with it.
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => { for (const c of running) c.kill('SIGKILL'); });
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function htpasswdLines(users: TokenUser[]): Promise<string> {
  const lines: string[] = [];
  for (const u of users) {
    // -C 4: the lowest bcrypt cost keeps every authenticated request cheap in tests.
    const { stdout } = await run('htpasswd', ['-nbBC', '4', u.username, u.password]);
    lines.push(stdout.trim());
  }
  return lines.join('\n') + '\n';
}

export async function selfSignedCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  return { cert, key };
}

async function waitReady(url: string, child: ChildProcess, logs: () => string, timeoutMs = 15000, ca?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  const dispatcher = ca ? new Agent({ connect: { ca } }) : undefined;
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}):\n${logs()}`);
      try {
        const res = await request(`${url}/v2/`, { method: 'GET', headersTimeout: 2000, bodyTimeout: 2000, ...(dispatcher ? { dispatcher } : {}) });
        await res.body.dump();
        if (res.statusCode === 200 || res.statusCode === 401) return;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 200);
    }
  } finally {
    await dispatcher?.close();
  }
  throw new Error(`docker-registry not ready after ${timeoutMs} ms:\n${logs()}`);
}

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const users = opts.users ?? (auth === 'none' ? [] : [{ username: 'robot$bridge', password: 'p4ss:w0rd$' }]);
  const dir = await mkdtemp(join(tmpdir(), 'hsb-registry-'));
  const tokenIssuer = auth === 'token' ? await startTokenIssuer({ ...opts.token, users }) : undefined;

  let authYaml = '';
  if (auth === 'basic') {
    await writeFile(join(dir, 'htpasswd'), await htpasswdLines(users));
    authYaml = `auth:\n  htpasswd:\n    realm: hsb-test\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (tokenIssuer) {
    authYaml = `auth:\n  token:\n    realm: ${tokenIssuer.url}\n    service: ${tokenIssuer.service}\n    issuer: ${tokenIssuer.issuer}\n    rootcertbundle: ${tokenIssuer.certFile}\n`;
  }

  const tls = opts.tls ? await selfSignedCert(dir) : undefined;
  const tlsYaml = tls ? `  tls:\n    certificate: ${tls.cert}\n    key: ${tls.key}\n` : '';
  const ca = tls ? await readFile(tls.cert, 'utf8') : undefined;

  // A port taken between freePort() and the registry's bind is retried with a new port.
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const config = `version: 0.1
log:
  level: ${opts.logLevel ?? 'info'}
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: ${opts.deleteEnabled ?? true}
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: ${host}
  secret: ${randomBytes(16).toString('hex')}
${tlsYaml}${authYaml}`;
    const configFile = join(dir, 'config.yml');
    await writeFile(configFile, config);
    const child = spawn('/usr/bin/docker-registry', ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    const chunks: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => chunks.push(b));
    const logs = () => Buffer.concat(chunks).toString('utf8');
    const url = `${tls ? 'https' : 'http'}://${host}`;
    try {
      await waitReady(url, child, logs, 15000, ca);
    } catch (e) {
      child.kill('SIGKILL');
      if (attempt < 3 && /address already in use/.test(logs())) continue;
      await tokenIssuer?.stop();
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
    const repoRoot = join(dir, 'data', 'docker', 'registry', 'v2');
    return {
      url, host, dir, auth, users, tokenIssuer, logs, ...(tls ? { caFile: tls.cert } : {}),
      async storedBlobs() {
        const base = join(repoRoot, 'blobs', 'sha256');
        const out: string[] = [];
        for (const pre of await readdir(base).catch(() => [] as string[])) {
          for (const hex of await readdir(join(base, pre)).catch(() => [] as string[])) out.push(`sha256:${hex}`);
        }
        return out;
      },
      async blobLinkedIn(repo, digest) {
        const hex = digest.replace(/^sha256:/, '');
        return await stat(join(repoRoot, 'repositories', repo, '_layers', 'sha256', hex, 'link')).then(() => true, () => false);
      },
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((r) => child.once('exit', () => r()));
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(t);
        }
        await tokenIssuer?.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}
