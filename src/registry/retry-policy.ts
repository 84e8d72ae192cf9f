// Retry defaults in one place, and the pure decisions: which statuses are worth a retry, how
// long to wait (exponential backoff with jitter, or the registry's Retry-After).
export interface RetryPolicy {
  /** Total tries per request, the first included. */
  attempts: number;
  baseMs: number;
  maxMs: number;
  /** A Retry-After longer than this is not waited for in-process; the error carries it instead. */
  maxRetryAfterMs: number;
}

export const retryPolicy: RetryPolicy = { attempts: 5, baseMs: 200, maxMs: 10_000, maxRetryAfterMs: 60_000 };

export const isRetryableStatus = (status: number) => status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** Delay before try number `attempt + 1` (attempt counts from 0): equal jitter on 2^attempt. */
export function backoffMs(attempt: number, policy: RetryPolicy, retryAfterMs?: number, random = Math.random): number {
  if (retryAfterMs !== undefined) return retryAfterMs;
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
  return Math.round(cap / 2 + random() * (cap / 2));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal?.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
