// Coalesces publishes made in the same synchronous run (flushed on the microtask queue, so no
// turn of the event loop is lost waiting) into one producer call. Each caller still learns the
// outcome of the send that carried its records.
export class Batcher<T> {
  #pending: { items: T[]; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #scheduled = false;
  readonly #flush: (items: T[]) => Promise<void>;

  constructor(flush: (items: T[]) => Promise<void>) {
    this.#flush = flush;
  }

  add(items: T[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ items, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(() => this.#run());
      }
    });
  }

  #run(): void {
    this.#scheduled = false;
    const waiting = this.#pending;
    this.#pending = [];
    this.#flush(waiting.flatMap((w) => w.items)).then(
      () => waiting.forEach((w) => w.resolve()),
      (e) => waiting.forEach((w) => w.reject(e)),
    );
  }
}
