// Open-loop load at a fixed rate, evenly spaced, as Harbor's job service sends webhooks: request i
// is due at start + i/rate whatever happened to earlier ones, and its latency is measured from
// that due time (so a stalled server cannot hide behind a stalled generator). autocannon's own
// fixed-rate mode fires each second's quota in a burst at the start of the second instead.
// Usage: pace.ts <url> <seconds> <rate> <connections>; prints one JSON line (same shape as drive.ts)
// for the <seconds> measured after one unmeasured second.
import { Pool } from 'undici';
import { harborPushPayloads } from './payloads.ts';

const [url, seconds = '10', rate = '1000', connections = '32'] = process.argv.slice(2);
if (!url) throw new Error('usage: pace.ts <url> <seconds> <rate> <connections>');
const target = new URL(url);
const secret = process.env.BENCH_SECRET ?? '';
const payloads = harborPushPayloads(4096, process.env.BENCH_SEED ?? `pace-${Date.now()}`);
const pool = new Pool(target.origin, { connections: Number(connections), pipelining: 1, keepAliveTimeout: 60000 });

const perMs = Number(rate) / 1000;
// One more second first, not measured: connections open and the servers settle into the rate.
const warmup = Math.round(Number(rate));
const total = warmup + Math.round(Number(seconds) * Number(rate));
const latencies: number[] = [];
let ok = 0;
let non2xx = 0;
let errors = 0;
let sent = 0;
let done = 0;

let measuredFrom = 0;
const finished = new Promise<void>((resolve) => {
  const start = performance.now();
  measuredFrom = start + warmup / perMs;
  const send = (i: number) => {
    const due = start + i / perMs;
    pool.request({
      path: target.pathname, method: 'POST', body: payloads[i % payloads.length]!.body,
      headers: { 'content-type': 'application/json', authorization: secret },
    }).then(async (res) => {
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) {
        if (i >= warmup) ok++;
        if (i >= warmup) latencies.push(performance.now() - due);
      } else {
        non2xx++;
      }
    }, () => { errors++; }).finally(() => {
      if (++done === total) resolve();
    });
  };
  const tick = () => {
    const due = Math.min(total, Math.floor((performance.now() - start) * perMs) + 1);
    while (sent < due) send(sent++);
    if (sent < total) setTimeout(tick, 1);
  };
  tick();
});
await finished;
// From the due time of the first measured request to the last answer.
const elapsed = (performance.now() - measuredFrom) / 1000;
await pool.close();
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies.length ? Number(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!.toFixed(1)) : 0;
process.stdout.write(`${JSON.stringify({
  ok, non2xx, errors, timeouts: 0, seconds: elapsed, perSecond: ok / elapsed, p50: pct(0.5), p99: pct(0.99), max: pct(1),
})}\n`);
