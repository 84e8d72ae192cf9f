import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bearerMatches, matchesAnySecret, secretMatcher } from '../../../src/http/auth.ts';

describe('matchesAnySecret', () => {
  const secrets = ['Bearer current-secret', 'Bearer previous-secret'];

  it('accepts any configured secret, compared verbatim (Harbor copies auth_header as is)', () => {
    assert.equal(matchesAnySecret('Bearer current-secret', secrets), true);
    assert.equal(matchesAnySecret('Bearer previous-secret', secrets), true);
  });

  it('refuses anything else, including prefixes, extensions and case changes', () => {
    for (const presented of ['', 'Bearer current-secre', 'Bearer current-secretX', 'bearer current-secret', 'current-secret', ' Bearer current-secret']) {
      assert.equal(matchesAnySecret(presented, secrets), false, JSON.stringify(presented));
    }
  });

  it('refuses a missing header, and everything when no secret is configured', () => {
    assert.equal(matchesAnySecret(undefined, secrets), false);
    assert.equal(matchesAnySecret('anything', []), false);
    assert.equal(matchesAnySecret('', []), false);
  });

  it('handles presented values of any length, including very long ones', () => {
    assert.equal(matchesAnySecret('x'.repeat(100000), secrets), false);
    assert.equal(matchesAnySecret('x'.repeat(100000), ['x'.repeat(100000)]), true);
  });

  it('compares every character: a difference anywhere, or in length alone, refuses', () => {
    const secret = 'Bearer s3cr\u00e9t-\u263a';
    assert.equal(matchesAnySecret(secret, [secret]), true);
    for (let i = 0; i < secret.length; i++) {
      const changed = secret.slice(0, i) + String.fromCharCode(secret.charCodeAt(i) ^ 1) + secret.slice(i + 1);
      assert.equal(matchesAnySecret(changed, [secret]), false, `changed at ${i}`);
    }
    assert.equal(matchesAnySecret(secret + '\0', [secret]), false);
    assert.equal(matchesAnySecret(secret.slice(0, -1), [secret]), false);
    assert.equal(matchesAnySecret('\0'.repeat(secret.length), [secret]), false);
    // A prefix, or a value that repeats into the secret, is refused.
    assert.equal(matchesAnySecret('ab', ['abab']), false);
    assert.equal(matchesAnySecret('a', ['a']), true);
    assert.equal(matchesAnySecret('', ['a']), false);
  });

  it('compares with every secret, not only until the first match (rotation order does not matter)', () => {
    assert.equal(matchesAnySecret('b', ['a', 'b', 'c']), true);
    assert.equal(matchesAnySecret('c', ['a', 'b', 'c']), true);
  });
});

describe('bearerMatches', () => {
  it('accepts "Bearer <token>" for a configured token, any case of the scheme', () => {
    assert.equal(bearerMatches('Bearer t0ken', ['t0ken']), true);
    assert.equal(bearerMatches('bearer t0ken', ['t0ken']), true);
    assert.equal(bearerMatches('  Bearer   t0ken  ', ['t0ken']), true);
  });

  it('refuses other schemes, missing tokens and unknown tokens', () => {
    assert.equal(bearerMatches('Basic dXNlcjpwYXNz', ['dXNlcjpwYXNz']), false);
    assert.equal(bearerMatches('Bearer', ['t0ken']), false);
    assert.equal(bearerMatches('Bearer other', ['t0ken']), false);
    assert.equal(bearerMatches(undefined, ['t0ken']), false);
    assert.equal(bearerMatches('Bearer t0ken', []), false);
  });
});

describe('secretMatcher', () => {
  it('answers as matchesAnySecret for the secrets it was built with', () => {
    const match = secretMatcher(['one', 'two']);
    assert.equal(match('one'), true);
    assert.equal(match('two'), true);
    assert.equal(match('three'), false);
    assert.equal(match(undefined), false);
    assert.equal(secretMatcher([])('anything'), false);
  });
});
