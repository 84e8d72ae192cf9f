// The one-pass Produce encoder (src/bus/kafka/produce-encoding.ts) against the real broker: the
// broker checks every batch's CRC and layout, and what a consumer reads back is what was sent
// (keys, values, tombstones, headers, several partitions and two topics in one request).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { encodings, fastProduceEncoding } from '../../../src/bus/kafka/produce-encoding.ts';
import { PRODUCER_CONFIG, javaCompatiblePartitioner } from '../../../src/bus/kafka/client.ts';
import { sharedBrokers, uniquePrefix } from '../../support/kafka.ts';

interface Sent { key: string; value: string | null; headers?: Record<string, string> }

describe('Produce encoding against the broker', () => {
  const prefix = uniquePrefix('encoding');
  const topics = [`${prefix}a`, `${prefix}b`];
  let kafka: Kafka;
  let producer: Producer;

  before(async () => {
    assert.equal(fastProduceEncoding, true);
    kafka = new Kafka({ brokers: [sharedBrokers()], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: topics.map((topic) => ({ topic, numPartitions: 4, replicationFactor: 1 })) });
    await admin.disconnect();
    producer = kafka.producer({ ...PRODUCER_CONFIG, createPartitioner: javaCompatiblePartitioner });
    await producer.connect();
  });
  after(async () => { await producer.disconnect(); });

  it('the broker takes idempotent batches written here, and consumers read back what was sent', async () => {
    const sent = new Map<string, Sent[]>(topics.map((t) => [t, []]));
    const before = encodings.here;
    for (let round = 0; round < 3; round++) {
      const topicMessages = topics.map((topic, t) => {
        const messages: Sent[] = Array.from({ length: 25 }, (_, i) => ({
          key: `källa/${t}/repo-${i % 7}/ü${round}`,
          value: i % 9 === 8 ? null : JSON.stringify({ round, i, note: 'ünïcødé ✓ '.repeat(i) }),
          ...(i % 4 === 0 && { headers: { 'x-hsb-try': String(round), 'x-note': 'ok ✓' } }),
        }));
        sent.get(topic)!.push(...messages);
        return { topic, messages };
      });
      await producer.sendBatch({ acks: -1, topicMessages });
    }
    assert.equal(encodings.here - before, 3, 'every request went through the one-pass encoder');

    for (const topic of topics) {
      const got = await readAll(kafka, topic, sent.get(topic)!.length);
      const key = (m: Sent) => JSON.stringify([m.key, m.value, m.headers ?? {}]);
      assert.deepEqual(got.map(key).sort(), sent.get(topic)!.map(key).sort());
    }
  });
});

async function readAll(kafka: Kafka, topic: string, expected: number): Promise<Sent[]> {
  const got: Sent[] = [];
  const consumer = kafka.consumer({ groupId: `${topic}.reader`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${got.length} of ${expected} records`)), 20000);
    void consumer.run({ eachMessage: async ({ message }) => {
      const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
      got.push({ key: message.key!.toString(), value: message.value === null ? null : message.value.toString(), ...(Object.keys(headers).length > 0 && { headers }) });
      if (got.length === expected) {
        clearTimeout(timer);
        resolve();
      }
    } });
  });
  await consumer.disconnect();
  return got;
}
