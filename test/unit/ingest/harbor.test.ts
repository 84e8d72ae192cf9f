import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ArtifactEventSchema, type ArtifactEvent } from '../../../src/ingest/event.ts';
import { eventIdOf } from '../../../src/ingest/event-id.ts';
import { isoOfUnixSeconds, normaliseHarbor, type NormaliseResult } from '../../../src/ingest/normalise.ts';
import { MAX_UNIX_SECONDS } from '../../../src/ingest/formats/harbor-v1.ts';
import fc from 'fast-check';

const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`../../fixtures/harbor/${name}.json`, import.meta.url), 'utf8')) as Record<string, unknown>;

const A = 'sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb';
const B = 'sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d';
const C = 'sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6';
const D = 'sha256:18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4';
const E = 'sha256:3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea';

const receivedAt = new Date('2024-01-02T03:04:05.678Z');
const JSON_CT = 'application/json';
const CE_CT = 'application/cloudevents+json';

function run(body: unknown, contentType = JSON_CT, extra: { rawEmpty?: boolean; sourceId?: string } = {}): NormaliseResult {
  return normaliseHarbor(body, { sourceId: extra.sourceId ?? 'harbor-prod', contentType, receivedAt, ...(extra.rawEmpty !== undefined && { rawEmpty: extra.rawEmpty }) });
}

function events(r: NormaliseResult): ArtifactEvent[] {
  assert.equal(r.kind, 'events', `expected events, got ${JSON.stringify(r)}`);
  if (r.kind !== 'events') return [];
  for (const e of r.events) ArtifactEventSchema.parse(e);
  return r.events;
}

function issues(r: NormaliseResult): { path: string; message: string }[] {
  assert.equal(r.kind, 'invalid', `expected invalid, got ${JSON.stringify(r)}`);
  return r.kind === 'invalid' ? r.issues : [];
}

