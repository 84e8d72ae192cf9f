// Every request of a task takes the task's signal: a source that accepts connections and never
// answers must not hold a worker slot past a shutdown (or a stall timeout) for the transport's
// retries of its headers timeout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { RegistryClient } from '../../../src/registry/client.ts';
import { executeWithRetries } from '../../../src/replication/attempts.ts';
import { ReplicationTaskSchema } from '../../../src/replication/task.ts';
import { silentLogger } from '../../../src/observability/logger.ts';

let server: Server;
let url = '';
before(async () => {
  server = createServer(() => { /* never answers */ });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

test('a source that never answers the first HEAD is let go when the task is aborted', async () => {
  // A 5 s headers timeout, retried by the transport: without the signal the task would hold on for far longer.
  const dispatcher = new Agent({ headersTimeout: 5000, bodyTimeout: 5000 });
  const src = new RegistryClient({ url }, { dispatcher, retry: { baseMs: 10, maxMs: 20 } });
  const dst = new RegistryClient({ url: 'http://127.0.0.1:9' });
  const now = new Date().toISOString();
  const task = ReplicationTaskSchema.parse({ schema: 1, id: 't', eventId: 'e', action: 'push', sourceId: 's', repository: 'a/b', tag: 'v1', targetId: 'd', destRepository: 'a/b', policyId: 'p', occurredAt: now, createdAt: now });
  const ac = new AbortController();
  const stop = setTimeout(() => ac.abort(new Error('shutdown')), 300);
  const started = Date.now();
  try {
    const err = await executeWithRetries(task, { id: 's', client: src },
      { id: 'd', kind: 'registry', client: dst, manifestFormat: 'preserve', prepare: async () => undefined, deleteTag: async () => false, close: async () => undefined },
      { attempts: 1, stallTimeoutMs: 60_000, signal: ac.signal, logger: silentLogger }).then(() => undefined, (e: { code?: string }) => e);
    assert.ok(err, 'the task fails');
    assert.ok(Date.now() - started < 4000, `let go after ${Date.now() - started} ms, before the headers timeout`);
  } finally {
    clearTimeout(stop);
    await Promise.all([src.close(), dst.close(), dispatcher.close()]);
  }
});
