import type { z } from 'zod';
import { checked, invalidRecordError, recordIssue } from '../bus/checked.ts';
import type { Bus, BusMessage, OutgoingRecord, TopicName } from '../bus/port.ts';
import type { BridgeError } from '../errors.ts';
import { DeadLetterSchema, unparsableRecordLetter } from './dead-letter.ts';
import type { Outcome } from './execute.ts';
import { TaskResultSchema, TASK_SCHEMA_VERSION, taskKey, type ReplicationTask, type TaskResult } from './task.ts';

/** One record of a task's outcome (retry, dead letter, result) and the schema its consumers hold it to. */
export interface OutcomeRecord {
  topic: TopicName;
  schema: z.ZodType;
  record: OutgoingRecord;
}

export function resultRecord(task: ReplicationTask, o: Omit<Outcome, 'status'> & { status: TaskResult['status'] }, durationMs: number, err?: BridgeError): OutcomeRecord {
  const result: TaskResult = {
    schema: TASK_SCHEMA_VERSION,
    taskId: task.id, eventId: task.eventId, policyId: task.policyId, sourceId: task.sourceId, targetId: task.targetId,
    repository: task.repository, destRepository: task.destRepository, reference: task.tag ?? task.digest!,
    status: o.status, digest: o.digest, bytes: o.bytes, blobs: o.blobs,
    durationMs, attempt: task.attempt, error: err ? { code: err.code, message: err.message } : undefined,
    occurredAt: task.occurredAt, finishedAt: new Date().toISOString(),
  };
  return { topic: 'results', schema: TaskResultSchema, record: { key: taskKey(task), value: result } };
}

/**
 * Writes a task's outcome records in order, once all of them match their schemas. One that does not
 * (a bug) must not stall the partition by failing the batch on every delivery, nor half-write the
 * outcome: nothing of it is written, the task's record `m` goes to the DLQ as it came with the
 * reason (HSB_BUS_INVALID_RECORD), and the caller lets the batch commit.
 */
export async function publishOutcome(bus: Bus, m: BusMessage, records: OutcomeRecord[]): Promise<{ ok: true } | { ok: false; error: BridgeError }> {
  for (const { topic, schema, record } of records) {
    const issue = recordIssue(schema, record.value);
    if (issue === undefined) continue;
    const error = invalidRecordError(topic, record.key, issue);
    const letter = unparsableRecordLetter(m, error);
    await bus.publish('dlq', checked('dlq', DeadLetterSchema, [{ key: letter.id, value: letter }]));
    return { ok: false, error };
  }
  for (const { topic, record } of records) await bus.publish(topic, [record]);
  return { ok: true };
}
