// Digests: parsing, computing and checking (sha256 and sha512, the algorithms OCI registers).
import { createHash } from 'node:crypto';
import { registryError, type RegistryErrorCtx } from './errors.ts';

const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export const isDigest = (s: string) => DIGEST_RE.test(s);

export function algorithmOf(digest: string): 'sha256' | 'sha512' {
  return digest.startsWith('sha512:') ? 'sha512' : 'sha256';
}

export function digestOf(bytes: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Throws HSB_REGISTRY_DIGEST_MISMATCH unless `bytes` hash to `expected`. */
export function verifyDigest(bytes: Buffer, expected: string, ctx: RegistryErrorCtx = {}): string {
  const actual = digestOf(bytes, algorithmOf(expected));
  if (actual !== expected) throw registryError('HSB_REGISTRY_DIGEST_MISMATCH', `content hashes to ${actual}, expected ${expected}`, { ...ctx, expected, actual });
  return actual;
}

export function assertDigest(d: string, what = 'digest'): void {
  if (!isDigest(d)) throw registryError('HSB_REGISTRY_BAD_REQUEST', `invalid ${what}: ${d.slice(0, 80)}`);
}
