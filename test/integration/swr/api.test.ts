import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { SwrApi, type SwrApiOptions } from '../../../src/swr/api.ts';
import { BridgeError } from '../../../src/errors.ts';
import { startSwrApiDouble, type SwrApiDouble, type SwrDeleteTagEvent } from '../../support/swr-api-double.ts';

const US = { name: 'us', ak: 'AKUS000000000000001', sk: 'sk-us-secret/+=value', tokens: ['iam-token-us'] };
const THEM = { name: 'them', ak: 'AKTHEM0000000000001', sk: 'sk-them-secret' };
/** An IAM user without the right to create organisations, given rights on some in the console. */
const WRITER = { name: 'writer', ak: 'AKWRITER00000000001', sk: 'sk-writer-secret', canCreateNamespaces: false };

let double: SwrApiDouble;
const deleted: SwrDeleteTagEvent[] = [];
const apis: SwrApi[] = [];

before(async () => {
  double = await startSwrApiDouble({
    tenants: [US, THEM, WRITER],
    orgQuota: 100,
    onDeleteTag: (ev) => {
      deleted.push(ev);
      return ev.tag !== 'missing';
    },
  });
});
after(async () => {
  await Promise.all(apis.map((a) => a.close()));
  await double.close();
});
beforeEach(() => {
  double.requests.length = 0;
  deleted.length = 0;
});

function api(over: Partial<SwrApiOptions> = {}): SwrApi {
  const a = new SwrApi({ apiUrl: double.url, auth: { kind: 'aksk', accessKey: US.ak, secretKey: US.sk }, throttleRetries: 0, ...over });
  apis.push(a);
  return a;
}

function bridgeError(code: string, retryable: boolean) {
  return (e: unknown) => {
    assert.ok(e instanceof BridgeError, String(e));
    assert.equal(e.code, code, e.message);
    assert.equal(e.retryable, retryable);
    assert.ok(!e.message.includes(US.sk), 'secret key must not appear in errors');
    return true;
  };
}

test('first ensureNamespace creates (201); second is served from cache with no request', async () => {
  const a = api();
  assert.equal(await a.ensureNamespace('alpha'), 'created');
  assert.equal(double.requests.length, 1);
  assert.equal(double.requests[0]?.method, 'POST');
  assert.equal(double.requests[0]?.status, 201);
  assert.equal(double.requests[0]?.tenant, 'us');
  assert.equal(await a.ensureNamespace('alpha'), 'cached');
  assert.equal(double.requests.length, 1);
  assert.deepEqual(a.knownNamespaces(), ['alpha']);
});

test('concurrent ensureNamespace calls for one name share one round trip', async () => {
  const a = api();
  const results = await Promise.all([a.ensureNamespace('beta'), a.ensureNamespace('beta'), a.ensureNamespace('beta')]);
  assert.deepEqual(results, ['created', 'created', 'created']);
  assert.equal(double.requests.length, 1);
});

test('409 for a namespace we already own → GET confirms it → existing', async () => {
  double.addNamespace('us', 'ours');
  const a = api();
  assert.equal(await a.ensureNamespace('ours'), 'existing');
  assert.deepEqual(double.requests.map((r) => `${r.method} ${r.status}`), ['POST 409', 'GET 200']);
});

test('credentials that may not create organisations use one they have Write on (403 on create → GET auth 3)', async () => {
  double.addNamespace('them', 'console-made');
  double.grantNamespace('writer', 'console-made', 3);
  const a = api({ auth: { kind: 'aksk', accessKey: WRITER.ak, secretKey: WRITER.sk } });
  assert.equal(await a.ensureNamespace('console-made'), 'existing');
  assert.deepEqual(double.requests.map((r) => `${r.method} ${r.status}`), ['POST 403', 'GET 200']);
  assert.equal(await a.ensureNamespace('console-made'), 'cached');
});

test('a read-only grant is refused with a clear error, whether create was refused or the name exists', async () => {
  double.addNamespace('them', 'look-only');
  double.grantNamespace('writer', 'look-only', 1);
  double.grantNamespace('us', 'look-only', 1);
  for (const creds of [WRITER, US]) {
    const a = api({ auth: { kind: 'aksk', accessKey: creds.ak, secretKey: creds.sk } });
    await assert.rejects(a.ensureNamespace('look-only'), (e: BridgeError) => e.code === 'HSB_SWR_NAMESPACE_TAKEN' && /read-only to these credentials \(auth 1\)/.test(e.message));
    assert.deepEqual(a.knownNamespaces(), []);
  }
  assert.deepEqual(double.requests.map((r) => `${r.method} ${r.status}`), ['POST 403', 'GET 200', 'POST 409', 'GET 200']);
});

