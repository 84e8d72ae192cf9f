// TLS against a real HTTPS registry: verification on by default, caFile trusted, insecure opt-out.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type TestRegistry } from '../../support/registry.ts';
import { RegistryClient } from '../../../src/registry/client.ts';
import type { BridgeError } from '../../../src/errors.ts';

let reg: TestRegistry;
const clients: RegistryClient[] = [];
before(async () => { reg = await startRegistry({ auth: 'basic', tls: true }); });
after(async () => { for (const c of clients) await c.close(); await reg.stop(); });

const client = (tls: { insecure: boolean; caFile?: string }) => {
  const c = new RegistryClient({ url: reg.url, credentials: reg.users[0], tls });
  clients.push(c);
  return c;
};

test('an untrusted certificate fails with the permanent HSB_REGISTRY_TLS', async () => {
  assert.match(reg.url, /^https:/);
  await assert.rejects(client({ insecure: false }).listTags('a/b'), (e: BridgeError) => e.code === 'HSB_REGISTRY_TLS' && !e.retryable);
});

test('the certificate in tls.caFile is trusted', async () => {
  assert.deepEqual(await client({ insecure: false, caFile: reg.caFile }).listTags('a/b'), []);
});

test('tls.insecure turns verification off', async () => {
  assert.deepEqual(await client({ insecure: true }).catalog(), []);
});
