import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PolicySchema, type PolicyInput } from '../../../src/policy/model.ts';
import { planTarget, planTasks, reconcileEventId, reconcilePlan, reconcileTasks, type PlanTarget } from '../../../src/policy/plan.ts';
import { ReplicationTaskSchema, taskId } from '../../../src/replication/task.ts';
import type { ArtifactEvent } from '../../../src/ingest/event.ts';

const NOW = new Date('2024-05-01T10:20:30.456Z');
const DIGEST = 'sha256:' + 'a'.repeat(64);

const policy = (over: Partial<PolicyInput> = {}) => PolicySchema.parse({
  id: 'p1', src_registry: 'harbor', dest_registry: 'swr', dest_namespace: 'myorg', dest_namespace_replace_count: 1,
  filters: [{ type: 'name', value: 'library/**' }, { type: 'tag', value: 'v*' }],
  ...over,
});

const event = (over: Partial<ArtifactEvent> = {}): ArtifactEvent => ({
  schema: 1, id: 'ev-1', sourceId: 'harbor', action: 'push', repository: 'library/nginx', tag: 'v1.2', digest: DIGEST,
  occurredAt: '2024-05-01T10:20:00.000Z', receivedAt: '2024-05-01T10:20:01.000Z', format: 'harbor-v2', sourceType: 'PUSH_ARTIFACT',
  ...over,
});

const targets = new Map<string, PlanTarget>([['swr', { kind: 'swr' }], ['backup', { kind: 'registry', manifestFormat: 'preserve' }]]);

