// Property: whatever a caller sends to the webhook routes — mutated Harbor and distribution
// payloads, broken bytes, odd headers — the answer is never a 5xx, and nothing reaches the bus
// unless the answer is 2xx (and then exactly what the answer says was accepted).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import request from 'supertest';
import type { Bus } from '../../../src/bus/port.ts';
import { FIXTURE_NAMES, SECRET, embeddedBus, eventCount, fixture, startApp, testConfig, withPublish, type RunningApp } from './harness.ts';

const HARBOR_FIXTURES = FIXTURE_NAMES.filter((n) => !n.startsWith('distribution')).map((n) => fixture(n.replace(/\.json$/, '')));
const DIST_FIXTURES = FIXTURE_NAMES.filter((n) => n.startsWith('distribution')).map((n) => fixture(n.replace(/\.json$/, '')));
const DIGEST = 'sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb';

const interesting = fc.oneof(
  fc.constantFrom(
    'PUSH_ARTIFACT', 'DELETE_ARTIFACT', 'pushImage', 'deleteImage', 'harbor.artifact.pushed', 'push', 'delete', '__proto__', 'constructor',
    DIGEST, DIGEST.toUpperCase(), 'sha256:', '', 'latest', 'a/b/c', '../etc', 'x'.repeat(300), null, 0, -1, 1e300, true,
  ),
  fc.string({ maxLength: 16 }),
  fc.integer(),
  fc.jsonValue({ maxDepth: 2 }),
);

type Path = (string | number)[];

function pathsOf(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (typeof value === 'object' && value !== null && out.length < 300) {
    for (const [k, v] of Object.entries(value)) pathsOf(v, [...prefix, Array.isArray(value) ? Number(k) : k], out);
  }
  return out;
}

function mutate(root: unknown, path: Path, op: 'set' | 'delete', value: unknown): unknown {
  if (path.length === 0) return op === 'set' ? value : undefined;
  let parent = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (op === 'delete') delete parent[last];
  else parent[last] = value;
  return root;
}

/** A payload of the route's kind with a few values set or deleted anywhere in it. */
const structural = (bases: unknown[]) => fc.tuple(
  fc.nat(bases.length - 1),
  fc.array(fc.tuple(fc.nat(), fc.constantFrom<'set' | 'delete'>('set', 'delete'), interesting), { maxLength: 4 }),
).map(([i, ops]) => {
  let body = structuredClone(bases[i]);
  for (const [n, op, value] of ops) {
    const paths = pathsOf(body);
    body = mutate(body, paths[n % paths.length]!, op, value);
  }
  return Buffer.from(body === undefined ? '' : JSON.stringify(body));
});

/** Byte-level damage: truncation, spliced bytes, flipped bytes. */
const damaged = (bodies: fc.Arbitrary<Buffer>) => fc.tuple(
  bodies,
  fc.constantFrom('truncate', 'splice', 'flip', 'none'),
  fc.nat(),
  fc.uint8Array({ minLength: 1, maxLength: 8 }),
).map(([b, how, at, bytes]) => {
  const pos = b.length === 0 ? 0 : at % b.length;
  if (how === 'truncate') return b.subarray(0, pos);
  if (how === 'splice') return Buffer.concat([b.subarray(0, pos), Buffer.from(bytes), b.subarray(pos)]);
  if (how === 'flip') {
    const c = Buffer.from(b);
    for (let k = 0; k < bytes.length && pos + k < c.length; k++) c[pos + k] = c[pos + k]! ^ (bytes[k]! | 1);
    return c;
  }
  return b;
});

const odd = fc.oneof(
  fc.constant(Buffer.from('[' .repeat(100000) + ']'.repeat(100000))),
  fc.constant(Buffer.from(`{"type":"PUSH_ARTIFACT","event_data":${'{"a":'.repeat(50000)}1${'}'.repeat(50000)}}`)),
  fc.constant(Buffer.from('\ufeff{"type":"PULL_ARTIFACT"}')),
  fc.constant(Buffer.from('null')),
  fc.constant(Buffer.from(JSON.stringify({ type: 'PUSH_ARTIFACT', pad: 'x'.repeat(600 * 1024) }))),
  fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v) ?? '')),
);

