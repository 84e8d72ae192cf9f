import { describe, it, mock, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { PolicySchema, type Policy, type PolicyInput } from '../../../src/policy/model.ts';
import { PolicyTable } from '../../../src/policy/table.ts';
import { dueFires, PolicyScheduler } from '../../../src/policy/scheduler.ts';
import { silentLogger } from '../../../src/observability/logger.ts';

const T = (iso: string) => new Date(iso);

function policy(id: string, cron: string | undefined, extra: Partial<PolicyInput> = {}): Policy {
  return PolicySchema.parse({
    id, src_registry: 's', dest_registry: 't',
    trigger: cron === undefined ? { type: 'event_based' } : { type: 'scheduled', trigger_settings: { cron } },
    ...extra,
  });
}

const hourly = policy('hourly', '0 0 * * * *');
const nightly = policy('nightly', '0 30 2 * * *');

describe('dueFires', () => {
  it('does not fire a policy seen for the first time; it starts counting from now', () => {
    const now = T('2024-05-01T10:59:59Z');
    const r = dueFires([hourly], new Map(), now);
    assert.deepEqual(r.due, []);
    assert.deepEqual(r.lastRun, new Map([['hourly', now]]));
    assert.deepEqual(r.next, T('2024-05-01T11:00:00Z'));
  });

  it('fires once the next slot after the last run has passed, reporting that slot', () => {
    const r = dueFires([hourly], new Map([['hourly', T('2024-05-01T10:59:59Z')]]), T('2024-05-01T11:00:00.300Z'));
    assert.deepEqual(r.due.map((f) => [f.policy.id, f.at.toISOString()]), [['hourly', '2024-05-01T11:00:00.000Z']]);
    assert.deepEqual(r.lastRun.get('hourly'), T('2024-05-01T11:00:00.300Z'));
    assert.deepEqual(r.next, T('2024-05-01T12:00:00Z'));
  });

  it('is not due before the slot, and keeps the last run', () => {
    const last = T('2024-05-01T10:00:00Z');
    const r = dueFires([hourly], new Map([['hourly', last]]), T('2024-05-01T10:59:59.999Z'));
    assert.deepEqual(r.due, []);
    assert.equal(r.lastRun.get('hourly'), last);
  });

  it('coalesces missed slots into one fire at the latest of them', () => {
    const r = dueFires([hourly], new Map([['hourly', T('2024-05-01T03:10:00Z')]]), T('2024-05-01T09:20:00Z'));
    assert.equal(r.due.length, 1);
    assert.equal(r.due[0]!.at.toISOString(), '2024-05-01T09:00:00.000Z');
  });

  it('ignores event-based and disabled policies, and forgets them', () => {
    const off = policy('off', '0 0 * * * *', { enabled: false });
    const ev = policy('ev', undefined);
    const r = dueFires([off, ev], new Map([['off', T('2024-01-01T00:00:00Z')], ['ev', T('2024-01-01T00:00:00Z')]]), T('2024-05-01T00:00:00Z'));
    assert.deepEqual(r.due, []);
    assert.equal(r.lastRun.size, 0);
    assert.equal(r.next, undefined);
  });

  it('reports the earliest next slot over several policies (UTC)', () => {
    const now = T('2024-05-01T02:10:00Z');
    const r = dueFires([hourly, nightly], new Map([['hourly', now], ['nightly', now]]), now);
    assert.deepEqual(r.next, T('2024-05-01T02:30:00Z'));
  });
});

describe('PolicyScheduler', () => {
  afterEach(() => mock.timers.reset());

  it('fires on the cron, re-arms when the table changes, and stops', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.parse('2024-05-01T10:59:00Z') });
    const table = new PolicyTable([hourly]);
    const fired: string[] = [];
    const s = new PolicyScheduler({ table, logger: silentLogger, onFire: async (p, at) => { fired.push(`${p.id}@${at.toISOString()}`); } });
    s.start();
    assert.deepEqual(s.nextFire, T('2024-05-01T11:00:00Z'));

    await advance(61);
    assert.deepEqual(fired, ['hourly@2024-05-01T11:00:00.000Z']);

    // A new scheduled policy appears through the table (as the PolicyStore applies it).
    table.set('quarter', policy('quarter', '0 */15 * * * *'));
    await advance(15 * 60);
    assert.deepEqual(fired, ['hourly@2024-05-01T11:00:00.000Z', 'quarter@2024-05-01T11:15:00.000Z']);

    // Disabling it stops it; changing hourly's cron restarts its count.
    table.set('quarter', policy('quarter', '0 */15 * * * *', { enabled: false }));
    table.set('hourly', policy('hourly', '0 20 * * * *'));
    await advance(20 * 60);
    assert.deepEqual(fired.slice(2), ['hourly@2024-05-01T11:20:00.000Z']);

    await s.stop();
    await advance(3600);
    assert.equal(fired.length, 3);
  });

  it('skips a slot while the previous run of the same policy is still going, and survives a failing onFire', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.parse('2024-05-01T10:59:00Z') });
    const table = new PolicyTable([policy('every-minute', '0 */1 * * * *'), policy('boom', '0 */1 * * * *')]);
    let release!: () => void;
    const calls: string[] = [];
    const s = new PolicyScheduler({
      table, logger: silentLogger,
      // Failed runs are tried again (next test); not within these minutes.
      retryDelayMs: () => 3600_000,
      onFire: (p) => {
        calls.push(p.id);
        if (p.id === 'boom') throw new Error('boom');
        return new Promise<void>((r) => { release = r; });
      },
    });
    s.start();
    await advance(60 * 3);
    // every-minute fired at 11:00 and is still running at 11:01 and 11:02; boom fired each minute.
    assert.deepEqual(calls.filter((c) => c === 'every-minute').length, 1);
    assert.equal(calls.filter((c) => c === 'boom').length, 3);
    release();
    await flush();
    await advance(60);
    assert.equal(calls.filter((c) => c === 'every-minute').length, 2);
    // stop() waits for the run in progress.
    let stopped = false;
    const stopping = s.stop().then(() => { stopped = true; });
    await flush();
    assert.equal(stopped, false);
    release();
    await stopping;
    assert.equal(stopped, true);
  });
});

