// Protocol corners real distribution 2.8 does not exercise, against a scripted node:http registry:
// schema1, wrong digests, paging, servers that ignore Range, the referrers API, size caps,
// relative upload Locations with OCI-Chunk-Min-Length, and cancellation.
import { test, after, before, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { RegistryClient } from '../../../src/registry/client.ts';
import { MediaType } from '../../../src/registry/media-types.ts';
import type { BridgeError } from '../../../src/errors.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;
let server: Server;
let url = '';
let routes: [string, RegExp, Handler][] = [];
const seen: { method: string; path: string; headers: IncomingMessage['headers']; bodyBytes: number }[] = [];
const clients: RegistryClient[] = [];

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, path: req.url!, headers: req.headers, bodyBytes: body.length });
      const r = routes.find(([m, p]) => m === req.method && p.test(req.url!));
      if (r) r[2](req, res, body); else res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  for (const c of clients) await c.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});
beforeEach(() => { routes = []; seen.length = 0; });

const client = (upload?: { monolithicMaxBytes: number; chunkBytes: number }) => {
  const c = new RegistryClient({ url }, { retry: { baseMs: 5, maxMs: 20 }, ...(upload ? { upload } : {}) });
  clients.push(c);
  return c;
};
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const route = (method: string, path: RegExp, h: Handler) => routes.push([method, path, h]);

test('schema1 manifests are refused, by media type or by content', async () => {
  route('GET', /manifests\/old$/, (_q, res) => res.writeHead(200, { 'content-type': MediaType.dockerSchema1Signed }).end('{"schemaVersion":1,"name":"x","fsLayers":[]}'));
  route('GET', /manifests\/json$/, (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"schemaVersion":1,"name":"x"}'));
  for (const tag of ['old', 'json']) {
    await assert.rejects(client().getManifest('a/b', tag), (e: BridgeError) => e.code === 'HSB_REGISTRY_SCHEMA1' && !e.retryable);
  }
});

test('manifest bytes that do not hash to the requested digest or Docker-Content-Digest are refused', async () => {
  const body = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}');
  const other = sha(Buffer.from('other'));
  route('GET', /manifests\/sha256:/, (_q, res) => res.writeHead(200, { 'content-type': MediaType.ociIndex }).end(body));
  route('GET', /manifests\/lying$/, (_q, res) => res.writeHead(200, { 'content-type': MediaType.ociIndex, 'docker-content-digest': other }).end(body));
  route('GET', /manifests\/ok$/, (_q, res) => res.writeHead(200, { 'content-type': MediaType.ociIndex, 'docker-content-digest': sha(body) }).end(body));
  await assert.rejects(client().getManifest('a/b', other), (e: BridgeError) => e.code === 'HSB_REGISTRY_DIGEST_MISMATCH' && e.context.expected === other);
  await assert.rejects(client().getManifest('a/b', 'lying'), (e: BridgeError) => e.code === 'HSB_REGISTRY_DIGEST_MISMATCH');
  const ok = await client().getManifest('a/b', 'ok');
  assert.deepEqual(ok, { bytes: body, mediaType: MediaType.ociIndex, digest: sha(body) });
});

test('manifests over 8 MiB are refused without reading them whole', async () => {
  route('GET', /manifests\/huge$/, (_q, res) => res.writeHead(200, { 'content-type': MediaType.ociManifest, 'content-length': String(9 * 1024 * 1024) }).end(Buffer.alloc(9 * 1024 * 1024, 32)));
  await assert.rejects(client().getManifest('a/b', 'huge'), (e: BridgeError) => e.code === 'HSB_REGISTRY_TOO_LARGE');
});

test('HEAD without Docker-Content-Digest falls back to GET and hashes', async () => {
  const body = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}');
  route('HEAD', /manifests\/v1$/, (_q, res) => res.writeHead(200, { 'content-type': MediaType.ociIndex, 'content-length': String(body.length) }).end());
  route('GET', /manifests\/v1$/, (_q, res) => res.writeHead(200, { 'content-type': MediaType.ociIndex }).end(body));
  assert.deepEqual(await client().headManifest('a/b', 'v1'), { digest: sha(body), mediaType: MediaType.ociIndex, size: body.length });
});

test('tags and catalog follow Link pages', async () => {
  route('GET', /^\/v2\/a\/b\/tags\/list\?n=1000$/, (_q, res) => res.writeHead(200, { link: '</v2/a/b/tags/list?n=1000&last=t2>; rel="next"' }).end('{"name":"a/b","tags":["t1","t2"]}'));
  route('GET', /^\/v2\/a\/b\/tags\/list\?n=1000&last=t2$/, (_q, res) => res.writeHead(200).end('{"name":"a/b","tags":["t3"]}'));
  route('GET', /^\/v2\/_catalog\?n=1000$/, (_q, res) => res.writeHead(200, { link: '</v2/_catalog?last=a%2Fb&n=1000>; rel="next"' }).end('{"repositories":["a/b"]}'));
  route('GET', /^\/v2\/_catalog\?last=/, (_q, res) => res.writeHead(200).end('{"repositories":["c/d"]}'));
  const c = client();
  assert.deepEqual(await c.listTags('a/b'), ['t1', 't2', 't3']);
  assert.deepEqual(await c.listTags('x/y'), []);
  assert.deepEqual(await c.catalog(), ['a/b', 'c/d']);
});

