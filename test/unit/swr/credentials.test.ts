import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { swrLogin, swrLoginPassword } from '../../../src/swr/credentials.ts';

const AK = 'HPUAEXAMPLEAK0000001';
const SK = 'exampleSecretKey+/0123456789abcdefghijKLMN';

// Same recipe as SWR's "long-term login command": printf AK | openssl dgst -sha256 -hmac SK
function opensslHmac(key: string, msg: string): string {
  const r = spawnSync('openssl', ['dgst', '-sha256', '-hmac', key], { input: msg, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return (/([0-9a-f]{64})\s*$/.exec(r.stdout.trim()) ?? [])[1] as string;
}

test('login password is hex HMAC-SHA256(key=SK, msg=AK), matching openssl', () => {
  const expected = opensslHmac(SK, AK);
  assert.match(expected, /^[0-9a-f]{64}$/);
  assert.equal(swrLoginPassword(AK, SK), expected);
  assert.notEqual(swrLoginPassword(SK, AK), expected, 'key and message must not be swapped');
});

test('login user is <project>@<AK>', () => {
  assert.deepEqual(swrLogin({ project: 'cn-north-4', accessKey: AK, secretKey: SK }), {
    username: `cn-north-4@${AK}`,
    password: opensslHmac(SK, AK),
  });
});

test('a ready login pair passes through unchanged', () => {
  assert.deepEqual(swrLogin({ username: 'cn-north-4@TEMP', password: 'tmp-token' }), { username: 'cn-north-4@TEMP', password: 'tmp-token' });
});

test('AK/SK without a project is a permanent config error that does not leak the SK', () => {
  assert.throws(() => swrLogin({ project: undefined, accessKey: AK, secretKey: SK }), (e: unknown) => {
    const err = e as { code: string; retryable: boolean; message: string };
    return err.code === 'HSB_SWR_CONFIG' && !err.retryable && !err.message.includes(SK);
  });
});

test('the derived login password never appears in an error message, nor its Basic form', async () => {
  const { BridgeError } = await import('../../../src/errors.ts');
  const { basicSecretOf } = await import('../../../src/observability/scrub.ts');
  const login = swrLogin({ project: 'cn-north-4', accessKey: 'AKSCRUBTEST0001', secretKey: 'sk-scrub-test' });
  const e = new BridgeError('HSB_TEST', `registry said: ${login.password} / Basic-ish ${basicSecretOf(login.username, login.password)}`);
  assert.equal(e.message, 'registry said: [redacted] / Basic-ish [redacted]');
});
