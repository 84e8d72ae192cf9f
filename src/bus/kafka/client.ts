// First: they replace kafkajs modules before kafkajs loads.
import './partition-grouping.ts';
import './request-framing.ts';
import { Kafka, logLevel, type ICustomPartitioner, type ProducerConfig } from 'kafkajs';
import kafkajs from 'kafkajs';
import { murmur2, partitionFor } from '../partition.ts';
import { kafkaSecurityOptions, type KafkaSecurity } from './security.ts';
import { registerSecrets, scrubSecrets } from '../../observability/scrub.ts';

/** kafkajs' resource type for a topic's configs (not a named export Node can see in its CommonJS). */
export const TOPIC_CONFIG_RESOURCE = kafkajs.ConfigResourceTypes.TOPIC;

/** What the Kafka adapter needs to build its kafkajs client. */
export interface KafkaClientOptions {
  brokers: string[];
  clientId: string;
  /** Per-request deadline towards the broker; keep below the webhook deadline. */
  requestTimeoutMs: number;
  /** TLS and SASL (bus.tls, bus.sasl); none: plaintext without a login. */
  security?: KafkaSecurity;
  /** Who reads kafkajs' log (see kafkajsLogLevel); default a daemon. */
  logRole?: KafkaLogRole;
}

/** A kafkajs log entry at WARN or above, handed to whoever owns the logger. */
export type KafkaLogSink = (level: 'warn' | 'debug', message: string, extra: Record<string, unknown>) => void;

/** A long-running process (run, serve, work), or a one-shot command (status, dlq, bus inspect, sync ...). */
export type KafkaLogRole = 'daemon' | 'command';

/**
 * The level a kafkajs entry is logged at. In a daemon its errors are warnings: brokers gone for
 * minutes must show in the log. A one-shot command ends with its own line saying what failed
 * (`bus unavailable: connect to ...`), so kafkajs' connection retries before it, several lines
 * with stack traces each, are debug there. kafkajs' WARN entries are debug for both.
 */
export function kafkajsLogLevel(level: logLevel, role: KafkaLogRole): 'warn' | 'debug' {
  return role === 'daemon' && level <= logLevel.ERROR ? 'warn' : 'debug';
}

export function kafkaClient(opts: KafkaClientOptions, sink: KafkaLogSink): Kafka {
  dropKafkajsTimerWarning();
  // Registered here too, for a client built without loadConfig (tests, tools): kafkajs' log lines
  // are scrubbed with the same rules as every error message.
  if (opts.security?.sasl) registerSecrets([opts.security.sasl.password]);
  return new Kafka({
    clientId: opts.clientId,
    brokers: opts.brokers,
    ...kafkaSecurityOptions(opts.security ?? {}),
    // A TLS handshake and a SASL exchange take a few round trips more than a TCP connect.
    connectionTimeout: opts.security?.tls || opts.security?.sasl ? 3000 : 1000,
    requestTimeout: opts.requestTimeoutMs,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 },
    logLevel: logLevel.WARN,
    logCreator: () => ({ level, log: entry }) => {
      const { message, ...rest } = scrubbed(entry);
      sink(kafkajsLogLevel(level, opts.logRole ?? 'daemon'), message, rest);
    },
  });
}

/** kafkajs does not log the password; should a broker's or a library's message ever echo a credential, it is scrubbed here. */
function scrubbed<T extends object>(entry: T): T {
  try {
    const text = JSON.stringify(entry);
    const clean = scrubSecrets(text);
    return clean === text ? entry : JSON.parse(clean) as T;
  } catch {
    // An extra that JSON cannot carry (a BigInt, a cycle): logged without its extras rather than not at all.
    return { message: (entry as { message?: unknown }).message } as T;
  }
}

/** acks=all is given per send; idempotence keeps retried batches from being written twice. */
export const PRODUCER_CONFIG: ProducerConfig = {
  idempotent: true,
  maxInFlightRequests: 5,
  retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 500 },
};

/**
 * kafkajs' DefaultPartitioner (Java-compatible: keyed records by murmur2 over all partitions, others
 * round-robin over those with a leader), computed with our 32-bit murmur2.
 */
export const javaCompatiblePartitioner: ICustomPartitioner = () => {
  let next = 0;
  return ({ partitionMetadata, message }) => {
    if (message.partition !== undefined && message.partition !== null) return message.partition;
    const key = message.key;
    if (typeof key === 'string') return partitionFor(key, partitionMetadata.length);
    if (key) return (murmur2(key) & 0x7fffffff) % partitionMetadata.length;
    const available = partitionMetadata.filter((p) => p.leader >= 0);
    const pool = available.length > 0 ? available : partitionMetadata;
    return pool[next++ % pool.length]!.partitionId;
  };
};

let warningFilterInstalled = false;

/**
 * kafkajs' request queue arms `setTimeout(check, throttledUntil - Date.now())` with throttledUntil
 * -1 when nothing is throttled; Node 24 clamps that to 1 ms (what kafkajs means) but prints a
 * TimeoutNegativeWarning on every start, which reads like a fault. That one warning is dropped,
 * in the process that builds the client; every other warning still reaches Node's own printer.
 */
export function dropKafkajsTimerWarning(): void {
  if (warningFilterInstalled) return;
  warningFilterInstalled = true;
  const printers = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (w: Error) => {
    if (w.name === 'TimeoutNegativeWarning' && isKafkajsTimer(w.stack)) return;
    for (const print of printers) print.call(process, w);
  });
}

function isKafkajsTimer(stack: string | undefined): boolean {
  return stack !== undefined && /[\\/]kafkajs[\\/]src[\\/]network[\\/]requestQueue[\\/]/.test(stack);
}
