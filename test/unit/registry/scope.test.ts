import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeScopes, repoScope, scopesCover, CATALOG_SCOPE } from '../../../src/registry/scope.ts';

test('repoScope builds repository scopes', () => {
  assert.equal(repoScope('team/app', 'pull', 'push'), 'repository:team/app:pull,push');
});

test('mergeScopes unites actions per repository and sorts for stable cache keys', () => {
  assert.deepEqual(
    mergeScopes(['repository:dst/app:push', 'repository:src/app:pull', 'repository:dst/app:pull']),
    ['repository:dst/app:pull,push', 'repository:src/app:pull'],
  );
  assert.deepEqual(mergeScopes(['repository:a:push,pull']), mergeScopes(['repository:a:pull', 'repository:a:push']));
  assert.deepEqual(mergeScopes(['repository:a:pull repository:b:pull']), ['repository:a:pull', 'repository:b:pull']);
  assert.deepEqual(mergeScopes([CATALOG_SCOPE]), ['registry:catalog:*']);
});

test('a mount needs push on the target and pull on the source repository', () => {
  const wanted = [repoScope('dst/app', 'pull', 'push'), repoScope('src/app', 'pull')];
  assert.equal(scopesCover(['repository:dst/app:pull,push', 'repository:src/app:pull'], wanted), true);
  assert.equal(scopesCover(['repository:dst/app:pull,push'], wanted), false);
  assert.equal(scopesCover(['repository:dst/app:*', 'repository:src/app:pull'], wanted), true);
});
