// Per-registry request limits: a concurrency semaphore and a requests-per-second token bucket.
import { AsyncLocalStorage } from 'node:async_hooks';
import { sleep } from './retry-policy.ts';

/**
 * Told when a request of the current async context starts and stops queueing for a limit (a slot
 * taken by other requests or downloads, the request rate). A task's stall timer runs its work
 * inside it: time queued behind other work is not silence on the wire.
 */
export const queueWatch = new AsyncLocalStorage<(waiting: boolean) => void>();

async function queued<T>(wait: () => Promise<T>): Promise<T> {
  const report = queueWatch.getStore();
  report?.(true);
  try {
    return await wait();
  } finally {
    report?.(false);
  }
}

export class Semaphore {
  #free: number;
  #waiters: (() => void)[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  /** A slot only if one is free now (nobody waits then); undefined otherwise. */
  tryAcquire(): (() => void) | undefined {
    if (this.#free === 0) return undefined;
    this.#free--;
    return this.#releaser();
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw signal.reason;
    if (this.#free > 0) {
      this.#free--;
    } else {
      await queued(() => new Promise<void>((resolve, reject) => {
        const wake = () => { signal?.removeEventListener('abort', onAbort); resolve(); };
        const onAbort = () => {
          const i = this.#waiters.indexOf(wake);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(signal?.reason);
        };
        if (signal?.aborted) { reject(signal.reason); return; }
        signal?.addEventListener('abort', onAbort, { once: true });
        this.#waiters.push(wake);
      }));
    }
    return this.#releaser();
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next) next(); else this.#free++;
    };
  }
}

/** Token bucket: `rate` requests per second, bursts up to `burst`. */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #last = performance.now();
  #queue: Promise<void> = Promise.resolve();

  constructor(rate: number, burst = Math.max(1, Math.ceil(rate))) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
  }

  /** Resolves when the caller may send; callers are served in order. */
  take(signal?: AbortSignal): Promise<void> {
    const turn = this.#queue.then(async () => {
      const now = performance.now();
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
      this.#last = now;
      if (this.#tokens < 1) {
        await queued(() => sleep(((1 - this.#tokens) / this.#rate) * 1000, signal));
        this.#tokens = 1;
        this.#last = performance.now();
      }
      this.#tokens -= 1;
    });
    this.#queue = turn.catch(() => {});
    return turn;
  }
}

/**
 * Bandwidth cap in bytes per second. Callers account bytes as they send them and wait off any
 * debt, so a 64 KiB piece never waits longer than its own share.
 */
export class ByteRateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #last = performance.now();

  constructor(bytesPerSecond: number) {
    this.#rate = bytesPerSecond;
    this.#burst = Math.max(1, bytesPerSecond / 10);
    this.#tokens = this.#burst;
  }

  async consume(n: number, signal?: AbortSignal): Promise<void> {
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
    this.#tokens -= n;
    if (this.#tokens < 0) await sleep((-this.#tokens / this.#rate) * 1000, signal);
  }
}

/** Harbor-style `speed` (Kbit/s) as bytes per second: Harbor counts 1 Kbit as 1024 bits (lib/iothrottler). */
export const kbpsToBytesPerSecond = (kbps: number) => (kbps * 1024) / 8;
