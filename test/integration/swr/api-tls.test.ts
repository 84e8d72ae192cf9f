// The SWR management API client over HTTPS: verification on by default, tls.caFile trusted in
// addition to the public roots, `insecure` as the one opt-out. A local HTTPS server with a
// self-signed certificate stands in for the API host (404 for an unknown namespace, as SWR).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwrApi } from '../../../src/swr/api.ts';
import { selfSignedCert } from '../../support/registry.ts';

let server: Server;
let url = '';
let caFile = '';
const dir = mkdtempSync(join(tmpdir(), 'hsb-swr-tls-'));
const apis: SwrApi[] = [];

before(async () => {
  const { cert, key } = await selfSignedCert(dir);
  caFile = cert;
  server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"errorCode":"SVCSTG.SWR.4040002","errorMessage":"namespace not found"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
});
after(async () => {
  await Promise.all(apis.map((a) => a.close()));
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

const api = (tls?: { insecure?: boolean; caFile?: string }) => {
  const a = new SwrApi({ apiUrl: url, auth: { kind: 'aksk', accessKey: 'AKTLS0000000000001', secretKey: 'sk-tls' }, throttleRetries: 0, ...(tls ? { tls } : {}) });
  apis.push(a);
  return a;
};

test('an unknown certificate is refused by default', async () => {
  await assert.rejects(api().getNamespace('team-a'), (e: Error) => /certificate/i.test(e.message + String((e as { cause?: Error }).cause?.message)));
});

test('the certificate in tls.caFile is trusted (added to the public roots)', async () => {
  assert.equal(await api({ caFile }).getNamespace('team-a'), undefined);
});

test('insecure turns verification off for this API host only', async () => {
  assert.equal(await api({ insecure: true }).getNamespace('team-a'), undefined);
});
