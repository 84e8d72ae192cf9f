import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../../..');

// A fresh Node 24 process, so that Node's own warning printer is in place as it is in the bridge.
function stderrOf(script: string): string {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr;
}

const QUEUE = `
import { createRequire } from 'node:module';
const RequestQueue = createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js');
const logger = { debug() {}, info() {}, warn() {}, error() {} };
const queue = new RequestQueue({ instrumentationEmitter: null, maxInFlightRequests: 1, requestTimeout: 1000, enforceRequestTimeout: true, clientId: 't', broker: 'b', logger });
queue.scheduleCheckPendingRequests();
setTimeout(() => clearTimeout(queue.throttleCheckTimeoutId), 20);
`;

test('kafkajs request queue prints TimeoutNegativeWarning on Node 24 without the filter (the reason for it)', () => {
  assert.match(stderrOf(QUEUE), /TimeoutNegativeWarning/);
});

// Node prints TimeoutNegativeWarning once per process, so each case runs in a process of its own.
const CLIENT = `
import { kafkaClient } from './src/bus/kafka/client.ts';
kafkaClient({ brokers: ['127.0.0.1:1'], clientId: 't', requestTimeoutMs: 1000 }, () => {});
`;

test('a built Kafka client drops the request queue\'s warning', () => {
  const out = stderrOf(`${CLIENT}\n${QUEUE}\nprocess.emitWarning('something else', 'DeprecationWarning');`);
  assert.doesNotMatch(out, /TimeoutNegativeWarning/);
  assert.match(out, /DeprecationWarning: something else/);
});

test('...and still reports a negative timer of any other code', () => {
  const out = stderrOf(`${CLIENT}\nsetTimeout(() => {}, -5);`);
  assert.match(out, /TimeoutNegativeWarning: -5 is a negative number/);
});
