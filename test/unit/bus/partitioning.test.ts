// Pure parts of the buses: key → partition (both adapters), group assignment, retry delay.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Partitioners } from 'kafkajs';
import { javaCompatiblePartitioner } from '../../../src/bus/kafka/client.ts';
import { assignedPartitions } from '../../../src/bus/embedded/assignment.ts';
import { retryDelay } from '../../../src/bus/embedded/group-consumer.ts';
import { murmur2, partitionFor } from '../../../src/bus/partition.ts';
import type { TopicName } from '../../../src/bus/port.ts';

describe('partitionFor', () => {
  it('matches Kafka default-partitioner murmur2 values', () => {
    // Reference values computed with kafkajs's Java-compatible murmur2.
    const cases: [string, number, number][] = [
      ['', 275646681, 3], ['a', -1563381124, 4], ['ab', 316155434, 2], ['abc', 479470107, 3],
      ['abcd', -1323649548, 2], ['harbor/library/nginx', -558777922, 4], ['policy-42', -1182184803, 5],
      ['ключ', 2122343024, 2], ['x'.repeat(37), -278642013, 5],
    ];
    for (const [key, hash, p6] of cases) {
      assert.equal(murmur2(new TextEncoder().encode(key)), hash, key);
      assert.equal(partitionFor(key, 6), p6, key);
    }
  });

  it('hashes long keys and keys with non-ASCII characters anywhere as their UTF-8 bytes', () => {
    const keys = ['a'.repeat(511), 'a'.repeat(512), 'a'.repeat(513), 'p/'.repeat(700), 'abc/ключ', 'ключ/abc', `${'x'.repeat(600)}é`, 'tab\tnul\u0000del\u007f'];
    for (const key of keys) {
      const bytes = new TextEncoder().encode(key);
      for (const n of [1, 6, 7]) assert.equal(partitionFor(key, n), (murmur2(bytes) & 0x7fffffff) % n, key.slice(0, 20));
    }
    // Only the first `length` bytes count.
    assert.equal(murmur2(new TextEncoder().encode('abcdXYZ'), 4), murmur2(new TextEncoder().encode('abcd')));
  });

  it('is stable and in range, and spreads keys', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const p = partitionFor(`key-${i}`, 6);
      assert.ok(p >= 0 && p < 6);
      assert.equal(partitionFor(`key-${i}`, 6), p);
      seen.add(p);
    }
    assert.equal(seen.size, 6);
  });
});

describe('assignedPartitions', () => {
  const all = (members: { memberId: string; topics: TopicName[] }[], n: number) =>
    members.map((m) => assignedPartitions(members, m.memberId, n).map((tp) => `${tp.topic}/${tp.partition}`));

  it('gives a lone member every partition of its topics', () => {
    const got = assignedPartitions([{ memberId: 'a', topics: ['tasks', 'tasks.retry'] }], 'a', 3);
    assert.deepEqual(got.map((tp) => `${tp.topic}/${tp.partition}`), ['tasks/0', 'tasks/1', 'tasks/2', 'tasks.retry/0', 'tasks.retry/1', 'tasks.retry/2']);
  });

  it('divides partitions disjointly and completely, whatever the list order', () => {
    const members = [{ memberId: 'c', topics: ['tasks'] as TopicName[] }, { memberId: 'a', topics: ['tasks'] as TopicName[] }, { memberId: 'b', topics: ['tasks'] as TopicName[] }];
    const parts = all(members, 6);
    assert.deepEqual(parts.flat().sort(), ['tasks/0', 'tasks/1', 'tasks/2', 'tasks/3', 'tasks/4', 'tasks/5']);
    assert.deepEqual(parts.map((p) => p.length), [2, 2, 2]);
    assert.deepEqual(all([...members].reverse(), 6).reverse(), parts);
  });

  it('only deals a topic to members subscribed to it; non-members get nothing', () => {
    const members = [{ memberId: 'a', topics: ['tasks'] as TopicName[] }, { memberId: 'b', topics: ['tasks', 'results'] as TopicName[] }];
    const [a, b] = all(members, 2);
    assert.deepEqual(a, ['tasks/0']);
    assert.deepEqual(b, ['results/0', 'results/1', 'tasks/1']);
    assert.deepEqual(assignedPartitions(members, 'zz', 2), []);
  });
});

describe('retryDelay', () => {
  it('doubles per failure up to the cap', () => {
    assert.deepEqual([1, 2, 3, 4, 10].map((n) => retryDelay(n, 100, 500)), [100, 200, 400, 500, 500]);
  });
});

describe('javaCompatiblePartitioner', () => {
  it('puts every keyed record where kafkajs DefaultPartitioner would', () => {
    const ours = javaCompatiblePartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    const rnd = (n: number) => Math.floor(Math.random() * n);
    for (const partitions of [1, 3, 6, 7, 24]) {
      const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i, leader: i % 3 === 2 ? -1 : 1, replicas: [1], isr: [1], partitionErrorCode: 0 }));
      for (let i = 0; i < 2000; i++) {
        const text = Array.from({ length: rnd(60) }, () => String.fromCodePoint(rnd(3) === 0 ? 0x400 + rnd(200) : 0x20 + rnd(90))).join('');
        for (const key of [text, Buffer.from(text)]) {
          const message = { key, value: 'v' };
          assert.equal(ours({ topic: 't', partitionMetadata, message }), theirs({ topic: 't', partitionMetadata, message }), `${JSON.stringify(text)} over ${partitions}`);
        }
      }
    }
  });

  it('keeps an explicit partition and spreads unkeyed records over partitions with a leader', () => {
    const ours = javaCompatiblePartitioner();
    const partitionMetadata = [0, 1, 2, 3].map((i) => ({ partitionId: i, leader: i === 1 ? -1 : 1, replicas: [1], isr: [1], partitionErrorCode: 0 }));
    assert.equal(ours({ topic: 't', partitionMetadata, message: { key: 'k', value: 'v', partition: 3 } }), 3);
    const seen = new Set(Array.from({ length: 12 }, () => ours({ topic: 't', partitionMetadata, message: { value: 'v' } })));
    assert.deepEqual([...seen].sort(), [0, 2, 3]);
  });
});
