import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentRange, parseContentRange, uploadOffsetFromRange } from '../../../src/registry/content-range.ts';

test('upload Range headers give the next offset to send', () => {
  assert.equal(uploadOffsetFromRange('0-1048575'), 1048576);
  assert.equal(uploadOffsetFromRange('bytes=0-99'), 100);
  assert.equal(uploadOffsetFromRange('0-0'), 0, 'distribution reports an empty session as 0-0');
  assert.equal(uploadOffsetFromRange(undefined), undefined);
  assert.equal(uploadOffsetFromRange('5-10'), undefined, 'sessions always start at 0');
  assert.equal(uploadOffsetFromRange('junk'), undefined);
});

test('Content-Range of a chunk is inclusive', () => {
  assert.equal(contentRange(0, 1024), '0-1023');
  assert.equal(contentRange(1024, 1), '1024-1024');
});

test('Content-Range of a ranged GET', () => {
  assert.deepEqual(parseContentRange('bytes 100-199/1000'), { start: 100, end: 199, total: 1000 });
  assert.deepEqual(parseContentRange('bytes 0-9/*'), { start: 0, end: 9 });
  assert.equal(parseContentRange('items 1-2/3'), undefined);
});
