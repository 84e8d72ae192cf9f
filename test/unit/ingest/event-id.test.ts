import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { eventIdOf, indexedEventId } from '../../../src/ingest/event-id.ts';

describe('eventIdOf', () => {
  it('is sha256 hex of the parts joined with NUL, absent parts empty', () => {
    const expected = createHash('sha256').update('src\0PUSH_ARTIFACT\0lib/app\0sha256:ab\0\x001700000000').digest('hex');
    assert.equal(eventIdOf({ sourceId: 'src', type: 'PUSH_ARTIFACT', repository: 'lib/app', digest: 'sha256:ab', occurAt: 1700000000 }), expected);
  });

  it('differs when any part differs, including where the separator falls', () => {
    const base = { sourceId: 's', type: 't', repository: 'r', digest: 'd', tag: 'g', occurAt: 1 };
    const ids = new Set([
      eventIdOf(base), eventIdOf({ ...base, tag: undefined }), eventIdOf({ ...base, occurAt: 2 }),
      eventIdOf({ ...base, sourceId: 's2' }), eventIdOf({ ...base, digest: '', tag: 'dg' }),
    ]);
    assert.equal(ids.size, 5);
  });
});

describe('indexedEventId', () => {
  it('keeps the id for the first and suffixes the others', () => {
    assert.deepEqual([0, 1, 2].map((i) => indexedEventId('abc', i)), ['abc', 'abc#1', 'abc#2']);
  });
});
