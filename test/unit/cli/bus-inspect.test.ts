import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderInspection } from '../../../src/cli/bus.ts';
import type { BusInspection } from '../../../src/bus/port.ts';

const offsets = (lag: number) => [{ topic: 'events' as const, partition: 0, committed: '5', lag }];

describe('renderInspection', () => {
  it('lists the workers\' groups and counts read-only views (status runs, policy followers) instead of listing them', () => {
    const ins: BusInspection = {
      kind: 'embedded',
      topics: [{ topic: 'events', partitions: [{ partition: 0, low: '0', high: '5' }] }],
      groups: [
        { group: 'planner', offsets: offsets(0) },
        { group: 'status-1700000000000-ab12', offsets: offsets(3) },
        { group: 'status-1700000001000-cd34', offsets: offsets(3) },
        { group: 'policy-follower.host-1', offsets: offsets(0) },
      ],
    };
    const text = renderInspection(ins, 'embedded (x)');
    assert.match(text, /^\s*planner\s+events\s+0\s+5\s+0$/m);
    assert.doesNotMatch(text, /status-17|policy-follower/);
    assert.match(text, /^3 read-only view group\(s\) \(status runs, policy followers\) not listed; --json lists them$/m);
  });

  it('says nothing of views when there are none', () => {
    const text = renderInspection({ kind: 'kafka', topics: [], groups: [{ group: 'replicator', offsets: offsets(2) }] }, 'kafka (b)');
    assert.match(text, /replicator/);
    assert.doesNotMatch(text, /view group/);
  });
});
