import type { BatchContext, Bus, BusMessage, ConsumerHandle, OutgoingRecord } from '../bus/port.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { ArtifactEventSchema, type ArtifactEvent } from '../ingest/event.ts';
import { ReplicationTaskSchema, taskKey } from '../replication/task.ts';
import { DeadLetterSchema, unparsableRecordLetter, type DeadLetter } from '../replication/dead-letter.ts';
import { BridgeError, toBridgeError } from '../errors.ts';
import { planTarget, planTasks } from './plan.ts';
import { firstMismatch, hasLabelFilters } from './match.ts';
import type { Policy } from './model.ts';
import { HarborLabels } from './harbor-labels.ts';
import type { PolicyTable } from './table.ts';
import { checked, invalidRecordError, recordIssue } from '../bus/checked.ts';
import { LastPlanned, eventRef } from './last-planned.ts';

export const PLANNER_GROUP = 'planner';

/** How long events wait for a Harbor whose API keeps failing before label-filtered policies skip them. */
export const LABEL_OUTAGE_MS = 5 * 60_000;

/** Consumer of `events`: one task per matching policy onto `tasks`, committed once published. */
export class Planner {
  readonly #bus: Bus;
  readonly #policies: PolicyTable;
  readonly #targets: Map<string, { kind: 'swr' | 'registry'; manifestFormat?: 'preserve' | 'docker' }>;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #lastPlanned = new LastPlanned();
  readonly #labels: HarborLabels;
  readonly #ownLabels: boolean;
  /** Per source: when label reads started failing (cleared by a success). */
  readonly #labelOutage = new Map<string, number>();
  readonly #labelOutageMs: number;
  #handle: ConsumerHandle | undefined;

  constructor(deps: { config: Config; bus: Bus; policies: PolicyTable; metrics: Metrics; logger: Logger; labels?: HarborLabels; labelOutageMs?: number }) {
    this.#bus = deps.bus;
    this.#policies = deps.policies;
    this.#targets = new Map(deps.config.targets.map((t) => [t.id, planTarget(t)]));
    this.#metrics = deps.metrics;
    this.#log = deps.logger.child({ component: 'planner' });
    this.#ownLabels = !deps.labels;
    this.#labels = deps.labels ?? new HarborLabels(deps.config, this.#log);
    this.#labelOutageMs = deps.labelOutageMs ?? LABEL_OUTAGE_MS;
  }

  /** Subscribes once; a call after a failed one tries again. */
  async start(group = PLANNER_GROUP): Promise<void> {
    if (this.#handle) return;
    this.#handle = await this.#bus.subscribe({ group, topics: ['events'], fromBeginning: true }, (batch, ctx) => this.#onBatch(batch, ctx));
  }

  async stop(): Promise<void> {
    await this.#handle?.stop();
    if (this.#ownLabels) await this.#labels.close();
  }

  async #onBatch(batch: BusMessage[], ctx?: BatchContext): Promise<void> {
    const out: OutgoingRecord[] = [];
    const perPolicy = new Map<string, number>();
    const letters: DeadLetter[] = [];
    /** Reference → id of the last event planned in this batch; kept once the batch's records are written. */
    const planned = new Map<string, string>();
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
      // A sender's retry repeats the last event for its reference: planning it again would only
      // repeat a no-op copy. The same id after another event for that reference is a new event.
      const ref = eventRef(event);
      if ((planned.get(ref) ?? this.#lastPlanned.get(ref)) === event.id) continue;
      planned.set(ref, event.id);
      const policies = this.#policies.list();
      const labels = await this.#labelsFor(event, policies, ctx?.signal);
      const { tasks, skipped } = planTasks(event, policies, this.#targets, new Date(), labels);
      for (const s of skipped) this.#log.warn({ event: event.id, policy: s.policyId, reason: s.reason }, 'policy matched but no task planned');
      let lettered = false;
      for (const t of tasks) {
        const key = taskKey(t);
        const issue = recordIssue(ReplicationTaskSchema, t);
        if (issue !== undefined) {
          // A planning bug, not a reason to stall the partition: the event goes to the DLQ as it came.
          if (!lettered) letters.push(unparsableRecordLetter(m, invalidRecordError('tasks', key, issue)));
          lettered = true;
          this.#log.error({ event: event.id, policy: t.policyId, issue }, 'a planned task does not match the task schema; its event is dead-lettered');
          continue;
        }
        out.push({ key, value: t });
        perPolicy.set(t.policyId, (perPolicy.get(t.policyId) ?? 0) + 1);
      }
      this.#log.debug({ event: event.id, tasks: tasks.length }, 'event planned');
    }
    // Revoked meanwhile (slow label reads): the new owner plans these events; publishing too would double the tasks.
    if (ctx?.signal.aborted) throw new BridgeError('HSB_BUS_REBALANCE', 'planner batch given up: the partition moved or the consumer is stopping', { retryable: true });
    if (letters.length) await this.#bus.publish('dlq', checked('dlq', DeadLetterSchema, letters.map((l) => ({ key: l.id, value: l }))));
    if (out.length) await this.#bus.publish('tasks', out);
    // Counted once written: a batch that fails is delivered again and would count its tasks twice.
    for (const [policy, n] of perPolicy) this.#metrics.plannedTasks.inc({ policy }, n);
    for (const [ref, id] of planned) this.#lastPlanned.set(ref, id);
  }

  /**
   * The pushed artifact's labels, read from Harbor only when a policy that could take the event
   * (source, trigger, name and tag filters) has a label filter. While Harbor's API fails in a way
   * that may pass (unreachable, 5xx, 429), the batch fails and the bus delivers it again, for at
   * most `labelOutageMs` per source; after that, and at once for a refusal (credentials, TLS),
   * the labels stay unknown and those policies skip the event with the reason logged.
   */
  async #labelsFor(event: ArtifactEvent, policies: readonly Policy[], signal: AbortSignal | undefined): Promise<string[] | undefined> {
    if (event.action !== 'push') return undefined;
    const ref = { repository: event.repository, tags: event.tag !== undefined ? [event.tag] : [] };
    const wanted = policies.some((p) => p.src_registry === event.sourceId && p.enabled && p.trigger.type === 'event_based' && hasLabelFilters(p)
      && firstMismatch({ filters: p.filters.filter((f) => f.type !== 'label') }, ref) === undefined);
    if (!wanted) return undefined;
    const source = this.#labels.forSource(event.sourceId);
    const reference = event.tag ?? event.digest;
    if (!source || reference === undefined) return undefined;
    try {
      // An artifact already gone has no labels; its task finds nothing at the source and skips.
      const labels = (await source.of(event.repository, reference, signal)) ?? [];
      this.#labelOutage.delete(event.sourceId);
      return labels;
    } catch (e) {
      const err = toBridgeError(e);
      if (signal?.aborted) throw err;
      const since = this.#labelOutage.get(event.sourceId) ?? Date.now();
      this.#labelOutage.set(event.sourceId, since);
      if (err.retryable && Date.now() - since < this.#labelOutageMs) {
        this.#log.warn({ event: event.id, source: event.sourceId, code: err.code, err: err.message }, 'cannot read the artifact\'s labels from Harbor yet; the events wait');
        throw err;
      }
      this.#log.error({ event: event.id, source: event.sourceId, code: err.code, err: err.message }, 'cannot read the artifact\'s labels from Harbor; policies with label filters skip this event');
      return undefined;
    }
  }
}
