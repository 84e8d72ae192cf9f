import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HarborLabels, labelsByReference } from '../../../src/policy/harbor-labels.ts';
import { v2ArtifactsPath, type HarborApi } from '../../../src/policy/harbor-api.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import type { SourceConfig } from '../../../src/config/schema.ts';

describe('v2ArtifactsPath', () => {
  it('splits off the project and encodes the rest twice (Harbor decodes the path once before routing)', () => {
    assert.equal(v2ArtifactsPath('library/nginx'), 'api/v2.0/projects/library/repositories/nginx/artifacts');
    assert.equal(v2ArtifactsPath('proj/a/b/img'), 'api/v2.0/projects/proj/repositories/a%252Fb%252Fimg/artifacts');
  });
});

describe('labelsByReference', () => {
  it('gives each tag its artifact\'s labels and each digest the union over its entries (1.10 lists one per tag)', () => {
    const { byTag, byDigest } = labelsByReference([
      { digest: 'sha256:a', tags: ['v1', 'latest'], labels: ['prod'] },
      { digest: 'sha256:b', tags: ['v1.10'], labels: ['x'] },
      { digest: 'sha256:b', tags: ['v1.10-b'], labels: ['y', 'x'] },
      { digest: 'sha256:c', tags: [], labels: [] },
    ]);
    assert.deepEqual(byTag.get('latest'), ['prod']);
    assert.deepEqual(byTag.get('v1.10-b'), ['y', 'x']);
    assert.deepEqual(byDigest.get('sha256:b'), ['x', 'y']);
    assert.deepEqual(byDigest.get('sha256:c'), []);
  });
});

describe('HarborLabels', () => {
  const source = (over: Partial<SourceConfig>) => ({ id: 'h', kind: 'harbor', url: 'https://harbor.example.com', ...over }) as SourceConfig;
  it('has nothing for a plain-registry source or an unknown one', () => {
    const labels = new HarborLabels({ sources: [source({ id: 'plain', kind: 'registry' })] }, silentLogger, () => { throw new Error('no API for a plain registry'); });
    assert.equal(labels.forSource('plain'), undefined);
    assert.equal(labels.forSource('other'), undefined);
  });
  it('probes the API version once, and again after a failed probe', async () => {
    let probes = 0;
    const fake = {
      detectVersion: async () => {
        probes++;
        if (probes === 1) throw new Error('unreachable');
        return { api: 'v1' as const, harborVersion: 'v1.10.9' };
      },
      artifactLabels: async (api: string, repository: string, reference: string) => [`${api}:${repository}:${reference}`],
    } as unknown as HarborApi;
    const labels = new HarborLabels({ sources: [source({})] }, silentLogger, () => fake).forSource('h')!;
    await assert.rejects(labels.of('lib/app', 'v1'), /unreachable/);
    assert.deepEqual(await labels.of('lib/app', 'v1'), ['v1:lib/app:v1']);
    assert.deepEqual(await labels.of('lib/app', 'v2'), ['v1:lib/app:v2']);
    assert.equal(probes, 2);
  });
  it('close() closes the API clients; a later read opens a new one', async () => {
    let made = 0;
    let closed = 0;
    const factory = () => {
      made++;
      return {
        detectVersion: async () => ({ api: 'v2' as const, harborVersion: 'v2.11.0' }),
        artifactLabels: async () => ['prod'],
        close: async () => { closed++; },
      } as unknown as HarborApi;
    };
    const labels = new HarborLabels({ sources: [source({})] }, silentLogger, factory);
    assert.deepEqual(await labels.forSource('h')!.of('lib/app', 'v1'), ['prod']);
    await labels.close();
    assert.equal(closed, 1);
    assert.deepEqual(await labels.forSource('h')!.of('lib/app', 'v1'), ['prod']);
    assert.equal(made, 2);
  });
});
