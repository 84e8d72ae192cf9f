import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../../../src/observability/metrics.ts';

const line = (text: string, labels: string) =>
  new RegExp(`^hsb_webhooks_total\\{${labels.replace(/[{}]/g, '\\$&')}\\} (\\d+)$`, 'm').exec(text)?.[1];

describe('countWebhook', () => {
  it('shows every webhook counted so far at each scrape, once', async () => {
    const m = createMetrics();
    const accepted = { source: 's', format: 'harbor-v2', type: 'PUSH_ARTIFACT', result: 'accepted' };
    for (let i = 0; i < 3; i++) m.countWebhook(accepted);
    m.countWebhook({ ...accepted, result: 'unavailable' });
    const first = await m.registry.metrics();
    assert.equal(line(first, 'source="s",format="harbor-v2",type="PUSH_ARTIFACT",result="accepted"'), '3');
    assert.equal(line(first, 'source="s",format="harbor-v2",type="PUSH_ARTIFACT",result="unavailable"'), '1');
    // A second scrape with nothing new reads the same totals; later webhooks add to them.
    assert.equal(line(await m.registry.metrics(), 'source="s",format="harbor-v2",type="PUSH_ARTIFACT",result="accepted"'), '3');
    m.countWebhook(accepted);
    assert.equal(line(await m.registry.metrics(), 'source="s",format="harbor-v2",type="PUSH_ARTIFACT",result="accepted"'), '4');
  });

  it('counts each label set on its own', async () => {
    const m = createMetrics();
    m.countWebhook({ source: 'a', format: 'b', type: 'c', result: 'accepted' });
    m.countWebhook({ source: 'a', format: 'b', type: 'c', result: 'ignored' });
    const values = (await m.webhooks.get()).values.map((v) => [v.labels['result'], v.value]);
    assert.deepEqual(values.sort(), [['accepted', 1], ['ignored', 1]]);
  });

  it('does not keep the caller\'s label object (a later change to it counts nothing twice)', async () => {
    const m = createMetrics();
    const labels = { source: 's', format: 'f', type: 't', result: 'accepted' };
    m.countWebhook(labels);
    labels.result = 'invalid';
    const values = (await m.webhooks.get()).values.map((v) => v.labels['result']);
    assert.deepEqual(values, ['accepted']);
  });

  it('a reset also drops what was counted but not yet added', async () => {
    const m = createMetrics();
    m.countWebhook({ source: 's', format: 'f', type: 't', result: 'accepted' });
    m.registry.resetMetrics();
    assert.deepEqual((await m.webhooks.get()).values, []);
  });
});
