import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { ArtifactEventSchema } from '../../../src/ingest/event.ts';
import { HarborV1PayloadSchema, MAX_RESOURCES, MAX_UNIX_SECONDS, isHarborEnvelope } from '../../../src/ingest/formats/harbor-v1.ts';
import { HarborV2PayloadSchema } from '../../../src/ingest/formats/harbor-v2.ts';
import { normaliseDistribution, normaliseHarbor, type NormaliseResult } from '../../../src/ingest/normalise.ts';

// Property: whatever arrives, normalisation returns a result and every event it yields is valid.

const dir = new URL('../../fixtures/harbor/', import.meta.url);
const FIXTURES: unknown[] = readdirSync(dir).filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as unknown);

const CONTENT_TYPES = ['application/json', 'application/cloudevents+json', 'application/json; charset=utf-8', '', 'text/plain'];
const TYPES = [
  'PUSH_ARTIFACT', 'DELETE_ARTIFACT', 'PULL_ARTIFACT', 'SCANNING_COMPLETED', 'pushImage', 'deleteImage', 'pullImage',
  'harbor.artifact.pushed', 'harbor.artifact.deleted', 'harbor.scan.completed', 'push', 'delete', 'pull', 'mount', '__proto__',
];
const DIGEST = 'sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb';

// Values likely to matter at any position: near-valid references, edge numbers, types, containers.
const interesting = fc.oneof(
  fc.constantFrom(...TYPES, DIGEST, DIGEST.toUpperCase(), 'sha256:', '', 'latest', 'a/b/c', 'A/B', '../x', null, 0, -1, 1.5, 1e300, Number.NaN),
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.anything({ maxDepth: 2, maxKeys: 4, withNullPrototype: true, withBoxedValues: true, withSparseArray: true }),
);

type Path = (string | number)[];

function pathsOf(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (isContainer(value) && out.length < 500) {
    for (const [k, v] of Object.entries(value)) pathsOf(v, [...prefix, Array.isArray(value) ? Number(k) : k], out);
  }
  return out;
}

function isContainer(v: unknown): v is object {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return Array.isArray(v) || proto === Object.prototype || proto === null;
}

/** Set or delete the value at `path` in a structured clone of `root`. */
function mutate(root: unknown, path: Path, op: 'set' | 'delete', value: unknown): unknown {
  if (path.length === 0) return op === 'set' ? value : undefined;
  let parent = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (op === 'delete') delete parent[last];
  else parent[last] = value;
  return root;
}

const mutated = fc.tuple(
  fc.nat(FIXTURES.length - 1),
  fc.array(fc.tuple(fc.nat(), fc.constantFrom('set', 'delete') as fc.Arbitrary<'set' | 'delete'>, interesting), { minLength: 1, maxLength: 4 }),
).map(([i, ops]) => {
  let body = structuredClone(FIXTURES[i]);
  for (const [n, op, value] of ops) {
    const paths = pathsOf(body);
    body = mutate(body, paths[n % paths.length]!, op, value);
  }
  return body;
});

const bodies = fc.oneof({ arbitrary: mutated, weight: 3 }, { arbitrary: interesting, weight: 1 });

function assertSound(r: NormaliseResult): void {
  assert.ok(['events', 'ignored', 'invalid'].includes(r.kind));
  if (r.kind === 'events') {
    assert.ok(r.events.length > 0);
    for (const e of r.events) ArtifactEventSchema.parse(e);
  }
  if (r.kind === 'invalid') {
    assert.ok(r.issues.length > 0);
    for (const i of r.issues) assert.equal(typeof i.path, 'string');
  }
}

