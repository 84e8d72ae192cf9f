// The webhook fast path's route matcher against Express's own router: every request target the
// fast path takes must be one Express would have routed to the same handler with the same id.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import express from 'express';
import { plainWebhookRoute } from '../../../src/ingest/routes.ts';

describe('plainWebhookRoute', () => {
  it('takes the plain spellings of the three webhook routes', () => {
    assert.deepEqual(plainWebhookRoute('/webhooks/harbor/harbor-prod'), { kind: 'harbor', sourceId: 'harbor-prod' });
    assert.deepEqual(plainWebhookRoute('/webhooks/harbor'), { kind: 'harbor', sourceId: undefined });
    assert.deepEqual(plainWebhookRoute('/webhooks/harbor/'), { kind: 'harbor', sourceId: undefined });
    assert.deepEqual(plainWebhookRoute('/webhooks/distribution/reg.dev_1'), { kind: 'distribution', sourceId: 'reg.dev_1' });
    assert.deepEqual(plainWebhookRoute('/WebHooks/HARBOR/Prod/?a=b/c'), { kind: 'harbor', sourceId: 'Prod' });
    assert.deepEqual(plainWebhookRoute('/webhooks/harbor?x'), { kind: 'harbor', sourceId: undefined });
  });

  it('leaves everything else to Express', () => {
    for (const url of [
      '/webhooks/distribution', '/webhooks/distribution/', '/webhooks/harbor//', '/webhooks/harbor/a/b', '/webhooks/harborx/a',
      '/webhooks/harbor/a%2Db', '/webhooks/harbor/%E0%A4%A', '//webhooks/harbor/a', 'http://h/webhooks/harbor/a', '/webhooks/harbor/a#b',
      '/webhooks/harbor/a b', '', '*',
    ]) assert.equal(plainWebhookRoute(url), undefined, url);
  });
});

describe('plainWebhookRoute agrees with Express', () => {
  let server: Server;
  let port = 0;
  before(async () => {
    const app = express();
    const seen = (kind: string) => (req: express.Request, res: express.Response) => { res.json({ kind, sourceId: req.params.sourceId ?? null }); };
    app.post('/webhooks/harbor', seen('harbor'));
    app.post('/webhooks/harbor/:sourceId', seen('harbor'));
    app.post('/webhooks/distribution/:sourceId', seen('distribution'));
    app.use((_req, res) => { res.status(404).json({ kind: null }); });
    server = createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  // Raw request targets (fetch would normalise them), so that what Express sees is what was generated.
  const routedByExpress = (path: string) => new Promise<{ kind: string | null; sourceId?: string | null }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString(); });
      res.on('end', () => { try { resolve(JSON.parse(text)); } catch (e) { reject(e as Error); } });
    });
    req.on('error', reject);
    req.end();
  });

  it('for generated request targets', async () => {
    const pieces = ['', '/', 'webhooks', 'WEBHOOKS', 'harbor', 'Harbor', 'distribution', 'a', 'A-b.c_9', '..', '%41', '?', '?q=/x', '//', 'x y'.replace(' ', '%20')];
    let seed = 7;
    const pick = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return pieces[seed % pieces.length]!; };
    const urls = new Set<string>(['/webhooks/harbor/x', '/webhooks/harbor', '/webhooks/distribution/x']);
    while (urls.size < 600) {
      const shape = seed % 3;
      const parts = shape === 0 ? ['/webhooks/', pick(), '/', pick()] : shape === 1 ? ['/', pick(), '/', pick(), pick(), pick()] : ['/webhooks/harbor', pick(), pick()];
      urls.add(parts.join(''));
      pick();
    }
    let taken = 0;
    for (const url of urls) {
      const fast = plainWebhookRoute(url);
      if (!fast) continue;
      taken++;
      assert.deepEqual(await routedByExpress(url), { kind: fast.kind, sourceId: fast.sourceId ?? null }, url);
    }
    assert.ok(taken >= 30, `only ${taken} generated targets were plain`);
  });
});