test('a blob server that ignores Range still yields the bytes from the offset', async () => {
  const blob = randomBytes(10_000);
  route('GET', /blobs\/sha256:/, (_q, res) => res.writeHead(200, { 'content-length': String(blob.length) }).end(blob));
  const got = await client().getBlob('a/b', sha(blob), { offset: 4000 });
  const chunks: Buffer[] = [];
  for await (const ch of got.body) chunks.push(ch as Buffer);
  assert.deepEqual(Buffer.concat(chunks), blob.subarray(4000));
  assert.equal(seen.at(-1)!.headers.range, 'bytes=4000-');
});

test('the OCI 1.1 referrers API is used when the registry has it', async () => {
  const subject = sha(Buffer.from('s'));
  const ref = { mediaType: MediaType.ociManifest, digest: sha(Buffer.from('r')), size: 5, artifactType: 'application/example' };
  route('GET', /referrers\/sha256:/, (_q, res) => res.writeHead(200, { 'content-type': MediaType.ociIndex }).end(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [ref] })));
  const r = await client().referrers('a/b', subject);
  assert.equal(r.via, 'api');
  assert.deepEqual(r.descriptors, [ref]);
});

test('referrers API answers in pages are followed through their Link headers', async () => {
  const subject = sha(Buffer.from('paged'));
  const refs = ['r1', 'r2', 'r3'].map((x) => ({ mediaType: MediaType.ociManifest, digest: sha(Buffer.from(x)), size: 2, artifactType: 'application/example' }));
  const page = (manifests: unknown[], next?: string) => (_q: IncomingMessage, res: ServerResponse) =>
    res.writeHead(200, { 'content-type': MediaType.ociIndex, ...(next ? { link: `<${next}>; rel="next"` } : {}) })
      .end(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }));
  route('GET', /referrers\/sha256:[a-f0-9]+\?last=2$/, page([refs[2]]));
  route('GET', /referrers\/sha256:[a-f0-9]+\?last=1$/, page([refs[1]], `/v2/a/b/referrers/${subject}?last=2`));
  route('GET', /referrers\/sha256:[a-f0-9]+$/, page([refs[0]], `/v2/a/b/referrers/${subject}?last=1`));
  const r = await client().referrers('a/b', subject);
  assert.equal(r.via, 'api');
  assert.deepEqual(r.descriptors, refs);
});

/** A scripted upload endpoint: relative Locations, Range answers, a chunk minimum. */
function uploadRoutes(minChunk: number) {
  const state = { size: 0, chunks: [] as number[], ranges: [] as string[], finished: '', cancelled: false, data: [] as Buffer[] };
  route('POST', /blobs\/uploads\/$/, (_q, res) => res.writeHead(202, { location: '/v2/a/b/blobs/uploads/u1?_state=s0', 'oci-chunk-min-length': String(minChunk), range: '0-0' }).end());
  route('PATCH', /blobs\/uploads\/u1/, (req, res, body) => {
    state.ranges.push(String(req.headers['content-range']));
    state.chunks.push(body.length);
    state.data.push(body);
    state.size += body.length;
    res.writeHead(202, { location: `/v2/a/b/blobs/uploads/u1?_state=s${state.chunks.length}`, range: `0-${state.size - 1}` }).end();
  });
  route('PUT', /blobs\/uploads\/u1/, (req, res) => {
    state.finished = new URL(req.url!, 'http://x').searchParams.get('digest') ?? '';
    res.writeHead(201, { location: `/v2/a/b/blobs/${state.finished}` }).end();
  });
  route('DELETE', /blobs\/uploads\/u1/, (_q, res) => { state.cancelled = true; res.writeHead(204).end(); });
  return state;
}

test('chunked uploads follow relative Locations and honour OCI-Chunk-Min-Length', async () => {
  const st = uploadRoutes(2 * 1024 * 1024);
  const blob = randomBytes(5 * 1024 * 1024);
  const progress: number[] = [];
  await client({ monolithicMaxBytes: 1024 * 1024, chunkBytes: 1024 * 1024 }).uploadBlob('a/b', { digest: sha(blob), size: blob.length }, async (o) => Readable.from([blob.subarray(o)]), { onProgress: (n) => progress.push(n) });
  assert.deepEqual(st.chunks, [2 * 1024 * 1024, 2 * 1024 * 1024, 1024 * 1024]);
  assert.deepEqual(st.ranges, ['0-2097151', '2097152-4194303', '4194304-5242879']);
  assert.equal(st.finished, sha(blob));
  assert.deepEqual(Buffer.concat(st.data), blob);
  assert.equal(progress.at(-1), blob.length);
});

