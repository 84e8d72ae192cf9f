import type { Policy } from './model.ts';

/** The live policy table every process keeps, fed from the config and the `policies` topic. */
export class PolicyTable {
  readonly #policies = new Map<string, Policy>();
  #version = 0;

  constructor(initial: readonly Policy[] = []) {
    for (const p of initial) this.#policies.set(p.id, p);
  }

  /** Policies this process saw removed, and when (a task planned before may be dropped). */
  readonly #removed = new Map<string, number>();

  set(id: string, policy: Policy | null): void {
    if (policy) {
      this.#policies.set(id, policy);
      this.#removed.delete(id);
    } else if (this.#policies.delete(id)) {
      this.#removed.set(id, Date.now());
    }
    this.#version++;
  }

  /** When this process saw the policy removed (epoch ms); undefined when it exists or was never seen removed. */
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
