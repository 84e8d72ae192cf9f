import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TargetSchema, type TargetConfig } from '../../../src/config/schema.ts';
import { importedPolicyId, mapHarborPolicies, registryHost, targetHost } from '../../../src/policy/importer.ts';
import { harborMessage, nextPage, type HarborRegistry } from '../../../src/policy/harbor-api.ts';

const targets: TargetConfig[] = [
  TargetSchema.parse({ id: 'swr-bj4', kind: 'swr', region: 'cn-north-4', credentials: { accessKey: 'AK', secretKey: 'SK' } }),
  TargetSchema.parse({ id: 'backup', kind: 'registry', url: 'https://registry.example.org' }),
  TargetSchema.parse({ id: 'lab', kind: 'registry', url: 'http://10.0.0.5:5000' }),
];

const registries: HarborRegistry[] = [
  { id: 1, name: 'swr-beijing', url: 'https://swr.cn-north-4.myhuaweicloud.com', type: 'huawei-SWR' },
  { id: 2, name: 'backup', url: 'https://REGISTRY.example.org:443/', type: 'docker-registry' },
  { id: 3, name: 'dockerhub', url: 'https://hub.docker.com', type: 'docker-hub' },
  { id: 4, name: 'lab', url: '10.0.0.5:5000', type: 'docker-registry' },
];

const LOCAL = { id: 0, name: 'Local', url: 'http://core:8080', type: 'harbor' };
const reg = (id: number) => (id === 0 ? LOCAL : registries.find((r) => r.id === id)!);

/** A Harbor 2.x list entry (zero values omitted, as go-swagger renders them). */
function v2(id: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id, name: `policy-${id}`, src_registry: LOCAL, dest_registry: reg(1), enabled: true, override: true,
    dest_namespace_replace_count: -1, speed: 0, copy_by_chunk: false,
    trigger: { type: 'event_based', trigger_settings: {} }, ...extra,
  };
}

function run(policies: unknown[]) {
  return mapHarborPolicies({ sourceId: 'harbor-prod', targets, policies, registries });
}

function skipReason(policies: unknown[]): string {
  const r = run(policies);
  assert.equal(r.imported.length, 0, `expected a skip, got ${JSON.stringify(r.imported)}`);
  assert.equal(r.skipped.length, 1);
  return r.skipped[0]!.reason;
}

describe('registryHost / targetHost', () => {
  it('normalises scheme, case, default ports and trailing paths', () => {
    assert.equal(registryHost('https://REGISTRY.example.org:443/'), 'registry.example.org');
    assert.equal(registryHost('http://registry.example.org:80'), 'registry.example.org');
    assert.equal(registryHost('registry.example.org'), 'registry.example.org');
    assert.equal(registryHost('10.0.0.5:5000'), '10.0.0.5:5000');
    assert.equal(registryHost('https://x.example:8443/v2/'), 'x.example:8443');
    assert.equal(registryHost('::not a url'), undefined);
  });
  it('derives the SWR registry host from the region', () => {
    assert.equal(targetHost(targets[0]!), 'swr.cn-north-4.myhuaweicloud.com');
    assert.equal(targetHost(TargetSchema.parse({ id: 'x', kind: 'swr', region: 'ap-southeast-1', domain: 'myhuaweicloud.eu', credentials: { accessKey: 'AK', secretKey: 'SK' } })), 'swr.ap-southeast-1.myhuaweicloud.eu');
    assert.equal(targetHost(TargetSchema.parse({ id: 'x', kind: 'swr', registryUrl: 'https://swr.private.example', apiUrl: 'https://api.example', project: 'p', credentials: { accessKey: 'AK', secretKey: 'SK' } })), 'swr.private.example');
  });
});

