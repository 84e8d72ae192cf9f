import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nextRun, parseCron, replicationCronError } from '../../../src/policy/cron.ts';
import { BridgeError } from '../../../src/errors.ts';

const at = (iso: string) => new Date(iso);
const next = (expr: string, after: string) => nextRun(parseCron(expr), at(after)).toISOString();

describe('parseCron', () => {
  it('parses lists, ranges, steps, ? and names', () => {
    const s = parseCron('0 */15 9-17 ? JAN,mar-May MON-FRI');
    assert.deepEqual([...s.second], [0]);
    assert.deepEqual([...s.minute], [0, 15, 30, 45]);
    assert.deepEqual([...s.hour], [9, 10, 11, 12, 13, 14, 15, 16, 17]);
    assert.deepEqual([...s.month].sort((a, b) => a - b), [1, 3, 4, 5]);
    assert.deepEqual([...s.dayOfWeek], [1, 2, 3, 4, 5]);
    assert.equal(s.dayStar, true);
  });
  it('n/step runs to the field maximum; a-b/step steps through the range', () => {
    assert.deepEqual([...parseCron('10/20 * * * * *').second], [10, 30, 50]);
    assert.deepEqual([...parseCron('0 0 0-10/5 * * *').hour], [0, 5, 10]);
  });
  const bad: [string, RegExp][] = [
    ['* * * * *', /expected 6 fields.*got 5/],
    ['* * * * * * *', /got 7/],
    ['', /got 0/],
    ['60 * * * * *', /seconds field "60": 60 is outside 0-59/],
    ['0 0 24 * * *', /hours field/],
    ['0 0 0 0 * *', /day of month field/],
    ['0 0 0 * 13 *', /month field/],
    ['0 0 0 * * 7', /day of week field/],
    ['0 0 0 * FOO *', /not a number or name/],
    ['0 */0 * * * *', /step/],
    ['0 5-1 * * * *', /range start 5 is after its end 1/],
    ['0 1-2-3 * * * *', /malformed range/],
    ['0 a * * * *', /not a number/],
    ['0 1,,2 * * * *', /malformed/],
  ];
  for (const [expr, why] of bad) it(`rejects ${JSON.stringify(expr)}`, () => {
    assert.throws(() => parseCron(expr), (e: unknown) => e instanceof BridgeError && e.code === 'HSB_POLICY_CRON_INVALID' && !e.retryable && why.test(e.message));
  });
});

describe('nextRun (UTC)', () => {
  it('every 5 seconds', () => {
    assert.equal(next('*/5 * * * * *', '2024-03-10T12:00:00.000Z'), '2024-03-10T12:00:05.000Z');
    assert.equal(next('*/5 * * * * *', '2024-03-10T12:00:03.400Z'), '2024-03-10T12:00:05.000Z');
    assert.equal(next('*/5 * * * * *', '2024-03-10T12:59:58.000Z'), '2024-03-10T13:00:00.000Z');
  });
  it('is strictly after the given time', () => {
    assert.equal(next('0 0 * * * *', '2024-03-10T12:00:00.000Z'), '2024-03-10T13:00:00.000Z');
    assert.equal(next('0 0 * * * *', '2024-03-10T11:59:59.999Z'), '2024-03-10T12:00:00.000Z');
  });
  it('daily and hourly ranges roll over days, months and years', () => {
    assert.equal(next('0 30 2 * * *', '2024-12-31T03:00:00Z'), '2025-01-01T02:30:00.000Z');
    assert.equal(next('0 0 9-17 * * *', '2024-03-10T17:30:00Z'), '2024-03-11T09:00:00.000Z');
    assert.equal(next('0 0 0 1 * *', '2024-01-15T00:00:00Z'), '2024-02-01T00:00:00.000Z');
  });
  it('weekdays (2024-03-10 is a Sunday)', () => {
    assert.equal(next('0 0 8 * * MON-FRI', '2024-03-09T10:00:00Z'), '2024-03-11T08:00:00.000Z');
    assert.equal(next('0 0 8 ? * SUN', '2024-03-09T10:00:00Z'), '2024-03-10T08:00:00.000Z');
  });
  it('day of month OR day of week when both are restricted (robfig)', () => {
    // The 15th or any Monday: from Sunday 2024-03-10, Monday the 11th comes first.
    assert.equal(next('0 0 0 15 * MON', '2024-03-10T12:00:00Z'), '2024-03-11T00:00:00.000Z');
    assert.equal(next('0 0 0 15 * MON', '2024-03-11T12:00:00Z'), '2024-03-15T00:00:00.000Z');
  });
  it('leap days', () => {
    assert.equal(next('0 0 0 29 2 *', '2024-03-01T00:00:00Z'), '2028-02-29T00:00:00.000Z');
  });
  it('an expression that never fires is an error', () => {
    assert.throws(() => nextRun(parseCron('0 0 0 31 2 *'), at('2024-01-01T00:00:00Z')), (e: unknown) =>
      e instanceof BridgeError && e.code === 'HSB_POLICY_CRON_INVALID' && /never fires/.test(e.message));
  });
});

describe('replicationCronError (Harbor policy rules)', () => {
  it('accepts hourly and daily schedules', () => {
    assert.equal(replicationCronError('0 0 * * * *'), undefined);
    assert.equal(replicationCronError('0 */5 * * * *'), undefined);
  });
  it('requires seconds 0 and a non-* minutes field', () => {
    assert.match(replicationCronError('* * * * * *') ?? '', /seconds field must be 0/);
    assert.match(replicationCronError('*/5 0 * * * *') ?? '', /seconds field must be 0/);
    assert.match(replicationCronError('0 * * * * *') ?? '', /minutes field must not be "\*"/);
    // Harbor refuses the literal "*" only; "?" (every minute as well) passes its check.
    assert.equal(replicationCronError('0 ? * * * *'), undefined);
    assert.match(replicationCronError('* * *') ?? '', /expected 6 fields/);
    assert.match(replicationCronError('0 0 0 31 2 *') ?? '', /never fires/);
  });
});
