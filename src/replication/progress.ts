import type { Metrics } from '../observability/metrics.ts';
import type { ReplicationTask } from './task.ts';

export interface InFlight {
  taskId: string;
  policyId: string;
  targetId: string;
  repository: string;
  destRepository: string;
  reference: string;
  attempt: number;
  startedAt: string;
  bytesDone: number;
  bytesTotal: number;
}

/** In-flight tasks and their byte progress, for status and the in-flight gauges. */
export class Progress {
  readonly #tasks = new Map<string, InFlight>();
  readonly #metrics: Metrics;

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }

  begin(task: ReplicationTask): { update(done: number, total: number): void; end(): void } {
    const entry: InFlight = {
      taskId: task.id, policyId: task.policyId, targetId: task.targetId, repository: task.repository,
      destRepository: task.destRepository, reference: task.tag ?? task.digest!, attempt: task.attempt,
      startedAt: new Date().toISOString(), bytesDone: 0, bytesTotal: 0,
    };
    const key = `${task.id}:${task.attempt}`;
    this.#tasks.set(key, entry);
    return {
      update: (done, total) => { entry.bytesDone = done; entry.bytesTotal = total; this.#publish(); },
      end: () => { this.#tasks.delete(key); this.#publish(); },
    };
  }

  list(): InFlight[] {
    return [...this.#tasks.values()].map((t) => ({ ...t }));
  }

  #publish(): void {
    let done = 0;
    let total = 0;
    for (const t of this.#tasks.values()) { done += t.bytesDone; total += t.bytesTotal; }
    this.#metrics.inflightBytes.set({ kind: 'done' }, done);
    this.#metrics.inflightBytes.set({ kind: 'total' }, total);
  }
}
