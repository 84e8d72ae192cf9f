import { readFileSync } from 'node:fs';

// Payload fixtures shaped as Harbor / distribution emit them (test/fixtures/harbor).
const dir = new URL('../../fixtures/harbor/', import.meta.url);

export function fixture(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`${name}.json`, dir), 'utf8')) as Record<string, unknown>;
}

export const FIXTURE_NAMES = [
  'v2-push-by-tag', 'v2-push-by-digest', 'v2-delete-artifact', 'v2-delete-artifact-tagged', 'v2-push-nested-no-date',
  'v2-push-extra-fields', 'v2-pull-artifact', 'v2-scanning-completed', 'v2-quota-exceed', 'v2-replication', 'v2-tag-retention',
  'v1-push-image', 'v1-delete-image', 'v1-pull-image',
  'ce-artifact-pushed', 'ce-artifact-deleted', 'ce-scan-completed',
  'distribution-push', 'distribution-delete', 'distribution-pull',
] as const;

export const DIGEST_A = 'sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb';
export const DIGEST_B = 'sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d';
export const DIGEST_C = 'sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6';
export const DIGEST_D = 'sha256:18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4';
export const DIGEST_E = 'sha256:3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea';
export const DIGEST_F = 'sha256:252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111';