describe('Harbor v2 Default', () => {
  it('push by tag gives one push event with tag, digest, times and operator', () => {
    const r = run(fixture('v2-push-by-tag'));
    assert.equal(r.kind, 'events');
    assert.equal(r.kind === 'events' && r.format, 'harbor-v2');
    assert.equal(r.kind === 'events' && r.type, 'PUSH_ARTIFACT');
    const [e, ...rest] = events(r);
    assert.equal(rest.length, 0);
    assert.deepEqual(e, {
      schema: 1,
      id: eventIdOf({ sourceId: 'harbor-prod', type: 'PUSH_ARTIFACT', repository: 'library/nginx', digest: A, tag: '1.25.3', occurAt: 1700000000 }),
      sourceId: 'harbor-prod',
      action: 'push',
      repository: 'library/nginx',
      digest: A,
      tag: '1.25.3',
      occurredAt: '2023-11-14T22:13:20.000Z',
      receivedAt: '2024-01-02T03:04:05.678Z',
      format: 'harbor-v2',
      sourceType: 'PUSH_ARTIFACT',
      operator: 'admin',
      resourceUrl: 'harbor.example.com/library/nginx:1.25.3',
    });
  });

  it('push by digest (tag equal to the digest) carries no tag', () => {
    const [e] = events(run(fixture('v2-push-by-digest')));
    assert.equal(e?.digest, B);
    assert.equal(e?.tag, undefined);
    assert.equal('tag' in (e ?? {}), false);
    assert.equal(e?.operator, 'robot$ci');
  });

  it('push by digest with an empty tag carries no tag', () => {
    const body = fixture('v2-push-by-digest');
    const data = body['event_data'] as { resources: { tag: string }[] };
    data.resources[0]!.tag = '';
    const [e] = events(run(body));
    assert.equal(e?.tag, undefined);
    assert.equal(e?.digest, B);
  });

  it('DELETE_ARTIFACT whose tag is the digest gives a delete by digest', () => {
    const [e, ...rest] = events(run(fixture('v2-delete-artifact')));
    assert.equal(rest.length, 0);
    assert.equal(e?.action, 'delete');
    assert.equal(e?.digest, C);
    assert.equal(e?.tag, undefined);
    assert.equal(e?.sourceType, 'DELETE_ARTIFACT');
  });

  it('DELETE_ARTIFACT of a tagged artifact keeps tag and digest', () => {
    const [e] = events(run(fixture('v2-delete-artifact-tagged')));
    assert.equal(e?.action, 'delete');
    assert.equal(e?.digest, D);
    assert.equal(e?.tag, 'old');
  });

  it('keeps nested repository paths and accepts a missing date_created', () => {
    const body = fixture('v2-push-nested-no-date');
    assert.equal('date_created' in (body['event_data'] as { repository: object }).repository, false);
    const [e] = events(run(body));
    assert.equal(e?.repository, 'proj/a/b/img');
    assert.equal(e?.digest, E);
    assert.equal(e?.tag, 'v2');
  });

  it('accepts unknown extra fields at every level', () => {
    const [e] = events(run(fixture('v2-push-extra-fields')));
    assert.equal(e?.repository, 'library/app');
    assert.equal(e?.tag, 'latest');
  });

  it('content type parameters do not matter', () => {
    assert.equal(run(fixture('v2-push-by-tag'), 'application/json; charset=utf-8').kind, 'events');
  });

  it('the same payload (a retry) gives the same id; another occur_at gives another', () => {
    const a = events(run(fixture('v2-push-by-tag')))[0]?.id;
    const b = events(run(fixture('v2-push-by-tag')))[0]?.id;
    const later = fixture('v2-push-by-tag');
    later['occur_at'] = 1700000001;
    const c = events(run(later))[0]?.id;
    assert.equal(a, b);
    assert.notEqual(a, c);
    assert.match(a ?? '', /^[a-f0-9]{64}$/);
  });

  it('the id depends on the source id', () => {
    const a = events(run(fixture('v2-push-by-tag')))[0]?.id;
    const b = events(run(fixture('v2-push-by-tag'), JSON_CT, { sourceId: 'harbor-dr' }))[0]?.id;
    assert.notEqual(a, b);
  });

  it('missing occur_at falls back to the receive time', () => {
    const body = fixture('v2-push-by-tag');
    delete body['occur_at'];
    const [e] = events(run(body));
    assert.equal(e?.occurredAt, receivedAt.toISOString());
  });

  for (const name of ['v2-pull-artifact', 'v2-scanning-completed', 'v2-quota-exceed', 'v2-replication', 'v2-tag-retention']) {
    it(`ignores ${name}`, () => {
      const body = fixture(name);
      assert.deepEqual(run(body), { kind: 'ignored', format: 'harbor-v2', type: body['type'] });
    });
  }

  for (const type of ['SCANNING_FAILED', 'SCANNING_STOPPED', 'QUOTA_WARNING', 'UPLOAD_CHART', 'DOWNLOAD_CHART', 'DELETE_CHART']) {
    it(`ignores ${type} whatever its event_data`, () => {
      assert.deepEqual(run({ type, occur_at: 1, operator: '', event_data: { custom_attributes: {} } }), { kind: 'ignored', format: 'harbor-v2', type });
    });
  }

  it('ignores a type it does not know yet instead of rejecting it', () => {
    // The metric label stays bounded whatever the sender invents; the sender's type is kept apart.
    assert.deepEqual(run({ type: 'SOMETHING_NEW', occur_at: 1 }), { kind: 'ignored', format: 'harbor-v2', type: 'other', senderType: 'SOMETHING_NEW' });
  });
});

describe('Harbor v1.10', () => {
  it('pushImage gives one push event', () => {
    const r = run(fixture('v1-push-image'));
    assert.equal(r.kind === 'events' && r.format, 'harbor-v1');
    const [e, ...rest] = events(r);
    assert.equal(rest.length, 0);
    assert.equal(e?.action, 'push');
    assert.equal(e?.repository, 'library/redis');
    assert.equal(e?.digest, A);
    assert.equal(e?.tag, 'latest');
    assert.equal(e?.sourceType, 'pushImage');
    assert.equal(e?.format, 'harbor-v1');
    assert.equal(e?.occurredAt, '2020-09-13T12:26:40.000Z');
  });

  it('deleteImage listing 3 tags gives 3 delete events with distinct ids', () => {
    const list = events(run(fixture('v1-delete-image')));
    assert.deepEqual(list.map((e) => e.tag), ['5.0', '6.0', 'latest']);
    assert.ok(list.every((e) => e.action === 'delete' && e.digest === undefined && e.repository === 'library/redis'));
    assert.equal(new Set(list.map((e) => e.id)).size, 3);
    assert.deepEqual(list.map((e) => e.resourceUrl), ['5.0', '6.0', 'latest'].map((t) => `harbor.example.com/library/redis:${t}`));
  });

  it('deleteImage with digests per tag keeps them', () => {
    const body = fixture('v1-delete-image');
    const res = (body['event_data'] as { resources: Record<string, string>[] }).resources;
    res[0]!['digest'] = A;
    res[1]!['digest'] = B;
    const list = events(run(body));
    assert.deepEqual(list.map((e) => e.digest), [A, B, undefined]);
  });

  it('pushImage with an empty tag (by digest) carries no tag', () => {
    const body = fixture('v1-push-image');
    (body['event_data'] as { resources: { tag: string }[] }).resources[0]!.tag = '';
    const [e] = events(run(body));
    assert.equal(e?.tag, undefined);
  });

  it('accepts resources: null only for ignored types', () => {
    assert.equal(run({ type: 'pullImage', occur_at: 1, event_data: { resources: null, repository: null }, operator: '' }).kind, 'ignored');
    const bad = issues(run({ type: 'pushImage', occur_at: 1, event_data: { resources: null, repository: { repo_full_name: 'a/b' } }, operator: '' }));
    assert.deepEqual(bad.map((i) => i.path), ['event_data.resources']);
  });

  for (const type of ['pullImage', 'scanningCompleted', 'scanningFailed', 'uploadChart', 'downloadChart', 'deleteChart', 'projectQuota', 'testEndpoint']) {
    it(`ignores ${type}`, () => {
      assert.deepEqual(run({ type, occur_at: 1600000000, event_data: {}, operator: 'admin' }), { kind: 'ignored', format: 'harbor-v1', type });
    });
  }

  it('ignores the pullImage fixture', () => {
    assert.deepEqual(run(fixture('v1-pull-image')), { kind: 'ignored', format: 'harbor-v1', type: 'pullImage' });
  });
});

