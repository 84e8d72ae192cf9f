import type { Kafka, Producer } from 'kafkajs';
import { PRODUCER_CONFIG, javaCompatiblePartitioner } from './client.ts';
import type { ThreadTopicMessages } from './producer-protocol.ts';

/**
 * One idempotent kafkajs producer, replaced after any failed send. Runs in the producer thread;
 * producer-thread.ts only relays messages to it.
 */
export class ProducerCore {
  readonly #kafka: Kafka;
  readonly #onReady: () => void;
  #producer: Producer | undefined;
  /** The current producer once connected; undefined after a failure, so the next send makes a new one. */
  #live: Promise<Producer> | undefined;
  #queue: { topicMessages: ThreadTopicMessages[]; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #busy = false;

  constructor(kafka: Kafka, onReady: () => void) {
    this.#kafka = kafka;
    this.#onReady = onReady;
  }

  async connect(): Promise<void> {
    await this.#connected();
  }

  /**
   * Sends go out one at a time; those that arrive meanwhile are merged into the next. Two
   * sendBatch calls at once on one idempotent producer are unsafe: kafkajs rolls a partition's
   * sequence back when a request times out, a concurrent send can take that sequence while the
   * timed-out request was in fact written, and the broker then acknowledges the second as a
   * duplicate without writing it.
   */
  send(topicMessages: ThreadTopicMessages[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ topicMessages, resolve, reject });
      void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#queue.length > 0) {
        const waiting = this.#queue.splice(0);
        try {
          await this.#sendNow(mergeTopics(waiting.map((w) => w.topicMessages)));
          for (const w of waiting) w.resolve();
        } catch (e) {
          for (const w of waiting) w.reject(e);
        }
      }
    } finally {
      this.#busy = false;
    }
  }

  async #sendNow(topicMessages: ThreadTopicMessages[]): Promise<void> {
    let used: Producer | undefined;
    try {
      used = await this.#connected();
      await used.sendBatch({ acks: -1, topicMessages });
    } catch (e) {
      if (used) this.#retire(used);
      throw e;
    }
  }

  async close(): Promise<void> {
    const p = this.#producer;
    this.#producer = undefined;
    this.#live = undefined;
    await p?.disconnect().catch(() => undefined);
  }

  #connected(): Promise<Producer> {
    if (this.#live) return this.#live;
    const p = this.#kafka.producer({ ...PRODUCER_CONFIG, createPartitioner: javaCompatiblePartitioner });
    this.#producer = p;
    // Ready once connect() resolved, not on kafkajs' 'producer.connect' event: that fires before the
    // idempotent producer has its producer id, and a send in that window goes out without one.
    const attempt = p.connect().then(() => {
      this.#onReady();
      return p;
    });
    this.#live = attempt;
    attempt.catch(() => this.#retire(p));
    return attempt;
  }

  /**
   * Called after any failed send. kafkajs rolls an idempotent producer's sequence numbers back when
   * a request fails, yet a request that timed out may have been written; the broker would then take
   * the next batch with the same sequence for a duplicate, acknowledge it and drop it. A new producer
   * gets a new producer id, whose sequences start afresh.
   */
  #retire(p: Producer): void {
    if (this.#producer !== p) return;
    this.#live = undefined;
    void p.disconnect().catch(() => undefined);
  }
}

/** One list per topic, messages in arrival order. */
function mergeTopics(lists: ThreadTopicMessages[][]): ThreadTopicMessages[] {
  const byTopic = new Map<string, ThreadTopicMessages['messages']>();
  for (const list of lists) {
    for (const { topic, messages } of list) {
      const into = byTopic.get(topic);
      if (into) into.push(...messages);
      else byTopic.set(topic, [...messages]);
    }
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

