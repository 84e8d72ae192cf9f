import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkSwrOrganisation, checkSwrRepository, swrOrganisationError } from '../../../src/policy/swr-names.ts';
import { BridgeError } from '../../../src/errors.ts';

describe('SWR organisation names', () => {
  const valid = ['a', 'group', 'my-org', 'my.org', 'my_org', 'my__org', 'a1', 'org-2.x_y', 'a'.repeat(64)];
  for (const name of valid) it(`accepts ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)}`, () => {
    assert.equal(swrOrganisationError(name), undefined);
    assert.doesNotThrow(() => checkSwrOrganisation(name));
  });
  const invalid: [string, RegExp][] = [
    ['', /1 to 64/],
    ['a'.repeat(65), /1 to 64/],
    ['MyOrg', /lowercase letters/],
    ['my org', /lowercase letters/],
    ['1org', /starts with a lowercase letter/],
    ['_org', /starts with a lowercase letter/],
    ['org-', /ends with a lowercase letter or digit/],
    ['org_', /ends with a lowercase letter or digit/],
    ['my..org', /next to each other/],
    ['my.-org', /next to each other/],
    ['my_-org', /next to each other/],
    ['my--org', /next to each other/],
    ['my___org', /next to each other/],
    ['my._org', /next to each other/],
  ];
  for (const [name, rule] of invalid) it(`rejects ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…` : name)}`, () => {
    assert.match(swrOrganisationError(name) ?? '', rule);
    assert.throws(() => checkSwrOrganisation(name), (e: unknown) =>
      e instanceof BridgeError && e.code === 'HSB_SWR_NAME_INVALID' && !e.retryable && e.message.includes(JSON.stringify(name)) && rule.test(e.message));
  });
});

describe('SWR repository paths', () => {
  it('accepts org/path', () => {
    assert.doesNotThrow(() => checkSwrRepository('myorg/nginx'));
    assert.doesNotThrow(() => checkSwrRepository('my__org/a/b-c/d.e_f'));
    assert.doesNotThrow(() => checkSwrRepository(`org/${'a'.repeat(128)}`));
  });
  const bad: [string, RegExp][] = [
    ['nginx', /needs an organisation/],
    ['My/nginx', /organisation "My"/],
    [`org/${'a'.repeat(129)}`, /at most 128/],
    ['org/Nginx', /path component "Nginx"/],
    ['org/a//b', /path component ""/],
    ['org/-a', /path component "-a"/],
  ];
  for (const [repo, rule] of bad) it(`rejects ${repo.length > 30 ? `${repo.slice(0, 10)}…` : repo}`, () => {
    assert.throws(() => checkSwrRepository(repo), (e: unknown) => e instanceof BridgeError && e.code === 'HSB_SWR_NAME_INVALID' && rule.test(e.message));
  });
});
