import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffMs, isRetryableStatus, parseRetryAfter, retryPolicy } from '../../../src/registry/retry-policy.ts';
import { RateLimiter, Semaphore } from '../../../src/registry/limits.ts';

test('Retry-After in seconds or as an HTTP date', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  const now = Date.parse('2025-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now), 10_000);
  assert.equal(parseRetryAfter('Wed, 01 Jan 2024 00:00:10 GMT', now), 0);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(undefined), undefined);
});

test('backoff grows exponentially with jitter, capped, and Retry-After wins', () => {
  const p = { ...retryPolicy, baseMs: 100, maxMs: 1000 };
  assert.equal(backoffMs(0, p, undefined, () => 0), 50);
  assert.equal(backoffMs(0, p, undefined, () => 1), 100);
  assert.equal(backoffMs(3, p, undefined, () => 1), 800);
  assert.equal(backoffMs(10, p, undefined, () => 1), 1000);
  assert.equal(backoffMs(10, p, undefined, () => 0), 500);
  assert.equal(backoffMs(2, p, 7000), 7000);
});

test('only 408, 429 and 5xx (not 501/505) are retried', () => {
  assert.deepEqual([400, 401, 403, 404, 408, 429, 500, 501, 502, 503, 504, 505].filter(isRetryableStatus), [408, 429, 500, 502, 503, 504]);
});

test('Semaphore bounds concurrency and hands slots over in order', async () => {
  const s = new Semaphore(2);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  await Promise.all([0, 1, 2, 3, 4].map(async (i) => {
    const release = await s.acquire();
    running++; peak = Math.max(peak, running); order.push(i);
    await new Promise((r) => setTimeout(r, 5));
    running--; release(); release();
  }));
  assert.equal(peak, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
});

test('Semaphore.tryAcquire takes a slot only when one is free, and its release hands it on', async () => {
  const s = new Semaphore(1);
  const first = s.tryAcquire();
  assert.ok(first);
  assert.equal(s.tryAcquire(), undefined);
  let got = false;
  const waiting = s.acquire().then((release) => { got = true; return release; });
  first();
  first();
  (await waiting)();
  assert.equal(got, true);
  const again = s.tryAcquire();
  assert.ok(again, 'free again once released');
  assert.equal(s.tryAcquire(), undefined, 'a double release does not add a slot');
  again();
});

test('Semaphore waiters can be aborted', async () => {
  const s = new Semaphore(1);
  const hold = await s.acquire();
  const ac = new AbortController();
  const waiting = s.acquire(ac.signal);
  ac.abort(new Error('stop'));
  await assert.rejects(waiting, /stop/);
  hold();
  const again = await s.acquire();
  again();
});

test('RateLimiter spaces requests to the configured rate after the burst', async () => {
  const r = new RateLimiter(50, 1);
  const t0 = performance.now();
  for (let i = 0; i < 6; i++) await r.take();
  const ms = performance.now() - t0;
  assert.ok(ms >= 90, `6 takes at 50/s with burst 1 took ${ms.toFixed(0)} ms`);
});
