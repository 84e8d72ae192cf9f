// Pushes small, distinct OCI images straight through the registry API: much faster than skopeo when
// a test needs hundreds of pushes.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { RegistryClient } from '../../src/registry/client.ts';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export async function pushRandomImage(client: RegistryClient, repo: string, tag: string, layerBytes = 2048): Promise<string> {
  const layer = randomBytes(layerBytes);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] }, created: new Date().toISOString() }));
  for (const blob of [layer, config]) {
    await client.uploadBlob(repo, { digest: sha(blob), size: blob.length }, async (offset) => Readable.from([blob.subarray(offset)]));
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }],
  }));
  return client.putManifest(repo, tag, manifest, 'application/vnd.oci.image.manifest.v1+json');
}
