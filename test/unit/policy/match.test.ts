import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PolicySchema, type PolicyInput } from '../../../src/policy/model.ts';
import { firstMismatch, labelsMatch, matchesPolicy, matchingTags, nameMatches, tagMatches } from '../../../src/policy/match.ts';

const policy = (filters: PolicyInput['filters']) => PolicySchema.parse({ id: 'p', src_registry: 's', dest_registry: 't', filters });

describe('name filter', () => {
  it('matches the full project/repo path', () => {
    assert.equal(nameMatches(policy([{ type: 'name', value: '*' }]), 'library/hello-world'), false);
    assert.equal(nameMatches(policy([{ type: 'name', value: '**' }]), 'library/hello-world'), true);
    assert.equal(nameMatches(policy([{ type: 'name', value: 'library/*' }]), 'library/hello-world'), true);
    assert.equal(nameMatches(policy([{ type: 'name', value: '{library,harbor}/**' }]), 'harbor/a/b'), true);
    assert.equal(nameMatches(policy([{ type: 'name', value: 'library/*' }]), 'harbor/hello-world'), false);
  });
  it('empty pattern and no filter match everything', () => {
    assert.equal(nameMatches(policy([{ type: 'name', value: '' }]), 'a/b/c'), true);
    assert.equal(nameMatches(policy([]), 'a/b/c'), true);
  });
  it('all name filters must pass', () => {
    const p = policy([{ type: 'name', value: 'library/**' }, { type: 'name', value: '**/nginx' }]);
    assert.equal(nameMatches(p, 'library/nginx'), true);
    assert.equal(nameMatches(p, 'library/redis'), false);
  });
});

describe('tag filter', () => {
  it('globs the tag', () => {
    assert.equal(tagMatches(policy([{ type: 'tag', value: '1.?' }]), '1.01'), false);
    assert.equal(tagMatches(policy([{ type: 'tag', value: '1.?' }]), '1.0'), true);
    assert.equal(tagMatches(policy([{ type: 'tag', value: 'v2.[4-6].*' }]), 'v2.5.1'), true);
    assert.equal(tagMatches(policy([{ type: 'tag', value: 'v2.[4-6].*' }]), 'v2.7.0'), false);
  });
  it('excludes inverts the match', () => {
    const p = policy([{ type: 'tag', value: '*-rc*', decoration: 'excludes' }]);
    assert.equal(tagMatches(p, '1.0-rc1'), false);
    assert.equal(tagMatches(p, '1.0'), true);
  });
  it('explicit matches decoration is the default', () => {
    assert.equal(tagMatches(policy([{ type: 'tag', value: 'v*', decoration: 'matches' }]), 'v1'), true);
    assert.equal(tagMatches(policy([{ type: 'tag', value: 'v*', decoration: 'matches' }]), 'x1'), false);
  });
  it('empty pattern passes every tag and untagged artifacts', () => {
    const p = policy([{ type: 'tag', value: '' }]);
    assert.equal(tagMatches(p, 'anything'), true);
    assert.equal(tagMatches(p, undefined), true);
  });
  it('an empty pattern is skipped whatever its decoration, as Harbor does: excludes "" excludes nothing', () => {
    const p = policy([{ type: 'tag', value: '', decoration: 'excludes' }]);
    assert.equal(tagMatches(p, 'anything'), true);
    assert.equal(tagMatches(p, undefined), true);
    assert.equal(matchesPolicy(p, { repository: 'a/b', tags: ['v1'] }), true);
  });
  it('untagged artifacts are matched as ""', () => {
    assert.equal(tagMatches(policy([{ type: 'tag', value: '*' }]), undefined), true);
    assert.equal(tagMatches(policy([{ type: 'tag', value: 'v*' }]), undefined), false);
    assert.equal(tagMatches(policy([{ type: 'tag', value: 'v*', decoration: 'excludes' }]), undefined), true);
    assert.equal(tagMatches(policy([{ type: 'tag', value: '*', decoration: 'excludes' }]), undefined), false);
    assert.equal(matchesPolicy(policy([{ type: 'tag', value: '*' }]), { repository: 'a/b', tags: [] }), true);
    assert.equal(matchesPolicy(policy([{ type: 'tag', value: 'v*' }]), { repository: 'a/b', tags: [] }), false);
  });
  it('a tagged artifact matches when any tag passes every tag filter', () => {
    const p = policy([{ type: 'tag', value: 'v*' }, { type: 'tag', value: '*-rc*', decoration: 'excludes' }]);
    assert.deepEqual(matchingTags(p, ['v1', 'v2-rc1', 'latest']), ['v1']);
    assert.equal(matchesPolicy(p, { repository: 'a/b', tags: ['latest', 'v1'] }), true);
    assert.equal(matchesPolicy(p, { repository: 'a/b', tags: ['latest', 'v2-rc1'] }), false);
  });
});

describe('label filter', () => {
  it('needs all labels (array or single string)', () => {
    const p = policy([{ type: 'label', value: ['prod', 'signed'] }]);
    assert.equal(labelsMatch(p, ['prod', 'signed', 'x']), true);
    assert.equal(labelsMatch(p, ['prod']), false);
    assert.equal(labelsMatch(p, undefined), false);
    assert.equal(labelsMatch(policy([{ type: 'label', value: 'prod' }]), ['prod']), true);
  });
  it('excludes rejects artifacts carrying all the labels', () => {
    const p = policy([{ type: 'label', value: ['wip'], decoration: 'excludes' }]);
    assert.equal(labelsMatch(p, ['wip']), false);
    assert.equal(labelsMatch(p, []), true);
  });
  it('an empty label list passes', () => {
    assert.equal(labelsMatch(policy([{ type: 'label', value: [] }]), []), true);
  });
});

describe('resource filter', () => {
  it('narrows nothing, as in Harbor 2.x: image and artifact both keep every artifact', () => {
    for (const value of ['image', 'artifact']) {
      const p = policy([{ type: 'resource', value }, { type: 'name', value: 'charts/**' }]);
      assert.equal(matchesPolicy(p, { repository: 'charts/nginx', tags: ['15.0.0'] }), true, value);
      assert.equal(firstMismatch(p, { repository: 'library/nginx', tags: ['1'] }), 'name', value);
    }
  });
});

describe('matchesPolicy / firstMismatch', () => {
  const p = policy([
    { type: 'name', value: 'library/**' },
    { type: 'tag', value: 'v*' },
    { type: 'resource', value: 'image' },
  ]);
  it('reports which filter rejected', () => {
    assert.equal(firstMismatch(p, { repository: 'library/nginx', tags: ['v1'] }), undefined);
    assert.equal(firstMismatch(p, { repository: 'other/nginx', tags: ['v1'] }), 'name');
    assert.equal(firstMismatch(p, { repository: 'library/nginx', tags: ['latest'] }), 'tag');
    assert.equal(firstMismatch(policy([{ type: 'label', value: ['x'] }]), { repository: 'a/b', tags: ['v1'] }), 'label');
    assert.equal(matchesPolicy(p, { repository: 'library/nginx', tags: ['v1'] }), true);
  });
});