test('credentials that may not create organisations, for one that does not exist: the refusal to create it, not retried', async () => {
  const a = api({ auth: { kind: 'aksk', accessKey: WRITER.ak, secretKey: WRITER.sk } });
  await assert.rejects(a.ensureNamespace('nowhere'), (e: BridgeError) => e.code === 'HSB_SWR_FORBIDDEN' && !e.retryable && e.message.includes('4037017'));
  assert.deepEqual(double.requests.map((r) => `${r.method} ${r.status}`), ['POST 403', 'GET 404']);
});

test('a GET refused for lack of permission (403 4039002) says so, instead of blaming another tenant', async () => {
  double.addNamespace('them', 'no-rights');
  double.denyNamespace('writer', 'no-rights');
  const a = api({ auth: { kind: 'aksk', accessKey: WRITER.ak, secretKey: WRITER.sk } });
  await assert.rejects(a.ensureNamespace('no-rights'), (e: BridgeError) => e.code === 'HSB_SWR_FORBIDDEN' && e.message.includes('4039002'));
  assert.deepEqual(double.requests.map((r) => `${r.method} ${r.status}`), ['POST 403', 'GET 403']);
});

test('409 for a namespace owned by another tenant → HSB_SWR_NAMESPACE_TAKEN, not cached', async () => {
  double.addNamespace('them', 'theirs');
  const a = api();
  await assert.rejects(a.ensureNamespace('theirs'), bridgeError('HSB_SWR_NAMESPACE_TAKEN', false));
  assert.deepEqual(double.requests.map((r) => `${r.method} ${r.status}`), ['POST 409', 'GET 404']);
  assert.deepEqual(a.knownNamespaces(), []);
});

test('quota reached (SWR default of 5) → permanent HSB_SWR_QUOTA carrying Huawei\'s code', async () => {
  const small = await startSwrApiDouble({ tenants: [THEM] });
  try {
    const them = api({ apiUrl: small.url, auth: { kind: 'aksk', accessKey: THEM.ak, secretKey: THEM.sk } });
    for (let i = 0; i < 5; i++) assert.equal(await them.ensureNamespace(`fill${i}`), 'created');
    await assert.rejects(them.ensureNamespace('onetoomany'), (e: unknown) => {
      bridgeError('HSB_SWR_QUOTA', false)(e);
      assert.match((e as BridgeError).message, /SVCSTG\.SWR\.4000097/);
      return true;
    });
    assert.deepEqual(small.namespacesOf('them').length, 5);
  } finally {
    await small.close();
  }
});

test('an invalid organisation name fails before any traffic', async () => {
  await assert.rejects(api().ensureNamespace('Bad--Name'), bridgeError('HSB_SWR_NAME_INVALID', false));
  assert.equal(double.requests.length, 0);
});

test('wrong SK → 401 in the gateway shape → permanent HSB_SWR_AUTH', async () => {
  const a = api({ auth: { kind: 'aksk', accessKey: US.ak, secretKey: 'not-the-secret' } });
  await assert.rejects(a.ensureNamespace('gamma'), (e: unknown) => {
    bridgeError('HSB_SWR_AUTH', false)(e);
    assert.equal((e as BridgeError).context.huaweiCode, 'APIG.0301');
    assert.equal((e as BridgeError).context.status, 401);
    return true;
  });
  assert.equal(double.requests[0]?.status, 401);
  assert.deepEqual(double.namespacesOf('us').includes('gamma'), false);
});

test('a clock 20 minutes off is rejected (HSB_SWR_CLOCK_SKEW); 14 minutes is accepted', async () => {
  const skewed = api({ now: () => new Date(Date.now() - 20 * 60 * 1000) });
  await assert.rejects(skewed.ensureNamespace('delta'), bridgeError('HSB_SWR_CLOCK_SKEW', false));
  const close = api({ now: () => new Date(Date.now() + 14 * 60 * 1000) });
  assert.equal(await close.ensureNamespace('delta'), 'created');
});

test('an IAM token authenticates instead of a signature', async () => {
  const a = api({ auth: { kind: 'token', token: 'iam-token-us' } });
  assert.equal(await a.ensureNamespace('tokened'), 'created');
  assert.equal(double.requests[0]?.headers['x-auth-token'], 'iam-token-us');
  assert.equal(double.requests[0]?.headers.authorization, undefined);
  const bad = api({ auth: { kind: 'token', token: 'expired' } });
  await assert.rejects(bad.ensureNamespace('tokened2'), bridgeError('HSB_SWR_AUTH', false));
});