describe('Harbor CloudEvents', () => {
  it('harbor.artifact.pushed uses the CloudEvents id and time', () => {
    const r = run(fixture('ce-artifact-pushed'), CE_CT);
    assert.equal(r.kind === 'events' && r.format, 'cloudevents');
    assert.equal(r.kind === 'events' && r.type, 'harbor.artifact.pushed');
    const [e] = events(r);
    assert.equal(e?.id, '4b2f89a6-548d-4c12-9993-a1f5790b97d2');
    assert.equal(e?.action, 'push');
    assert.equal(e?.digest, A);
    assert.equal(e?.tag, '1.25.3');
    assert.equal(e?.occurredAt, '2023-11-14T22:13:20.000Z');
    assert.equal(e?.operator, 'admin');
    assert.equal(e?.format, 'cloudevents');
    assert.equal(e?.sourceType, 'harbor.artifact.pushed');
  });

  it('harbor.artifact.deleted with tag == digest gives a delete by digest', () => {
    const [e] = events(run(fixture('ce-artifact-deleted'), CE_CT));
    assert.equal(e?.action, 'delete');
    assert.equal(e?.digest, C);
    assert.equal(e?.tag, undefined);
    assert.equal(e?.id, '9d0a3f1e-7c2b-4e55-a1d4-2f6b8c9e0a11');
  });

  it('retries (same id, new requestid) give the same event id', () => {
    const first = fixture('ce-artifact-pushed');
    const retry = { ...fixture('ce-artifact-pushed'), requestid: 'another-request' };
    assert.equal(events(run(first, CE_CT))[0]?.id, events(run(retry, CE_CT))[0]?.id);
    const del1 = events(run(fixture('ce-artifact-deleted'), CE_CT))[0]?.id;
    const del2 = events(run(fixture('ce-artifact-deleted'), CE_CT))[0]?.id;
    assert.equal(del1, del2);
  });

  it('is recognised from the body even when sent as application/json', () => {
    const r = run(fixture('ce-artifact-pushed'), JSON_CT);
    assert.equal(r.kind === 'events' && r.format, 'cloudevents');
  });

  it('several resources get id, id#1, id#2', () => {
    const body = fixture('ce-artifact-pushed');
    const data = body['data'] as { resources: object[] };
    data.resources.push({ digest: B, tag: 'b' }, { digest: C, tag: 'c' });
    const ids = events(run(body, CE_CT)).map((e) => e.id);
    assert.deepEqual(ids, ['4b2f89a6-548d-4c12-9993-a1f5790b97d2', '4b2f89a6-548d-4c12-9993-a1f5790b97d2#1', '4b2f89a6-548d-4c12-9993-a1f5790b97d2#2']);
  });

  it('reads data_base64 when data is absent', () => {
    const body = fixture('ce-artifact-pushed');
    body['data_base64'] = Buffer.from(JSON.stringify(body['data'])).toString('base64');
    delete body['data'];
    assert.equal(events(run(body, CE_CT))[0]?.digest, A);
  });

  it('ignores scan, pull, quota, replication and retention types', () => {
    assert.deepEqual(run(fixture('ce-scan-completed'), CE_CT), { kind: 'ignored', format: 'cloudevents', type: 'harbor.scan.completed' });
    for (const type of ['harbor.artifact.pulled', 'harbor.quota.exceeded', 'harbor.replication.status.changed', 'harbor.tag_retention.finished']) {
      assert.deepEqual(run({ ...fixture('ce-scan-completed'), type }, CE_CT), { kind: 'ignored', format: 'cloudevents', type });
    }
  });

  it('rejects a pushed event without id, and a bad time', () => {
    const noId = fixture('ce-artifact-pushed');
    delete noId['id'];
    assert.deepEqual(issues(run(noId, CE_CT)).map((i) => i.path), ['id']);
    assert.deepEqual(issues(run({ ...fixture('ce-artifact-pushed'), time: 'yesterday' }, CE_CT)).map((i) => i.path), ['time']);
  });

  it('reports paths under data', () => {
    const body = fixture('ce-artifact-pushed');
    delete (body['data'] as { repository: Record<string, unknown> }).repository['repo_full_name'];
    assert.deepEqual(issues(run(body, CE_CT)).map((i) => i.path), ['data.repository.repo_full_name']);
  });
});

