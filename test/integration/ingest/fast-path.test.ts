// Webhooks at their plain paths are served ahead of Express (src/http/app.ts, Ingest.take). These
// tests hold that path to the Express one: the same answer for every request target and every
// outcome, and the fast path really taking the plain spellings.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type RequestListener, type Server } from 'node:http';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import type { Bus } from '../../../src/bus/port.ts';
import { createApp, createExpressApp } from '../../../src/http/app.ts';
import { createIngest } from '../../../src/ingest/routes.ts';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { createLogger, silentLogger } from '../../../src/observability/logger.ts';
import { SECRET, digestFor, embeddedBus, eventCount, pushArtifact, testConfig, withPublish } from './harness.ts';

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

async function listen(listener: RequestListener): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer(listener);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}

/** One request with the target exactly as given (fetch and supertest would normalise it). */
function send(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: { ...headers, 'content-length': String(body === undefined ? 0 : Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const { date: _date, ...rest } = res.headers;
        resolve({ status: res.statusCode!, headers: rest, body: Buffer.concat(chunks).toString() });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const IDS = ['harbor-prod', 'A-b.c_9', '..', 'x'];
const config = testConfig({ sources: IDS.map((id) => ({ id, url: 'https://h.example.com', webhookSecrets: [SECRET] })), server: { bodyLimitBytes: 4096 } });

describe('the webhook fast path', () => {
  let bus: Bus;
  let cleanup: () => Promise<void>;
  const servers: { close(): Promise<void> }[] = [];
  let fast = 0;
  let viaExpress = 0;
  let takeOnly = 0;

  before(async () => {
    ({ bus, cleanup } = await embeddedBus());
    const deps = { config, bus, metrics: createMetrics(), logger: silentLogger };
    const a = await listen(createApp(deps));
    const b = await listen(createExpressApp({ ...deps, metrics: createMetrics() }));
    // Only the fast path: anything it leaves is answered 599 here.
    const ingest = createIngest({ ...deps, metrics: createMetrics() });
    const c = await listen((req, res) => { if (!ingest.take(req, res)) { res.writeHead(599); res.end(); } });
    servers.push(a, b, c);
    [fast, viaExpress, takeOnly] = [a.port, b.port, c.port];
  });
  after(async () => {
    for (const s of servers) await s.close();
    await cleanup();
  });

  it('takes the plain spellings of the webhook routes and leaves the rest to Express', async () => {
    const plain = ['/webhooks/harbor/x', '/WEBHOOKS/Harbor/A-b.c_9/?q=1', '/webhooks/distribution/..', '/webhooks/harbor'];
    for (const path of plain) assert.notEqual((await send(takeOnly, 'POST', path)).status, 599, path);
    const others: [string, string][] = [
      ['POST', '/webhooks/harbor/harbor%2Dprod'], ['POST', 'http://h/webhooks/harbor/x'], ['POST', '/webhooks/distribution'],
      ['GET', '/webhooks/harbor/x'], ['HEAD', '/webhooks/harbor/x'], ['PUT', '/webhooks/harbor/x'], ['POST', '/livez'],
    ];
    for (const [method, path] of others) assert.equal((await send(takeOnly, method, path)).status, 599, `${method} ${path}`);
  });

  it('answers every generated request target as Express alone does', async () => {
    const word = (w: string) => fc.mixedCase(fc.constant(w));
    const piece = fc.oneof(
      fc.constantFrom(...IDS, 'nope', '', '%2D', '%41', '%', '#f', ';p', '.', '~', '@', '\'', '!', '*', '(x)', '\\', 'x%2Fy'),
      word('webhooks'), word('harbor'), word('distribution'),
    );
    const query = fc.constantFrom('', '?', '?a=/webhooks/harbor/x', '?#', '#');
    const target = fc.oneof(
      // Shaped like the routes, so that many take the fast path.
      fc.tuple(word('webhooks'), fc.oneof(word('harbor'), word('distribution'), piece), fc.option(piece), fc.constantFrom('', '/', '//'), query)
        .map(([w, k, id, slash, q]) => `/${w}/${k}${id === null ? '' : `/${id}`}${slash}${q}`),
      fc.array(piece, { minLength: 1, maxLength: 5 }).map((parts) => `/${parts.join('/')}`),
    );
    const targets = [...new Set(fc.sample(target, { numRuns: 600, seed: 42 }))];
    let taken = 0;
    for (const path of targets) {
      const [a, b, c] = await Promise.all([send(fast, 'POST', path), send(viaExpress, 'POST', path), send(takeOnly, 'POST', path)]);
      if (c.status !== 599) taken++;
      assert.deepEqual(a, b, path);
    }
    assert.ok(taken >= 100 && taken < targets.length, `${taken} of ${targets.length} generated targets took the fast path`);
  });

  it('gives the same answer as Express for every outcome', async () => {
    const harbor = (id: string) => ['/webhooks/harbor/' + id, '/webhooks/harbor/' + encodeURIComponent(id).replace(/-/g, '%2D')];
    const json = { 'content-type': 'application/json', authorization: SECRET };
    const body = JSON.stringify(pushArtifact('proj/app', 'v1', digestFor(77)));
    const cases: [string, Record<string, string>, string | Buffer | undefined, number][] = [
      ['harbor-prod', json, body, 200],
      ['harbor-prod', { ...json, authorization: 'Bearer wrong' }, body, 401],
      ['no-such', json, body, 404],
      ['harbor-prod', { ...json, 'content-type': 'text/plain' }, body, 415],
      ['harbor-prod', json, '{"type":', 400],
      ['harbor-prod', json, '{"type":"PUSH_ARTIFACT"}', 400],
      ['harbor-prod', json, 'x'.repeat(5000), 413],
      ['harbor-prod', { ...json, 'content-encoding': 'gzip' }, gzipSync(body), 200],
      ['harbor-prod', { ...json, 'content-encoding': 'gzip' }, Buffer.from('not gzip'), 400],
      ['harbor-prod', json, '', 200],
    ];
    for (const [id, headers, payload, status] of cases) {
      const [plain, encoded] = harbor(id);
      assert.notEqual(plain, encoded);
      const a = await send(fast, 'POST', plain!, headers, payload);
      const b = await send(fast, 'POST', encoded!, headers, payload);
      assert.equal(a.status, status, `${id} ${status}`);
      assert.deepEqual(a, b, `${id} ${status}`);
    }
  });

  it('503 with Retry-After alike when the bus fails', async () => {
    const failing = withPublish(bus, () => Promise.reject(new Error('broker gone')));
    const s = await listen(createApp({ config, bus: failing, metrics: createMetrics(), logger: silentLogger }));
    try {
      const before = await eventCount(bus);
      const headers = { 'content-type': 'application/json', authorization: SECRET };
      const body = JSON.stringify(pushArtifact('proj/app', 'v2', digestFor(78)));
      const a = await send(s.port, 'POST', '/webhooks/harbor/x', headers, body);
      const b = await send(s.port, 'POST', '/webhooks/harbor/%78', headers, body);
      assert.equal(a.status, 503);
      assert.equal(a.headers['retry-after'], '5');
      assert.deepEqual(a, b);
      assert.equal(await eventCount(bus), before);
    } finally {
      await s.close();
    }
  });

  it('a bug whose error cannot even be logged drops that connection, not the process', async () => {
    // The metric throws inside the handler, and the log sink throws while reporting it.
    const metrics = createMetrics();
    metrics.countWebhook = () => { throw new Error('metric broke'); };
    const logger = createLogger('info', { write: () => { throw new Error('log sink broke'); } });
    const s = await listen(createApp({ config, bus, metrics, logger }));
    try {
      for (const path of ['/webhooks/harbor/no-such', '/webhooks/harbor/no%2Dsuch']) {
        await assert.rejects(send(s.port, 'POST', path), /socket hang up|ECONNRESET/, path);
      }
      assert.equal((await send(s.port, 'GET', '/livez')).status, 200);
    } finally {
      await s.close();
    }
  });
});
