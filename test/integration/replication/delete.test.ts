// Replicated deletions on plain registry targets (real distribution registries), whose API deletes
// manifests rather than tags: a tag goes only when deleting its manifest takes nothing else with it,
// and an untagged delete on a target that gets converted manifests says what it could not do.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { pushRandomImage } from '../../support/random-images.ts';
import { startFaultProxy } from '../../support/fault-proxy.ts';
import { RegistryClient } from '../../../src/registry/client.ts';
import { MediaType } from '../../../src/registry/media-types.ts';
import { ConfigSchema } from '../../../src/config/schema.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { Endpoints } from '../../../src/replication/endpoints.ts';
import { executeTask } from '../../../src/replication/execute.ts';
import { ReplicationTaskSchema, type ReplicationTaskInput } from '../../../src/replication/task.ts';
import type { BridgeError } from '../../../src/errors.ts';

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f().catch(() => undefined); });

let src: TestRegistry;
let dst: TestRegistry;
let srcClient: RegistryClient;
let dstClient: RegistryClient;
before(async () => {
  [src, dst] = await Promise.all([startRegistry({ auth: 'none' }), startRegistry({ auth: 'none' })]);
  srcClient = new RegistryClient({ url: src.url });
  dstClient = new RegistryClient({ url: dst.url });
  cleanup.push(() => src.stop(), () => dst.stop(), () => srcClient.close(), () => dstClient.close());
});

function endpoints(manifestFormat: 'preserve' | 'docker' = 'preserve'): Endpoints {
  const e = new Endpoints(ConfigSchema.parse({
    sources: [{ id: 'src', kind: 'registry', url: src.url, insecure: true }],
    targets: [{ id: 'dst', kind: 'registry', url: dst.url, manifestFormat }],
  }), silentLogger);
  cleanup.push(() => e.close());
  return e;
}

/** An OCI index of `children` (manifest digests in `repo` of the target), tagged `tag`. */
async function pushIndex(repo: string, tag: string, children: string[]): Promise<string> {
  const manifests = [];
  for (const [i, digest] of children.entries()) {
    const size = (await dstClient.getManifest(repo, digest)).bytes.length;
    manifests.push({ mediaType: MediaType.ociManifest, digest, size, platform: { os: 'linux', architecture: ['amd64', 'arm64'][i % 2]! } });
  }
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }));
  return dstClient.putManifest(repo, tag, bytes, MediaType.ociIndex);
}

const refused = (detail: RegExp) => (e: BridgeError) => e.code === 'HSB_TARGET_TAG_SHARED' && detail.test(e.message);

describe('deleting a tag on a registry target', () => {
  it('deletes a tag whose manifest nothing else uses, and leaves the other tags', async () => {
    const v1 = await pushRandomImage(dstClient, 'plain/app', 'v1');
    const v2 = await pushRandomImage(dstClient, 'plain/app', 'v2');
    assert.equal(await endpoints().target('dst').deleteTag('plain/app', 'v1'), true);
    assert.equal(await dstClient.headManifest('plain/app', v1), null);
    assert.equal((await dstClient.headManifest('plain/app', 'v2'))?.digest, v2);
    assert.equal(await endpoints().target('dst').deleteTag('plain/app', 'v1'), false, 'already gone');
  });

  it('refuses when another tag names the same manifest', async () => {
    const d = await pushRandomImage(dstClient, 'shared/app', 'v1');
    await dstClient.putManifest('shared/app', 'stable', (await dstClient.getManifest('shared/app', d)).bytes, MediaType.ociManifest);
    await assert.rejects(endpoints().target('dst').deleteTag('shared/app', 'v1'), refused(/also tagged stable/));
    assert.equal((await dstClient.headManifest('shared/app', 'v1'))?.digest, d);
  });

  it('refuses to delete a per-platform tag whose manifest a multi-platform index lists, nested or not', async () => {
    const amd = await pushRandomImage(dstClient, 'multi/app', 'v1-amd64');
    const arm = await pushRandomImage(dstClient, 'multi/app', 'v1-arm64');
    const index = await pushIndex('multi/app', 'v1', [amd, arm]);
    await assert.rejects(endpoints().target('dst').deleteTag('multi/app', 'v1-amd64'), refused(/index tagged v1 lists its manifest/));
    assert.ok(await dstClient.headManifest('multi/app', amd), 'the child of v1 is still there');
    assert.equal((await dstClient.getManifest('multi/app', 'v1')).digest, index);

    // An index of indexes (tagged `all`) that lists v1's index, which lists the arm64 manifest.
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [
      { mediaType: MediaType.ociIndex, digest: index, size: (await dstClient.getManifest('multi/app', index)).bytes.length },
    ] }));
    await dstClient.putManifest('multi/app', 'all', bytes, MediaType.ociIndex);
    await dstClient.putManifest('multi/app', 'v1', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] })), MediaType.ociIndex);
    await assert.rejects(endpoints().target('dst').deleteTag('multi/app', 'v1-arm64'), refused(/index tagged all lists its manifest/));
    assert.ok(await dstClient.headManifest('multi/app', arm));
  });
});