test('an aborted upload stops, cancels its session and reports HSB_REGISTRY_ABORTED', async () => {
  const st = uploadRoutes(0);
  const blob = randomBytes(4 * 1024 * 1024);
  const ac = new AbortController();
  const p = client({ monolithicMaxBytes: 1024, chunkBytes: 1024 * 1024 }).uploadBlob('a/b', { digest: sha(blob), size: blob.length }, async (o) => Readable.from([blob.subarray(o)]), { onProgress: (n) => { if (n >= 1024 * 1024) ac.abort(new Error('shutdown')); }, signal: ac.signal });
  await assert.rejects(p, (e: BridgeError) => e.code === 'HSB_REGISTRY_ABORTED' && !e.retryable);
  assert.equal(st.finished, '');
  assert.equal(st.cancelled, true);
});

test('a chunked upload that restarts in a new session honours that session\'s OCI-Chunk-Min-Length', async () => {
  const chunks: Record<string, number[]> = { u1: [], u2: [] };
  let sessions = 0;
  let finished = '';
  const data: Buffer[] = [];
  // The first session takes any chunk but loses the upload at its first PATCH; the second wants 2 MiB chunks.
  route('POST', /blobs\/uploads\/$/, (_q, res) => {
    sessions++;
    res.writeHead(202, sessions === 1
      ? { location: '/v2/a/b/blobs/uploads/u1', range: '0-0' }
      : { location: '/v2/a/b/blobs/uploads/u2', 'oci-chunk-min-length': String(2 * 1024 * 1024), range: '0-0' }).end();
  });
  route('PATCH', /blobs\/uploads\/u1/, (_q, res, body) => {
    chunks.u1!.push(body.length);
    res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN","message":"lost"}]}');
  });
  route('GET', /blobs\/uploads\/u1/, (_q, res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"gone"}]}'));
  route('DELETE', /blobs\/uploads\/u1/, (_q, res) => res.writeHead(404).end());
  let held = 0;
  route('PATCH', /blobs\/uploads\/u2/, (_q, res, body) => {
    chunks.u2!.push(body.length);
    data.push(body);
    held += body.length;
    res.writeHead(202, { location: '/v2/a/b/blobs/uploads/u2', range: `0-${held - 1}` }).end();
  });
  route('PUT', /blobs\/uploads\/u2/, (req, res) => {
    finished = new URL(req.url!, 'http://x').searchParams.get('digest') ?? '';
    res.writeHead(201, { location: `/v2/a/b/blobs/${finished}` }).end();
  });
  const blob = randomBytes(5 * 1024 * 1024);
  await client({ monolithicMaxBytes: 1024 * 1024, chunkBytes: 1024 * 1024 }).uploadBlob('a/b', { digest: sha(blob), size: blob.length }, async (o) => Readable.from([blob.subarray(o)]));
  assert.equal(sessions, 2);
  assert.deepEqual(chunks.u1, [1024 * 1024]);
  assert.deepEqual(chunks.u2, [2 * 1024 * 1024, 2 * 1024 * 1024, 1024 * 1024]);
  assert.equal(finished, sha(blob));
  assert.deepEqual(Buffer.concat(data), blob);
});

test('a token service that quotes the credentials it refused does not put them in the error', async () => {
  const password = 'R0bot-Secret-Proto';
  route('GET', /^\/token/, (req, res) => res.writeHead(401, { 'content-type': 'application/json' })
    .end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: `bad credentials in "${req.headers.authorization}"` }] })));
  route('GET', /tags\/list/, (_q, res) => res.writeHead(401, { 'www-authenticate': `Bearer realm="${url}/token",service="reg"`, 'content-type': 'application/json' })
    .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'));
  const c = new RegistryClient({ url, credentials: { username: 'robot$bridge', password } }, { retry: { baseMs: 5, maxMs: 20 } });
  clients.push(c);
  await assert.rejects(c.listTags('lib/app'), (e: BridgeError) => {
    assert.equal(e.code, 'HSB_REGISTRY_UNAUTHORIZED');
    // The token service did see the Basic header; the message says what happened without it.
    assert.match(String(seen.find((s) => s.path.startsWith('/token'))?.headers.authorization), /^Basic /);
    assert.match(e.message, /bad credentials in "Basic \[redacted\]"/);
    assert.doesNotMatch(e.message, new RegExp(Buffer.from(`robot$bridge:${password}`).toString('base64').replace(/[+/=]/g, '.')));
    return true;
  });
});
