// Broker down: the webhook is refused with 503 + Retry-After well inside Harbor's 3-second
// timeout, nothing from the refused request shows up once the broker is back, and Harbor's
// retry of the same webhook then succeeds. Runs its own broker, which it stops and restarts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { KafkaBroker } from '../../../scripts/kafka/broker.ts';
import { createBus } from '../../../src/bus/create.ts';
import type { Bus } from '../../../src/bus/port.ts';
import { parseConfig } from '../../../src/config/load.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { uniquePrefix } from '../../support/kafka.ts';
import { SECRET, counterValue, digestFor, pushArtifact, readTopic, startApp, type RunningApp } from './harness.ts';

const HARBOR = '/webhooks/harbor/harbor-prod';

describe('ingest when the Kafka broker is down', { timeout: 240000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'hsb-ingest-broker-'));
  const broker = new KafkaBroker(join(dir, 'kafka'));
  const topicPrefix = uniquePrefix('down');
  let bus: Bus;
  let app: RunningApp;

  before(async () => {
    await broker.start();
    // The bus as the bridge builds it from the config (request timeout derived from publishTimeoutMs).
    const config = parseConfig({
      server: { port: 0 },
      bus: { kind: 'kafka', brokers: [broker.brokers], topicPrefix, partitions: 3 },
      sources: [{ id: 'harbor-prod', url: 'https://harbor.example.com', webhookSecrets: [SECRET] }],
      targets: [{ id: 'swr', kind: 'swr', region: 'cn-north-4', credentials: { accessKey: 'AK', secretKey: 'SK' } }],
    }, '<test>', {});
    bus = createBus(config, silentLogger);
    await bus.connect();
    app = await startApp(config, bus);
  });
  after(async () => {
    await app?.close();
    await bus?.close();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (body: unknown) =>
    request(app.url).post(HARBOR).set({ 'content-type': 'application/json', authorization: SECRET }).send(JSON.stringify(body));

  it('503 + Retry-After quickly, nothing written later, and the retried webhook then succeeds', async (t) => {
    const before = pushArtifact('library/before', 'v1', digestFor(1));
    const retried = pushArtifact('library/retried', 'v1', digestFor(2));
    const abandoned = pushArtifact('library/abandoned', 'v1', digestFor(3));
    const beforeRes = await post(before).expect(200);

    await broker.stop();
    const refusals: number[] = [];
    let retriedId = '';
    for (const body of [retried, abandoned, retried]) {
      const started = Date.now();
      const res = await post(body);
      refusals.push(Date.now() - started);
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.equal(res.body.error, 'bus_unavailable');
      assert.match(String(res.headers['retry-after']), /^\d+$/);
    }
    t.diagnostic(`503 answered after ${refusals.join(', ')} ms`);
    for (const ms of refusals) assert.ok(ms < 2500, `503 after ${ms} ms (Harbor gives up at 3000 ms): ${refusals}`);
    assert.equal(await counterValue(app.metrics, 'hsb_webhooks_total', { result: 'unavailable' }), 3);
    // Bad input is the sender's to fix whatever the broker's state: 400 (never 5xx), at once.
    const bad = await post(pushArtifact('library/bad', 'v1', 'sha256:zz'));
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.equal(bad.body.error, 'invalid_payload');

    await broker.start();
    // Harbor retries the same webhook until it gets a 2xx.
    let answered = 0;
    const deadline = Date.now() + 60000;
    for (;;) {
      const res = await post(retried);
      if (res.status === 200) {
        retriedId = (res.body.ids as string[])[0]!;
        answered++;
        break;
      }
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.ok(Date.now() < deadline, 'the bus did not recover within 60 s of the broker restart');
      await sleep(250);
    }
    t.diagnostic(`recovered: retry acknowledged ${answered} time(s) after the restart`);
    // Give any publish still retrying inside the client time to land, if it were going to.
    await sleep(3000);

    const records = await readTopic(broker.brokers, `${topicPrefix}events`);
    const repos = records.map((r) => r.value.repository as string);
    assert.deepEqual(records.filter((r) => r.value.id === beforeRes.body.ids[0]).length, 1);
    assert.equal(repos.filter((r) => r === 'library/abandoned').length, 0, 'a refused webhook was written after all');
    assert.equal(records.filter((r) => r.value.id === retriedId).length, answered, 'only the acknowledged retry was written');
    assert.equal(records.length, 2);
  });
});
