import { setTimeout as sleep } from 'node:timers/promises';
import { BridgeError, toBridgeError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { backoffMs, retryPolicy } from '../registry/retry-policy.ts';
import { queueWatch } from '../registry/limits.ts';
import type { CopyPool } from './copy-pool.ts';
import type { SourceHandle, TargetHandle } from './endpoints.ts';
import { executeTask, type Outcome } from './execute.ts';
import type { ReplicationTask } from './task.ts';

export interface AttemptOptions {
  /** Tries in this process, the first included. */
  attempts: number;
  /** A try that moves no bytes for this long is abandoned as retryable. */
  stallTimeoutMs: number;
  signal?: AbortSignal;
  logger: Logger;
  pool?: CopyPool;
  onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void;
}

/**
 * Runs a task with bounded in-process retries for transient errors and a stall bound; used by
 * the replicator and by `sync`. Throws the last error (or the abort) for the caller to record.
 */
export async function executeWithRetries(task: ReplicationTask, src: SourceHandle, dst: TargetHandle, o: AttemptOptions): Promise<Outcome> {
  const stalled = () => new BridgeError('HSB_TASK_STALLED', `no progress for ${o.stallTimeoutMs} ms`, { retryable: true });
  for (let i = 0; ; i++) {
    const stall = new AbortController();
    // Time queued in the shared pool (behind other tasks' transfers) or for a registry's request
    // slots and rate is not a stall.
    let waiting = 0;
    const arm = () => setTimeout(() => stall.abort(stalled()), o.stallTimeoutMs);
    let timer: NodeJS.Timeout | undefined = arm();
    const rearm = () => { clearTimeout(timer); timer = waiting > 0 ? undefined : arm(); };
    const signal = o.signal ? AbortSignal.any([o.signal, stall.signal]) : stall.signal;
    try {
      const onWait = (w: boolean) => {
        waiting += w ? 1 : -1;
        rearm();
      };
      // Requests queued for a registry's limits (slots, rate) report through queueWatch.
      return await queueWatch.run(onWait, () => executeTask(task, src, dst, {
        signal,
        logger: o.logger,
        pool: o.pool,
        onProgress: (p) => {
          rearm();
          o.onProgress?.(p);
        },
        onWait,
      }));
    } catch (e) {
      const err = stall.signal.aborted ? (stall.signal.reason as BridgeError) : toBridgeError(e);
      const wait = o.signal?.aborted ? undefined : inProcessWait(err, i, o.attempts);
      if (wait === undefined) throw err;
      o.logger.warn({ code: err.code, err: err.message, try: i + 1, wait }, 'transient failure, retrying in process');
      await sleep(wait, undefined, o.signal ? { signal: o.signal } : undefined).catch(() => undefined);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * How long to wait before try `tried + 1` in this process, or undefined to give the task back to
 * the caller (the retry topic or the DLQ): permanent errors, tries spent, and a registry asking
 * for a pause longer than a worker slot should be held (Retry-After beyond the in-process cap).
 */
export function inProcessWait(err: BridgeError, tried: number, attempts: number, random?: () => number): number | undefined {
  if (!err.retryable || tried + 1 >= attempts) return undefined;
  const retryAfter = Number(err.context.retryAfterMs) || undefined;
  if (retryAfter !== undefined) return retryAfter > retryPolicy.maxRetryAfterMs ? undefined : retryAfter;
  return backoffMs(tried, { ...retryPolicy, baseMs: 500, maxMs: 10_000 }, undefined, random);
}