describe('PolicyScheduler: failed runs', () => {
  afterEach(() => mock.timers.reset());

  it('tries a failed run again for the same slot, with growing delays, until it succeeds', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.parse('2024-05-01T02:59:00Z') });
    const table = new PolicyTable([policy('nightly', '0 0 3 * * *')]);
    const calls: string[] = [];
    let failures = 2;
    const s = new PolicyScheduler({
      table, logger: silentLogger, retryDelayMs: (attempt) => (attempt + 1) * 60_000,
      onFire: async (p, at) => {
        calls.push(`${new Date().toISOString().slice(11, 19)} ${at.toISOString().slice(11, 16)}`);
        if (failures-- > 0) throw new Error('source unreachable');
      },
    });
    s.start();
    await advance(10 * 60);
    // 03:00 fails; 1 min later fails again; 2 min after that succeeds; then nothing until tomorrow.
    assert.deepEqual(calls, ['03:00:00 03:00', '03:01:00 03:00', '03:03:00 03:00']);
    await s.stop();
  });

  it('drops the retry when the policy is disabled, and lets a newer slot replace it', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.parse('2024-05-01T10:59:00Z') });
    const table = new PolicyTable([policy('hourly', '0 0 * * * *'), policy('gone', '0 0 * * * *')]);
    const calls: string[] = [];
    const s = new PolicyScheduler({
      table, logger: silentLogger, retryDelayMs: () => 90 * 60_000,
      onFire: async (p, at) => {
        calls.push(`${p.id} ${new Date().toISOString().slice(11, 16)} ${at.toISOString().slice(11, 16)}`);
        throw new Error('always fails');
      },
    });
    s.start();
    await advance(61);
    table.set('gone', policy('gone', '0 0 * * * *', { enabled: false }));
    // The 11:00 retry would be due at 12:30, but the 12:00 slot comes first and replaces it.
    await advance(3 * 3600);
    assert.deepEqual(calls, ['hourly 11:00 11:00', 'gone 11:00 11:00', 'hourly 12:00 12:00', 'hourly 13:00 13:00', 'hourly 14:00 14:00']);
    await s.stop();
  });
});

/** Moves the mocked clock on one second at a time, letting promises settle in between. */
async function advance(seconds: number): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    mock.timers.tick(1000);
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
