// IdempotentProducer (the Kafka adapter's kafkajs producer wrapper) against a recording stand-in for kafkajs'
// producer: never two sendBatch calls at once on one idempotent producer, sends that arrive
// meanwhile merged into the next call in order, and a failed send retires the producer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Kafka } from 'kafkajs';
import { IdempotentProducer, type TopicMessages } from '../../../src/bus/kafka/producer.ts';

function fakeKafka(opts: { failFirst?: boolean } = {}) {
  const calls: { producer: number; topicMessages: TopicMessages[] }[] = [];
  let producers = 0;
  let active = 0;
  let maxActive = 0;
  let failed = false;
  const kafka = {
    producer: () => {
      const id = ++producers;
      return {
        connect: async () => {},
        disconnect: async () => {},
        sendBatch: async ({ topicMessages }: { topicMessages: TopicMessages[] }) => {
          active++;
          maxActive = Math.max(maxActive, active);
          calls.push({ producer: id, topicMessages });
          await new Promise((r) => setTimeout(r, 20));
          active--;
          if (opts.failFirst && !failed) {
            failed = true;
            throw Object.assign(new Error('Request Produce timed out'), { name: 'KafkaJSRequestTimeoutError' });
          }
        },
      };
    },
  } as unknown as Kafka;
  return { kafka, calls, producers: () => producers, maxActive: () => maxActive };
}

const msg = (topic: string, key: string): TopicMessages[] => [{ topic, messages: [{ key, value: `{"k":"${key}"}` }] }];

test('one sendBatch at a time; what arrives meanwhile goes out merged, in order', async () => {
  const f = fakeKafka();
  const core = new IdempotentProducer(f.kafka);
  await Promise.all([
    core.send(msg('events', 'a')),
    core.send(msg('results', 'r1')),
    core.send(msg('events', 'b')),
    core.send(msg('events', 'c')),
  ]);
  assert.equal(f.maxActive(), 1);
  assert.equal(f.calls.length, 2, 'the first alone, the three that waited together');
  assert.deepEqual(f.calls[1]!.topicMessages.map((t) => [t.topic, t.messages.map((m) => m.key)]), [['results', ['r1']], ['events', ['b', 'c']]]);
});

test('a failed send fails its callers only, and the next one goes out on a new producer', async () => {
  const f = fakeKafka({ failFirst: true });
  const core = new IdempotentProducer(f.kafka);
  const first = core.send(msg('events', 'a'));
  const second = core.send(msg('events', 'b'));
  await assert.rejects(first, /timed out/);
  await second;
  assert.deepEqual(f.calls.map((c) => c.producer), [1, 2], 'a new producer id after the failure');
  assert.equal(f.maxActive(), 1);
});
