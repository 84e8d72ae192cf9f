// Signatures pushed after their artifact, through the bridge's own CLI on the embedded bus: a
// cosign `.sig` tag's webhook and an OCI 1.1 referrer's (an untagged push) bring the signature
// into the target that holds the artifact, past a tag filter that only takes `v*`; a signature of
// an artifact the policy does not replicate stays behind.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { buildImage, inspectDigest, MT, pushImage, type LocalImage } from '../support/images.ts';
import { eventually, startBridgeProcess } from '../support/bridge-process.ts';
import { harborV2Payload, postWebhook } from '../support/harbor-payloads.ts';
import { RegistryClient } from '../../src/registry/client.ts';
import { digestOf } from '../../src/registry/digest.ts';

const SECRET = 'Bearer signatures-secret';
const REPO = 'library/app';
const sigTag = (digest: string) => `${digest.replace(':', '-')}.sig`;

describe('e2e: signatures follow their artifacts (referrers: true)', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let srcClient: RegistryClient;
  let dstClient: RegistryClient;
  const images: LocalImage[] = [];
  const image = async (layer: string) => {
    const img = await buildImage({ layers: [Buffer.from(layer)] });
    images.push(img);
    return img;
  };

  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    srcClient = new RegistryClient({ url: src.url });
    dstClient = new RegistryClient({ url: dst.url });
  });
  after(async () => {
    await Promise.all([srcClient?.close(), dstClient?.close(), ...images.map((i) => i.cleanup())]);
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  it('copies a later cosign signature and OCI referrer of a replicated artifact, and none of an artifact left out', async () => {
    const bridge = await startBridgeProcess({
      config: {
        sources: [{ id: 'h', url: src.url, webhookSecrets: [SECRET] }],
        targets: [{ id: 't', kind: 'registry', url: dst.url }],
        policies: [{ id: 'signed', src_registry: 'h', dest_registry: 't', referrers: true, filters: [{ type: 'name', value: 'library/**' }, { type: 'tag', value: 'v*' }] }],
      },
      env: { KAFKA_BROKERS: undefined, DATA_DIR: mkdtempSync(join(tmpdir(), 'hsb-sig-')) },
    });
    const deliver = async (ref: { tag?: string; digest: string }) => {
      const res = await postWebhook(bridge.url, 'h', harborV2Payload('PUSH_ARTIFACT', REPO, ref), SECRET);
      assert.equal(res.status, 200, await res.clone().text());
    };
    try {
      await bridge.waitReady();
      const [app, dev, appSig, devSig, sbom] = await Promise.all([image('app'), image('dev'), image('app signature'), image('dev signature'), image('sbom')]);
      await pushImage(app, src, REPO, 'v1');
      await deliver({ tag: 'v1', digest: app.digest });
      await eventually(async () => (await inspectDigest(dst, REPO, 'v1').catch(() => '')) === app.digest, 60000, 'the artifact in the target');

      // Signed afterwards: the filtered-out artifact's signature first, so that the target's
      // copy of the replicated one's shows the earlier task (same repository, same partition) is done.
      await pushImage(dev, src, REPO, 'dev');
      await pushImage(devSig, src, REPO, sigTag(dev.digest));
      await deliver({ tag: sigTag(dev.digest), digest: devSig.digest });
      await pushImage(appSig, src, REPO, sigTag(app.digest));
      await deliver({ tag: sigTag(app.digest), digest: appSig.digest });
      await eventually(async () => (await inspectDigest(dst, REPO, sigTag(app.digest)).catch(() => '')) === appSig.digest, 60000, 'the signature in the target');
      assert.equal(await dstClient.headManifest(REPO, sigTag(dev.digest)), null);
      assert.equal(await dstClient.headManifest(REPO, dev.digest), null);

      // An OCI 1.1 referrer, pushed by digest: Harbor's webhook names only its digest.
      await pushImage(sbom, src, REPO, 'carrier');
      const bytes = Buffer.from(JSON.stringify({ ...JSON.parse(sbom.bytes.toString()), artifactType: 'application/example.sbom', subject: { mediaType: app.mediaType, digest: app.digest, size: app.bytes.length } }));
      const referrer = digestOf(bytes);
      await srcClient.putManifest(REPO, referrer, bytes, MT.ociManifest);
      // What a client writes beside it into a registry without the referrers API (distribution 2.8; Harbor 2.8+ has the API).
      const fallback = { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, digest: referrer, size: bytes.length, artifactType: 'application/example.sbom' }] };
      await srcClient.putManifest(REPO, app.digest.replace(':', '-'), Buffer.from(JSON.stringify(fallback)), MT.ociIndex);
      await deliver({ digest: referrer });
      await eventually(async () => (await dstClient.headManifest(REPO, referrer).catch(() => null)) !== null, 60000, 'the referrer in the target');
      // The target (distribution 2.8) has no referrers API: the tag-schema index names it.
      const index = JSON.parse((await dstClient.getManifest(REPO, app.digest.replace(':', '-'))).bytes.toString()) as { manifests: { digest: string }[] };
      assert.deepEqual(index.manifests.map((m) => m.digest), [referrer]);
    } finally {
      assert.equal(await bridge.stop(), 0);
    }
  });
});
