import type { BridgeError } from '../errors.ts';
import { backoffMs, retryPolicy } from '../registry/retry-policy.ts';
import type { ReplicationTask } from './task.ts';

export interface RetryPolicy {
  maxRetries: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

const MAX_RETRY_AFTER_MS = 24 * 3600_000;

export type FailureDecision =
  | { kind: 'retry'; task: ReplicationTask; dueAt: Date }
  | { kind: 'dlq'; reason: 'permanent' | 'exhausted' };

/** What to do with a task whose in-process attempts failed. Pure: the caller does the I/O. */
export function decideFailure(task: ReplicationTask, err: BridgeError, policy: RetryPolicy, now: Date, random?: () => number): FailureDecision {
  if (!err.retryable) return { kind: 'dlq', reason: 'permanent' };
  if (task.attempt >= policy.maxRetries) return { kind: 'dlq', reason: 'exhausted' };
  const backoff = backoffMs(task.attempt, { ...retryPolicy, baseMs: policy.retryBaseMs, maxMs: policy.retryMaxMs }, undefined, random);
  // Never sooner than the registry asked for (Retry-After), within a day.
  const asked = Math.min(Number(err.context.retryAfterMs) || 0, MAX_RETRY_AFTER_MS);
  const dueAt = new Date(now.getTime() + Math.max(backoff, asked));
  return {
    kind: 'retry',
    dueAt,
    task: { ...task, attempt: task.attempt + 1, notBefore: dueAt.toISOString(), lastError: { code: err.code, message: err.message } },
  };
}
