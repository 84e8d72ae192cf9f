import { z } from 'zod';
import type { BusMessage } from '../bus/port.ts';
import type { BridgeError } from '../errors.ts';
import { ReplicationTaskSchema, TASK_SCHEMA_VERSION, type ReplicationTask } from './task.ts';

// A task that will not succeed by waiting: kept on the `dlq` topic with what an operator needs
// to decide, and replayable as it is.
export const DeadLetterSchema = z.object({
  schema: z.literal(TASK_SCHEMA_VERSION),
  id: z.string(),
  /** The task as it failed; null when the record (on `tasks` or `events`) could not even be parsed. */
  task: ReplicationTaskSchema.nullable(),
  raw: z.unknown().optional(),
  error: z.object({ code: z.string(), message: z.string(), retryable: z.boolean() }),
  attempts: z.number().int().min(0),
  source: z.object({ topic: z.string(), partition: z.number().int(), offset: z.string() }),
  failedAt: z.iso.datetime({ offset: true }),
});

export type DeadLetter = z.infer<typeof DeadLetterSchema>;

/**
 * A task's letter id: the task id, plus the replay round for a replayed task. A replay tombstones
 * the letter it replayed; the replayed task failing again fast gets a letter of its own id, which
 * that tombstone (landing later) cannot erase.
 */
export function letterIdOf(task: Pick<ReplicationTask, 'id' | 'replays'>): string {
  return task.replays ? `${task.id}.replay-${task.replays}` : task.id;
}

/** The letter for a task that will not succeed by waiting. */
export function taskLetter(task: ReplicationTask, m: Pick<BusMessage, 'topic' | 'partition' | 'offset'>, err: BridgeError, attempts: number): DeadLetter {
  return {
    schema: TASK_SCHEMA_VERSION,
    id: letterIdOf(task),
    task,
    error: { code: err.code, message: err.message, retryable: err.retryable },
    attempts,
    source: { topic: m.topic, partition: m.partition, offset: m.offset },
    failedAt: new Date().toISOString(),
  };
}

/** Raw records kept in a letter up to this size (JSON); larger ones are cut, so the letter itself always fits the bus. */
const MAX_RAW_CHARS = 64 * 1024;

/** The letter for a record no consumer can parse: kept with its position so nothing disappears silently. */
export function unparsableRecordLetter(m: BusMessage, err: BridgeError): DeadLetter {
  let raw: unknown = m.value;
  const text = JSON.stringify(m.value) ?? 'null';
  if (text.length > MAX_RAW_CHARS) raw = { truncated: true, chars: text.length, head: text.slice(0, MAX_RAW_CHARS) };
  return {
    schema: TASK_SCHEMA_VERSION,
    id: `${m.topic}-${m.partition}-${m.offset}`,
    task: null,
    raw,
    error: { code: err.code, message: err.message, retryable: err.retryable },
    attempts: 0,
    source: { topic: m.topic, partition: m.partition, offset: m.offset },
    failedAt: new Date().toISOString(),
  };
}

