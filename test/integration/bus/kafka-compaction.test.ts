// Topics an operator created before the bridge first ran (real broker): `policies` and `dlq`
// without compaction would lose API-made policies and dead letters at the retention limit, and a
// daemon's start-up says so; compacted ones, topics the bridge creates, and one-shot commands stay quiet.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { KafkaBus } from '../../../src/bus/kafka/kafka-bus.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { sharedBrokers, uniquePrefix } from '../../support/kafka.ts';

interface Entry { level: number; msg: string; topic?: string; cleanupPolicy?: string }

async function precreate(prefix: string, topics: Record<string, string>): Promise<void> {
  const admin = new Kafka({ brokers: [sharedBrokers()], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: Object.entries(topics).map(([t, policy]) => ({ topic: prefix + t, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: policy }] })),
    });
  } finally {
    await admin.disconnect();
  }
}

async function connectWarnings(prefix: string, logRole: 'daemon' | 'command' = 'daemon'): Promise<Entry[]> {
  const entries: Entry[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { entries.push(JSON.parse(chunk.toString()) as Entry); cb(); } });
  const bus = new KafkaBus({ brokers: [sharedBrokers()], topicPrefix: prefix, partitions: 1, logger: createLogger('info', sink), logRole });
  try {
    await bus.connect();
  } finally {
    await bus.close();
  }
  return entries.filter((e) => e.level >= 40 && e.topic !== undefined);
}

describe('Kafka bus: compaction of topics that already exist', () => {
  it('warns, naming the topic and what it would lose, for a pre-created dlq or policies topic with cleanup.policy=delete', async () => {
    const prefix = uniquePrefix('compaction');
    await precreate(prefix, { dlq: 'delete', policies: 'delete' });
    const warnings = await connectWarnings(prefix);
    assert.deepEqual(warnings.map((w) => [w.topic, w.cleanupPolicy]).sort(), [[`${prefix}dlq`, 'delete'], [`${prefix}policies`, 'delete']]);
    const dlq = warnings.find((w) => w.topic === `${prefix}dlq`)!;
    assert.match(dlq.msg, /is not compacted \(cleanup\.policy=delete\): its dead letters are deleted after the topic's retention; set cleanup\.policy=compact/);
    assert.match(warnings.find((w) => w.topic === `${prefix}policies`)!.msg, /its policies made through the API/);
  });

  it('is quiet for compacted topics (compact, or compact,delete) and for the topics it creates itself', async () => {
    const prefix = uniquePrefix('compaction');
    await precreate(prefix, { dlq: 'compact,delete', policies: 'compact' });
    assert.deepEqual(await connectWarnings(prefix), []);
    // Created by the first connect, found by the second: both quiet.
    const fresh = uniquePrefix('compaction');
    assert.deepEqual(await connectWarnings(fresh), []);
    assert.deepEqual(await connectWarnings(fresh), []);
  });

  it('a one-shot command does not ask', async () => {
    const prefix = uniquePrefix('compaction');
    await precreate(prefix, { dlq: 'delete' });
    assert.deepEqual(await connectWarnings(prefix, 'command'), []);
  });
});
