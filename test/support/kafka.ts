// The shared test broker started by scripts/test.sh (KAFKA_BROKERS), and per-test topic prefixes
// so tests never see each other's records.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureListeners } from '../../scripts/kafka/broker.ts';

export function sharedBrokers(): string {
  const b = process.env.KAFKA_BROKERS;
  if (!b) throw new Error('KAFKA_BROKERS is not set: run the tests with `npm test`, which starts a Kafka broker');
  return b;
}

/** The shared broker's SASL_SSL and mutual-TLS listeners, CA and users (KAFKA_SECURE: its secure.json). */
export function sharedSecureListeners(): SecureListeners {
  const file = process.env.KAFKA_SECURE;
  if (!file) throw new Error('KAFKA_SECURE is not set: run the tests with `npm test`, whose broker has SASL_SSL and mutual-TLS listeners (or pass <stateDir>/secure.json of `scripts/kafka/broker.ts start <stateDir>`)');
  return JSON.parse(readFileSync(file, 'utf8')) as SecureListeners;
}

export function uniquePrefix(name: string): string {
  return `t-${name}-${randomBytes(4).toString('hex')}.`;
}