const routes = [
  { path: '/webhooks/harbor/harbor-prod', bodies: structural(HARBOR_FIXTURES) },
  { path: '/webhooks/distribution/registry-dev', bodies: structural(DIST_FIXTURES) },
] as const;

const CONTENT_TYPES = [
  'application/json', 'application/json', 'application/cloudevents+json', 'application/vnd.docker.distribution.events.v1+json',
  'application/json; charset=utf-8', 'APPLICATION/JSON', 'text/plain', '', 'application/json; charset=utf-16', ';;', 'multipart/form-data; boundary=x',
];

const requests = fc.record({
  route: fc.nat(routes.length - 1),
  kind: fc.constantFrom('structural', 'structural', 'damaged', 'odd'),
  seed: fc.nat(),
  contentType: fc.constantFrom(...CONTENT_TYPES),
  auth: fc.constantFrom('ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'wrong', 'none'),
  encoding: fc.constantFrom('none', 'none', 'none', 'none', 'gzip', 'gzip-bogus', 'br-bogus', 'identity'),
  path: fc.constantFrom('route', 'route', 'route', 'route', 'route', 'route', 'route', 'route', 'no-id', 'unknown'),
});

describe('webhook routes under fuzzed input', () => {
  let app: RunningApp;
  let raw: Bus;
  let cleanup: () => Promise<void>;
  let published = 0;

  before(async () => {
    const e = await embeddedBus();
    raw = e.bus;
    cleanup = e.cleanup;
    const counting = withPublish(raw, async (topic, records) => {
      await raw.publish(topic, records);
      published += records.length;
    });
    app = await startApp(testConfig({ server: { bodyLimitBytes: 512 * 1024 } }), counting);
  });
  after(async () => {
    await app.close();
    await cleanup();
  });

  it('never answers 5xx, and publishes only what a 2xx says it accepted', { timeout: 60000 }, async (t) => {
    const started = Date.now();
    const statuses = new Map<number, number>();
    let acceptedTotal = 0;
    await fc.assert(
      fc.asyncProperty(requests, async (r) => {
        const route = routes[r.route]!;
        const bodyArb = r.kind === 'structural' ? route.bodies : r.kind === 'damaged' ? damaged(route.bodies) : odd;
        const [body] = fc.sample(bodyArb, { seed: r.seed, numRuns: 1 });
        let payload = body!;
        const headers: Record<string, string> = {};
        if (r.contentType !== '') headers['content-type'] = r.contentType;
        if (r.auth === 'ok') headers.authorization = SECRET;
        if (r.auth === 'wrong') headers.authorization = 'Bearer nope';
        if (r.encoding === 'gzip') { payload = gzipSync(payload); headers['content-encoding'] = 'gzip'; }
        if (r.encoding === 'gzip-bogus') headers['content-encoding'] = 'gzip';
        if (r.encoding === 'br-bogus') headers['content-encoding'] = 'br';
        if (r.encoding === 'identity') headers['content-encoding'] = 'identity';
        const path = r.path === 'route' ? route.path : r.path === 'no-id' ? '/webhooks/harbor' : '/webhooks/harbor/nope';

        const before = published;
        const res = await request(app.url).post(path).set(headers).serialize((x: unknown) => x as string).send(payload as unknown as string);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        assert.ok(res.status < 500, `${res.status} ${res.text}`);
        assert.equal(typeof res.body, 'object', 'every answer is JSON');
        if (res.status >= 200 && res.status < 300) {
          assert.equal(published - before, res.body.accepted, 'a 2xx publishes exactly what it accepted');
          acceptedTotal += res.body.accepted as number;
        } else {
          assert.equal(published, before, `a ${res.status} published nothing`);
          assert.equal(typeof res.body.error, 'string');
        }
      }),
      { numRuns: 3000, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) },
    );
    // The bus itself agrees with the port-level count.
    assert.equal(await eventCount(raw), acceptedTotal);
    // The run exercised the interesting outcomes, not only one of them.
    for (const s of [200, 400, 401, 404, 413, 415]) assert.ok((statuses.get(s) ?? 0) > 0, `no ${s} in ${JSON.stringify([...statuses])}`);
    assert.ok(acceptedTotal > 0, 'some mutated payloads were still valid and accepted');
    t.diagnostic(`3,000 requests in ${Date.now() - started} ms: ${JSON.stringify(Object.fromEntries(statuses))}`);
  });
});
