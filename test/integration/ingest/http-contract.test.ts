// The webhook HTTP contract (issue 3) against the real app factory and the embedded bus: status
// codes, bodies, what reaches the `events` topic, and the metrics. Kafka-specific behaviour is in
// kafka-ack.test.ts and broker-down.test.ts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import type { Bus } from '../../../src/bus/port.ts';
import {
  OLD_SECRET, SECRET, counterValue, digestFor, embeddedBus, eventCount, fixture, pushArtifact, startApp, testConfig, withPublish, type RunningApp,
} from './harness.ts';

const JSON_TYPE = 'application/json';
const CE_TYPE = 'application/cloudevents+json';
const DIST_TYPE = 'application/vnd.docker.distribution.events.v1+json';
const HARBOR = '/webhooks/harbor/harbor-prod';
const DIST = '/webhooks/distribution/registry-dev';

describe('webhook HTTP contract', () => {
  let app: RunningApp;
  let bus: Bus;
  let cleanup: () => Promise<void>;

  before(async () => {
    ({ bus, cleanup } = await embeddedBus());
    app = await startApp(testConfig({ server: { bodyLimitBytes: 64 * 1024 } }), bus);
  });
  after(async () => {
    await app.close();
    await cleanup();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const r = request(app.url).post(path).set({ 'content-type': JSON_TYPE, authorization: SECRET, ...headers });
    return body === undefined ? r : r.send(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
  };

  /** Runs `fn` and asserts it added exactly `n` records to the events topic. */
  const publishes = async (n: number, fn: () => Promise<unknown>) => {
    const before = await eventCount(bus);
    await fn();
    assert.equal(await eventCount(bus) - before, n, `expected ${n} record(s) published`);
  };

  it('accepts a v2 PUSH_ARTIFACT and answers with the event id once it is on the bus', async () => {
    await publishes(1, async () => {
      const res = await post(HARBOR, fixture('v2-push-by-tag')).expect(200);
      assert.equal(res.body.accepted, 1);
      assert.match(res.body.ids[0], /^[0-9a-f]{64}$/);
    });
  });

  it('404 for an unknown source, on both routes, and publishes nothing', async () => {
    await publishes(0, async () => {
      const a = await post('/webhooks/harbor/nope', fixture('v2-push-by-tag')).expect(404);
      assert.equal(a.body.error, 'unknown_source');
      const b = await post('/webhooks/distribution/nope', fixture('distribution-push'), { 'content-type': DIST_TYPE }).expect(404);
      assert.equal(b.body.error, 'unknown_source');
    });
    assert.ok(await counterValue(app.metrics, 'hsb_webhooks_total', { source: 'unknown', result: 'unknown_source' }) >= 2);
  });

  it('401 for a missing or wrong Authorization header, and publishes nothing', async () => {
    await publishes(0, async () => {
      const missing = await request(app.url).post(HARBOR).set('content-type', JSON_TYPE).send(JSON.stringify(fixture('v2-push-by-tag'))).expect(401);
      assert.equal(missing.body.error, 'unauthorized');
      await post(HARBOR, fixture('v2-push-by-tag'), { authorization: 'Bearer wrong' }).expect(401);
      await post(HARBOR, fixture('v2-push-by-tag'), { authorization: `${SECRET} ` + 'x' }).expect(401);
      await post(HARBOR, fixture('v2-push-by-tag'), { authorization: SECRET.slice(0, -1) }).expect(401);
      // A secret of another source does not open this one.
      await post(DIST, fixture('distribution-push'), { authorization: OLD_SECRET, 'content-type': DIST_TYPE }).expect(401);
    });
    assert.ok(await counterValue(app.metrics, 'hsb_webhooks_total', { source: 'harbor-prod', result: 'unauthorized' }) >= 4);
  });

  it('checks Authorization before reading the body: an unauthenticated oversized body is 401, not 413', async () => {
    await post(HARBOR, 'x'.repeat(200 * 1024), { authorization: 'Bearer wrong' }).expect(401);
  });

  it('accepts every configured secret, so secrets rotate without downtime', async () => {
    await publishes(2, async () => {
      await post(HARBOR, pushArtifact('library/rot', 'new', digestFor(1)), { authorization: SECRET }).expect(200);
      await post(HARBOR, pushArtifact('library/rot', 'old', digestFor(2)), { authorization: OLD_SECRET }).expect(200);
    });
  });

  it('the error body never echoes the secret or the presented header', async () => {
    const res = await post(HARBOR, fixture('v2-push-by-tag'), { authorization: 'Bearer leaked-token-123' }).expect(401);
    assert.doesNotMatch(JSON.stringify(res.body), /leaked-token-123|s3cret/);
  });

  it('415 for a content type the route does not take', async () => {
    await publishes(0, async () => {
      const a = await post(HARBOR, fixture('v2-push-by-tag'), { 'content-type': 'text/plain' }).expect(415);
      assert.equal(a.body.error, 'unsupported_media_type');
      await post(HARBOR, fixture('v2-push-by-tag'), { 'content-type': 'application/x-www-form-urlencoded' }).expect(415);
      await post(DIST, fixture('distribution-push'), { 'content-type': CE_TYPE }).expect(415);
    });
    assert.ok(await counterValue(app.metrics, 'hsb_webhooks_total', { result: 'unsupported_media_type' }) >= 3);
  });

  it('415 for a Content-Encoding it cannot decode; gzip is decoded', async () => {
    await post(HARBOR, fixture('v2-push-by-tag'), { 'content-encoding': 'compress' }).expect(415);
    // fetch, not supertest: superagent would JSON-encode a Buffer sent as application/json.
    const send = (body: Buffer) => fetch(`${app.url}${HARBOR}`, {
      method: 'POST', headers: { 'content-type': JSON_TYPE, 'content-encoding': 'gzip', authorization: SECRET }, body,
    });
    await publishes(1, async () => assert.equal((await send(gzipSync(JSON.stringify(pushArtifact('library/gz', 'v1', digestFor(3)))))).status, 200));
    await publishes(0, async () => assert.equal((await send(Buffer.from('not gzip at all'))).status, 400));
  });

  it('413 over server.bodyLimitBytes (declared length and chunked), nothing published', async () => {
    const big = pushArtifact('library/big', 'v1', digestFor(4));
    (big as { padding?: string }).padding = 'x'.repeat(70 * 1024);
    await publishes(0, async () => {
      const res = await post(HARBOR, big).expect(413);
      assert.equal(res.body.error, 'payload_too_large');
      assert.match(res.body.message, /65536/);
    });
    // Without Content-Length the limit is enforced while reading.
    const chunked = await fetch(`${app.url}${HARBOR}`, {
      method: 'POST', headers: { 'content-type': JSON_TYPE, authorization: SECRET }, duplex: 'half',
      body: new ReadableStream({ start(c) { for (let i = 0; i < 80; i++) c.enqueue(new TextEncoder().encode('x'.repeat(1024))); c.close(); } }),
    } as RequestInit);
    assert.equal(chunked.status, 413);
    assert.ok(await counterValue(app.metrics, 'hsb_webhooks_total', { result: 'too_large' }) >= 2);
  });

  it('a body cut short by the sender publishes nothing, and the server keeps answering', async () => {
    const body = JSON.stringify(pushArtifact('library/cut', 'v1', digestFor(5)));
    const before = await counterValue(app.metrics, 'hsb_webhooks_total', { result: 'invalid' });
    await publishes(0, async () => {
      const { port } = new URL(app.url);
      const socket = connect(Number(port), '127.0.0.1');
      await once(socket, 'connect');
      // Content-Length promises the whole body; half of it arrives, then the connection closes.
      socket.write(`POST ${HARBOR} HTTP/1.1\r\nHost: x\r\nContent-Type: ${JSON_TYPE}\r\nAuthorization: ${SECRET}\r\n`
        + `Content-Length: ${body.length}\r\n\r\n${body.slice(0, body.length / 2)}`);
      await new Promise((r) => setTimeout(r, 50));
      socket.destroy();
      await new Promise((r) => setTimeout(r, 50));
    });
    assert.equal(await counterValue(app.metrics, 'hsb_webhooks_total', { result: 'invalid' }), before + 1);
    await post(HARBOR, pushArtifact('library/after-cut', 'v1', digestFor(6))).expect(200);
  });

  it('after a 413 for a chunked body, the same kept-alive connection answers the next webhook', async () => {
    const { port } = new URL(app.url);
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    let answers = '';
    socket.on('data', (d: Buffer) => { answers += d.toString('latin1'); });
    const head = (extra: string) => `POST ${HARBOR} HTTP/1.1\r\nHost: x\r\nContent-Type: ${JSON_TYPE}\r\nAuthorization: ${SECRET}\r\n${extra}\r\n`;
    // Far more than the limit (64 KiB) and than the socket buffers: the rest must be read and dropped.
    socket.write(head('Transfer-Encoding: chunked\r\n'));
    const chunk = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 40; i++) socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    socket.write('0\r\n\r\n');
    const body = JSON.stringify(pushArtifact('library/after-413', 'v1', digestFor(8)));
    socket.write(head(`Content-Length: ${Buffer.byteLength(body)}\r\n`) + body);
    for (let waited = 0; (answers.match(/HTTP\/1\.1 \d{3}/g) ?? []).length < 2 && waited < 10000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    socket.destroy();
    assert.deepEqual((answers.match(/HTTP\/1\.1 \d{3}/g) ?? []).map((l) => l.slice(9)), ['413', '200']);
  });

  it('Content-Encoding: identity is a plain body', async () => {
    await publishes(1, async () => { await post(HARBOR, pushArtifact('library/identity', 'v1', digestFor(7)), { 'content-encoding': 'identity' }).expect(200); });
  });

  it('the default body limit is 1 MiB', async () => {
    const cfg = testConfig();
    assert.equal(cfg.server.bodyLimitBytes, 1024 * 1024);
    const other = await startApp(cfg, bus);
    try {
      const justUnder = pushArtifact('library/limit', 'v1', digestFor(5));
      (justUnder as { padding?: string }).padding = 'x'.repeat(1024 * 1024 - 400);
      await publishes(1, () => request(other.url).post(HARBOR).set({ 'content-type': JSON_TYPE, authorization: SECRET }).send(JSON.stringify(justUnder)).expect(200));
      await request(other.url).post(HARBOR).set({ 'content-type': JSON_TYPE, authorization: SECRET }).send('x'.repeat(1024 * 1024 + 1)).expect(413);
    } finally {
      await other.close();
    }
  });

  it('400 with a JSON body naming the fields of an invalid payload', async () => {
    await publishes(0, async () => {
      const badDigest = pushArtifact('library/x', 'v1', 'sha256:nothex');
      const a = await post(HARBOR, badDigest).expect(400);
      assert.equal(a.body.error, 'invalid_payload');
      assert.ok(a.body.issues.some((i: { path: string }) => i.path === 'event_data.resources.0.digest'), JSON.stringify(a.body));

      const noData = { type: 'PUSH_ARTIFACT', occur_at: 1700000000 };
      const b = await post(HARBOR, noData).expect(400);
      assert.ok(b.body.issues.some((i: { path: string }) => i.path.startsWith('event_data')), JSON.stringify(b.body));

      const badRepo = pushArtifact('Library/UPPER', 'v1', digestFor(6));
      const c = await post(HARBOR, badRepo).expect(400);
      assert.ok(c.body.issues.some((i: { path: string }) => i.path === 'event_data.repository.repo_full_name'), JSON.stringify(c.body));

      const noType = await post(HARBOR, { event_data: {} }).expect(400);
      assert.deepEqual(noType.body.issues.map((i: { path: string }) => i.path), ['type']);

      const json = await post(HARBOR, '{"type": "PUSH_ARTIFACT",').expect(400);
      assert.equal(json.body.error, 'invalid_json');
      await post(HARBOR, '[1,2,3]').expect(400);
      await post(DIST, { events: 'nope' }, { 'content-type': DIST_TYPE }).expect(400);
    });
    assert.ok(await counterValue(app.metrics, 'hsb_webhooks_total', { source: 'harbor-prod', result: 'invalid' }) >= 6);
  });

  for (const name of ['v2-pull-artifact', 'v2-scanning-completed', 'v2-quota-exceed', 'v2-replication', 'v2-tag-retention', 'v1-pull-image']) {
    it(`200 and ignored, not published: ${name}`, async () => {
      const payload = fixture(name);
      await publishes(0, async () => {
        const res = await post(HARBOR, payload).expect(200);
        assert.equal(res.body.accepted, 0);
        assert.equal(res.body.ignored, payload.type);
      });
      assert.equal(await counterValue(app.metrics, 'hsb_webhooks_total', { source: 'harbor-prod', type: payload.type, result: 'ignored' }), 1);
    });
  }

  it('200 for the v1.10 "test endpoint" call (empty body, any or no content type)', async () => {
    await publishes(0, async () => {
      await request(app.url).post(HARBOR).set('authorization', SECRET).expect(200);
      await post(HARBOR, '').expect(200);
      await post(HARBOR, '  \n', { 'content-type': 'text/plain' }).expect(200);
      await post(HARBOR, {}).expect(200);
    });
    assert.ok(await counterValue(app.metrics, 'hsb_webhooks_total', { type: 'test', result: 'ignored' }) >= 4);
  });

  it('v1.10 deleteImage with several tags: one event per tag', async () => {
    await publishes(3, async () => {
      const res = await post(HARBOR, fixture('v1-delete-image')).expect(200);
      assert.equal(res.body.accepted, 3);
      assert.equal(new Set(res.body.ids).size, 3);
    });
  });

  it('accepts CloudEvents structured mode (with and without charset); the event id is the CloudEvent id', async () => {
    const ce = fixture('ce-artifact-pushed');
    await publishes(1, async () => {
      const res = await post(HARBOR, ce, { 'content-type': CE_TYPE }).expect(200);
      assert.deepEqual(res.body.ids, [ce.id]);
    });
    const retry = await post(HARBOR, { ...ce }, { 'content-type': `${CE_TYPE}; charset=utf-8` }).expect(200);
    assert.deepEqual(retry.body.ids, [ce.id], 'a retry keeps the id, so consumers drop the duplicate');
    const scan = await post(HARBOR, fixture('ce-scan-completed'), { 'content-type': CE_TYPE }).expect(200);
    assert.equal(scan.body.accepted, 0);
  });

  it('the same Harbor retry gets the same event id (hash of the event identity)', async () => {
    const a = await post(HARBOR, fixture('v2-push-by-digest')).expect(200);
    const b = await post(HARBOR, fixture('v2-push-by-digest')).expect(200);
    assert.deepEqual(a.body.ids, b.body.ids);
  });

  it('accepts the distribution notification envelope on /webhooks/distribution/:sourceId', async () => {
    await publishes(1, async () => {
      // Three events: two blob pushes (nothing to replicate) and the manifest push.
      const res = await post(DIST, fixture('distribution-push'), { 'content-type': DIST_TYPE }).expect(200);
      assert.deepEqual(res.body, { accepted: 1, ids: ['e1b2c3d4-0003'] });
    });
    await publishes(0, async () => {
      const pull = await post(DIST, fixture('distribution-pull'), { 'content-type': DIST_TYPE }).expect(200);
      assert.equal(pull.body.accepted, 0);
    });
    await publishes(2, () => post(DIST, fixture('distribution-delete')).expect(200));
  });

  it('accepts the envelope under distribution 3.x\'s media type (events.v2+json) too', async () => {
    await publishes(1, async () => {
      const res = await post(DIST, fixture('distribution-push'), { 'content-type': 'application/vnd.docker.distribution.events.v2+json' }).expect(200);
      assert.equal(res.body.accepted, 1);
    });
    const refused = await post(DIST, fixture('distribution-push'), { 'content-type': 'application/vnd.docker.distribution.events.v3+json' }).expect(415);
    assert.match(refused.body.message, /events\.v2\+json/);
  });

  it('exports hsb_webhooks_total{source,format,type,result} and hsb_publish_seconds on /metrics', async () => {
    await post(HARBOR, pushArtifact('library/metrics', 'v1', digestFor(7))).expect(200);
    const res = await request(app.url).get('/metrics').expect(200);
    assert.match(res.text, /hsb_webhooks_total\{source="harbor-prod",format="harbor-v2",type="PUSH_ARTIFACT",result="accepted"\} \d+/);
    assert.match(res.text, /hsb_webhooks_total\{source="harbor-prod",format="cloudevents",type="harbor.artifact.pushed",result="accepted"\} \d+/);
    assert.match(res.text, /hsb_webhooks_total\{source="registry-dev",format="distribution",type="push",result="accepted"\} \d+/);
    assert.match(res.text, /hsb_publish_seconds_bucket\{le="0.05",topic="events"\} [1-9]\d*/);
    assert.match(res.text, /hsb_publish_seconds_count\{topic="events"\} [1-9]\d*/);
  });

  it('serves a webhook the same whichever way its URL is spelt (fast path or Express)', async () => {
    // Plain spellings take the fast path; a percent-encoded id goes through Express's router.
    for (const [i, path] of [HARBOR, '/WEBHOOKS/Harbor/harbor-prod/?from=harbor', '/webhooks/harbor/harbor%2Dprod'].entries()) {
      const body = pushArtifact('proj/spelt', `v${i}`, digestFor(900 + i));
      await publishes(1, async () => {
        const res = await post(path, body).expect(200);
        assert.equal(res.body.accepted, 1, path);
      });
      await publishes(0, () => post(path, body, { authorization: 'Bearer wrong' }).expect(401));
    }
    await publishes(1, () => post('/webhooks/distribution/registry%2Ddev', fixture('distribution-push'), { 'content-type': DIST_TYPE }).expect(200));
  });

  it('other methods, unknown paths and undecodable ids are 4xx JSON, not 5xx', async () => {
    const a = await request(app.url).get(HARBOR).expect(404);
    assert.equal(a.body.error, 'not_found');
    await request(app.url).put(HARBOR).set('authorization', SECRET).send('{}').expect(404);
    await post('/webhooks/harbor/%E0%A4%A', {}).expect(400);
    await post('/webhooks/distribution/%', {}).expect(400);
    await post('/webhooks/harbor/__proto__', {}).expect(404);
    await post('/webhooks/harbor/constructor', {}).expect(404);
  });
});

describe('/webhooks/harbor without a source id', () => {
  it('works when exactly one source is configured', async () => {
    const { bus, cleanup } = await embeddedBus();
    const app = await startApp(testConfig({ sources: [{ id: 'only', url: 'https://h.example.com', webhookSecrets: [SECRET] }] }), bus);
    try {
      const res = await request(app.url).post('/webhooks/harbor').set({ 'content-type': JSON_TYPE, authorization: SECRET })
        .send(JSON.stringify(fixture('v2-push-by-tag'))).expect(200);
      assert.equal(res.body.accepted, 1);
      assert.equal(await eventCount(bus), 1);
      await request(app.url).post('/webhooks/harbor').set({ 'content-type': JSON_TYPE }).send('{}').expect(401);
    } finally {
      await app.close();
      await cleanup();
    }
  });

  it('is 404 when several sources are configured, and publishes nothing', async () => {
    const { bus, cleanup } = await embeddedBus();
    const app = await startApp(testConfig(), bus);
    try {
      const res = await request(app.url).post('/webhooks/harbor').set({ 'content-type': JSON_TYPE, authorization: SECRET })
        .send(JSON.stringify(fixture('v2-push-by-tag'))).expect(404);
      assert.match(res.body.message, /\/webhooks\/harbor\/<sourceId>/);
      assert.equal(await eventCount(bus), 0);
    } finally {
      await app.close();
      await cleanup();
    }
  });
});

describe('an insecure source', () => {
  it('takes webhooks without Authorization only when the config says insecure: true', async () => {
    const { bus, cleanup } = await embeddedBus();
    const app = await startApp(testConfig({ sources: [{ id: 'lab', url: 'https://h.example.com', insecure: true }] }), bus);
    try {
      await request(app.url).post('/webhooks/harbor/lab').set('content-type', JSON_TYPE).send(JSON.stringify(fixture('v2-push-by-tag'))).expect(200);
    } finally {
      await app.close();
      await cleanup();
    }
    assert.throws(() => testConfig({ sources: [{ id: 'lab', url: 'https://h.example.com' }] }), /webhook secret/);
  });
});

describe('when the bus does not acknowledge', () => {
  it('503 with Retry-After when publish fails, and the webhook succeeds once the bus is back', async () => {
    const { bus, cleanup } = await embeddedBus();
    let failing = true;
    const flaky = withPublish(bus, (topic, records) => failing ? Promise.reject(new Error('broker gone')) : bus.publish(topic, records));
    const app = await startApp(testConfig(), flaky);
    try {
      const body = JSON.stringify(fixture('v2-push-by-tag'));
      const res = await request(app.url).post(HARBOR).set({ 'content-type': JSON_TYPE, authorization: SECRET }).send(body).expect(503);
      assert.equal(res.headers['retry-after'], '5');
      assert.equal(res.body.error, 'bus_unavailable');
      assert.equal(await eventCount(bus), 0);
      assert.equal(await counterValue(app.metrics, 'hsb_webhooks_total', { result: 'unavailable' }), 1);
      failing = false;
      await request(app.url).post(HARBOR).set({ 'content-type': JSON_TYPE, authorization: SECRET }).send(body).expect(200);
      assert.equal(await eventCount(bus), 1);
    } finally {
      await app.close();
      await cleanup();
    }
  });

  it('503 at server.publishTimeoutMs when the bus hangs', async () => {
    const { bus, cleanup } = await embeddedBus();
    const hanging = withPublish(bus, () => new Promise<void>(() => undefined));
    const app = await startApp(testConfig({ server: { publishTimeoutMs: 300 } }), hanging);
    try {
      const started = Date.now();
      const res = await request(app.url).post(HARBOR).set({ 'content-type': JSON_TYPE, authorization: SECRET })
        .send(JSON.stringify(fixture('v2-push-by-tag'))).expect(503);
      const took = Date.now() - started;
      assert.ok(took >= 290 && took < 1500, `answered after ${took} ms`);
      assert.equal(res.headers['retry-after'], '5');
    } finally {
      await app.close();
      await cleanup();
    }
  });
});
