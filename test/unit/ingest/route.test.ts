// The webhook fast path's route matcher; test/integration/ingest/fast-path.test.ts holds it to
// Express's routing with generated request targets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { plainWebhookRoute } from '../../../src/ingest/routes.ts';

describe('plainWebhookRoute', () => {
  it('takes the plain spellings of the three webhook routes', () => {
    assert.deepEqual(plainWebhookRoute('/webhooks/harbor/harbor-prod'), { kind: 'harbor', sourceId: 'harbor-prod' });
    assert.deepEqual(plainWebhookRoute('/webhooks/harbor'), { kind: 'harbor', sourceId: undefined });
    assert.deepEqual(plainWebhookRoute('/webhooks/harbor/'), { kind: 'harbor', sourceId: undefined });
    assert.deepEqual(plainWebhookRoute('/webhooks/distribution/reg.dev_1'), { kind: 'distribution', sourceId: 'reg.dev_1' });
    assert.deepEqual(plainWebhookRoute('/WebHooks/HARBOR/Prod/?a=b/c'), { kind: 'harbor', sourceId: 'Prod' });
    assert.deepEqual(plainWebhookRoute('/webhooks/harbor?x'), { kind: 'harbor', sourceId: undefined });
  });

  it('leaves everything else to Express', () => {
    for (const url of [
      '/webhooks/distribution', '/webhooks/distribution/', '/webhooks/harbor//', '/webhooks/harbor/a/b', '/webhooks/harborx/a',
      '/webhooks/harbor/a%2Db', '/webhooks/harbor/%E0%A4%A', '//webhooks/harbor/a', 'http://h/webhooks/harbor/a', '/webhooks/harbor/a#b',
      '/webhooks/harbor/a b', '', '*',
    ]) assert.equal(plainWebhookRoute(url), undefined, url);
  });
});
