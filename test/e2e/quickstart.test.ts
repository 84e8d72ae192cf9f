// The README's quick start as a new user runs it: the shipped example config on the embedded bus
// (no Kafka anywhere), an image pushed with skopeo, Harbor's webhook played with curl's payload,
// and the image in the target. Only the two registry ports differ from the example (random here).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { startRegistry, type TestRegistry } from '../support/registry.ts';
import { buildImage, inspectDigest, pushImage, type LocalImage } from '../support/images.ts';
import { eventually, startBridgeProcess } from '../support/bridge-process.ts';

const ROOT = resolve(import.meta.dirname, '../..');

describe('e2e: README quick start on the embedded bus', () => {
  let src: TestRegistry;
  let dst: TestRegistry;
  let image: LocalImage;
  before(async () => {
    [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
    image = await buildImage({ layers: [512 * 1024, 64 * 1024] });
  });
  after(async () => {
    await Promise.all([src?.stop(), dst?.stop(), image?.cleanup()]);
  });

  it('replicates a pushed image after the curl from the README, with no Kafka', async () => {
    const example = parse(readFileSync(join(ROOT, 'config/example.yaml'), 'utf8'));
    example.sources[0].url = src.url;
    example.targets[0].url = dst.url;
    const bridge = await startBridgeProcess({ config: example, env: { KAFKA_BROKERS: undefined, DATA_DIR: mkdtempSync(join(tmpdir(), 'hsb-quick-')) } });
    try {
      await bridge.waitReady();
      assert.match(bridge.logs(), /using the embedded \(node:sqlite\) bus/);
      const ready = await (await fetch(`${bridge.url}/readyz`)).json() as { bus: string };
      assert.equal(ready.bus, 'embedded');

      await pushImage(image, src, 'library/busybox', '1.36');
      const digest = await inspectDigest(src, 'library/busybox', '1.36');
      // The README's curl, byte for byte apart from the substituted digest and time.
      const res = await fetch(`${bridge.url}/webhooks/harbor/harbor-local`, {
        method: 'POST',
        headers: { Authorization: 'Bearer dev-webhook-secret', 'Content-Type': 'application/json' },
        body: `{"type":"PUSH_ARTIFACT","occur_at":${Math.floor(Date.now() / 1000)},"operator":"admin",
       "event_data":{"resources":[{"digest":"${digest}","tag":"1.36"}],
       "repository":{"name":"busybox","namespace":"library","repo_full_name":"library/busybox","repo_type":"public"}}}`,
      });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal((await res.json() as { accepted: number }).accepted, 1);
      await eventually(async () => (await inspectDigest(dst, 'library/busybox', '1.36').catch(() => '')) === digest, 60000, 'the image in the target');

      // The README's way without internet: scripts/oci-image.sh and skopeo's oci: transport, pushed
      // over the same tag (so the target's tag moves to the new digest).
      const layout = join(mkdtempSync(join(tmpdir(), 'hsb-oci-')), 'img');
      const built = execFileSync('bash', [join(ROOT, 'scripts/oci-image.sh'), layout, '1.36'], { encoding: 'utf8' }).trim();
      assert.match(built, /^sha256:[a-f0-9]{64}$/);
      assert.notEqual(built, digest);
      execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:1.36`, `docker://${src.host}/library/busybox:1.36`]);
      assert.equal(await inspectDigest(src, 'library/busybox', '1.36'), built);
      const again = await fetch(`${bridge.url}/webhooks/harbor/harbor-local`, {
        method: 'POST',
        headers: { Authorization: 'Bearer dev-webhook-secret', 'Content-Type': 'application/json' },
        body: JSON.stringify({
          type: 'PUSH_ARTIFACT', occur_at: Math.floor(Date.now() / 1000) + 1, operator: 'admin',
          event_data: { resources: [{ digest: built, tag: '1.36' }], repository: { name: 'busybox', namespace: 'library', repo_full_name: 'library/busybox', repo_type: 'public' } },
        }),
      });
      assert.equal(again.status, 200, await again.clone().text());
      await eventually(async () => (await inspectDigest(dst, 'library/busybox', '1.36').catch(() => '')) === built, 60000, 'the offline image in the target');
    } finally {
      assert.equal(await bridge.stop(), 0);
    }
  });
});
