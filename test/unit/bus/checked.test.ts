import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { checked } from '../../../src/bus/checked.ts';
import { BridgeError } from '../../../src/errors.ts';
import { ReplicationTaskSchema } from '../../../src/replication/task.ts';
import { DeadLetterSchema } from '../../../src/replication/dead-letter.ts';

describe('checked records (producer-side validation)', () => {
  it('passes matching values and tombstones through unchanged', () => {
    const records = [{ key: 'a', value: { n: 1 } }, { key: 'b', value: null }];
    assert.equal(checked('tasks', z.object({ n: z.number() }), records), records);
  });

  it('refuses a value its consumers would dead-letter, naming topic, key and field', () => {
    assert.throws(() => checked('tasks', ReplicationTaskSchema, [{ key: 't/repo', value: { schema: 1, id: 'x' } }]), (e: unknown) => {
      assert.ok(e instanceof BridgeError);
      assert.equal(e.code, 'HSB_BUS_INVALID_RECORD');
      assert.match(e.message, /a tasks record \(key t\/repo\) does not match its schema: \w+/);
      assert.deepEqual(e.context, { topic: 'tasks', key: 't/repo' });
      return true;
    });
    assert.throws(() => checked('dlq', DeadLetterSchema, [{ key: 'l', value: 'not a letter' }]), /a dlq record \(key l\)/);
  });
});