describe('planTasks', () => {
  it('plans a valid task for a matching push', () => {
    const { tasks, skipped } = planTasks(event(), [policy()], targets, NOW);
    assert.deepEqual(skipped, []);
    assert.equal(tasks.length, 1);
    const t = tasks[0]!;
    assert.deepEqual(ReplicationTaskSchema.parse(t), t);
    assert.equal(t.id, taskId('ev-1', 'p1', 'v1.2'));
    assert.equal(t.eventId, 'ev-1');
    assert.equal(t.action, 'push');
    assert.equal(t.origin, 'event');
    assert.equal(t.sourceId, 'harbor');
    assert.equal(t.repository, 'library/nginx');
    assert.equal(t.tag, 'v1.2');
    assert.equal(t.digest, DIGEST);
    assert.equal(t.targetId, 'swr');
    assert.equal(t.destRepository, 'myorg/nginx');
    assert.equal(t.policyId, 'p1');
    assert.equal(t.attempt, 0);
    assert.equal(t.occurredAt, '2024-05-01T10:20:00.000Z');
    assert.equal(t.createdAt, NOW.toISOString());
    assert.deepEqual(t.options, { deletion: false, override: true, referrers: false });
  });

  it('is deterministic: the same event gives the same task id', () => {
    const a = planTasks(event(), [policy()], targets, NOW).tasks[0]!;
    const b = planTasks(event(), [policy()], targets, new Date()).tasks[0]!;
    assert.equal(a.id, b.id);
  });

  it('carries policy options; speed only when > 0; target manifest format as fallback', () => {
    const p = policy({ id: 'p2', dest_registry: 'backup', deletion: true, override: false, referrers: true, platforms: ['linux/amd64'], speed: 2048 });
    const t = planTasks(event(), [p], targets, NOW).tasks[0]!;
    assert.deepEqual(t.options, { deletion: true, override: false, referrers: true, manifestFormat: 'preserve', platforms: ['linux/amd64'], speedKbps: 2048 });
    const q = policy({ manifestFormat: 'docker', speed: 0 });
    assert.deepEqual(planTasks(event(), [q], targets, NOW).tasks[0]!.options, { deletion: false, override: true, referrers: false, manifestFormat: 'docker' });
  });

  it('non-matching name and tag are unmatched (not skipped) with the filter as reason', () => {
    const r1 = planTasks(event({ repository: 'other/nginx' }), [policy()], targets, NOW);
    assert.deepEqual(r1, { tasks: [], skipped: [], unmatched: [{ policyId: 'p1', reason: 'filter:name' }] });
    const r2 = planTasks(event({ tag: 'latest' }), [policy()], targets, NOW);
    assert.deepEqual(r2, { tasks: [], skipped: [], unmatched: [{ policyId: 'p1', reason: 'filter:tag' }] });
  });

  it('disabled, scheduled and manual policies plan nothing from events', () => {
    const r = planTasks(event(), [
      policy({ id: 'off', enabled: false }),
      policy({ id: 'sched', trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 * * * *' } } }),
      policy({ id: 'man', trigger: { type: 'manual' } }),
    ], targets, NOW);
    assert.deepEqual(r.tasks, []);
    assert.deepEqual(r.skipped, []);
    assert.deepEqual(r.unmatched, [
      { policyId: 'off', reason: 'disabled' },
      { policyId: 'sched', reason: 'trigger:scheduled' },
      { policyId: 'man', reason: 'trigger:manual' },
    ]);
  });

  it('ignores policies of another source', () => {
    assert.deepEqual(planTasks(event({ sourceId: 'other' }), [policy()], targets, NOW), { tasks: [], skipped: [], unmatched: [] });
  });

  it('delete events plan only for deletion: true', () => {
    const del = event({ action: 'delete', sourceType: 'DELETE_ARTIFACT' });
    const r1 = planTasks(del, [policy()], targets, NOW);
    assert.deepEqual(r1, { tasks: [], skipped: [], unmatched: [{ policyId: 'p1', reason: 'deletion disabled' }] });
    const r2 = planTasks(del, [policy({ deletion: true })], targets, NOW);
    assert.equal(r2.tasks.length, 1);
    assert.equal(r2.tasks[0]!.action, 'delete');
    assert.equal(r2.tasks[0]!.options.deletion, true);
  });

  it('a digest-only push matches the tag pattern against ""', () => {
    const byDigest = event({ tag: undefined });
    delete byDigest.tag;
    assert.deepEqual(planTasks(byDigest, [policy()], targets, NOW).unmatched, [{ policyId: 'p1', reason: 'filter:tag' }]);
    const any = policy({ filters: [{ type: 'name', value: 'library/**' }, { type: 'tag', value: '*' }] });
    const r = planTasks(byDigest, [any], targets, NOW);
    assert.equal(r.tasks.length, 1);
    assert.equal(r.tasks[0]!.tag, undefined);
    assert.equal(r.tasks[0]!.digest, DIGEST);
    assert.equal(r.tasks[0]!.id, taskId('ev-1', 'p1', DIGEST));
    assert.deepEqual(ReplicationTaskSchema.parse(r.tasks[0]), r.tasks[0]);
  });

  it('a digest sent as the tag (Harbor v2 push by digest) is planned as untagged', () => {
    const e = event({ tag: DIGEST });
    delete e.digest;
    assert.deepEqual(planTasks(e, [policy()], targets, NOW).unmatched, [{ policyId: 'p1', reason: 'filter:tag' }]);
    const t = planTasks(e, [policy({ filters: [{ type: 'tag', value: '' }] })], targets, NOW).tasks[0]!;
    assert.equal(t.tag, undefined);
    assert.equal(t.digest, DIGEST);
    assert.equal(t.id, taskId('ev-1', 'p1', DIGEST));
  });

  it('a rewrite error is skipped with its reason, never thrown, and other policies still plan', () => {
    const bad = policy({ id: 'bad', dest_namespace_replace_count: 5 });
    const r = planTasks(event(), [bad, policy({ id: 'good' })], targets, NOW);
    assert.equal(r.tasks.length, 1);
    assert.equal(r.tasks[0]!.policyId, 'good');
    assert.equal(r.skipped.length, 1);
    assert.equal(r.skipped[0]!.policyId, 'bad');
    assert.match(r.skipped[0]!.reason, /^rewrite: HSB_POLICY_REWRITE .*library\/nginx/);
  });

  it('an invalid SWR name is skipped with HSB_SWR_NAME_INVALID', () => {
    const p = policy({ dest_namespace: '', filters: [] });
    const r = planTasks(event({ repository: '9lib/nginx' }), [p], targets, NOW);
    assert.equal(r.tasks.length, 0);
    assert.match(r.skipped[0]!.reason, /^rewrite: HSB_SWR_NAME_INVALID .*"9lib"/);
  });

  it('an unknown target is skipped', () => {
    assert.deepEqual(planTasks(event(), [policy({ dest_registry: 'nope' })], targets, NOW).skipped, [{ policyId: 'p1', reason: 'unknown target nope' }]);
  });

  it('plans one task per matching policy', () => {
    const r = planTasks(event(), [policy({ id: 'a' }), policy({ id: 'b', dest_registry: 'backup', dest_namespace: '' })], targets, NOW);
    assert.deepEqual(r.tasks.map((t) => [t.policyId, t.targetId, t.destRepository]), [['a', 'swr', 'myorg/nginx'], ['b', 'backup', 'library/nginx']]);
    assert.notEqual(r.tasks[0]!.id, r.tasks[1]!.id);
  });
});

describe('reconcileTasks', () => {
  const listing = [
    { repository: 'library/nginx', tags: [{ tag: 'v1', digest: DIGEST }, { tag: 'latest', digest: DIGEST }, { tag: 'v2', digest: 'sha256:' + 'b'.repeat(64) }] },
    { repository: 'other/redis', tags: [{ tag: 'v1', digest: DIGEST }] },
  ];
  it('plans a push per matching tag with a per-pass event id', () => {
    const tasks = reconcileTasks(policy(), listing, 'swr', NOW);
    assert.deepEqual(tasks.map((t) => `${t.repository}:${t.tag}`), ['library/nginx:v1', 'library/nginx:v2']);
    const eventId = 'reconcile:p1:2024-05-01T10:20';
    assert.equal(reconcileEventId('p1', NOW), eventId);
    for (const t of tasks) {
      assert.deepEqual(ReplicationTaskSchema.parse(t), t);
      assert.equal(t.eventId, eventId);
      assert.equal(t.origin, 'reconcile');
      assert.equal(t.action, 'push');
      assert.equal(t.sourceId, 'harbor');
      assert.equal(t.destRepository, 'myorg/nginx');
      assert.equal(t.createdAt, NOW.toISOString());
    }
    assert.equal(tasks[0]!.id, taskId(eventId, 'p1', 'library/nginx:v1'));
    assert.equal(tasks[1]!.digest, 'sha256:' + 'b'.repeat(64));
  });
  it('the same minute gives the same ids; the next minute new ones', () => {
    const a = reconcileTasks(policy(), listing, 'swr', NOW).map((t) => t.id);
    const b = reconcileTasks(policy(), listing, 'swr', new Date('2024-05-01T10:20:59Z')).map((t) => t.id);
    const c = reconcileTasks(policy(), listing, 'swr', new Date('2024-05-01T10:21:00Z')).map((t) => t.id);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });
  it('plans untagged entries by digest when the tag filter matches ""', () => {
    const p = policy({ filters: [{ type: 'tag', value: '*' }] });
    const tasks = reconcileTasks(p, [{ repository: 'library/nginx', tags: [{ tag: '', digest: DIGEST }] }], 'registry', NOW);
    assert.equal(tasks.length, 1);
    assert.equal(tasks[0]!.tag, undefined);
    assert.equal(tasks[0]!.digest, DIGEST);
  });
  it('disabled policies plan nothing; rewrite failures are reported per repository', () => {
    assert.deepEqual(reconcileTasks(policy({ enabled: false }), listing, 'swr', NOW), []);
    assert.deepEqual(reconcilePlan(policy({ enabled: false }), listing, 'swr', NOW).unmatched, [{ policyId: 'p1', reason: 'disabled' }]);
    const r = reconcilePlan(policy({ dest_namespace_replace_count: 2, filters: [] }), listing, 'swr', NOW);
    assert.equal(r.tasks.length, 0);
    assert.equal(r.skipped.length, 2);
    assert.match(r.skipped[0]!.reason, /^library\/nginx: rewrite: HSB_POLICY_REWRITE/);
  });
  it('scheduled policies reconcile too', () => {
    const p = policy({ trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 * * * *' } } });
    assert.equal(reconcileTasks(p, listing, { kind: 'registry' }, NOW).length, 2);
  });
});

describe('label filters (labels read from Harbor\'s API by the caller)', () => {
  const labelled = (decoration?: 'matches' | 'excludes', value = ['prod']) => policy({ filters: [{ type: 'label', value, ...(decoration ? { decoration } : {}) }] });
  it('without labels (a plain-registry source, or Harbor refused) an event plans nothing and says why, for includes and excludes alike', () => {
    for (const p of [labelled(), labelled('excludes')]) {
      const { tasks, skipped } = planTasks(event(), [p], targets, NOW);
      assert.equal(tasks.length, 0);
      assert.match(skipped[0]!.reason, /label filters need the artifact's labels/);
    }
  });
  it('with labels, `matches` needs every listed label and `excludes` drops an artifact that has them all', () => {
    const plan = (p: ReturnType<typeof labelled>, labels: string[]) => planTasks(event(), [p], targets, NOW, labels).tasks.length;
    assert.equal(plan(labelled(), ['prod', 'team-a']), 1);
    assert.equal(plan(labelled(), ['staging']), 0);
    assert.equal(plan(labelled(), []), 0);
    assert.equal(plan(labelled('matches', ['prod', 'signed']), ['prod']), 0, 'all of the labels, not any');
    assert.equal(plan(labelled('matches', ['prod', 'signed']), ['signed', 'prod']), 1);
    assert.equal(plan(labelled('excludes'), ['prod']), 0);
    assert.equal(plan(labelled('excludes'), ['staging']), 1);
    assert.equal(plan(labelled('excludes', ['prod', 'signed']), ['prod']), 1, 'excludes only what has every label');
    const mismatch = planTasks(event(), [labelled()], targets, NOW, ['staging']);
    assert.deepEqual(mismatch.unmatched.map((u) => u.reason), ['filter:label']);
  });
  it('a delete under a label-filtered policy is skipped with the reason (a deleted artifact\'s labels cannot be read)', () => {
    const p = policy({ deletion: true, filters: [{ type: 'label', value: ['prod'] }] });
    const { tasks, skipped } = planTasks(event({ action: 'delete' }), [p], targets, NOW, ['prod']);
    assert.equal(tasks.length, 0);
    assert.match(skipped[0]!.reason, /deleted artifact's labels/);
  });
  it('an empty label filter passes everything and needs no labels', () => {
    assert.equal(planTasks(event(), [labelled('matches', [])], targets, NOW).tasks.length, 1);
  });
  it('a reconcile listing without labels plans nothing and says why; with labels the filter applies per tag', () => {
    const listing = [{ repository: 'library/app', tags: [{ tag: 'v1', digest: DIGEST }] }];
    const r = reconcilePlan(labelled('excludes'), listing, 'swr', NOW);
    assert.equal(r.tasks.length, 0);
    assert.match(r.skipped[0]!.reason, /label filters need the artifact's labels/);
    const known = reconcilePlan(labelled(), [{ repository: 'library/app', tags: [{ tag: 'v1', digest: DIGEST, labels: ['prod'] }, { tag: 'v2', digest: DIGEST, labels: [] }] }], 'swr', NOW);
    assert.deepEqual(known.tasks.map((t) => t.tag), ['v1']);
    assert.deepEqual(reconcilePlan(labelled(), [], 'swr', NOW).skipped, [], 'nothing listed: nothing to say');
  });
});

describe('signatures follow their subjects', () => {
  const SUBJECT = 'sha256:' + 'b'.repeat(64);
  const sigTag = `sha256-${'b'.repeat(64)}.sig`;
  const signed = policy({ referrers: true });

  it('plans a referrers task for the subject of a pushed cosign tag, past the tag and label filters', () => {
    for (const tag of [sigTag, `sha256-${'b'.repeat(64)}.att`, `sha256-${'b'.repeat(64)}`]) {
      const labelled = policy({ referrers: true, filters: [{ type: 'name', value: 'library/**' }, { type: 'tag', value: 'v*' }, { type: 'label', value: ['prod'] }] });
      const { tasks, skipped, unmatched } = planTasks(event({ tag }), [labelled], targets, NOW);
      assert.deepEqual([skipped, unmatched], [[], []], tag);
      assert.equal(tasks.length, 1);
      const t = tasks[0]!;
      assert.deepEqual(ReplicationTaskSchema.parse(t), t);
      assert.equal(t.digest, SUBJECT);
      assert.equal(t.tag, undefined);
      assert.equal(t.options.referrersOf, 'digest');
      assert.equal(t.destRepository, 'myorg/nginx');
      assert.equal(t.id, taskId('ev-1', 'p1', `referrers:${SUBJECT}`));
    }
  });

  it('keeps the repository filter; a tag filter that takes the signature tag, and a policy that does not copy referrers, make it an ordinary tag', () => {
    assert.deepEqual(planTasks(event({ tag: sigTag, repository: 'other/app' }), [signed], targets, NOW).unmatched, [{ policyId: 'p1', reason: 'filter:name' }]);
    assert.deepEqual(planTasks(event({ tag: sigTag }), [policy()], targets, NOW).unmatched, [{ policyId: 'p1', reason: 'filter:tag' }]);
    for (const p of [policy({ filters: [] }), policy({ referrers: true, filters: [{ type: 'tag', value: '**' }] })]) {
      const all = planTasks(event({ tag: sigTag }), [p], targets, NOW).tasks;
      assert.equal(all[0]?.tag, sigTag);
      assert.equal(all[0]?.options.referrersOf, undefined);
    }
  });

  it('leaves a target that takes Docker format out (SWR Basic by default): it gets no referrers', () => {
    assert.deepEqual(planTarget({ kind: 'swr', edition: 'basic' }), { kind: 'swr', manifestFormat: 'docker' });
    assert.deepEqual(planTarget({ kind: 'swr', edition: 'enterprise' }), { kind: 'swr', manifestFormat: 'preserve' });
    assert.deepEqual(planTarget({ kind: 'registry', edition: 'basic' }), { kind: 'registry' });
    const basic = new Map<string, PlanTarget>([['swr', planTarget({ kind: 'swr', edition: 'basic' })]]);
    assert.deepEqual(planTasks(event({ tag: sigTag }), [signed], basic, NOW).unmatched, [{ policyId: 'p1', reason: 'filter:tag' }]);
    assert.equal(planTasks(event({ tag: sigTag }), [policy({ referrers: true, manifestFormat: 'preserve' })], basic, NOW).tasks[0]?.options.referrersOf, 'digest');
  });

  it('does not turn deletions of signature tags into referrers tasks', () => {
    const { tasks } = planTasks(event({ action: 'delete', tag: sigTag }), [policy({ referrers: true, deletion: true, filters: [] })], targets, NOW);
    assert.equal(tasks[0]?.tag, sigTag);
    assert.equal(tasks[0]?.action, 'delete');
    assert.equal(tasks[0]?.options.referrersOf, undefined);
  });

  it('reconcile plans a signature tag as a tag only where the tag filter takes it (the diff follows the others)', () => {
    const listing = [{ repository: 'library/nginx', tags: [{ tag: 'v1', digest: SUBJECT }, { tag: sigTag, digest: DIGEST }] }];
    const noFilter = { filters: [{ type: 'name' as const, value: 'library/**' }] };
    assert.deepEqual(reconcileTasks(policy({ ...noFilter, referrers: true }), listing, 'registry', NOW).map((t) => t.tag), ['v1', sigTag]);
    assert.deepEqual(reconcileTasks(policy({ referrers: true, filters: [{ type: 'tag', value: 'v*' }] }), listing, 'registry', NOW).map((t) => t.tag), ['v1']);
  });

  it('a referrers task must name its artifact by digest, without a tag', () => {
    const t = planTasks(event({ tag: sigTag }), [signed], targets, NOW).tasks[0]!;
    assert.equal(ReplicationTaskSchema.safeParse(t).success, true);
    // Schema 2, which workers of earlier versions dead-letter instead of copying the artifact itself.
    assert.equal(t.schema, 2);
    assert.equal(ReplicationTaskSchema.safeParse({ ...t, schema: 1 }).success, false);
    const { referrersOf: _, ...plainOptions } = t.options;
    assert.equal(ReplicationTaskSchema.safeParse({ ...t, options: plainOptions }).success, false);
    assert.equal(planTasks(event(), [signed], targets, NOW).tasks[0]?.schema, 1);
    assert.equal(ReplicationTaskSchema.safeParse({ ...t, tag: 'v1' }).success, false);
    assert.equal(ReplicationTaskSchema.safeParse({ ...t, action: 'delete' }).success, false);
  });
});

describe('an untagged push may be an OCI 1.1 referrer', () => {
  const untagged = event({ tag: undefined, digest: DIGEST });

  it('plans a referrers task for it where the tag filter refuses untagged artifacts', () => {
    const t = planTasks(untagged, [policy({ referrers: true })], targets, NOW).tasks;
    assert.deepEqual(t.map((x) => [x.digest, x.tag, x.options.referrersOf]), [[DIGEST, undefined, 'subject']]);
    assert.deepEqual(planTasks(untagged, [policy()], targets, NOW).unmatched, [{ policyId: 'p1', reason: 'filter:tag' }]);
  });

  it('copies it by digest where the tag filter takes untagged artifacts', () => {
    const t = planTasks(untagged, [policy({ referrers: true, filters: [] })], targets, NOW).tasks;
    assert.deepEqual(t.map((x) => [x.digest, x.tag, x.options.referrersOf]), [[DIGEST, undefined, undefined]]);
  });
});
