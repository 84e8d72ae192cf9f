import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LastPlanned, eventRef } from '../../../src/policy/last-planned.ts';

const D = `sha256:${'b'.repeat(64)}`;

describe('eventRef', () => {
  it('names the tag when there is one, else the digest', () => {
    assert.equal(eventRef({ sourceId: 's', repository: 'a/b', tag: 'v1', digest: D }), eventRef({ sourceId: 's', repository: 'a/b', tag: 'v1' }));
    assert.notEqual(eventRef({ sourceId: 's', repository: 'a/b', digest: D }), eventRef({ sourceId: 's', repository: 'a/b', tag: 'v1', digest: D }));
    assert.notEqual(eventRef({ sourceId: 's', repository: 'a/b', tag: 'v1' }), eventRef({ sourceId: 't', repository: 'a/b', tag: 'v1' }));
    assert.notEqual(eventRef({ sourceId: 's', repository: 'a/b', tag: 'v1' }), eventRef({ sourceId: 's', repository: 'a/b/c', tag: 'v1' }));
  });
});

describe('LastPlanned', () => {
  it('keeps the last id per reference', () => {
    const last = new LastPlanned();
    last.set('r', 'x');
    last.set('r', 'y');
    assert.equal(last.get('r'), 'y');
    assert.equal(last.get('other'), undefined);
  });
  it('forgets the least recently planned reference beyond its limit', () => {
    const last = new LastPlanned(2);
    last.set('a', '1');
    last.set('b', '2');
    last.set('a', '3'); // a is now the most recent
    last.set('c', '4');
    assert.equal(last.get('b'), undefined);
    assert.equal(last.get('a'), '3');
    assert.equal(last.get('c'), '4');
  });
});
