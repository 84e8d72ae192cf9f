import { z } from 'zod';
import { ReplicationTaskSchema, TASK_SCHEMA_VERSION } from './task.ts';

// A task that will not succeed by waiting: kept on the `dlq` topic with what an operator needs
// to decide, and replayable as it is.
export const DeadLetterSchema = z.object({
  schema: z.literal(TASK_SCHEMA_VERSION),
  id: z.string(),
  /** The task as it failed; null when the record on `tasks` could not even be parsed. */
  task: ReplicationTaskSchema.nullable(),
  raw: z.unknown().optional(),
  error: z.object({ code: z.string(), message: z.string(), retryable: z.boolean() }),
  attempts: z.number().int().min(0),
  source: z.object({ topic: z.string(), partition: z.number().int(), offset: z.string() }),
  failedAt: z.iso.datetime({ offset: true }),
});

export type DeadLetter = z.infer<typeof DeadLetterSchema>;
