import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PolicySchema, type PolicyInput } from '../../../src/policy/model.ts';
import { reconcileEventId, type SourceListing } from '../../../src/policy/plan.ts';
import { diffPolicy, destinationOf, type TargetState } from '../../../src/replication/diff.ts';
import { ReplicationTaskSchema, taskId } from '../../../src/replication/task.ts';

const NOW = new Date('2024-05-01T10:20:30.456Z');
const D = (c: string) => `sha256:${c.repeat(64)}`;

const policy = (over: Partial<PolicyInput> = {}) => PolicySchema.parse({
  id: 'p1', src_registry: 'harbor', dest_registry: 'backup', dest_namespace: '', ...over,
});

const state = (o: Record<string, Record<string, string>>): TargetState =>
  new Map(Object.entries(o).map(([repo, tags]) => [repo, new Map(Object.entries(tags))]));

const listing = (o: Record<string, Record<string, string>>): SourceListing[] =>
  Object.entries(o).map(([repository, tags]) => ({ repository, tags: Object.entries(tags).map(([tag, digest]) => ({ tag, digest })) }));

const summary = (r: ReturnType<typeof diffPolicy>) => r.tasks.map((t) => `${t.action} ${t.repository}:${t.tag} -> ${t.destRepository}`).sort();

describe('diffPolicy', () => {
  it('plans a copy for a tag missing in the target, with the planner\'s task shape', () => {
    const r = diffPolicy(policy(), listing({ 'library/app': { v1: D('a') } }), state({}), 'registry', NOW);
    assert.deepEqual(r.skipped, []);
    assert.equal(r.tasks.length, 1);
    const t = r.tasks[0]!;
    assert.deepEqual(ReplicationTaskSchema.parse(t), t);
    assert.equal(t.action, 'push');
    assert.equal(t.origin, 'reconcile');
    assert.equal(t.eventId, reconcileEventId('p1', NOW));
    assert.equal(t.id, taskId(reconcileEventId('p1', NOW), 'p1', 'library/app:v1'));
    assert.equal(t.digest, D('a'));
    assert.equal(t.destRepository, 'library/app');
    assert.equal(r.reasons.get(t.id), 'missing in target');
  });

  it('an untagged artifact is in step when found by digest or under a target tag, else planned by digest; a deleted one is never an extra', () => {
    const src: SourceListing[] = [{ repository: 'library/app', tags: [{ tag: '', digest: D('a') }, { tag: '', digest: D('b') }, { tag: '', digest: D('c') }] }];
    const present = new Map([['library/app', new Set([D('a')])]]);
    const r = diffPolicy(policy({ deletion: true }), src, state({ 'library/app': { latest: D('b') } }), 'registry', NOW, new Map(), present);
    assert.deepEqual(r.tasks.map((t) => `${t.action} ${t.tag ?? t.digest}`), [`push ${D('c')}`, 'delete latest']);
    assert.equal(r.reasons.get(r.tasks[0]!.id), 'untagged digest missing in target');
    assert.equal(r.unchanged, 2);
    // Converted copies are looked up under the digest the copy writes.
    const conv = diffPolicy(policy(), [{ repository: 'library/app', tags: [{ tag: '', digest: D('c') }] }], state({}), 'registry', NOW, new Map([[D('c'), D('d')]]), new Map([['library/app', new Set([D('d')])]]));
    assert.deepEqual(conv.tasks, []);
  });

  it('plans a copy when the target holds another digest, nothing when equal', () => {
    const r = diffPolicy(policy(), listing({ 'library/app': { v1: D('a'), v2: D('b') } }), state({ 'library/app': { v1: D('c'), v2: D('b') } }), 'registry', NOW);
    assert.deepEqual(summary(r), ['push library/app:v1 -> library/app']);
    assert.equal(r.unchanged, 1);
    assert.match(r.reasons.get(r.tasks[0]!.id)!, /target has sha256:cccc.*source sha256:aaaa/);
  });

  it('under a label filter, deletes nothing (a gone artifact\'s labels are unknown) and says how many tags it kept', () => {
    const labelled = policy({ deletion: true, filters: [{ type: 'label', value: ['prod'] }] });
    const src: SourceListing[] = [{ repository: 'library/app', tags: [{ tag: 'v1', digest: D('a'), labels: ['prod'] }] }];
    const r = diffPolicy(labelled, src, state({ 'library/app': { v1: D('a'), old: D('d'), gone: '' } }), 'registry', NOW);
    assert.deepEqual(r.tasks, []);
    assert.equal(r.unchanged, 1);
    // The policy's own rule at work, not a repository left out: a note, not a skip (`sync` exits 1 on skips).
    assert.deepEqual(r.skipped, []);
    assert.deepEqual(r.notes, ['deletion: 2 target tag(s) the source no longer has are kept: label filters cannot be evaluated for an artifact that is gone']);
    const nothingToDelete = diffPolicy(labelled, src, state({ 'library/app': { v1: D('a') } }), 'registry', NOW);
    assert.deepEqual(nothingToDelete.notes, [], 'no note when nothing was kept');
  });

  it('plans nothing when source and target are equal', () => {
    const src = { 'a/x': { v1: D('a'), v2: D('b') }, 'a/y': { latest: D('c') } };
    const r = diffPolicy(policy({ deletion: true }), listing(src), state(src), 'registry', NOW);
    assert.deepEqual(r.tasks, []);
    assert.equal(r.unchanged, 3);
  });

  it('plans deletions of tags only the target has, only with deletion: true', () => {
    const src = listing({ 'library/app': { v1: D('a') } });
    const dst = state({ 'library/app': { v1: D('a'), old: D('d'), gone: '' } });
    const off = diffPolicy(policy({ deletion: false }), src, dst, 'registry', NOW);
    assert.deepEqual(off.tasks, []);

    const on = diffPolicy(policy({ deletion: true }), src, dst, 'registry', NOW);
    assert.deepEqual(summary(on), ['delete library/app:gone -> library/app', 'delete library/app:old -> library/app']);
    for (const t of on.tasks) {
      assert.deepEqual(ReplicationTaskSchema.parse(t), t);
      assert.equal(t.origin, 'reconcile');
      assert.equal(t.options.deletion, true);
    }
    const old = on.tasks.find((t) => t.tag === 'old')!;
    assert.equal(old.digest, D('d'));
    assert.equal(on.tasks.find((t) => t.tag === 'gone')!.digest, undefined);
    assert.notEqual(old.id, on.tasks.find((t) => t.tag === 'gone')!.id);
  });

  it('does not delete referrer fallback tags or tags outside the tag filter', () => {
    const p = policy({ deletion: true, filters: [{ type: 'tag', value: 'v*' }] });
    const dst = state({ 'library/app': { v1: D('a'), v9: D('e'), dev: D('f'), [`sha256-${'a'.repeat(64)}`]: D('9'), [`sha256-${'a'.repeat(64)}.sig`]: D('8') } });
    const r = diffPolicy(p, listing({ 'library/app': { v1: D('a'), dev: D('f') } }), dst, 'registry', NOW);
    assert.deepEqual(summary(r), ['delete library/app:v9 -> library/app']);
  });

  it('keeps a tag the source has even when a label filter leaves it out', () => {
    // A registry listing has no labels: such a policy copies nothing but must not delete either.
    const p = policy({ deletion: true, filters: [{ type: 'label', value: ['prod'] }] });
    const r = diffPolicy(p, listing({ 'library/app': { v1: D('a') } }), state({ 'library/app': { v1: D('b') } }), 'registry', NOW);
    assert.deepEqual(r.tasks, []);
  });

  it('applies name and tag filters', () => {
    const p = policy({ filters: [{ type: 'name', value: 'library/**' }, { type: 'tag', value: 'v*' }] });
    const src = listing({ 'library/app': { v1: D('a'), latest: D('b') }, 'library/sub/tool': { v2: D('c') }, 'other/app': { v1: D('d') } });
    const r = diffPolicy(p, src, state({}), 'registry', NOW);
    assert.deepEqual(summary(r), ['push library/app:v1 -> library/app', 'push library/sub/tool:v2 -> library/sub/tool']);

    const excl = policy({ filters: [{ type: 'tag', value: 'latest', decoration: 'excludes' }] });
    assert.deepEqual(summary(diffPolicy(excl, src, state({}), 'registry', NOW)), [
      'push library/app:v1 -> library/app', 'push library/sub/tool:v2 -> library/sub/tool', 'push other/app:v1 -> other/app',
    ]);
  });

  it('rewrites destinations with dest_namespace and compares against the rewritten repository', () => {
    const p = policy({ dest_namespace: 'mirror', dest_namespace_replace_count: 1 });
    const src = listing({ 'library/app': { v1: D('a'), v2: D('b') } });
    const r = diffPolicy(p, src, state({ 'mirror/app': { v1: D('a') }, 'library/app': { v2: D('b') } }), 'registry', NOW);
    assert.deepEqual(summary(r), ['push library/app:v2 -> mirror/app']);
    assert.deepEqual(destinationOf(p, 'library/app', 'registry'), { dest: 'mirror/app' });
  });

  it('skips repositories the rewrite rejects, with the reason, and plans the others', () => {
    const p = policy({ dest_namespace: 'mirror', dest_namespace_replace_count: 2 });
    const r = diffPolicy(p, listing({ 'library/app': { v1: D('a') }, 'a/b/app': { v1: D('b') } }), state({}), 'registry', NOW);
    assert.deepEqual(summary(r), ['push a/b/app:v1 -> mirror/app']);
    assert.equal(r.skipped.length, 1);
    assert.equal(r.skipped[0]!.repository, 'library/app');
    assert.match(r.skipped[0]!.reason, /^rewrite: HSB_POLICY_REWRITE /);
  });

  it('skips names SWR would refuse', () => {
    // An SWR organisation starts with a letter; the path is kept as is with no dest_namespace.
    const r = diffPolicy(policy(), listing({ '1team/app': { v1: D('a') }, 'team/app': { v1: D('b') } }), state({}), { kind: 'swr' }, NOW);
    assert.deepEqual(summary(r), ['push team/app:v1 -> team/app']);
    assert.equal(r.skipped.length, 1);
    assert.equal(r.skipped[0]!.repository, '1team/app');
    assert.match(r.skipped[0]!.reason, /^rewrite: HSB_SWR_NAME_INVALID /);
  });

  it('plans a copy with override off, leaving the decision to the replicator', () => {
    const r = diffPolicy(policy({ override: false }), listing({ 'library/app': { v1: D('a') } }), state({ 'library/app': { v1: D('b') } }), 'registry', NOW);
    assert.equal(r.tasks.length, 1);
    assert.equal(r.tasks[0]!.options.override, false);
    assert.match(r.reasons.get(r.tasks[0]!.id)!, /override off/);
  });

  it('does not delete a tag another source repository mapping to the same destination has', () => {
    // replace count -1 flattens team-a/app and team-b/app into mirror/app.
    const p = policy({ dest_namespace: 'mirror', dest_namespace_replace_count: -1, deletion: true });
    const src = listing({ 'team-a/app': { v1: D('a') }, 'team-b/app': { v2: D('b') } });
    const r = diffPolicy(p, src, state({ 'mirror/app': { v1: D('a'), v2: D('b'), v3: D('c') } }), 'registry', NOW);
    assert.deepEqual(summary(r), ['delete team-a/app:v3 -> mirror/app']);
  });

  it('deletes every matching target tag of a source repository that has no tags left', () => {
    const r = diffPolicy(policy({ deletion: true }), [{ repository: 'library/app', tags: [] }], state({ 'library/app': { v1: D('a') } }), 'registry', NOW);
    assert.deepEqual(summary(r), ['delete library/app:v1 -> library/app']);
  });

  it('plans nothing for a disabled policy', () => {
    const r = diffPolicy(policy({ enabled: false }), listing({ 'library/app': { v1: D('a') } }), state({}), 'registry', NOW);
    assert.deepEqual(r.tasks, []);
  });
});

