// decideFailure: where a task goes after its in-process attempts failed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BridgeError } from '../../../src/errors.ts';
import { decideFailure } from '../../../src/replication/failure.ts';
import { inProcessWait } from '../../../src/replication/attempts.ts';
import { ReplicationTaskSchema } from '../../../src/replication/task.ts';

const task = (attempt = 0) => ReplicationTaskSchema.parse({
  schema: 1, id: 't1', eventId: 'e1', action: 'push', sourceId: 'h', repository: 'lib/app', tag: 'v1',
  targetId: 'swr', destRepository: 'lib/app', policyId: 'p', attempt, occurredAt: '2026-11-22T00:00:00Z', createdAt: '2026-11-22T00:00:00Z',
});
const policy = { maxRetries: 3, retryBaseMs: 1000, retryMaxMs: 60_000 };
const now = new Date('2026-11-23T00:00:00Z');
const half = () => 0.5;

describe('decideFailure', () => {
  it('dead-letters a permanent error at once, and a retryable one once the retries are spent', () => {
    assert.deepEqual(decideFailure(task(), new BridgeError('HSB_REGISTRY_DENIED', 'no'), policy, now), { kind: 'dlq', reason: 'permanent' });
    assert.deepEqual(decideFailure(task(3), new BridgeError('HSB_X', 'x', { retryable: true }), policy, now), { kind: 'dlq', reason: 'exhausted' });
  });

  it('schedules a retry with backoff and records the error', () => {
    const d = decideFailure(task(1), new BridgeError('HSB_REGISTRY_UNAVAILABLE', 'down', { retryable: true }), policy, now, half);
    assert.equal(d.kind, 'retry');
    if (d.kind !== 'retry') return;
    // attempt 1: cap 2 s, equal jitter at 0.5 → 1.5 s
    assert.equal(d.dueAt.getTime() - now.getTime(), 1500);
    assert.equal(d.task.attempt, 2);
    assert.equal(d.task.notBefore, d.dueAt.toISOString());
    assert.deepEqual(d.task.lastError, { code: 'HSB_REGISTRY_UNAVAILABLE', message: 'down' });
  });

  it('is never due sooner than the registry\'s Retry-After, capped at a day', () => {
    const throttled = (ms: number) => new BridgeError('HSB_REGISTRY_THROTTLED', 'slow down', { retryable: true, context: { retryAfterMs: ms } });
    const due = (ms: number) => {
      const d = decideFailure(task(0), throttled(ms), policy, now, half);
      assert.equal(d.kind, 'retry');
      return d.kind === 'retry' ? d.dueAt.getTime() - now.getTime() : NaN;
    };
    assert.equal(due(3_600_000), 3_600_000);
    assert.equal(due(10), 750, 'a short Retry-After does not shorten the backoff');
    assert.equal(due(30 * 24 * 3600_000), 24 * 3600_000);
  });
});

describe('inProcessWait (tries inside one worker slot)', () => {
  const retryable = (context = {}) => new BridgeError('HSB_REGISTRY_UNAVAILABLE', 'x', { retryable: true, context });
  it('waits with backoff, or the Retry-After the registry gave when it fits a worker slot', () => {
    assert.equal(inProcessWait(retryable(), 0, 3, () => 0.5), 375);
    assert.equal(inProcessWait(retryable({ retryAfterMs: 2000 }), 0, 3), 2000);
  });
  it('gives the task back for permanent errors, spent tries and a long Retry-After', () => {
    assert.equal(inProcessWait(new BridgeError('HSB_REGISTRY_DENIED', 'no'), 0, 3), undefined);
    assert.equal(inProcessWait(retryable(), 2, 3), undefined);
    assert.equal(inProcessWait(retryable({ retryAfterMs: 600_000 }), 0, 3), undefined);
  });
});
