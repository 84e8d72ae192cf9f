import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ArtifactEventSchema } from '../../../src/ingest/event.ts';
import { normaliseDistribution, type NormaliseResult } from '../../../src/ingest/normalise.ts';

const fixture = (name: string): { events: Record<string, unknown>[] } =>
  JSON.parse(readFileSync(new URL(`../../fixtures/harbor/${name}.json`, import.meta.url), 'utf8')) as { events: Record<string, unknown>[] };

const A = 'sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb';
const D = 'sha256:18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4';
const receivedAt = new Date('2024-01-02T03:04:05.678Z');
const run = (body: unknown): NormaliseResult => normaliseDistribution(body, { sourceId: 'reg', receivedAt });

describe('distribution notifications', () => {
  it('a manifest push gives one push event; the blob pushes before it are ignored', () => {
    const r = run(fixture('distribution-push'));
    assert.equal(r.kind, 'events');
    if (r.kind !== 'events') return;
    assert.equal(r.format, 'distribution');
    assert.equal(r.type, 'push');
    assert.equal(r.events.length, 1);
    const e = ArtifactEventSchema.parse(r.events[0]);
    assert.deepEqual(e, {
      schema: 1,
      id: 'e1b2c3d4-0003',
      sourceId: 'reg',
      action: 'push',
      repository: 'team/app',
      digest: A,
      tag: 'v1.0.0',
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      occurredAt: '2023-11-15T06:13:20.402Z',
      receivedAt: '2024-01-02T03:04:05.678Z',
      format: 'distribution',
      sourceType: 'push',
      operator: 'ci',
      resourceUrl: `https://registry.example.com/v2/team/app/manifests/${A}`,
    });
  });

  it('only blob pushes → ignored', () => {
    const body = fixture('distribution-push');
    body.events = body.events.slice(0, 2);
    assert.deepEqual(run(body), { kind: 'ignored', format: 'distribution', type: 'push' });
  });

  it('manifest delete by digest and tag delete give delete events', () => {
    const r = run(fixture('distribution-delete'));
    assert.equal(r.kind, 'events');
    if (r.kind !== 'events') return;
    assert.equal(r.type, 'delete');
    assert.deepEqual(r.events.map((e) => [e.id, e.action, e.digest, e.tag]), [
      ['e1b2c3d4-0004', 'delete', D, undefined],
      ['e1b2c3d4-0005', 'delete', undefined, 'v0.9.0'],
    ]);
    for (const e of r.events) ArtifactEventSchema.parse(e);
  });

  it('a repository delete (no digest, no tag) is ignored', () => {
    const body = { events: [{ id: 'x', timestamp: '2024-01-01T00:00:00Z', action: 'delete', target: { repository: 'team/app' } }] };
    assert.deepEqual(run(body), { kind: 'ignored', format: 'distribution', type: 'delete' });
  });

  it('pull and mount are ignored', () => {
    assert.deepEqual(run(fixture('distribution-pull')), { kind: 'ignored', format: 'distribution', type: 'mount,pull' });
  });

  it('a push with a tag but no media type is still a manifest push', () => {
    const body = { events: [{ id: 'y', action: 'push', target: { digest: A, repository: 'a/b', tag: 'v1' } }] };
    const r = run(body);
    assert.equal(r.kind === 'events' && r.events[0]?.occurredAt, receivedAt.toISOString());
  });

  it('the same envelope gives the same ids (retries)', () => {
    const a = run(fixture('distribution-push'));
    const b = run(fixture('distribution-push'));
    assert.deepEqual(a.kind === 'events' && a.events.map((e) => e.id), b.kind === 'events' && b.events.map((e) => e.id));
  });

  it('rejects bad envelopes and bad manifest events with paths', () => {
    assert.deepEqual(run({}).kind, 'invalid');
    assert.deepEqual(run(null).kind, 'invalid');
    const body = fixture('distribution-push');
    delete (body.events[2]!['target'] as Record<string, unknown>)['repository'];
    const r = run(body);
    assert.deepEqual(r.kind === 'invalid' && r.issues.map((i) => i.path), ['events.2.target.repository']);
    const noId = fixture('distribution-push');
    delete noId.events[2]!['id'];
    const r2 = run(noId);
    assert.deepEqual(r2.kind === 'invalid' && r2.issues.map((i) => i.path), ['events.2.id']);
    const badTs = fixture('distribution-delete');
    badTs.events[0]!['timestamp'] = 'not a time';
    const r3 = run(badTs);
    assert.deepEqual(r3.kind === 'invalid' && r3.issues.map((i) => i.path), ['events.0.timestamp']);
    const noAction = { events: [{ id: 'z' }] };
    const r4 = run(noAction);
    assert.deepEqual(r4.kind === 'invalid' && r4.issues.map((i) => i.path), ['events.0.action']);
  });

  it('an empty envelope is ignored', () => {
    assert.deepEqual(run({ events: [] }), { kind: 'ignored', format: 'distribution', type: 'empty' });
  });
});
