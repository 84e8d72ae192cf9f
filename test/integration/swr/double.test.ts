import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { signRequest } from '../../../src/swr/signer.ts';
import { startSwrApiDouble, type SwrApiDouble } from '../../support/swr-api-double.ts';

// The double's own contract, checked with raw HTTP so a client bug cannot hide a double bug.
const T = { name: 'acct', ak: 'AKDOUBLE00000000001', sk: 'double-sk' };
let double: SwrApiDouble;

before(async () => {
  double = await startSwrApiDouble({ tenants: [T, { name: 'other', ak: 'AKOTHER', sk: 'o' }], swrErrorShape: 'array', foreignNamespaceStatus: 403, orgQuota: 1 });
});
after(() => double.close());

async function call(method: 'GET' | 'POST' | 'DELETE', path: string, body = '', tamper?: (h: Record<string, string>) => void) {
  const url = new URL(double.url + path);
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  Object.assign(headers, signRequest({ method, url, headers, body, ak: T.ak, sk: T.sk }));
  tamper?.(headers);
  const res = await request(url, { method, headers, body: body || null });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? (JSON.parse(text) as unknown) : undefined };
}

test('a signed create answers 201 and GET returns SWR\'s organisation shape', async () => {
  assert.equal((await call('POST', '/v2/manage/namespaces', '{"namespace":"org1"}')).status, 201);
  const got = await call('GET', '/v2/manage/namespaces/org1');
  assert.equal(got.status, 200);
  assert.deepEqual(Object.keys(got.json as object).sort(), ['auth', 'creator_name', 'id', 'name']);
});

test('a tampered body fails the signature check with the gateway error shape', async () => {
  const url = new URL(double.url + '/v2/manage/namespaces');
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  Object.assign(headers, signRequest({ method: 'POST', url, headers, body: '{"namespace":"a"}', ak: T.ak, sk: T.sk }));
  const res = await request(url, { method: 'POST', headers, body: '{"namespace":"b"}' });
  const j = (await res.body.json()) as Record<string, unknown>;
  assert.equal(res.statusCode, 401);
  assert.equal(j.error_code, 'APIG.0301');
  assert.match(String(j.error_msg), /verify aksk signature fail/);
  assert.equal(typeof j.request_id, 'string');
});

test('SWR errors use the array-wrapped shape when configured; quota code is SVCSTG.SWR.4000097', async () => {
  const r = await call('POST', '/v2/manage/namespaces', '{"namespace":"org3"}');
  assert.equal(r.status, 400);
  assert.ok(Array.isArray(r.json));
  assert.equal((r.json as { errorCode: string }[])[0]?.errorCode, 'SVCSTG.SWR.4000097');
});

test('invalid organisation names get 400 before quota', async () => {
  const r = await call('POST', '/v2/manage/namespaces', '{"namespace":"Bad"}');
  assert.equal(r.status, 400);
  assert.equal((r.json as { errorCode: string }[])[0]?.errorCode, 'SVCSTG.SWR.4000014');
});

test('a foreign organisation answers 409 on create and (configured) 403 on GET', async () => {
  double.addNamespace('other', 'foreign');
  assert.equal((await call('POST', '/v2/manage/namespaces', '{"namespace":"foreign"}')).status, 409);
  assert.equal((await call('GET', '/v2/manage/namespaces/foreign')).status, 403);
});

test('unsigned host header or a missing signature is refused', async () => {
  const r = await call('GET', '/v2/manage/namespaces/org1', '', (h) => {
    h.Authorization = (h.Authorization ?? '').replace('SignedHeaders=content-type;host;x-sdk-date', 'SignedHeaders=content-type;x-sdk-date');
  });
  assert.equal(r.status, 401);
  const res = await request(`${double.url}/v2/manage/namespaces/org1`);
  assert.equal(res.statusCode, 401);
  await res.body.dump();
});

test('tags delete from the in-memory list; the raw `/` form does not route', async () => {
  double.addTag('org1', 'a/b', 'v1');
  assert.equal((await call('DELETE', '/v2/manage/namespaces/org1/repos/a%24b/tags/v1')).status, 204);
  assert.deepEqual(double.tagsOf('org1', 'a/b'), []);
  assert.equal((await call('DELETE', '/v2/manage/namespaces/org1/repos/a%24b/tags/v1')).status, 404);
  const raw = await call('DELETE', '/v2/manage/namespaces/org1/repos/a/b/tags/v1');
  assert.equal(raw.status, 404);
  assert.equal((raw.json as { error_code: string }).error_code, 'APIG.0101');
});

test('per-tenant gateway rate limit answers 429 APIG.0308', async () => {
  const limited = await startSwrApiDouble({ tenants: [T], requestsPerSecond: 2, now: () => 5_000_000 });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const url = new URL(`${limited.url}/v2/manage/namespaces/x${i}`);
      const headers: Record<string, string> = {};
      Object.assign(headers, signRequest({ method: 'GET', url, headers, ak: T.ak, sk: T.sk, date: new Date(5_000_000) }));
      const res = await request(url, { headers });
      statuses.push(res.statusCode);
      await res.body.dump();
    }
    assert.deepEqual(statuses, [404, 404, 429]);
  } finally {
    await limited.close();
  }
});
