// The shared test broker started by scripts/test.sh (KAFKA_BROKERS), and per-test topic prefixes
// so tests never see each other's records.
import { randomBytes } from 'node:crypto';

export function sharedBrokers(): string {
  const b = process.env.KAFKA_BROKERS;
  if (!b) throw new Error('KAFKA_BROKERS is not set: run the tests with `npm test`, which starts a Kafka broker');
  return b;
}

export function uniquePrefix(name: string): string {
  return `t-${name}-${randomBytes(4).toString('hex')}.`;
}
