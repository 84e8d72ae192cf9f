// The load generator, run in its own process: autocannon against one URL with Harbor payloads.
// Usage: drive.ts <url> <seconds> <rate|max> <connections>; prints one JSON line of results.
import autocannon from 'autocannon';
import { harborPushPayloads } from './payloads.ts';

const [url, seconds = '10', rate = 'max', connections = '64'] = process.argv.slice(2);
if (!url) throw new Error('usage: drive.ts <url> <seconds> <rate|max> <connections>');
const secret = process.env.BENCH_SECRET ?? '';
const payloads = harborPushPayloads(4096, process.env.BENCH_SEED ?? String(Date.now()));
let next = 0;

const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  ...(rate === 'max' ? {} : { overallRate: Number(rate) }),
  // One request definition whose body is drawn in turn from the payloads, shared across connections.
  requests: [{
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: secret },
    setupRequest: (req: Record<string, unknown>) => ({ ...req, body: payloads[next++ % payloads.length]!.body }),
  }],
});
process.stdout.write(`${JSON.stringify({
  ok: result['2xx'],
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts,
  seconds: result.duration,
  perSecond: result['2xx'] / result.duration,
  p50: result.latency.p50,
  p99: result.latency.p99,
  max: result.latency.max,
})}\n`);
