// Messages between the Kafka adapter (main thread) and its producer thread. Both sides are our own
// code in one process, so these are plain types rather than a validated boundary.

export interface ThreadMessage {
  key: string;
  /** The record's JSON text; null is a tombstone. */
  value: string | null;
  headers?: Record<string, string> | undefined;
}

export interface ThreadTopicMessages {
  topic: string;
  messages: ThreadMessage[];
}

export type ToProducer =
  | { op: 'connect'; id: number }
  | { op: 'send'; id: number; topicMessages: ThreadTopicMessages[] }
  | { op: 'close' };

export interface ThreadError { name: string; message: string }

export type FromProducer =
  | { op: 'ready' }
  | { op: 'connected'; id: number; error?: ThreadError }
  | { op: 'sent'; id: number; error?: ThreadError }
  | { op: 'log'; level: 'warn' | 'debug'; message: string; extra: Record<string, unknown> }
  | { op: 'closed' };
