import type { z } from 'zod';
import { BridgeError } from '../errors.ts';
import type { OutgoingRecord, TopicName } from './port.ts';

/** Why `value` does not match `schema` (first few issues), or undefined when it does. */
export function recordIssue(schema: z.ZodType, value: unknown): string | undefined {
  const result = schema.safeParse(value);
  if (result.success) return undefined;
  return result.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ');
}

export function invalidRecordError(topic: TopicName, key: string, issue: string): BridgeError {
  return new BridgeError('HSB_BUS_INVALID_RECORD', `a ${topic} record (key ${key}) does not match its schema: ${issue}`, { context: { topic, key } });
}

/**
 * `records`, once every value matches `schema` (tombstones pass): a record its consumers would
 * dead-letter is refused before it is written. Throws HSB_BUS_INVALID_RECORD. For writers outside a
 * consumer (API, CLI, scheduled passes), where the error reaches the caller; consumers dead-letter
 * the record they were handling instead, so that a partition never stalls on it.
 */
export function checked<R extends OutgoingRecord>(topic: TopicName, schema: z.ZodType, records: R[]): R[] {
  for (const r of records) {
    if (r.value === null) continue;
    const issue = recordIssue(schema, r.value);
    if (issue !== undefined) throw invalidRecordError(topic, r.key, issue);
  }
  return records;
}