describe('deleting a tag on a registry whose HEAD answers a generic Content-Type', () => {
  it('opens the other tag that is not plainly an image, finds the index listing the manifest, and refuses', async () => {
    const amd = await pushRandomImage(dstClient, 'generic/app', 'v1-amd64');
    const index = await pushIndex('generic/app', 'v1', [amd]);
    const proxy = await startFaultProxy(dst.url);
    cleanup.push(() => proxy.stop());
    const size = (await dstClient.getManifest('generic/app', index)).bytes.length;
    // Only HEAD of the index's tag is rewritten; GET still serves the index as it is.
    proxy.addRule({
      match: { method: 'HEAD', path: /^\/v2\/generic\/app\/manifests\/v1$/ },
      action: 'status', status: 200,
      headers: { 'content-type': 'application/octet-stream', 'docker-content-digest': index, 'content-length': String(size) },
    });
    const e = new Endpoints(ConfigSchema.parse({
      sources: [{ id: 'src', kind: 'registry', url: src.url, insecure: true }],
      targets: [{ id: 'dst', kind: 'registry', url: proxy.url }],
    }), silentLogger);
    cleanup.push(() => e.close());
    await assert.rejects(e.target('dst').deleteTag('generic/app', 'v1-amd64'), refused(/index tagged v1 lists its manifest/));
    assert.ok(proxy.requests.some((r) => r.method === 'HEAD' && r.path === '/v2/generic/app/manifests/v1' && r.action === 'status'), 'the rewritten HEAD was served');
    assert.ok(await dstClient.headManifest('generic/app', amd), 'the child of v1 is still there');
  });
});

describe('an untagged delete', () => {
  const task = (action: 'push' | 'delete', digest: string): Parameters<typeof executeTask>[0] => ReplicationTaskSchema.parse({
    schema: 1, id: `${action}-${digest.slice(7, 15)}`, eventId: 'e', action, sourceId: 'src', repository: 'lib/app', digest,
    targetId: 'dst', destRepository: 'lib/app', policyId: 'p', options: { deletion: true },
    occurredAt: new Date().toISOString(), createdAt: new Date().toISOString(),
  } satisfies ReplicationTaskInput);

  it('deletes the copy when the target holds it under the source digest', async () => {
    const e = endpoints();
    const digest = await pushRandomImage(srcClient, 'lib/app', 'keep');
    const pushed = await executeTask(task('push', digest), e.source('src'), e.target('dst'), { logger: silentLogger });
    assert.equal(pushed.digest, digest);
    await srcClient.deleteManifest('lib/app', digest);
    const del = await executeTask(task('delete', digest), e.source('src'), e.target('dst'), { logger: silentLogger });
    assert.equal(del.status, 'deleted');
    assert.equal(await dstClient.headManifest('lib/app', digest), null);
  });

  it('on a target that gets Docker-format copies, says the converted copy could not be found instead of "already absent"', async () => {
    const e = endpoints('docker');
    const digest = await pushRandomImage(srcClient, 'lib/app', 'tmp');
    const pushed = await executeTask(task('push', digest), e.source('src'), e.target('dst'), { logger: silentLogger });
    assert.notEqual(pushed.digest, digest, 'the OCI manifest was converted to Docker schema2');
    await srcClient.deleteManifest('lib/app', digest);
    const del = await executeTask(task('delete', digest), e.source('src'), e.target('dst'), { logger: silentLogger });
    assert.equal(del.status, 'skipped');
    assert.match(del.note ?? '', /converted .* another digest/);
    assert.doesNotMatch(del.note ?? '', /already absent/);
  });
});
