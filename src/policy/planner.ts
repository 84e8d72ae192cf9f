import type { Bus, BusMessage, ConsumerHandle, OutgoingRecord } from '../bus/port.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { ArtifactEventSchema } from '../ingest/event.ts';
import { taskKey } from '../replication/task.ts';
import { unparsableRecordLetter, type DeadLetter } from '../replication/dead-letter.ts';
import { BridgeError } from '../errors.ts';
import { planTasks } from './plan.ts';
import type { PolicyTable } from './table.ts';

export const PLANNER_GROUP = 'planner';

/** Consumer of `events`: one task per matching policy onto `tasks`, committed once published. */
export class Planner {
  readonly #bus: Bus;
  readonly #policies: PolicyTable;
  readonly #targets: Map<string, { kind: 'swr' | 'registry'; manifestFormat?: 'preserve' | 'docker' }>;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #recent = new Set<string>();
  #handle: ConsumerHandle | undefined;

  constructor(deps: { config: Config; bus: Bus; policies: PolicyTable; metrics: Metrics; logger: Logger }) {
    this.#bus = deps.bus;
    this.#policies = deps.policies;
    this.#targets = new Map(deps.config.targets.map((t) => [t.id, { kind: t.kind, manifestFormat: t.manifestFormat }]));
    this.#metrics = deps.metrics;
    this.#log = deps.logger.child({ component: 'planner' });
  }

  async start(group = PLANNER_GROUP): Promise<void> {
    this.#handle = await this.#bus.subscribe({ group, topics: ['events'], fromBeginning: true }, (batch) => this.#onBatch(batch));
  }

  async stop(): Promise<void> {
    await this.#handle?.stop();
  }

  async #onBatch(batch: BusMessage[]): Promise<void> {
    const out: OutgoingRecord[] = [];
    const letters: DeadLetter[] = [];
    const seen: string[] = [];
    for (const m of batch) {
      const parsed = ArtifactEventSchema.safeParse(m.value);
      if (!parsed.success) {
        // Kept on the DLQ (with its position) rather than dropped: a producer on another schema
        // version, say, and the operator can see what it sent.
        const err = new BridgeError('HSB_EVENT_INVALID', `invalid event record: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ').slice(0, 1000)}`);
        letters.push(unparsableRecordLetter(m, err));
        this.#log.error({ topic: m.topic, partition: m.partition, offset: m.offset, issues: parsed.error.issues }, 'an event record does not match the event schema; dead-lettered');
        continue;
      }
      const event = parsed.data;
      // Harbor retries resend the same event; the id makes the copy a no-op to drop here.
      if (this.#recent.has(event.id)) continue;
      seen.push(event.id);
      const { tasks, skipped } = planTasks(event, this.#policies.list(), this.#targets, new Date());
      for (const s of skipped) this.#log.warn({ event: event.id, policy: s.policyId, reason: s.reason }, 'policy matched but no task planned');
      for (const t of tasks) {
        out.push({ key: taskKey(t), value: t });
        this.#metrics.plannedTasks.inc({ policy: t.policyId });
      }
      this.#log.debug({ event: event.id, tasks: tasks.length }, 'event planned');
    }
    if (letters.length) await this.#bus.publish('dlq', letters.map((l) => ({ key: l.id, value: l })));
    if (out.length) await this.#bus.publish('tasks', out);
    for (const id of seen) this.#remember(id);
  }

  #remember(id: string): void {
    this.#recent.add(id);
    if (this.#recent.size > 10000) this.#recent.delete(this.#recent.values().next().value!);
  }
}
