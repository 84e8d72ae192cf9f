import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseWwwAuthenticate } from '../../../src/registry/www-authenticate.ts';

test('parses a distribution bearer challenge with scope and error', () => {
  const h = 'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull,push",error="insufficient_scope"';
  assert.deepEqual(parseWwwAuthenticate(h), [{
    scheme: 'bearer',
    params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:team/app:pull,push', error: 'insufficient_scope' },
  }]);
});

test('parses basic, unquoted values, escapes and several challenges in one header', () => {
  assert.deepEqual(parseWwwAuthenticate('Basic realm="Harbor \\"prod\\""'), [{ scheme: 'basic', params: { realm: 'Harbor "prod"' } }]);
  assert.deepEqual(parseWwwAuthenticate('Basic realm=plain, Bearer realm="https://a/t", service=svc'), [
    { scheme: 'basic', params: { realm: 'plain' } },
    { scheme: 'bearer', params: { realm: 'https://a/t', service: 'svc' } },
  ]);
  assert.deepEqual(parseWwwAuthenticate(['Basic realm="x"', 'Bearer realm="y"']).map((c) => c.scheme), ['basic', 'bearer']);
});

test('missing or empty headers give no challenge', () => {
  assert.deepEqual(parseWwwAuthenticate(undefined), []);
  assert.deepEqual(parseWwwAuthenticate(''), []);
});

test('property: quoted values round-trip, whatever characters they hold', () => {
  fc.assert(fc.property(fc.string(), fc.string(), (realm, service) => {
    const q = (s: string) => `"${s.replace(/["\\]/g, (m) => `\\${m}`)}"`;
    const [c] = parseWwwAuthenticate(`Bearer realm=${q(realm)},service=${q(service)}`);
    assert.equal(c?.params.realm, realm);
    assert.equal(c?.params.service, service);
  }));
});
