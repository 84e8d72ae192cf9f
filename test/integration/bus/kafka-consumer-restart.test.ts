// A consumer that kafkajs gives up on (a failure it deems final, such as a SASL login refused after
// a password rotation) is started again by the Kafka adapter, so the group does not lose this member
// for good while the producer and /readyz look healthy. Simulated with kafkajs' own non-retriable
// error thrown from the handler: kafkajs then crashes the consumer without restarting it.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import kafkajs from 'kafkajs';
import { KafkaBus } from '../../../src/bus/kafka/kafka-bus.ts';
import type { BusMessage } from '../../../src/bus/port.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { sharedBrokers, uniquePrefix } from '../../support/kafka.ts';

const lines: string[] = [];
const logger = createLogger('info', new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } }));
const bus = new KafkaBus({ brokers: [sharedBrokers()], topicPrefix: uniquePrefix('restart'), partitions: 1, consumerRestartMs: 200, logger });
after(async () => { await bus.close(); });

it('starts a consumer again after a failure kafkajs does not restart it for, and the record is handled', async () => {
  await bus.connect();
  const seen: BusMessage[] = [];
  let failures = 0;
  const handle = await bus.subscribe({ group: 'restart-test', topics: ['events'], fromBeginning: true }, async (batch) => {
    if (failures === 0) {
      failures++;
      // kafkajs marks its errors retriable or not; a non-retriable one crashes the consumer without a restart.
      throw new kafkajs.KafkaJSNonRetriableError('simulated final failure');
    }
    seen.push(...batch);
  });
  try {
    await bus.publish('events', [{ key: 'k', value: { n: 1 } }]);
    for (const until = Date.now() + 30_000; seen.length === 0 && Date.now() < until;) await sleep(100);
    assert.equal(failures, 1);
    assert.deepEqual(seen.map((m) => m.value), [{ n: 1 }], 'handled once the consumer was started again');
    const restarted = lines.map((l) => JSON.parse(l) as { msg: string; group?: string }).filter((l) => l.msg === 'Kafka consumer stopped; starting it again');
    assert.equal(restarted.length, 1, lines.join(''));
    assert.equal(restarted[0]!.group, 'restart-test');
  } finally {
    await handle.stop();
  }
});