test('deleteTag on a nested repository sends `$` (URL-encoded) and reaches the hook', async () => {
  double.addNamespace('us', 'delorg');
  const a = api();
  assert.equal(await a.deleteTag('delorg', 'team/sub/app', 'v1.2'), true);
  assert.equal(double.requests[0]?.url, '/v2/manage/namespaces/delorg/repos/team%24sub%24app/tags/v1.2');
  assert.equal(double.requests[0]?.status, 204);
  assert.deepEqual(deleted, [{ tenant: 'us', namespace: 'delorg', repository: 'team/sub/app', tag: 'v1.2' }]);
});

test('deleteTag of an absent tag → false (already deleted)', async () => {
  double.addNamespace('us', 'delorg2');
  assert.equal(await api().deleteTag('delorg2', 'app', 'missing'), false);
  assert.equal(double.requests[0]?.status, 404);
});

test('throttled 429 → retryable HSB_SWR_THROTTLED with Retry-After in context', async () => {
  double.throttleNext({ count: 1, status: 429, retryAfter: '3' });
  await assert.rejects(api().ensureNamespace('eps'), (e: unknown) => {
    bridgeError('HSB_SWR_THROTTLED', true)(e);
    assert.equal((e as BridgeError).context.retryAfterMs, 3000);
    return true;
  });
});

test('SWR-shaped SVCSTG.SWR.4031042 throttling is recognised too', async () => {
  double.throttleNext({ count: 1, status: 403, shape: 'swr' });
  double.addNamespace('us', 'zeta');
  await assert.rejects(api().deleteTag('zeta', 'app', 'v1'), bridgeError('HSB_SWR_THROTTLED', true));
});

test('with throttle retries, Retry-After is waited out and the call succeeds', async () => {
  double.throttleNext({ count: 2, status: 503, retryAfter: '0' });
  const a = api({ throttleRetries: 2 });
  assert.equal(await a.ensureNamespace('eta'), 'created');
  assert.deepEqual(double.requests.map((r) => r.status), [503, 503, 201]);
});

test('a Retry-After beyond the in-process cap is not waited for', async () => {
  double.throttleNext({ count: 1, status: 429, retryAfter: '120' });
  const a = api({ throttleRetries: 3, maxRetryAfterMs: 1000 });
  const t0 = Date.now();
  await assert.rejects(a.ensureNamespace('theta'), bridgeError('HSB_SWR_THROTTLED', true));
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(double.requests.length, 1);
});

test('an unreachable API is a retryable HSB_SWR_UNAVAILABLE', async () => {
  const a = api({ apiUrl: 'http://127.0.0.1:1' });
  await assert.rejects(a.ensureNamespace('iota'), bridgeError('HSB_SWR_UNAVAILABLE', true));
});

test('without management credentials ensureNamespace is a no-op and deleteTag refuses', async () => {
  const a = api({ auth: { kind: 'none' } });
  assert.equal(await a.ensureNamespace('kappa'), 'unmanaged');
  await assert.rejects(a.deleteTag('kappa', 'app', 'v1'), bridgeError('HSB_SWR_NO_API_CREDENTIALS', false));
  assert.equal(double.requests.length, 0);
});

test('SWR\'s busy 409 (4090023) is a throttle, waited out, not "another tenant owns it"', async () => {
  double.throttleNext({ count: 1, shape: 'busy' });
  assert.equal(await api({ throttleRetries: 1 }).ensureNamespace('busyorg'), 'created');
  assert.deepEqual(double.requests.map((r) => r.status), [409, 201]);
  double.throttleNext({ count: 1, shape: 'busy' });
  await assert.rejects(api().ensureNamespace('busyorg2'), bridgeError('HSB_SWR_THROTTLED', true));
});

test('403 4031032 (requests over the limit) is a throttle, not "forbidden"', async () => {
  double.throttleNext({ count: 1, shape: 'swr-limit' });
  double.addNamespace('us', 'limitorg');
  await assert.rejects(api().deleteTag('limitorg', 'app', 'v1'), bridgeError('HSB_SWR_THROTTLED', true));
});

test('a 404 from the API gateway (wrong apiUrl) on a tag delete is an error, not "already gone"', async () => {
  double.addNamespace('us', 'gworg');
  // A path the gateway does not publish: APIG.0101 with 404.
  const a = api({ apiUrl: `${double.url}/not-the-swr-api` });
  await assert.rejects(a.deleteTag('gworg', 'app', 'v1'), (e: BridgeError) => {
    assert.equal(e.context.status, 404);
    assert.equal(e.context.huaweiCode, 'APIG.0101');
    return true;
  });
});
