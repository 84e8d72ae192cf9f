import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRetryAfter, parseSwrErrorBody, swrErrorFromResponse } from '../../../src/swr/api-errors.ts';

test('both SWR error shapes and the array form are read', () => {
  assert.deepEqual(parseSwrErrorBody('{"errorCode":"SVCSTG.SWR.4000097","errorMessage":"quota"}'), { code: 'SVCSTG.SWR.4000097', message: 'quota', requestId: undefined });
  assert.deepEqual(parseSwrErrorBody('[{"errorCode":"SVCSTG.SWR.4001048","errorMessage":"Failed to get Token from Context","detail":""}]'), {
    code: 'SVCSTG.SWR.4001048', message: 'Failed to get Token from Context', requestId: undefined,
  });
  assert.deepEqual(parseSwrErrorBody('{"error_code":"APIG.0301","error_msg":"Incorrect IAM authentication information","request_id":"r1"}'), {
    code: 'APIG.0301', message: 'Incorrect IAM authentication information', requestId: 'r1',
  });
  assert.deepEqual(parseSwrErrorBody('<html>bad gateway</html>'), { code: undefined, message: '<html>bad gateway</html>', requestId: undefined });
});

test('Retry-After as seconds or HTTP date', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(['0']), 0);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(undefined), undefined);
});

const cases: [string, Parameters<typeof swrErrorFromResponse>[0], string, boolean][] = [
  ['quota by code', { status: 400, body: '{"errorCode":"SVCSTG.SWR.4000097","errorMessage":"x"}', operation: 'createNamespace' }, 'HSB_SWR_QUOTA', false],
  ['other 400 on create', { status: 400, body: '{"errorCode":"SVCSTG.SWR.4000014","errorMessage":"Invalid param"}', operation: 'createNamespace' }, 'HSB_SWR_NAME_INVALID', false],
  ['429', { status: 429, body: '', operation: 'deleteTag' }, 'HSB_SWR_THROTTLED', true],
  ['503', { status: 503, body: '', operation: 'createNamespace' }, 'HSB_SWR_THROTTLED', true],
  ['SWR too-many-requests code on 403', { status: 403, body: '{"errorCode":"SVCSTG.SWR.4031042","errorMessage":"x"}', operation: 'getNamespace' }, 'HSB_SWR_THROTTLED', true],
  ['gateway auth', { status: 401, body: '{"error_code":"APIG.0301","error_msg":"verify aksk signature fail","request_id":"r"}', operation: 'createNamespace' }, 'HSB_SWR_AUTH', false],
  ['gateway auth APIGW spelling', { status: 401, body: '{"error_code":"APIGW.0301","error_msg":"x"}', operation: 'createNamespace' }, 'HSB_SWR_AUTH', false],
  ['expired signature', { status: 401, body: '{"error_code":"APIG.0301","error_msg":"Incorrect IAM authentication information: signature expired, signature time:x"}', operation: 'getNamespace' }, 'HSB_SWR_CLOCK_SKEW', false],
  ['an IAM token that expired is an auth problem, not clock skew', { status: 401, body: '{"errorCode":"SVCSTG.SWR.4010000","errorMessage":"token has expired"}', operation: 'getNamespace' }, 'HSB_SWR_AUTH', false],
  ['403 4031032 requests over the limit', { status: 403, body: '[{"errorCode":"SVCSTG.SWR.4031032","errorMessage":"The number of requests exceeds the maximum number allowed"}]', operation: 'deleteTag' }, 'HSB_SWR_THROTTLED', true],
  ['409 4090023 system busy', { status: 409, body: '[{"errorCode":"SVCSTG.SWR.4090023","errorMessage":"The system is busy. Try again later"}]', operation: 'createNamespace' }, 'HSB_SWR_THROTTLED', true],
  ['plain 403', { status: 403, body: '{"errorCode":"SVCSTG.SWR.4030001","errorMessage":"no"}', operation: 'deleteTag' }, 'HSB_SWR_FORBIDDEN', false],
  ['500', { status: 500, body: '{"errorCode":"SVCSTG.SWR.5000007","errorMessage":"x"}', operation: 'deleteTag' }, 'HSB_SWR_UNAVAILABLE', true],
  ['418', { status: 418, body: '', operation: 'deleteTag' }, 'HSB_SWR_RESPONSE', false],
];

for (const [name, input, code, retryable] of cases) {
  test(`maps ${name} to ${code}`, () => {
    const e = swrErrorFromResponse(input);
    assert.equal(e.code, code);
    assert.equal(e.retryable, retryable);
    assert.equal(e.context.status, input.status);
  });
}

test('the Huawei code is kept in the message and context; Retry-After lands in context', () => {
  const q = swrErrorFromResponse({ status: 400, body: '{"errorCode":"SVCSTG.SWR.4000097","errorMessage":"limit"}', operation: 'createNamespace', namespace: 'o' });
  assert.match(q.message, /SVCSTG\.SWR\.4000097/);
  assert.equal(q.context.huaweiCode, 'SVCSTG.SWR.4000097');
  const t = swrErrorFromResponse({ status: 429, body: '', retryAfter: '7', operation: 'createNamespace' });
  assert.equal(t.context.retryAfterMs, 7000);
});

test('a gateway message that quotes the signed request loses the credential, and a long one is cut', () => {
  const echo = 'Incorrect IAM authentication information: verify aksk signature fail, header:SDK-HMAC-SHA256 '
    + 'Access=HPUAEXAMPLEAK0000001, SignedHeaders=content-type;host;x-sdk-date, Signature=0a1b2c3d4e5f';
  const err = swrErrorFromResponse({ status: 401, operation: 'createNamespace', namespace: 'myorg', body: JSON.stringify({ error_code: 'APIG.0301', error_msg: `${echo} ${'pad '.repeat(3000)}` }) });
  assert.equal(err.code, 'HSB_SWR_AUTH');
  assert.doesNotMatch(err.message, /HPUAEXAMPLEAK0000001|0a1b2c3d4e5f/);
  assert.match(err.message, /APIG\.0301: Incorrect IAM authentication information: verify aksk signature fail, header:SDK-HMAC-SHA256 Access=\[redacted\]/);
  assert.ok(err.message.length < 400, `message of ${err.message.length} characters`);
  const plain = swrErrorFromResponse({ status: 500, operation: 'getNamespace', body: `x-auth-token: MIIEXAMPLETOKEN ${'y'.repeat(1000)}` });
  assert.match(plain.message, /\(HTTP 500, x-auth-token: \[redacted\] y+…\)$/);
  assert.ok(plain.message.length < 300);
  // The class comes from SWR's whole message, however far past the quoted 200 characters it says so.
  const skew = swrErrorFromResponse({ status: 401, operation: 'createNamespace', body: JSON.stringify({ error_code: 'APIG.0301', error_msg: `${echo} ${'pad '.repeat(100)} signature expired, signature time: 20261124T000000Z` }) });
  assert.equal(skew.code, 'HSB_SWR_CLOCK_SKEW');
  assert.doesNotMatch(skew.message, /HPUAEXAMPLEAK0000001/);
});
