// The Kafka producer, in a worker thread of its own. Encoding record batches (produce-encoding.ts),
// writing them and reading the acknowledgements run here, on another core, while the main thread
// reads and answers webhooks. Started by producer-client.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { kafkaClient, type KafkaClientOptions } from './client.ts';
import { ProducerCore } from './producer-core.ts';
import { installProduceEncoding } from './produce-encoding.ts';
import { linearGrouping } from './partition-grouping.ts';
import type { FromProducer, ThreadError, ToProducer } from './producer-protocol.ts';

// Before the first produce: kafkajs loads its Produce request module then.
const fastEncoding = installProduceEncoding();
const port = parentPort!;
const post = (m: FromProducer) => port.postMessage(m);
const kafka = kafkaClient(workerData as KafkaClientOptions, (level, message, extra) => post({ op: 'log', level, message, extra: plain(extra) }));
const core = new ProducerCore(kafka, () => post({ op: 'ready' }));
if (!fastEncoding) post({ op: 'log', level: 'warn', message: 'kafkajs module layout not recognised: Produce requests use kafkajs\' own (slower) encoder', extra: {} });
if (!linearGrouping) post({ op: 'log', level: 'warn', message: 'kafkajs module layout not recognised: records are sorted into partitions by kafkajs\' own (slower) grouping', extra: {} });

port.on('message', (m: ToProducer) => {
  if (m.op === 'connect') {
    core.connect().then(() => post({ op: 'connected', id: m.id }), (e: unknown) => post({ op: 'connected', id: m.id, error: errorOf(e) }));
  } else if (m.op === 'send') {
    core.send(m.topicMessages).then(() => post({ op: 'sent', id: m.id }), (e: unknown) => post({ op: 'sent', id: m.id, error: errorOf(e) }));
  } else if (m.op === 'close') {
    void core.close().finally(() => {
      post({ op: 'closed' });
      port.close();
    });
  }
});

function errorOf(e: unknown): ThreadError {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
}

/** Log fields that survive postMessage (kafkajs puts Errors and buffers in there). */
function plain(extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(extra)) {
    if (v instanceof Error) out[k] = v.message;
    else if (typeof v !== 'object' || v === null) out[k] = typeof v === 'bigint' ? String(v) : v;
    else {
      // A log line must never take the producer down: what cannot be copied is described instead.
      try { out[k] = JSON.parse(JSON.stringify(v)) as unknown; } catch { out[k] = String(v); }
    }
  }
  return out;
}
