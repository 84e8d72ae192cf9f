import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TargetSchema } from '../../../src/config/schema.ts';
import { resolveSwrTarget } from '../../../src/swr/target.ts';
import { swrLoginPassword } from '../../../src/swr/credentials.ts';
import { BridgeError } from '../../../src/errors.ts';

test('an AK/SK basic-edition target resolves to derived URLs, login, docker format and SWR limits', async () => {
  const t = TargetSchema.parse({ id: 'swr-cn', kind: 'swr', region: 'cn-north-4', credentials: { accessKey: 'AK1', secretKey: 'SK1' } });
  const r = resolveSwrTarget(t);
  try {
    assert.equal(r.registryUrl, 'https://swr.cn-north-4.myhuaweicloud.com');
    assert.equal(r.apiUrl, 'https://swr-api.cn-north-4.myhuaweicloud.com');
    assert.deepEqual(r.login, { username: 'cn-north-4@AK1', password: swrLoginPassword('AK1', 'SK1') });
    assert.equal(r.manifestFormat, 'docker');
    assert.deepEqual(r.limits, { concurrency: 16, requestsPerSecond: 15 });
    assert.equal(r.api.apiUrl, r.apiUrl);
    assert.equal(r.api.managed, true);
  } finally {
    await r.api.close();
  }
});

test('enterprise keeps OCI; explicit manifestFormat, project and limits win', async () => {
  const t = TargetSchema.parse({
    id: 'swr-eu', kind: 'swr', region: 'eu-west-101', domain: 'myhuaweicloud.eu', edition: 'enterprise', project: 'eu-west-101_p',
    registryUrl: 'https://team-a.swr.example.eu',
    credentials: { accessKey: 'AK2', secretKey: 'SK2' }, limits: { concurrency: 2, requestsPerSecond: 4 },
  });
  const r = resolveSwrTarget(t);
  try {
    assert.equal(r.manifestFormat, 'preserve');
    assert.equal(r.login.username, 'eu-west-101_p@AK2');
    // An Enterprise instance has its own domain; its organisations are not managed through the Basic API.
    assert.equal(r.registryUrl, 'https://team-a.swr.example.eu');
    assert.equal(await r.api.ensureNamespace('team'), 'unmanaged');
    await assert.rejects(r.api.deleteTag('team', 'app', 'v1'), /SWR Enterprise: deleting tags through its management API is not supported/);
    assert.throws(() => TargetSchema.parse({ id: 'e', kind: 'swr', region: 'eu-west-101', edition: 'enterprise' }), /registryUrl/);
    assert.deepEqual(r.limits, { concurrency: 2, requestsPerSecond: 4 });
    const forced = resolveSwrTarget({ ...t, manifestFormat: 'docker' });
    assert.equal(forced.manifestFormat, 'docker');
    await forced.api.close();
  } finally {
    await r.api.close();
  }
});

test('a login pair without AK/SK or token gives an unmanaged API', async () => {
  const t = TargetSchema.parse({ id: 's', kind: 'swr', region: 'cn-east-3', credentials: { username: 'cn-east-3@TMP', password: 'p' } });
  const r = resolveSwrTarget(t);
  try {
    assert.deepEqual(r.login, { username: 'cn-east-3@TMP', password: 'p' });
    assert.equal(r.api.managed, false);
  } finally {
    await r.api.close();
  }
});

test('missing credentials and non-swr targets are config errors', () => {
  // Refused at config load, naming the field; and by the resolver too, for a target built another way.
  const refused = TargetSchema.safeParse({ id: 's', kind: 'swr', region: 'cn-east-3' });
  assert.equal(refused.success, false);
  assert.deepEqual(refused.error!.issues.map((i) => i.path.join('.')), ['credentials']);
  const t = { ...TargetSchema.parse({ id: 's', kind: 'swr', region: 'cn-east-3', credentials: { accessKey: 'AK', secretKey: 'SK' } }), credentials: undefined };
  assert.throws(() => resolveSwrTarget(t), (e: unknown) => e instanceof BridgeError && e.code === 'HSB_SWR_CONFIG');
  const akskOnRegistry = TargetSchema.safeParse({ id: 'r', kind: 'registry', url: 'https://r.example', credentials: { accessKey: 'AK', secretKey: 'SK' } });
  assert.match(akskOnRegistry.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n'), /^credentials: a registry target logs in with username and password/);
  const reg = TargetSchema.parse({ id: 'r', kind: 'registry', url: 'https://r.example' });
  assert.throws(() => resolveSwrTarget(reg), (e: unknown) => e instanceof BridgeError && e.code === 'HSB_SWR_CONFIG');
});

test('with both AK/SK and an IAM token, AK/SK signs the management calls (a token lasts 24 h)', async () => {
  const t = TargetSchema.parse({ id: 's', kind: 'swr', region: 'cn-north-4', credentials: { accessKey: 'AK1', secretKey: 'SK1' }, iamToken: 'tok' });
  const r = resolveSwrTarget(t);
  try {
    assert.equal(r.api.managed, true);
    assert.equal(r.api.authKind, 'aksk');
    const tokenOnly = resolveSwrTarget(TargetSchema.parse({ id: 's', kind: 'swr', region: 'cn-north-4', credentials: { username: 'cn-north-4@AK1', password: 'x' }, iamToken: 'tok' }));
    assert.equal(tokenOnly.api.authKind, 'token');
    await tokenOnly.api.close();
  } finally {
    await r.api.close();
  }
});

test('a region-less swr target needs apiUrl, and project for an AK/SK login', () => {
  assert.throws(() => TargetSchema.parse({ id: 's', kind: 'swr', registryUrl: 'https://swr.example', credentials: { accessKey: 'A', secretKey: 'S' } }), (e: Error) => /apiUrl/.test(e.message) && /project/.test(e.message));
  assert.doesNotThrow(() => TargetSchema.parse({ id: 's', kind: 'swr', registryUrl: 'https://swr.example', apiUrl: 'https://api.example', project: 'p', credentials: { accessKey: 'A', secretKey: 'S' } }));
});


test('an SWR Enterprise target with AK/SK needs a project (or region) at config load, as its login does', async () => {
  const ent = { id: 'e', kind: 'swr', edition: 'enterprise', registryUrl: 'https://team-a.swr.example.eu', credentials: { accessKey: 'A', secretKey: 'S' } };
  const refused = TargetSchema.safeParse(ent);
  assert.equal(refused.success, false);
  assert.deepEqual(refused.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`), ['project: an swr target with accessKey/secretKey needs a project (or a region, which is the default project): the registry login is <project>@<accessKey>']);
  // What config loading accepts, the resolver logs in with: a project, a region, or a ready login pair.
  for (const ok of [{ ...ent, project: 'eu-west-101_p' }, { ...ent, region: 'eu-west-101' }, { ...ent, credentials: { username: 'eu-west-101@TMP', password: 'p' } }]) {
    const r = resolveSwrTarget(TargetSchema.parse(ok));
    assert.ok(r.login.username.includes('@'));
    await r.api.close();
  }
});
