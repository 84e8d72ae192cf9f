// A loopback HTTP proxy in front of a test registry that injects faults by rule: canned statuses
// (429 with Retry-After, 503 ...), a connection cut after N bytes of a request body, and blob GET
// redirects to a second origin (like S3/CDN) that records whether Authorization leaked to it.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface RuleMatch {
  method?: string;
  path?: RegExp;
  /** Only the n-th matching request (1-based); other matches pass through. */
  nth?: number;
  /** Only requests that do (true) or do not (false) carry Authorization. */
  authorized?: boolean;
}

export type FaultRule =
  | { match?: RuleMatch; action: 'status'; status: number; headers?: Record<string, string>; body?: string; times?: number }
  | { match?: RuleMatch; action: 'cut'; afterBytes: number; times?: number }
  | { match?: RuleMatch; action: 'redirect'; status?: 302 | 307; times?: number }
  | { match?: RuleMatch; action: 'delay'; ms: number; times?: number }
  | { match?: RuleMatch; action: 'cutResponse'; afterBytes: number; times?: number };

export interface ProxyRecord { method: string; path: string; action?: FaultRule['action']; status?: number; authorization: boolean; bodyBytes: number }

export interface FaultProxy {
  url: string;
  host: string;
  /** Requests the proxy saw, in order. */
  requests: ProxyRecord[];
  /** Most requests in flight at once since start (or the last resetStats). */
  maxInFlight(): number;
  resetStats(): void;
  /** The redirect target: requests it served and whether they carried Authorization. */
  redirectOrigin: { url: string; requests: { path: string; authorization: boolean; status: number }[] };
  addRule(rule: FaultRule): void;
  clearRules(): void;
  stop(): Promise<void>;
}

interface LiveRule { rule: FaultRule; seen: number; fired: number }

const listen = (s: Server) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));

export async function startFaultProxy(upstreamUrl: string): Promise<FaultProxy> {
  const upstream = new URL(upstreamUrl);
  const rules: LiveRule[] = [];
  const requests: ProxyRecord[] = [];
  const redirected: FaultProxy['redirectOrigin']['requests'] = [];
  // Authorization the client sent with the original blob GET, by one-time id: the second
  // origin uses it to fetch from the registry, as a pre-signed URL would carry its own grant.
  const grants = new Map<string, { path: string; authorization?: string }>();

  const pick = (req: IncomingMessage): LiveRule | undefined => {
    for (const r of rules) {
      const m = r.rule.match ?? {};
      if (m.method && m.method !== req.method) continue;
      if (m.path && !m.path.test(req.url ?? '')) continue;
      if (m.authorized !== undefined && m.authorized !== !!req.headers.authorization) continue;
      r.seen++;
      if (m.nth !== undefined && r.seen !== m.nth) continue;
      if (r.rule.times !== undefined && r.fired >= r.rule.times) continue;
      r.fired++;
      return r;
    }
    return undefined;
  };

  const forward = (req: IncomingMessage, res: ServerResponse, rec: ProxyRecord, cutAfter?: number, cutResponseAfter?: number) => {
    const up = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers });
    up.on('response', (ur) => {
      rec.status = ur.statusCode;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (cutResponseAfter === undefined) { ur.pipe(res); return; }
      let sent = 0;
      ur.on('data', (chunk: Buffer) => {
        if (sent < 0) return;
        const room = cutResponseAfter - sent;
        if (room > chunk.length) { sent += chunk.length; res.write(chunk); return; }
        sent = -1;
        res.write(chunk.subarray(0, Math.max(0, room)), () => setImmediate(() => { ur.destroy(); res.destroy(); }));
      });
      ur.on('end', () => { if (sent >= 0) res.end(); });
    });
    up.on('error', () => res.destroy());
    req.on('data', (chunk: Buffer) => {
      if (cutAfter === undefined) { rec.bodyBytes += chunk.length; up.write(chunk); return; }
      const room = cutAfter - rec.bodyBytes;
      if (room > chunk.length) { rec.bodyBytes += chunk.length; up.write(chunk); return; }
      rec.bodyBytes += Math.max(0, room);
      const cut = () => { up.destroy(); req.socket.destroy(); };
      if (room > 0) up.write(chunk.subarray(0, room), () => setImmediate(cut)); else cut();
      cutAfter = -1;
      req.pause();
    });
    req.on('end', () => { if (cutAfter === undefined || cutAfter >= 0) up.end(); });
  };

  let redirectBase = '';
  let inFlight = 0;
  let peak = 0;
  const proxy = createServer((req, res) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    res.on('close', () => { inFlight--; });
    const rec: ProxyRecord = { method: req.method ?? '', path: req.url ?? '', authorization: !!req.headers.authorization, bodyBytes: 0 };
    requests.push(rec);
    const live = pick(req);
    const rule = live?.rule;
    rec.action = rule?.action;
    if (!rule) { forward(req, res, rec); return; }
    if (rule.action === 'status') {
      req.resume();
      req.on('end', () => {
        rec.status = rule.status;
        res.writeHead(rule.status, { 'content-type': 'application/json', ...rule.headers });
        res.end(rule.body ?? JSON.stringify({ errors: [{ code: rule.status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', message: 'injected by fault proxy' }] }));
      });
      return;
    }
    if (rule.action === 'cut') { forward(req, res, rec, rule.afterBytes); return; }
    if (rule.action === 'cutResponse') { forward(req, res, rec, undefined, rule.afterBytes); return; }
    if (rule.action === 'delay') { req.pause(); setTimeout(() => { req.resume(); forward(req, res, rec); }, rule.ms); return; }
    // redirect
    req.resume();
    const id = randomBytes(8).toString('hex');
    grants.set(id, { path: req.url ?? '/', authorization: req.headers.authorization });
    rec.status = rule.status ?? 307;
    res.writeHead(rec.status, { location: `${redirectBase}/signed/${id}${req.url}` }).end();
  });

  const origin = createServer((req, res) => {
    const m = /^\/signed\/([0-9a-f]+)(\/.*)$/.exec(req.url ?? '');
    const grant = m ? grants.get(m[1]!) : undefined;
    const entry = { path: req.url ?? '', authorization: !!req.headers.authorization, status: 0 };
    redirected.push(entry);
    if (!grant || grant.path !== m![2]) { entry.status = 403; res.writeHead(403).end('bad signature'); return; }
    const headers: Record<string, string> = {};
    if (grant.authorization) headers.authorization = grant.authorization;
    if (req.headers.range) headers.range = req.headers.range;
    const up = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: grant.path, headers });
    up.on('response', (ur) => {
      entry.status = ur.statusCode ?? 0;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    up.end();
  });

  const [port, originPort] = await Promise.all([listen(proxy), listen(origin)]);
  redirectBase = `http://127.0.0.1:${originPort}`;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    maxInFlight: () => peak,
    resetStats: () => { peak = inFlight; },
    redirectOrigin: { url: redirectBase, requests: redirected },
    addRule: (rule) => { rules.push({ rule, seen: 0, fired: 0 }); },
    clearRules: () => { rules.length = 0; },
    async stop() {
      for (const s of [proxy, origin]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}
