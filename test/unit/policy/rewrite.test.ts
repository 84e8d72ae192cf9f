import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { destRepository, resolveDestination } from '../../../src/policy/rewrite.ts';
import { BridgeError } from '../../../src/errors.ts';

const isCode = (code: string) => (e: unknown) => e instanceof BridgeError && e.code === code && !e.retryable;

describe('destRepository (Harbor replaceNamespace)', () => {
  const table: [count: number, expected: string][] = [
    [-1, 'n/image'],
    [0, 'n/a/b/c/image'],
    [1, 'n/b/c/image'],
    [2, 'n/c/image'],
    [3, 'n/image'],
  ];
  for (const [count, expected] of table) {
    it(`a/b/c/image with count ${count} → ${expected}`, () => {
      assert.equal(destRepository('a/b/c/image', 'n', count), expected);
    });
  }
  it('count 4 on a/b/c/image is an HSB_POLICY_REWRITE error explaining why', () => {
    assert.throws(() => destRepository('a/b/c/image', 'n', 4), (e: unknown) => {
      assert.ok(isCode('HSB_POLICY_REWRITE')(e));
      assert.match((e as Error).message, /a\/b\/c\/image/);
      assert.match((e as Error).message, /only 3 path component/);
      assert.match((e as Error).message, /4/);
      return true;
    });
  });
  it('an empty namespace keeps the path whatever the count (Harbor returns early)', () => {
    for (const count of [-1, 0, 1, 3, 4, 100]) assert.equal(destRepository('a/b/c/image', '', count), 'a/b/c/image');
  });
  it('multi-level namespaces and short repositories', () => {
    assert.equal(destRepository('library/nginx', 'org/mirror', -1), 'org/mirror/nginx');
    assert.equal(destRepository('library/nginx', 'org', 0), 'org/library/nginx');
    assert.equal(destRepository('library/nginx', 'org', 1), 'org/nginx');
    assert.equal(destRepository('nginx', 'org', 0), 'org/nginx');
    assert.throws(() => destRepository('nginx', 'org', 1), isCode('HSB_POLICY_REWRITE'));
  });
});

describe('resolveDestination', () => {
  const pol = (ns: string, count: number) => ({ dest_namespace: ns, dest_namespace_replace_count: count });
  it('rewrites and accepts valid SWR names', () => {
    assert.equal(resolveDestination(pol('myorg', 1), 'library/app/web', { kind: 'swr' }), 'myorg/app/web');
  });
  it('rejects an invalid SWR organisation, naming it and the rule', () => {
    assert.throws(() => resolveDestination(pol('', -1), '1abc/nginx', { kind: 'swr' }), (e: unknown) => {
      assert.ok(isCode('HSB_SWR_NAME_INVALID')(e));
      assert.match((e as Error).message, /"1abc"/);
      assert.match((e as Error).message, /must start with a lowercase letter/);
      return true;
    });
  });
  it('requires an organisation on SWR but not on a plain registry', () => {
    assert.throws(() => resolveDestination(pol('', -1), 'nginx', { kind: 'swr' }), isCode('HSB_SWR_NAME_INVALID'));
    assert.equal(resolveDestination(pol('', -1), 'nginx', { kind: 'registry' }), 'nginx');
  });
  it('does not apply SWR rules to plain registries', () => {
    assert.equal(resolveDestination(pol('', -1), 'a..b/nginx', { kind: 'registry' }), 'a..b/nginx');
  });
  it('passes rewrite errors through', () => {
    assert.throws(() => resolveDestination(pol('n', 4), 'a/b/c/image', { kind: 'registry' }), isCode('HSB_POLICY_REWRITE'));
  });
});
