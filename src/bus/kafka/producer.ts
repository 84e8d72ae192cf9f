import type { Kafka, Producer } from 'kafkajs';
import { PRODUCER_CONFIG, javaCompatiblePartitioner } from './client.ts';

export interface OutgoingMessage {
  key: string;
  /** The record's JSON text; null is a tombstone. */
  value: string | null;
  headers?: Record<string, string> | undefined;
}

export interface TopicMessages {
  topic: string;
  messages: OutgoingMessage[];
}

/**
 * One idempotent kafkajs producer, replaced after any failed send, on the thread that publishes.
 * (It ran in a worker thread of its own until the Produce encoder and the partition grouping made
 * its work cheap: then handing each batch across threads cost the webhook thread as much as the
 * sending did, with more CPU in all and slower answers when the cores are busy. See README.)
 */
export class IdempotentProducer {
  readonly #kafka: Kafka;
  #producer: Producer | undefined;
  /** The current producer once connected; undefined after a failure, so the next send makes a new one. */
  #live: Promise<Producer> | undefined;
  #queue: { topicMessages: TopicMessages[]; resolve: () => void; reject: (e: unknown) => void }[] = [];
  #busy = false;
  #ready = false;
  #closed = false;

  constructor(kafka: Kafka) {
    this.#kafka = kafka;
  }

  /** True once a producer has connected; stays true across replacements until close(). */
  isReady(): boolean {
    return this.#ready;
  }

  async connect(): Promise<void> {
    if (this.#closed) throw new Error('producer closed');
    await this.#connected();
  }

  /**
   * Sends go out one at a time; those that arrive meanwhile are merged into the next. Two
   * sendBatch calls at once on one idempotent producer are unsafe: kafkajs rolls a partition's
   * sequence back when a request times out, a concurrent send can take that sequence while the
   * timed-out request was in fact written, and the broker then acknowledges the second as a
   * duplicate without writing it.
   */
  send(topicMessages: TopicMessages[]): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('producer closed'));
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

  async #sendNow(topicMessages: TopicMessages[]): Promise<void> {
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
    this.#closed = true;
    this.#ready = false;
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
      this.#ready = !this.#closed;
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
function mergeTopics(lists: TopicMessages[][]): TopicMessages[] {
  const byTopic = new Map<string, OutgoingMessage[]>();
  for (const list of lists) {
    for (const { topic, messages } of list) {
      const into = byTopic.get(topic);
      if (into) into.push(...messages);
      else byTopic.set(topic, [...messages]);
    }
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

