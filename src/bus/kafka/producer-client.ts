import { Worker } from 'node:worker_threads';
import type { Logger } from '../../observability/logger.ts';
import type { KafkaClientOptions } from './client.ts';
import type { FromProducer, ThreadError, ThreadTopicMessages, ToProducer } from './producer-protocol.ts';

const CLOSE_TIMEOUT_MS = 5000;

interface Waiter { resolve: () => void; reject: (e: Error) => void }

/**
 * The main thread's handle on the producer thread (producer-thread.ts). Each call resolves when
 * the thread reports the broker's acknowledgement, or rejects with the thread's error. A thread
 * that dies fails what it was carrying and is replaced on the next call, like a producer that
 * failed a send. The thread keeps the process alive only while a call is in flight.
 */
export class ThreadProducer {
  readonly #opts: KafkaClientOptions;
  readonly #log: Logger;
  readonly #pending = new Map<number, Waiter>();
  #worker: Worker | undefined;
  #nextId = 1;
  #ready = false;
  #closed = false;

  constructor(opts: KafkaClientOptions, log: Logger) {
    this.#opts = opts;
    this.#log = log;
  }

  /** True once a producer has connected; stays true across replacements until close(). */
  isReady(): boolean {
    return this.#ready;
  }

  connect(): Promise<void> {
    return this.#call((id) => ({ op: 'connect', id }));
  }

  send(topicMessages: ThreadTopicMessages[]): Promise<void> {
    return this.#call((id) => ({ op: 'send', id, topicMessages }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#ready = false;
    const worker = this.#worker;
    if (!worker) return;
    worker.ref();
    const closed = new Promise<void>((resolve) => {
      worker.on('message', (m: FromProducer) => { if (m.op === 'closed') resolve(); });
      worker.once('exit', () => resolve());
    });
    worker.postMessage({ op: 'close' } satisfies ToProducer);
    const timer = setTimeout(() => void worker.terminate(), CLOSE_TIMEOUT_MS);
    await closed;
    clearTimeout(timer);
    await worker.terminate();
  }

  #call(make: (id: number) => ToProducer): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('producer closed'));
    const worker = this.#worker ?? this.#spawn();
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      if (this.#pending.size === 0) worker.ref();
      this.#pending.set(id, { resolve, reject });
      worker.postMessage(make(id));
    });
  }

  #settle(id: number, error: ThreadError | undefined): void {
    const w = this.#pending.get(id);
    if (!w) return;
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker?.unref();
    if (error === undefined) w.resolve();
    else w.reject(Object.assign(new Error(error.message), { name: error.name }));
  }

  #spawn(): Worker {
    // No inherited execArgv: a parent run with `-e` or `--input-type` would hand the thread flags that
    // only make sense for string input, and it would fail to start.
    const worker = new Worker(new URL('./producer-thread.ts', import.meta.url), { workerData: this.#opts, execArgv: [] });
    this.#worker = worker;
    worker.unref();
    worker.on('message', (m: FromProducer) => {
      switch (m.op) {
        case 'ready': this.#ready = !this.#closed; break;
        case 'connected': case 'sent': this.#settle(m.id, m.error); break;
        case 'log': this.#log[m.level]({ kafkajs: m.extra }, m.message); break;
        case 'closed': break;
      }
    });
    worker.on('error', (e) => this.#log.error({ err: e.message }, 'Kafka producer thread failed'));
    worker.once('exit', (code) => {
      if (this.#worker === worker) this.#worker = undefined;
      if (!this.#closed) this.#log.warn({ code }, 'Kafka producer thread exited; the next publish starts a new one');
      for (const id of [...this.#pending.keys()]) this.#settle(id, { name: 'KafkaJSConnectionError', message: `producer thread exited (${code})` });
    });
    return worker;
  }
}
