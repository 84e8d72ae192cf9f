import type { Policy } from './model.ts';

/** The live policy table every process keeps, fed from the config and the `policies` topic. */
export class PolicyTable {
  readonly #policies = new Map<string, Policy>();
  #version = 0;

  constructor(initial: readonly Policy[] = []) {
    for (const p of initial) this.#policies.set(p.id, p);
  }

  set(id: string, policy: Policy | null): void {
    if (policy) this.#policies.set(id, policy);
    else this.#policies.delete(id);
    this.#version++;
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