describe('empty bodies and test requests', () => {
  it('no body at all is the test endpoint', () => {
    assert.deepEqual(run(undefined, '', { rawEmpty: true }), { kind: 'ignored', format: 'unknown', type: 'test' });
    assert.deepEqual(run(undefined, JSON_CT), { kind: 'ignored', format: 'unknown', type: 'test' });
    assert.deepEqual(run({}, JSON_CT), { kind: 'ignored', format: 'unknown', type: 'test' });
  });

  it('rawEmpty wins over whatever body was parsed', () => {
    assert.equal(run({ type: 'PUSH_ARTIFACT' }, JSON_CT, { rawEmpty: true }).kind, 'ignored');
  });
});

describe('validation', () => {
  const push = () => fixture('v2-push-by-tag');
  const data = (b: Record<string, unknown>) => b['event_data'] as { resources: Record<string, unknown>[]; repository: Record<string, unknown> };

  it('a body without type is invalid at "type"', () => {
    assert.deepEqual(issues(run({ occur_at: 1, event_data: {} })).map((i) => i.path), ['type']);
    assert.deepEqual(issues(run({ type: 42 })).map((i) => i.path), ['type']);
  });

  it('missing repo_full_name is invalid at its path', () => {
    const b = push();
    delete data(b).repository['repo_full_name'];
    assert.deepEqual(issues(run(b)).map((i) => i.path), ['event_data.repository.repo_full_name']);
  });

  it('missing event_data or empty resources are invalid', () => {
    const b = push();
    delete b['event_data'];
    assert.deepEqual(issues(run(b)).map((i) => i.path), ['event_data']);
    const c = push();
    data(c).resources = [];
    assert.deepEqual(issues(run(c)).map((i) => i.path), ['event_data.resources']);
  });

  it('a push without digest is invalid; a delete with only a tag is fine', () => {
    const b = push();
    delete data(b).resources[0]!['digest'];
    assert.deepEqual(issues(run(b)).map((i) => i.path), ['event_data.resources.0.digest']);
    const d = fixture('v2-delete-artifact-tagged');
    delete data(d).resources[0]!['digest'];
    const [e] = events(run(d));
    assert.equal(e?.tag, 'old');
    assert.equal(e?.digest, undefined);
  });

  it('a delete with neither digest nor tag is invalid', () => {
    const d = fixture('v2-delete-artifact');
    data(d).resources[0] = { digest: '', tag: '' };
    assert.deepEqual(issues(run(d)).map((i) => i.path), ['event_data.resources.0']);
  });

  it('rejects repositories, tags and digests that are not references', () => {
    for (const repo of ['Library/Nginx', '../etc/passwd', 'a//b', '/abs', 'a/b/', 'host:5000/a', 'x'.repeat(256)]) {
      const b = push();
      data(b).repository['repo_full_name'] = repo;
      assert.deepEqual(issues(run(b)).map((i) => i.path), ['event_data.repository.repo_full_name'], repo);
    }
    for (const tag of ['-lead', 'a/b', 'x'.repeat(129), 'a b']) {
      const b = push();
      data(b).resources[0]!['tag'] = tag;
      assert.deepEqual(issues(run(b)).map((i) => i.path), ['event_data.resources.0.tag'], tag);
    }
    for (const digest of ['sha256:abc', 'SHA256:' + 'a'.repeat(64), 'nocolon', 'sha256:' + 'A'.repeat(64)]) {
      const b = push();
      data(b).resources[0]!['digest'] = digest;
      assert.deepEqual(issues(run(b)).map((i) => i.path), ['event_data.resources.0.digest'], digest);
    }
  });

  it('a tag that is another digest is rejected', () => {
    const b = push();
    data(b).resources[0]!['tag'] = B;
    assert.deepEqual(issues(run(b)).map((i) => i.path), ['event_data.resources.0.tag']);
  });

  it('rejects a non-integer or out-of-range occur_at', () => {
    for (const occur of [-1, 1.5, '1700000000', 1e15]) {
      assert.deepEqual(issues(run({ ...push(), occur_at: occur })).map((i) => i.path), ['occur_at'], String(occur));
    }
  });

  it('rejects non-objects without throwing', () => {
    for (const body of [null, 42, 'text', [], [fixture('v2-push-by-tag')], true]) {
      assert.equal(run(body).kind, 'invalid', JSON.stringify(body));
    }
  });

  it('an empty source id is invalid, not a broken event', () => {
    const bad = issues(run(push(), JSON_CT, { sourceId: '' }));
    assert.ok(bad.some((i) => i.path.endsWith('sourceId')), JSON.stringify(bad));
  });

  it('a time of receipt the event schema cannot hold is invalid, not a broken event', () => {
    const far = normaliseHarbor(push(), { sourceId: 'harbor-prod', contentType: JSON_CT, receivedAt: new Date(Date.UTC(10000, 0, 1)) });
    assert.ok(issues(far).some((i) => i.path.endsWith('receivedAt')), JSON.stringify(far));
    // The same payload received at an ordinary time is fine, and its events satisfy the schema.
    assert.equal(events(run(push())).length, 1);
  });

  it('hostile objects never make it throw', () => {
    const throwing = Object.defineProperty({}, 'type', { enumerable: true, get() { throw new Error('boom'); } });
    const proxy = new Proxy({}, { ownKeys() { throw new Error('boom'); }, get() { throw new Error('boom'); } });
    const cyclic: Record<string, unknown> = { ...push() };
    (cyclic['event_data'] as Record<string, unknown>)['self'] = cyclic;
    assert.equal(run(throwing).kind, 'invalid');
    assert.equal(run(proxy).kind, 'invalid');
    assert.equal(run(cyclic).kind, 'events');
    assert.equal(run(Object.assign(Object.create(null) as object, push())).kind, 'events');
    assert.equal(run({ type: '__proto__' }).kind, 'ignored');
    assert.equal(run({ type: 'constructor' }).kind, 'ignored');
  });

  it('bounds sender-chosen type strings', () => {
    const r = run({ type: 'X'.repeat(1000) });
    assert.equal(r.kind === 'ignored' && r.type, 'other');
    assert.equal(r.kind === 'ignored' && r.senderType?.length, 64);
    const ce = run({ specversion: '1.0', id: 'x', type: `harbor.${'y'.repeat(500)}` });
    assert.deepEqual(ce.kind === 'ignored' && [ce.type, ce.senderType?.length], ['other', 64]);
  });

  it('caps the number of resources', () => {
    const b = push();
    data(b).resources = Array.from({ length: 1001 }, (_, i) => ({ digest: A, tag: `t${i}` }));
    assert.deepEqual(issues(run(b)).map((i) => i.path), ['event_data.resources']);
  });
});

describe('isoOfUnixSeconds', () => {
  it('gives what Date#toISOString gives for every whole second Harbor can send', () => {
    const edges = [0, 1, 59, 86399, 86400, 951_782_400 /* 2000-02-29 */, 4_107_542_400 /* 2100-02-28 */, 4_107_628_800, 1_700_000_000, MAX_UNIX_SECONDS];
    for (const s of edges) assert.equal(isoOfUnixSeconds(s), new Date(s * 1000).toISOString(), `at ${s}`);
    fc.assert(fc.property(fc.integer({ min: 0, max: MAX_UNIX_SECONDS }), (s) => isoOfUnixSeconds(s) === new Date(s * 1000).toISOString()), { numRuns: 20000 });
  });

  it('is what an event carries as occurredAt, also when two webhooks share the second', () => {
    for (const occurAt of [1_700_000_000, 1_700_000_000, 951_782_400]) {
      const [e] = events(run({ ...fixture('v2-push-by-tag'), occur_at: occurAt }));
      assert.equal(e!.occurredAt, new Date(occurAt * 1000).toISOString());
    }
  });
});
