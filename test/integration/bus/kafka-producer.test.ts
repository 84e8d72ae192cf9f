// The Kafka adapter's producer (src/bus/kafka/producer.ts) against the real broker, with the
// adapter's one-pass Produce encoder and partition grouping installed: acknowledged records are on
// the topic in kafkajs' partitions, a refusal is an error and the next send works, close() ends
// it, and a process that publishes and closes exits by itself.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
// client.ts before kafkajs itself: it installs the partition grouping ahead of kafkajs' producer.
import { kafkaClient } from '../../../src/bus/kafka/client.ts';
import { Kafka, logLevel } from 'kafkajs';
import { encodings, fastProduceEncoding } from '../../../src/bus/kafka/produce-encoding.ts';
import { linearGrouping } from '../../../src/bus/kafka/partition-grouping.ts';
import { IdempotentProducer } from '../../../src/bus/kafka/producer.ts';
import { sharedBrokers, uniquePrefix } from '../../support/kafka.ts';

describe('Kafka producer', () => {
  const topic = `${uniquePrefix('producer')}events`;
  let brokers: string;

  before(async () => {
    brokers = sharedBrokers();
    const admin = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] });
    await admin.disconnect();
  });

  const readAll = async (): Promise<{ key: string; value: string | null; partition: number }[]> => {
    const kafka = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    const total = ends.reduce((n, p) => n + Number(p.high), 0);
    const got: { key: string; value: string | null; partition: number }[] = [];
    if (total === 0) return got;
    const consumer = kafka.consumer({ groupId: `${topic}.reader.${Date.now()}`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve) => {
      void consumer.run({ eachMessage: async ({ partition, message }) => {
        got.push({ key: message.key!.toString(), value: message.value?.toString() ?? null, partition });
        if (got.length >= total) resolve();
      } });
    });
    await consumer.disconnect();
    return got;
  };

  let producer: IdempotentProducer;
  after(async () => { await producer?.close(); });

  it('is ready once connected, and an acknowledged send is on the topic, keyed records in the Java partition', async () => {
    assert.equal(fastProduceEncoding, true);
    assert.equal(linearGrouping, true);
    producer = new IdempotentProducer(kafkaClient({ brokers: [brokers], clientId: 'producer-test', requestTimeoutMs: 1500 }, () => {}));
    assert.equal(producer.isReady(), false);
    await producer.connect();
    assert.equal(producer.isReady(), true);
    const encoded = encodings.here;
    await producer.send([{ topic, messages: [
      { key: 'harbor/library/nginx', value: '{"n":1}' },
      { key: 'harbor/library/nginx', value: '{"n":2}', headers: { h: 'v' } },
      { key: 'gone', value: null },
    ] }]);
    const got = await readAll();
    assert.deepEqual(got.filter((m) => m.key === 'harbor/library/nginx').map((m) => m.value), ['{"n":1}', '{"n":2}']);
    // Same partition kafkajs' own DefaultPartitioner picks for this key over 3 partitions (see partitioning.test.ts).
    const { partitionFor } = await import('../../../src/bus/partition.ts');
    assert.ok(got.every((m) => m.partition === partitionFor(m.key, 3)));
    assert.equal(got.find((m) => m.key === 'gone')?.value, null);
    assert.equal(encodings.here - encoded, 1, 'written by the one-pass encoder');
  });

  it('asks the broker for acks=all on every Produce request it writes (read from the bytes on the socket)', async () => {
    const written: Buffer[] = [];
    // kafkajs' socketFactory hook: a plain TCP socket whose writes are copied here.
    const recording = ({ host, port, onConnect }: { host: string; port: number; onConnect: () => void }): Socket => {
      const socket = connect({ host, port }, onConnect);
      const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean;
      socket.write = ((chunk: unknown, ...rest: unknown[]) => {
        if (Buffer.isBuffer(chunk)) written.push(Buffer.from(chunk));
        return write(chunk, ...rest);
      }) as Socket['write'];
      return socket;
    };
    const wired = new IdempotentProducer(new Kafka({ brokers: [brokers], clientId: 'acks-test', logLevel: logLevel.NOTHING, socketFactory: recording as never }));
    try {
      await wired.connect();
      await wired.send([{ topic, messages: [{ key: 'acks', value: '1' }] }]);
      await wired.send([{ topic, messages: [{ key: 'acks', value: '2' }, { key: 'other', value: '3' }] }]);
    } finally {
      await wired.close();
    }
    // Request frames: size, api key (0 = Produce), version, correlation id, client id; then, from
    // Produce v3 on, transactional id and acks (-1 = all in-sync replicas).
    const stream = Buffer.concat(written);
    const acks: number[] = [];
    for (let at = 0; at + 4 <= stream.length;) {
      const size = stream.readInt32BE(at);
      const frame = stream.subarray(at + 4, at + 4 + size);
      at += 4 + size;
      if (frame.readInt16BE(0) !== 0) continue;
      assert.ok(frame.readInt16BE(2) >= 3, 'Produce v3 or later');
      let p = 8;
      p += 2 + Math.max(0, frame.readInt16BE(p)); // client id
      p += 2 + Math.max(0, frame.readInt16BE(p)); // transactional id
      acks.push(frame.readInt16BE(p));
    }
    assert.deepEqual(acks, [-1, -1]);
  });

  it('passes the broker\'s refusal back as an error, and the next send still works', async () => {
    await assert.rejects(producer.send([{ topic: `${topic}.missing`, messages: [{ key: 'k', value: '1' }] }]), (e: Error) => e.message.length > 0);
    await producer.send([{ topic, messages: [{ key: 'after', value: '"ok"' }] }]);
    assert.ok((await readAll()).some((m) => m.key === 'after'));
  });

  it('refuses sends after close()', async () => {
    await producer.close();
    assert.equal(producer.isReady(), false);
    await assert.rejects(producer.send([{ topic, messages: [{ key: 'k', value: '1' }] }]), /closed/);
  });

  it('lets a process that published and closed the bus exit by itself', async () => {
    const script = `
      const { KafkaBus } = await import(${JSON.stringify(new URL('../../../src/bus/kafka/kafka-bus.ts', import.meta.url).href)});
      const bus = new KafkaBus({ brokers: [${JSON.stringify(brokers)}], topicPrefix: ${JSON.stringify(uniquePrefix('producer-exit'))}, partitions: 1 });
      await bus.connect();
      await bus.publish('events', [{ key: 'k', value: { ok: true } }]);
      await bus.close();
      process.stdout.write('closed');`;
    const file = join(mkdtempSync(join(tmpdir(), 'producer-exit-')), 'publish.mjs');
    writeFileSync(file, script);
    const child = spawn(process.execPath, ['--no-warnings', file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => { child.kill('SIGKILL'); resolve(null); }, 30000);
      child.once('exit', (c) => { clearTimeout(t); resolve(c); });
    });
    assert.equal(out, 'closed');
    assert.equal(code, 0, 'exited on its own after close()');
  });
});
