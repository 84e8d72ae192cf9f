// One piece of work per key at a time, shared by every caller that asks meanwhile (a token fetch,
// an SWR organisation check). The work runs without any one caller's AbortSignal, so a caller
// that gives up (its task stalled or stopped) never fails the others; each gives up on its own.
export class SharedFlight<T> {
  readonly #running = new Map<string, Promise<T>>();

  run(key: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    let p = this.#running.get(key);
    if (!p) {
      p = work().finally(() => this.#running.delete(key));
      p.catch(() => undefined); // callers that gave up leave nobody else to observe a failure
      this.#running.set(key, p);
    }
    return signal ? untilAborted(p, signal) : p;
  }
}

/** `p`, or the signal's reason once it aborts (p itself carries on for its other waiters). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
