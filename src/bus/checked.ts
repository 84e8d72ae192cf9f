import type { z } from 'zod';
import { BridgeError } from '../errors.ts';
import type { OutgoingRecord, TopicName } from './port.ts';

/**
 * `records`, once every value matches `schema` (tombstones pass): a record its consumers would
 * dead-letter is refused before it is written. Throws HSB_BUS_INVALID_RECORD, a programming error.
 */
export function checked<R extends OutgoingRecord>(topic: TopicName, schema: z.ZodType, records: R[]): R[] {
  for (const r of records) {
    if (r.value === null) continue;
    const result = schema.safeParse(r.value);
    if (!result.success) {
      const issues = result.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ');
      throw new BridgeError('HSB_BUS_INVALID_RECORD', `a ${topic} record (key ${r.key}) does not match its schema: ${issues}`, { context: { topic, key: r.key } });
    }
  }
  return records;
}
