import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SharedFlight } from '../../../src/registry/shared-flight.ts';

test('one run per key; a caller that gives up does not fail the others; the next ask starts afresh', async () => {
  const f = new SharedFlight<string>();
  let runs = 0;
  let release!: (v: string) => void;
  const work = () => { runs++; return new Promise<string>((r) => { release = r; }); };
  const quitter = new AbortController();
  const a = f.run('k', work, quitter.signal);
  const b = f.run('k', work, new AbortController().signal);
  const c = f.run('k', work);
  quitter.abort(new Error('task stalled'));
  await assert.rejects(a, /task stalled/);
  release('v1');
  assert.deepEqual(await Promise.all([b, c]), ['v1', 'v1']);
  assert.equal(runs, 1);
  const d = f.run('k', work);
  release('v2');
  assert.equal(await d, 'v2');
  assert.equal(runs, 2);
});

test('a failure reaches every waiter, and an already aborted signal rejects at once', async () => {
  const f = new SharedFlight<string>();
  const boom = f.run('k', async () => { throw new Error('boom'); });
  const also = f.run('k', async () => 'never');
  await assert.rejects(boom, /boom/);
  await assert.rejects(also, /boom/);
  const gone = AbortSignal.abort(new Error('already stopped'));
  await assert.rejects(f.run('x', async () => 'v', gone), /already stopped/);
});