describe('normalise fuzz', () => {
  it('normaliseHarbor never throws and only yields valid events', () => {
    let events = 0;
    fc.assert(fc.property(bodies, fc.constantFrom(...CONTENT_TYPES), fc.boolean(), (body, contentType, rawEmpty) => {
      const r = normaliseHarbor(body, { sourceId: 'src', contentType, receivedAt: new Date(), rawEmpty: rawEmpty && body === undefined });
      assertSound(r);
      if (r.kind === 'events') events++;
    }), { numRuns: 5000, seed: 20240102 });
    assert.ok(events > 100, `only ${events} runs produced events: the mutations are too destructive to test much`);
  });

  it('normaliseDistribution never throws and only yields valid events', () => {
    let events = 0;
    fc.assert(fc.property(bodies, (body) => {
      const r = normaliseDistribution(body, { sourceId: 'src', receivedAt: new Date() });
      assertSound(r);
      if (r.kind === 'events') events++;
    }), { numRuns: 4000, seed: 20240103 });
    assert.ok(events > 20, `only ${events} runs produced events`);
  });

  it('unseeded runs hold too', () => {
    fc.assert(fc.property(bodies, fc.constantFrom(...CONTENT_TYPES), (body, contentType) => {
      assertSound(normaliseHarbor(body, { sourceId: 'src', contentType, receivedAt: new Date() }));
      assertSound(normaliseDistribution(body, { sourceId: 'src', receivedAt: new Date() }));
    }), { numRuns: 2000 });
  });

  // The fast check stands in for the schemas on payloads that pass, so it must pass exactly those.
  it('the hand-written envelope check accepts exactly what the Harbor schemas accept', () => {
    const agree = (body: unknown) => {
      const fast = isHarborEnvelope(body);
      assert.equal(fast, HarborV2PayloadSchema.safeParse(body).success, `v2 schema disagrees on ${String(JSON.stringify(body))}`);
      assert.equal(fast, HarborV1PayloadSchema.safeParse(body).success, `v1 schema disagrees on ${String(JSON.stringify(body))}`);
      return fast;
    };
    const base = FIXTURES.find((f) => (f as { type?: unknown }).type === 'PUSH_ARTIFACT') as Record<string, unknown>;
    assert.ok(base, 'a PUSH_ARTIFACT fixture');
    const at = (path: Path, value: unknown, op: 'set' | 'delete' = 'set') => mutate(structuredClone(base), path, op, value);
    const resource = (base['event_data'] as { resources: unknown[] }).resources[0];
    const edges: unknown[] = [
      base, at(['occur_at'], 1.5), at(['occur_at'], -1), at(['occur_at'], MAX_UNIX_SECONDS), at(['occur_at'], MAX_UNIX_SECONDS + 1),
      at(['occur_at'], Number.NaN), at(['occur_at'], null), at(['occur_at'], undefined, 'delete'), at(['occur_at'], '1700000000'),
      at(['type'], ''), at(['type'], Object('PUSH_ARTIFACT')), at(['operator'], 7), at(['operator'], null),
      at(['event_data', 'resources'], []), at(['event_data', 'resources'], Array.from({ length: MAX_RESOURCES }, () => resource)),
      at(['event_data', 'resources'], Array.from({ length: MAX_RESOURCES + 1 }, () => resource)),
      at(['event_data', 'resources'], [, resource]), at(['event_data', 'resources', 0], null), at(['event_data', 'resources', 0, 'tag'], 1),
      at(['event_data', 'resources', 0, 'digest'], {}), at(['event_data', 'resources', 0, 'resource_url'], 5),
      at(['event_data', 'repository', 'name'], false), at(['event_data', 'repository', 'namespace'], []),
      at(['event_data', 'repository', 'repo_type'], 0), at(['event_data', 'repository', 'repo_full_name'], undefined, 'delete'),
      at(['event_data', 'repository', 'repo_full_name'], ''), at(['event_data', 'repository', 'date_created'], Number.POSITIVE_INFINITY),
      at(['event_data', 'repository', 'date_created'], 1.25), at(['event_data', 'repository'], []), at(['event_data'], []),
      Object.assign(Object.create(null), base), [], null, 'PUSH_ARTIFACT',
    ];
    let passed = 0;
    for (const body of edges) if (agree(body)) passed++;
    assert.ok(passed >= 6 && passed < edges.length, `edge cases passed: ${passed}`);

    let accepted = 0;
    let refused = 0;
    fc.assert(fc.property(bodies, (body) => {
      if (agree(body)) accepted++;
      else refused++;
    }), { numRuns: 5000, seed: 20261124 });
    assert.ok(accepted > 300 && refused > 300, `accepted ${accepted}, refused ${refused}: too few of one kind to compare`);
  });
});