describe('mapHarborPolicies', () => {
  it('keeps a push, event-based policy to an SWR target and maps every field', () => {
    const r = run([v2(7, {
      description: 'prod to SWR',
      dest_namespace: 'myorg', dest_namespace_replace_count: 1,
      filters: [
        { type: 'name', value: 'library/**' },
        { type: 'tag', value: 'v*', decoration: 'matches' },
        { type: 'label', value: ['release'], decoration: 'excludes' },
        { type: 'resource', value: 'image' },
      ],
      deletion: true, replicate_deletion: true, speed: 2048, copy_by_chunk: true,
    })]);
    assert.deepEqual(r.skipped, []);
    assert.deepEqual(r.imported, [{
      id: 'harbor-harbor-prod-7', name: 'policy-7', description: 'prod to SWR', enabled: true,
      src_registry: 'harbor-prod', dest_registry: 'swr-bj4', dest_namespace: 'myorg', dest_namespace_replace_count: 1,
      filters: [
        { type: 'name', value: 'library/**' },
        { type: 'tag', value: 'v*', decoration: 'matches' },
        { type: 'label', value: ['release'], decoration: 'excludes' },
        { type: 'resource', value: 'image' },
      ],
      trigger: { type: 'event_based' }, deletion: true, override: true, speed: 2048, copy_by_chunk: true, referrers: false,
    }]);
    assert.equal(importedPolicyId('harbor-prod', 7), 'harbor-harbor-prod-7');
  });

  it('reads omitted booleans as false (Harbor 2.x omits zero values) and keeps disabled policies', () => {
    const p = v2(8);
    delete p.enabled;
    delete p.override;
    const [imported] = run([p]).imported;
    assert.equal(imported!.enabled, false);
    assert.equal(imported!.override, false);
    assert.equal(imported!.deletion, false);
  });

  it('takes replicate_deletion, falling back to deletion (1.10 and early 2.x)', () => {
    assert.equal(run([v2(1, { replicate_deletion: true })]).imported[0]!.deletion, true);
    assert.equal(run([v2(1, { deletion: true })]).imported[0]!.deletion, true);
  });

  it('keeps a scheduled policy with its cron', () => {
    const [p] = run([v2(9, { trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 2 * * *' } } })]).imported;
    assert.deepEqual(p!.trigger, { type: 'scheduled', trigger_settings: { cron: '0 0 2 * * *' } });
  });

  it('drops empty decorations and decorations Harbor puts on name filters', () => {
    const [p] = run([v2(1, { filters: [{ type: 'name', value: 'a/**', decoration: '' }, { type: 'tag', value: '', decoration: '' }, { type: 'name', value: 'b/*', decoration: 'matches' }] })]).imported;
    assert.deepEqual(p!.filters, [{ type: 'name', value: 'a/**' }, { type: 'tag', value: '' }, { type: 'name', value: 'b/*' }]);
  });

  it('matches registry targets by normalised host, including Harbor URLs without a scheme', () => {
    assert.equal(run([v2(1, { dest_registry: reg(2) })]).imported[0]!.dest_registry, 'backup');
    assert.equal(run([v2(1, { dest_registry: reg(4) })]).imported[0]!.dest_registry, 'lab');
  });

  it('prefers the registry list over the embedded dest_registry', () => {
    // Harbor 1.10 and 2.x embed the registry; the list is authoritative when both exist.
    assert.equal(run([v2(1, { dest_registry: { id: 2 } })]).imported[0]!.dest_registry, 'backup');
  });

  it('maps a v1.10-shaped policy (all fields present, null filters, no replace count)', () => {
    const r = run([{
      id: 3, name: 'legacy', description: '', creator: 'admin', src_registry: { ...LOCAL, token_service_url: '' }, dest_registry: reg(2),
      dest_namespace: 'mirror', filters: null, trigger: { type: 'event_based', trigger_settings: null },
      deletion: true, override: false, enabled: true, creation_time: '2020-01-01T00:00:00Z', update_time: '2020-01-01T00:00:00Z',
    }]);
    assert.deepEqual(r.skipped, []);
    const p = r.imported[0]!;
    assert.equal(p.dest_namespace_replace_count, -1);
    assert.equal(p.dest_namespace, 'mirror');
    assert.equal(p.deletion, true);
    assert.equal(p.override, false);
    assert.deepEqual(p.filters, []);
    assert.equal('description' in p, false);
  });

  it('skips pull-mode policies', () => {
    assert.match(skipReason([v2(1, { src_registry: reg(3), dest_registry: LOCAL })]), /pull-mode policy \(source is registry "dockerhub"/);
  });
  it('skips manual policies, and a missing trigger counts as manual', () => {
    assert.match(skipReason([v2(1, { trigger: { type: 'manual' } })]), /^manual trigger/);
    assert.match(skipReason([v2(1, { trigger: undefined })]), /^manual trigger/);
  });
  it('matches an SWR Enterprise target without region by its instance registryUrl, as the replicator resolves it', () => {
    const ent = TargetSchema.parse({ id: 'swr-ee', kind: 'swr', edition: 'enterprise', registryUrl: 'https://team-a.swr.example.eu', project: 'p', credentials: { accessKey: 'AK', secretKey: 'SK' } });
    assert.equal(targetHost(ent), 'team-a.swr.example.eu');
    const instance: HarborRegistry = { id: 9, name: 'swr-ee', url: 'https://team-a.swr.example.eu', type: 'huawei-SWR' };
    const r = mapHarborPolicies({ sourceId: 'harbor-prod', targets: [...targets, ent], policies: [v2(1, { dest_registry: instance })], registries: [...registries, instance] });
    assert.deepEqual(r.skipped, []);
    assert.equal(r.imported[0]!.dest_registry, 'swr-ee');
  });
  it('skips policies whose destination is no configured target', () => {
    assert.match(skipReason([v2(1, { dest_registry: reg(3) })]), /"dockerhub" \(https:\/\/hub\.docker\.com\) matches no configured target \(by host hub\.docker\.com\)/);
  });
  it('skips a destination several targets share', () => {
    const twin = TargetSchema.parse({ id: 'swr-bj4-b', kind: 'swr', region: 'cn-north-4', project: 'other', credentials: { accessKey: 'AK', secretKey: 'SK' } });
    const r = mapHarborPolicies({ sourceId: 's', targets: [...targets, twin], policies: [v2(1)], registries });
    assert.match(r.skipped[0]!.reason, /matches several targets \(swr-bj4, swr-bj4-b\)/);
  });
  it('skips Helm chart replication', () => {
    assert.match(skipReason([v2(1, { filters: [{ type: 'resource', value: 'chart' }] })]), /Helm charts/);
  });
  it('skips a policy the model rejects, naming the field', () => {
    assert.match(skipReason([v2(1, { trigger: { type: 'scheduled', trigger_settings: { cron: '* * * * * *' } } })]), /trigger\.trigger_settings\.cron: .*seconds field must be 0/);
    assert.match(skipReason([v2(1, { dest_namespace: 'Bad_Name!' })]), /dest_namespace:/);
  });
  it('skips an entry it cannot read, keeping what it can of id and name', () => {
    const r = run([{ id: 'x', name: 'odd' }, { name: 'no id' }]);
    assert.deepEqual(r.skipped.map((s) => [s.harborId, s.name]), [[null, 'odd'], [null, 'no id']]);
    assert.match(r.skipped[0]!.reason, /shape the importer does not understand \(id:/);
  });
  it('reports kept and skipped together, in Harbor order', () => {
    const r = run([v2(1), v2(2, { trigger: { type: 'manual' } }), v2(3, { dest_registry: reg(2) })]);
    assert.deepEqual(r.imported.map((p) => p.id), ['harbor-harbor-prod-1', 'harbor-harbor-prod-3']);
    assert.deepEqual(r.skipped.map((s) => s.harborId), [2]);
  });
});

describe('Harbor paging and errors', () => {
  it('follows rel="next" in Harbor 2.x Link headers (" , " separated, relative URLs)', () => {
    const link = '</api/v2.0/replication/policies?page=1&page_size=2>; rel="prev" , </api/v2.0/replication/policies?page=3&page_size=2>; rel="next"';
    assert.equal(nextPage(link, 2), 3);
    assert.equal(nextPage('</api/v2.0/registries?page=1&page_size=2>; rel="prev"', 2), undefined);
    assert.equal(nextPage(undefined, 1), undefined);
  });
  it('follows 1.10 Link headers and never goes backwards', () => {
    assert.equal(nextPage('</api/replication/policies?page=1&page_size=2>; rel="prev", </api/replication/policies?page=3&page_size=2>; rel="next"', 2), 3);
    assert.equal(nextPage('</api/x?page=1>; rel="next"', 4), 5);
  });
  it('reads both error shapes', () => {
    assert.equal(harborMessage('{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized"}]}'), 'UNAUTHORIZED: unauthorized');
    assert.equal(harborMessage('{"code":401,"message":"UnAuthorized"}\n'), 'UnAuthorized');
    assert.equal(harborMessage('404 page not found\n'), '404 page not found');
  });
});
