import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { canonicalRequest, canonicalUri, canonicalQuery, sdkDate, signRequest, uriEscape } from '../../../src/swr/signer.ts';

// The expected values are computed by openssl from hand-written strings, not by our code.
function openssl(args: string[], input: string): string {
  const r = spawnSync('openssl', ['dgst', '-sha256', ...args], { input, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const m = /([0-9a-f]{64})\s*$/.exec(r.stdout.trim());
  assert.ok(m, `unexpected openssl output: ${r.stdout}`);
  return m[1] as string;
}

const AK = 'HPUAEXAMPLEAK0000001';
const SK = 'exampleSecretKey+/0123456789abcdefghijKLMN';
const DATE = new Date(Date.UTC(2024, 0, 2, 3, 4, 5));

test('X-Sdk-Date is YYYYMMDDTHHMMSSZ in UTC', () => {
  assert.equal(sdkDate(DATE), '20240102T030405Z');
  assert.equal(sdkDate(new Date(Date.UTC(2025, 11, 31, 23, 59, 59, 999))), '20251231T235959Z');
});

test('POST with a JSON body matches an openssl-computed signature', () => {
  const body = '{"namespace":"myorg"}';
  const signed = signRequest({
    method: 'POST',
    url: 'https://swr-api.cn-north-4.myhuaweicloud.com/v2/manage/namespaces',
    headers: { 'Content-Type': 'application/json;charset=utf-8' },
    body,
    ak: AK,
    sk: SK,
    date: DATE,
  });
  const canonical = [
    'POST',
    '/v2/manage/namespaces/',
    '',
    'content-type:application/json;charset=utf-8',
    'host:swr-api.cn-north-4.myhuaweicloud.com',
    'x-sdk-date:20240102T030405Z',
    '',
    'content-type;host;x-sdk-date',
    openssl([], body),
  ].join('\n');
  const sts = `SDK-HMAC-SHA256\n20240102T030405Z\n${openssl([], canonical)}`;
  const sig = openssl(['-hmac', SK], sts);
  assert.equal(signed['X-Sdk-Date'], '20240102T030405Z');
  assert.equal(signed.Authorization, `SDK-HMAC-SHA256 Access=${AK}, SignedHeaders=content-type;host;x-sdk-date, Signature=${sig}`);
});

test('DELETE of a nested repository tag: `$` and the port are canonicalised; empty body hash', () => {
  const signed = signRequest({
    method: 'delete',
    url: 'http://127.0.0.1:8443/v2/manage/namespaces/org/repos/team%24app/tags/v1.0?force=1&a=b%20c',
    headers: { 'Content-Type': 'application/json', 'X-Project-Id': '  p1  ' },
    ak: AK,
    sk: SK,
    date: DATE,
  });
  const canonical = [
    'DELETE',
    '/v2/manage/namespaces/org/repos/team%24app/tags/v1.0/',
    'a=b%20c&force=1',
    'content-type:application/json',
    'host:127.0.0.1:8443',
    'x-project-id:p1',
    'x-sdk-date:20240102T030405Z',
    '',
    'content-type;host;x-project-id;x-sdk-date',
    openssl([], ''),
  ].join('\n');
  const sig = openssl(['-hmac', SK], `SDK-HMAC-SHA256\n20240102T030405Z\n${openssl([], canonical)}`);
  assert.match(signed.Authorization, new RegExp(`Signature=${sig}$`));
  assert.match(signed.Authorization, /SignedHeaders=content-type;host;x-project-id;x-sdk-date,/);
});

test('canonical pieces', () => {
  assert.equal(canonicalUri('/v2/a$b/c'), '/v2/a%24b/c/');
  assert.equal(canonicalUri('/v2/a%24b/'), '/v2/a%24b/');
  assert.equal(canonicalUri(''), '/');
  assert.equal(uriEscape('a b*~._-é'), 'a%20b%2A~._-%C3%A9');
  assert.equal(canonicalQuery('?b=2&a=1&a=0'), 'a=0&a=1&b=2');
  const { canonicalRequest: c, signedHeaders } = canonicalRequest('get', new URL('https://h/x'), { 'X-B': ' v ', 'x-a': 'w' });
  assert.deepEqual(signedHeaders, ['x-a', 'x-b']);
  assert.equal(c.split('\n').slice(0, 6).join('|'), 'GET|/x/||x-a:w|x-b:v|');
});

test('caller-supplied Host/Authorization/X-Sdk-Date are replaced, not double-signed', () => {
  const a = signRequest({ method: 'GET', url: 'https://h.example/x', headers: { Host: 'evil', 'x-sdk-date': 'old', Authorization: 'x' }, ak: AK, sk: SK, date: DATE });
  const b = signRequest({ method: 'GET', url: 'https://h.example/x', ak: AK, sk: SK, date: DATE });
  assert.equal(a.Authorization, b.Authorization);
  assert.match(b.Authorization, /SignedHeaders=host;x-sdk-date,/);
});
