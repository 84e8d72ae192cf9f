import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PolicySchema } from '../../../src/policy/model.ts';

const base = { id: 'p1', src_registry: 'harbor', dest_registry: 'swr' };

function issues(input: unknown): { path: string; message: string }[] {
  const r = PolicySchema.safeParse(input);
  assert.equal(r.success, false, 'expected validation to fail');
  return r.error!.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

describe('PolicySchema', () => {
  it('fills Harbor defaults', () => {
    const p = PolicySchema.parse(base);
    assert.equal(p.enabled, true);
    assert.equal(p.dest_namespace, '');
    assert.equal(p.dest_namespace_replace_count, -1);
    assert.deepEqual(p.filters, []);
    assert.deepEqual(p.trigger, { type: 'event_based' });
    assert.equal(p.deletion, false);
    assert.equal(p.override, true);
    assert.equal(p.speed, -1);
  });

  it('accepts the DESIGN example policy', () => {
    const p = PolicySchema.parse({
      ...base, dest_namespace: 'myorg', dest_namespace_replace_count: 1,
      filters: [{ type: 'name', value: 'library/**' }, { type: 'tag', value: 'v*', decoration: 'matches' }],
      trigger: { type: 'event_based' }, deletion: true, override: true,
    });
    assert.equal(p.filters.length, 2);
  });

  it('rejects a bad decoration', () => {
    assert.ok(issues({ ...base, filters: [{ type: 'tag', value: 'v*', decoration: 'contains' }] }).some((i) => i.path === 'filters.0.decoration'));
  });
  it('rejects a decoration on name and resource filters (Harbor: tag and label only)', () => {
    assert.ok(issues({ ...base, filters: [{ type: 'name', value: 'a/**', decoration: 'excludes' }] })
      .some((i) => i.path === 'filters.0.decoration' && /only tag and label/.test(i.message)));
  });
  it('rejects a bad resource value and non-string name values', () => {
    assert.ok(issues({ ...base, filters: [{ type: 'resource', value: 'chart' }] }).some((i) => i.path === 'filters.0.value'));
    assert.ok(issues({ ...base, filters: [{ type: 'name', value: ['a', 'b'] }] }).some((i) => /string value/.test(i.message)));
  });
  it('rejects platforms that copy --platform would refuse, at the entry', () => {
    for (const bad of ['amd64', 'linux/', '/amd64', 'linux//v7', 'linux/amd64/v8/x', 'linux/amd 64', '']) {
      assert.ok(issues({ ...base, platforms: ['linux/amd64', bad] }).some((i) => i.path === 'platforms.1' && i.message.includes(`"${bad}"`)), bad);
    }
    // Any case, and the spellings copying normalises (x86-64 is amd64), as a copy has always taken them.
    const good = ['linux/arm64/v8', 'windows/amd64', 'Linux/AMD64', 'linux/x86-64', 'linux/x86_64'];
    assert.deepEqual(PolicySchema.parse({ ...base, platforms: good }).platforms, good);
  });
  it('rejects an unknown filter type and a malformed glob', () => {
    assert.ok(issues({ ...base, filters: [{ type: 'repository', value: 'x' }] }).some((i) => i.path === 'filters.0.type'));
    assert.ok(issues({ ...base, filters: [{ type: 'tag', value: 'v[1' }] }).some((i) => i.path === 'filters.0.value' && /unclosed/.test(i.message)));
  });
  it('accepts a label filter with an array or a single string', () => {
    assert.doesNotThrow(() => PolicySchema.parse({ ...base, filters: [{ type: 'label', value: ['a', 'b'], decoration: 'excludes' }] }));
    assert.doesNotThrow(() => PolicySchema.parse({ ...base, filters: [{ type: 'label', value: 'a' }] }));
  });

  it('rejects a bad trigger type', () => {
    assert.ok(issues({ ...base, trigger: { type: 'immediate' } }).some((i) => i.path === 'trigger.type'));
  });
  it('a scheduled trigger needs a cron', () => {
    assert.ok(issues({ ...base, trigger: { type: 'scheduled' } }).some((i) => i.path === 'trigger.trigger_settings.cron'));
    assert.ok(issues({ ...base, trigger: { type: 'scheduled', trigger_settings: {} } }).some((i) => i.path === 'trigger.trigger_settings.cron'));
  });
  it('a scheduled trigger needs a valid Harbor cron', () => {
    assert.ok(issues({ ...base, trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 * * *' } } })
      .some((i) => i.path === 'trigger.trigger_settings.cron' && /6 fields/.test(i.message)));
    assert.ok(issues({ ...base, trigger: { type: 'scheduled', trigger_settings: { cron: '* * * * * *' } } })
      .some((i) => i.path === 'trigger.trigger_settings.cron' && /seconds field must be 0/.test(i.message)));
    const ok = PolicySchema.parse({ ...base, trigger: { type: 'scheduled', trigger_settings: { cron: '0 0 */6 * * *' } } });
    assert.equal(ok.trigger.trigger_settings?.cron, '0 0 */6 * * *');
  });
  it('ignores cron on non-scheduled triggers', () => {
    assert.doesNotThrow(() => PolicySchema.parse({ ...base, trigger: { type: 'manual' } }));
  });

  it('rejects replace counts below -1 and above int8', () => {
    assert.ok(issues({ ...base, dest_namespace_replace_count: -2 }).some((i) => i.path === 'dest_namespace_replace_count'));
    assert.ok(issues({ ...base, dest_namespace_replace_count: 128 }).some((i) => i.path === 'dest_namespace_replace_count'));
    assert.ok(issues({ ...base, dest_namespace_replace_count: 1.5 }).some((i) => i.path === 'dest_namespace_replace_count'));
    assert.equal(PolicySchema.parse({ ...base, dest_namespace_replace_count: 3 }).dest_namespace_replace_count, 3);
  });
  it('validates dest_namespace as a repository path', () => {
    assert.equal(PolicySchema.parse({ ...base, dest_namespace: 'org/mirror' }).dest_namespace, 'org/mirror');
    assert.ok(issues({ ...base, dest_namespace: 'Org' }).some((i) => i.path === 'dest_namespace'));
    assert.ok(issues({ ...base, dest_namespace: 'org/' }).some((i) => i.path === 'dest_namespace'));
  });
  it('rejects speed below -1 and a bad id', () => {
    assert.ok(issues({ ...base, speed: -5 }).some((i) => i.path === 'speed'));
    assert.ok(issues({ ...base, id: 'a b' }).some((i) => i.path === 'id'));
  });
});
