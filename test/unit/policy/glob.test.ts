import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileGlob, globError, globMatch } from '../../../src/policy/glob.ts';
import { BridgeError } from '../../../src/errors.ts';

describe('globMatch (doublestar v1 semantics)', () => {
  const table: [pattern: string, name: string, expected: boolean][] = [
    ['*', 'library/hello-world', false],
    ['**', 'library/hello-world', true],
    ['library/*', 'library/hello-world', true],
    ['library/*', 'library/a/b', false],
    ['library/**', 'library/a/b', true],
    ['library/**', 'library/a', true],
    ['library/**', 'library', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['**/b', 'b', true],
    ['**/b', 'x/y/b', true],
    ['**/b', 'x/y/c', false],
    ['**/**', 'a', true],
    ['{library,harbor}/**', 'harbor/a/b', true],
    ['{library,harbor}/**', 'other/a/b', false],
    ['{a,{b,c}d}', 'cd', true],
    ['{a,{b,c}d}', 'c', false],
    ['x{1,2}y', 'x2y', true],
    ['1.?', '1.01', false],
    ['1.?', '1.0', true],
    ['?', '/', false],
    ['v2.[4-6].*', 'v2.5.1', true],
    ['v2.[4-6].*', 'v2.7.0', false],
    // doublestar v1 (Harbor's) negates with `^` only; `!` is a member of the class (v3 changed that).
    ['[!a]x', 'bx', false],
    ['[!a]x', 'ax', true],
    ['[!a]x', '!x', true],
    ['[^a]x', 'ax', false],
    ['a[^b]c', 'a/c', false],
    ['[a\\-z]', '-', true],
    ['\\*', '*', true],
    ['\\*', 'x', false],
    ['a.b', 'axb', false],
    ['(a|b)', '(a|b)', true],
    ['*', '', true],
    ['v*', '', false],
    ['**', '', true],
    ['', 'anything/at/all', true],
    ['v*', 'v1.0', true],
    ['v*', 'x/v1', false],
    ['regex:^v\\d+$', 'v12', true],
    ['regex:^v\\d+$', 'v1a', false],
    ['ü*', 'über', true],
  ];
  for (const [pattern, name, expected] of table) {
    it(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(name)}`, () => {
      assert.equal(globMatch(pattern, name), expected);
    });
  }

  it('rejects malformed patterns with HSB_POLICY_PATTERN_INVALID and matches nothing', () => {
    for (const bad of ['[', '[abc', '{a,b', 'a}', 'x\\', '[]', '[b-a]', '[-a]', 'regex:(']) {
      assert.ok(globError(bad), `expected ${bad} to be invalid`);
      assert.equal(globMatch(bad, bad), false);
      assert.throws(() => compileGlob(bad), (e: unknown) => e instanceof BridgeError && e.code === 'HSB_POLICY_PATTERN_INVALID' && !e.retryable);
    }
    assert.equal(globError('library/**'), undefined);
  });

  it('caches compiled matchers', () => {
    assert.equal(compileGlob('cache/**'), compileGlob('cache/**'));
  });
});
