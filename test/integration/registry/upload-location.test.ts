// The spec's upload-status answer carries the session's current Location, and "the following chunk
// upload SHOULD use" it. A scripted registry that rotates the session URL on every answer and takes
// only the newest; the connection of the third PATCH breaks before any byte is read.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { RegistryClient } from '../../../src/registry/client.ts';

let server: Server;
let url = '';
let version = 0;
let stored = 0;
let patches = 0;
let completed = '';
const seen: string[] = [];
const nextLocation = () => `/v2/a/b/blobs/uploads/s1?v=${++version}`;

before(async () => {
  server = createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    const stale = u.pathname === '/v2/a/b/blobs/uploads/s1' && u.searchParams.get('v') !== String(version);
    seen.push(`${req.method}${stale ? ' stale' : ''}`);
    if (req.method === 'PATCH' && ++patches === 3) { req.socket.destroy(); return; }
    let got = 0;
    req.on('data', (c: Buffer) => { got += c.length; });
    req.on('end', () => {
      const range = () => ({ range: `0-${Math.max(0, stored - 1)}` });
      if (req.method === 'POST') { stored = 0; res.writeHead(202, { location: nextLocation(), ...range() }).end(); return; }
      if (stale) { res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"stale session URL"}]}'); return; }
      if (req.method === 'GET') { res.writeHead(204, { location: nextLocation(), ...range() }).end(); return; }
      if (req.method === 'PATCH') { stored += got; res.writeHead(202, { location: nextLocation(), ...range() }).end(); return; }
      if (req.method === 'PUT') { completed = u.searchParams.get('digest') ?? ''; res.writeHead(201, { 'docker-content-digest': completed }).end(); return; }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

test('a resumed chunk goes to the Location the upload-status answer gave, in the same session', async () => {
  const blob = randomBytes(4 * 1024 * 1024);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const c = new RegistryClient({ url }, { upload: { monolithicMaxBytes: 1024, chunkBytes: 1024 * 1024 }, retry: { baseMs: 5, maxMs: 20 } });
  try {
    await c.uploadBlob('a/b', { digest, size: blob.length }, async (offset: number) => Readable.from([blob.subarray(offset)]));
  } finally {
    await c.close();
  }
  assert.equal(completed, digest);
  assert.deepEqual(seen.filter((s) => s.includes('stale')), [], 'no request to an old session URL');
  assert.equal(seen.filter((s) => s === 'POST').length, 1, 'resumed, not started over');
});
