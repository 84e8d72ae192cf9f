import type { BridgeError } from '../errors.ts';
import { backoffMs, retryPolicy } from '../registry/retry-policy.ts';
import type { ReplicationTask } from './task.ts';

export interface RetryPolicy {
  maxRetries: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

export type FailureDecision =
  | { kind: 'retry'; task: ReplicationTask; dueAt: Date }
  | { kind: 'dlq'; reason: 'permanent' | 'exhausted' };

/** What to do with a task whose in-process attempts failed. Pure: the caller does the I/O. */
export function decideFailure(task: ReplicationTask, err: BridgeError, policy: RetryPolicy, now: Date, random?: () => number): FailureDecision {
  if (!err.retryable) return { kind: 'dlq', reason: 'permanent' };
  if (task.attempt >= policy.maxRetries) return { kind: 'dlq', reason: 'exhausted' };
  const dueAt = new Date(now.getTime() + backoffMs(task.attempt, { ...retryPolicy, baseMs: policy.retryBaseMs, maxMs: policy.retryMaxMs }, undefined, random));
  return {
    kind: 'retry',
    dueAt,
    task: { ...task, attempt: task.attempt + 1, notBefore: dueAt.toISOString(), lastError: { code: err.code, message: err.message } },
  };
}
