import type { Policy } from './model.ts';

/** The live policy table every process keeps, fed from the config and the `policies` topic. */
export class PolicyTable {
  readonly #policies = new Map<string, Policy>();
  #version = 0;

  constructor(initial: readonly Policy[] = []) {
    for (const p of initial) this.#policies.set(p.id, p);
  }

  /** Policies removed (a tombstone seen, live or at start-up), and when this process learnt it. */
  readonly #removed = new Map<string, number>();

  set(id: string, policy: Policy | null): void {
    if (policy) {
      this.#policies.set(id, policy);
      this.#removed.delete(id);
    } else {
      // Also for an id this process never held (a tombstone read at start-up): every task of it
      // was planned before the deletion, whenever this process learnt of it.
      this.#policies.delete(id);
      this.#removed.set(id, Date.now());
    }
    this.#version++;
  }

  /** A removal of a policy this table never held; nothing else changes. */
  markRemoved(id: string): void {
    if (!this.#policies.has(id) && !this.#removed.has(id)) this.#removed.set(id, Date.now());
  }

  /** When this process learnt the policy was removed (epoch ms); undefined when it exists or no removal was seen. */
  removedAt(id: string): number | undefined {
    return this.#removed.get(id);
  }

  get(id: string): Policy | undefined {
    return this.#policies.get(id);
  }

  list(): Policy[] {
    return [...this.#policies.values()];
  }

  /** Increases on every change; lets readers notice updates cheaply. */
  get version(): number {
    return this.#version;
  }
}
