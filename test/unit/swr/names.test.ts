import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isValidOrgName, isValidRepoName, repoPathParam, splitSwrPath, validateSwrPath } from '../../../src/swr/names.ts';
import { BridgeError } from '../../../src/errors.ts';

const orgs: [string, boolean][] = [
  ['a', true],
  ['myorg', true],
  ['my-org.team_1', true],
  ['my__org', true],
  ['a1', true],
  ['x'.repeat(64), true],
  ['x'.repeat(65), false],
  ['', false],
  ['1org', false],
  ['_org', false],
  ['org-', false],
  ['org.', false],
  ['MyOrg', false],
  ['my--org', false],
  ['my..org', false],
  ['my-.org', false],
  ['my_-org', false],
  ['my___org', false],
  ['my/org', false],
  ['my org', false],
];

for (const [name, ok] of orgs) {
  test(`organisation "${name.length > 20 ? name.slice(0, 10) + '…' + name.length : name}" is ${ok ? 'valid' : 'invalid'}`, () => {
    assert.equal(isValidOrgName(name), ok);
  });
}

const repos: [string, boolean][] = [
  ['app', true],
  ['1app', true],
  ['team/app', true],
  ['a/b/c.d_e-f', true],
  ['a__b', true],
  ['a'.repeat(128), true],
  ['a'.repeat(129), false],
  ['/app', false],
  ['app/', false],
  ['a//b', false],
  ['a/-b', false],
  ['a___b', false],
  ['App', false],
  ['a:b', false],
];

for (const [name, ok] of repos) {
  test(`repository "${name.length > 20 ? name.slice(0, 10) + '…' + name.length : name}" is ${ok ? 'valid' : 'invalid'}`, () => {
    assert.equal(isValidRepoName(name), ok);
  });
}

test('splitSwrPath splits at the first slash', () => {
  assert.deepEqual(splitSwrPath('org/team/app'), { namespace: 'org', repository: 'team/app' });
  assert.equal(splitSwrPath('app'), undefined);
  assert.equal(splitSwrPath('org/'), undefined);
  assert.equal(splitSwrPath('/app'), undefined);
});

test('validateSwrPath returns the split path', () => {
  assert.deepEqual(validateSwrPath('myorg/library/nginx'), { namespace: 'myorg', repository: 'library/nginx' });
});

for (const bad of ['nginx', 'My-Org/app', '9org/app', 'org/App', 'org/a//b', 'org--x/app']) {
  test(`validateSwrPath("${bad}") throws a permanent HSB_SWR_NAME_INVALID`, () => {
    assert.throws(() => validateSwrPath(bad), (e: unknown) => e instanceof BridgeError && e.code === 'HSB_SWR_NAME_INVALID' && e.retryable === false && e.context.path === bad);
  });
}

test('nested repositories are written with $ for the management API', () => {
  assert.equal(repoPathParam('team/sub/app'), 'team$sub$app');
  assert.equal(repoPathParam('app'), 'app');
});
