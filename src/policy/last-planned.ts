import type { ArtifactEvent } from '../ingest/event.ts';

/**
 * What an event is about: one reference (tag, else digest) of one repository of one source. Two
 * events about the same reference with the same id are a sender's retry; the same id after a
 * different event is not (Harbor's ids come from occur_at in whole seconds, so push, delete, push
 * within one second repeat the first push's id).
 */
export function eventRef(e: Pick<ArtifactEvent, 'sourceId' | 'repository' | 'tag' | 'digest'>): string {
  return `${e.sourceId}\0${e.repository}\0${e.tag ?? ''}\0${e.tag === undefined ? e.digest ?? '' : ''}`;
}

/** The id of the last event planned for each reference, for the most recently used `limit` references. */
export class LastPlanned {
  readonly #last = new Map<string, string>();
  readonly #limit: number;

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  get(ref: string): string | undefined {
    return this.#last.get(ref);
  }

  set(ref: string, id: string): void {
    // Re-inserted so that Map order is least recently planned first.
    this.#last.delete(ref);
    this.#last.set(ref, id);
    if (this.#last.size > this.#limit) this.#last.delete(this.#last.keys().next().value!);
  }
}