describe('diffPolicy: cosign signature tags follow their subjects', () => {
  const sig = (c: string, s = 'sig') => `sha256-${c.repeat(64)}.${s}`;
  const signed = (over: Partial<PolicyInput> = {}) => policy({ referrers: true, filters: [{ type: 'tag', value: 'v*' }], ...over });
  const referrers = (r: ReturnType<typeof diffPolicy>) => r.tasks.filter((t) => t.options.referrersOf).map((t) => `${t.digest} (${r.reasons.get(t.id)})`).sort();

  it('plans one referrers task per in-step artifact (or child of one) whose signatures the target lacks or holds on another digest', () => {
    const src = listing({ 'library/app': {
      v1: D('a'), v2: D('b'), v3: D('c'), dev: D('d'), v4: D('8'),
      [sig('a')]: D('1'), [sig('a', 'att')]: D('2'), // v1: one task for both tags
      [sig('b')]: D('3'), // v2: the target has it
      [sig('c')]: D('4'), // v3: copied in this pass, which brings it
      [sig('d')]: D('5'), // dev: filtered out, so its signature is too
      [sig('e')]: D('6'), // a child of v4, an index in step
      [sig('f')]: D('7'), // neither listed nor a child: gone from the source, or a filtered-out index's child
    } });
    const dst = state({ 'library/app': { v1: D('a'), v2: D('b'), v4: D('8'), [sig('a')]: D('9'), [sig('b')]: D('3') } });
    const children = new Map([[D('8'), [D('e')]], [D('d'), [D('f')]]]);
    const r = diffPolicy(signed(), src, dst, 'registry', NOW, new Map(), new Map(), children);
    assert.deepEqual(referrers(r), [`${D('a')} (${sig('a')} differs in target)`, `${D('e')} (${sig('e')} missing in target)`]);
    for (const t of r.tasks.filter((x) => x.options.referrersOf)) assert.equal(t.options.referrersOf, 'digest');
    assert.deepEqual(summary(r).filter((s) => !s.includes('undefined')), ['push library/app:v3 -> library/app']);
    for (const t of r.tasks) assert.deepEqual(ReplicationTaskSchema.parse(t), t);
    const t = r.tasks.find((x) => x.digest === D('a'))!;
    assert.equal(t.origin, 'reconcile');
    assert.equal(t.id, taskId(reconcileEventId('p1', NOW), 'p1', `referrers:library/app:${D('a')}`));
  });

  it('plans none for a policy that does not copy referrers, a Docker-format target, a converted subject, or a tag the filter takes', () => {
    const src = listing({ 'library/app': { v1: D('a'), [sig('a')]: D('1') } });
    const dst = state({ 'library/app': { v1: D('a') } });
    assert.deepEqual(referrers(diffPolicy(signed({ referrers: false }), src, dst, 'registry', NOW)), []);
    assert.deepEqual(referrers(diffPolicy(signed(), src, dst, { kind: 'swr', manifestFormat: 'docker' }, NOW)), []);
    const filtered = diffPolicy(signed({ platforms: ['linux/amd64'] }), src, state({ 'library/app': { v1: D('f') } }), 'registry', NOW, new Map([[D('a'), D('f')]]));
    assert.deepEqual(referrers(filtered), []);
    assert.equal(filtered.unchanged, 1);
    // A tag filter that takes the signature tag makes it an ordinary tag, copied as one.
    const plain = diffPolicy(signed({ filters: [] }), src, dst, 'registry', NOW);
    assert.deepEqual(referrers(plain), []);
    assert.deepEqual(summary(plain), [`push library/app:${sig('a')} -> library/app`]);
  });

  it('never deletes a target signature tag, whatever the source lists', () => {
    const r = diffPolicy(signed({ deletion: true, filters: [] }), listing({ 'library/app': { v1: D('a') } }), state({ 'library/app': { v1: D('a'), [sig('a')]: D('1'), [sig('f')]: D('2') } }), 'registry', NOW);
    assert.deepEqual(r.tasks, []);
  });
});
