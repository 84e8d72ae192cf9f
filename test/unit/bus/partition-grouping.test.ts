// kafkajs' per-partition grouping, replaced by a one-pass version: same answer, and installed
// when client.ts loads kafkajs (this file imports it before anything else touches kafkajs).
import '../../../src/bus/kafka/client.ts';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { groupPerPartition, kafkajsGrouping, linearGrouping } from '../../../src/bus/kafka/partition-grouping.ts';
import { javaCompatiblePartitioner } from '../../../src/bus/kafka/client.ts';

describe('partition grouping', () => {
  it('is what kafkajs producer loads once client.ts has loaded kafkajs', () => {
    assert.equal(linearGrouping, true);
    const require = createRequire(import.meta.url);
    assert.equal(require('kafkajs/src/producer/groupMessagesPerPartition.js'), groupPerPartition);
    assert.equal(typeof kafkajsGrouping, 'function');
  });

  it('gives the same partitions, in the same order, with the same messages in order as kafkajs', () => {
    const rnd = (n: number) => Math.floor(Math.random() * n);
    for (const partitions of [0, 1, 3, 6, 24]) {
      const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i, leader: i % 4 === 3 ? -1 : 1 }));
      for (let round = 0; round < 200; round++) {
        const messages = Array.from({ length: rnd(80) }, (_, i) => {
          const kind = rnd(4);
          return { key: kind === 0 ? null : kind === 1 ? `k-${rnd(1000)}` : `repo/${rnd(50)}`, value: `v${i}`, ...(rnd(10) === 0 ? { partition: rnd(Math.max(1, partitions)) } : {}) };
        });
        // Each side gets its own partitioner: unkeyed records go round-robin from a counter.
        const ours = groupPerPartition({ topic: 't', partitionMetadata, messages, partitioner: javaCompatiblePartitioner() as never });
        const theirs = kafkajsGrouping!({ topic: 't', partitionMetadata, messages, partitioner: javaCompatiblePartitioner() as never });
        assert.deepEqual(Object.keys(ours), Object.keys(theirs));
        for (const p of Object.keys(ours)) assert.deepEqual(ours[p], theirs[p]);
        assert.equal(Object.values(ours).flat().length, partitions === 0 ? 0 : messages.length);
      }
    }
  });
});
