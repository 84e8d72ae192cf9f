import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registryErrorFromStatus, registryErrorFromThrown, isConnectionError, RegistryErrorCodes } from '../../../src/registry/errors.ts';
import { BridgeError } from '../../../src/errors.ts';

const body = (code: string, message = 'm') => JSON.stringify({ errors: [{ code, message }] });

test('statuses map to catalogue codes with their retryability', () => {
  const cases: [number, string | undefined, string, boolean][] = [
    [401, body('UNAUTHORIZED'), 'HSB_REGISTRY_UNAUTHORIZED', false],
    [403, body('DENIED'), 'HSB_REGISTRY_DENIED', false],
    [404, body('MANIFEST_UNKNOWN'), 'HSB_REGISTRY_NOT_FOUND', false],
    [400, body('MANIFEST_INVALID'), 'HSB_REGISTRY_MANIFEST_INVALID', false],
    [400, body('MANIFEST_BLOB_UNKNOWN'), 'HSB_REGISTRY_MANIFEST_INVALID', false],
    [400, body('DIGEST_INVALID'), 'HSB_REGISTRY_DIGEST_MISMATCH', true],
    [400, body('BLOB_UPLOAD_INVALID'), 'HSB_REGISTRY_UPLOAD_INVALID', true],
    // A session the registry no longer knows: distribution's 404s, restarted rather than "not found".
    [404, body('BLOB_UPLOAD_INVALID'), 'HSB_REGISTRY_UPLOAD_INVALID', true],
    [404, body('BLOB_UPLOAD_UNKNOWN'), 'HSB_REGISTRY_UPLOAD_INVALID', true],
    [404, body('BLOB_UNKNOWN'), 'HSB_REGISTRY_NOT_FOUND', false],
    [400, 'not json', 'HSB_REGISTRY_BAD_REQUEST', false],
    [405, body('UNSUPPORTED'), 'HSB_REGISTRY_UNSUPPORTED', false],
    [408, undefined, 'HSB_REGISTRY_UNAVAILABLE', true],
    [413, undefined, 'HSB_REGISTRY_TOO_LARGE', false],
    [415, undefined, 'HSB_REGISTRY_MANIFEST_INVALID', false],
    [416, undefined, 'HSB_REGISTRY_UPLOAD_INVALID', true],
    [429, body('TOOMANYREQUESTS'), 'HSB_REGISTRY_THROTTLED', true],
    [500, undefined, 'HSB_REGISTRY_UNAVAILABLE', true],
    [503, undefined, 'HSB_REGISTRY_UNAVAILABLE', true],
  ];
  for (const [status, b, code, retryable] of cases) {
    const e = registryErrorFromStatus(status, b, { registry: 'r.example', repo: 'a/b', ref: 'v1' });
    assert.ok(e instanceof BridgeError);
    assert.equal(e.code, code, `${status} ${b}`);
    assert.equal(e.retryable, retryable, `${status} ${b}`);
    assert.equal(e.context.status, status);
    assert.equal(RegistryErrorCodes[code as keyof typeof RegistryErrorCodes].retryable, retryable);
  }
});

test('the message names what failed and where, plus the registry code; context keeps retryAfterMs', () => {
  const e = registryErrorFromStatus(429, body('TOOMANYREQUESTS', 'slow down'), { registry: 'swr.example', method: 'PUT', repo: 'org/app', ref: 'v1', retryAfterMs: 5000 });
  assert.match(e.message, /PUT org\/app:v1/);
  assert.match(e.message, /swr\.example/);
  assert.match(e.message, /TOOMANYREQUESTS slow down/);
  assert.equal(e.context.retryAfterMs, 5000);
  assert.equal(e.context.registryCode, 'TOOMANYREQUESTS');
});

test('connection failures are retryable UNAVAILABLE; aborts are not retryable', () => {
  const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  assert.equal(isConnectionError(reset), true);
  assert.equal(isConnectionError(new Error('x', { cause: { code: 'UND_ERR_SOCKET' } })), true);
  const e = registryErrorFromThrown(reset, { registry: 'r' });
  assert.equal(e.code, 'HSB_REGISTRY_UNAVAILABLE');
  assert.equal(e.retryable, true);
  const abort = registryErrorFromThrown(Object.assign(new Error('aborted'), { name: 'AbortError' }));
  assert.equal(abort.code, 'HSB_REGISTRY_ABORTED');
  assert.equal(abort.retryable, false);
  const mine = new BridgeError('HSB_X', 'x');
  assert.equal(registryErrorFromThrown(mine), mine);
});

test('every catalogue entry is documented', () => {
  for (const [code, v] of Object.entries(RegistryErrorCodes)) {
    assert.match(code, /^HSB_(REGISTRY|COPY)_[A-Z0-9_]+$/);
    assert.ok(v.doc.length > 20);
  }
});
