// Manifests: GET (exact bytes, digest checked), HEAD, PUT, DELETE.
import type { Transport } from './transport.ts';
import { repoScope } from './scope.ts';
import { MANIFEST_ACCEPT, MANIFEST_MAX_BYTES, MediaType, isSchema1Type } from './media-types.ts';
import { algorithmOf, digestOf, isDigest } from './digest.ts';
import { registryError } from './errors.ts';

export interface ManifestData { bytes: Buffer; mediaType: string; digest: string }
export interface ManifestHead { digest: string; mediaType: string; size: number }

const path = (repo: string, ref: string) => `/v2/${repo}/manifests/${ref}`;
const baseType = (ct: string | undefined) => (ct ?? '').split(';')[0]!.trim();

/** The manifest's own mediaType field, used when a registry sends a generic Content-Type. */
function mediaTypeFromBody(bytes: Buffer): string | undefined {
  try {
    const j = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown; config?: unknown };
    if (typeof j.mediaType === 'string') return j.mediaType;
    if (j.schemaVersion === 1) return MediaType.dockerSchema1;
    if (Array.isArray(j.manifests)) return MediaType.ociIndex;
    if (j.config) return MediaType.ociManifest;
  } catch { /* not JSON: leave undecided */ }
  return undefined;
}

export async function manifestGet(t: Transport, repo: string, ref: string, accept: readonly string[] = MANIFEST_ACCEPT, signal?: AbortSignal): Promise<ManifestData> {
  const ctx = { repo, ref };
  const res = await t.send({ method: 'GET', path: path(repo, ref), headers: { accept: accept.join(', ') }, scopes: [repoScope(repo, 'pull')], expect: [200], ctx, signal });
  const declared = Number(res.header('content-length') ?? NaN);
  if (declared > MANIFEST_MAX_BYTES) {
    await res.discard();
    throw registryError('HSB_REGISTRY_TOO_LARGE', `manifest of ${declared} bytes exceeds ${MANIFEST_MAX_BYTES}`, { registry: t.registry, ...ctx });
  }
  const bytes = await t.readBody(res, MANIFEST_MAX_BYTES, ctx);
  const ct = baseType(res.header('content-type'));
  const mediaType = ct && ct !== 'application/json' && ct !== 'text/plain' ? ct : (mediaTypeFromBody(bytes) ?? ct);
  if (isSchema1Type(mediaType) || mediaTypeFromBody(bytes) === MediaType.dockerSchema1) {
    throw registryError('HSB_REGISTRY_SCHEMA1', 'source serves a Docker schema1 manifest, which the bridge does not copy', { registry: t.registry, ...ctx });
  }
  const headerDigest = res.header('docker-content-digest');
  const expected = isDigest(ref) ? ref : headerDigest && isDigest(headerDigest) ? headerDigest : undefined;
  const digest = digestOf(bytes, expected ? algorithmOf(expected) : 'sha256');
  if (expected && digest !== expected) {
    throw registryError('HSB_REGISTRY_DIGEST_MISMATCH', `manifest hashes to ${digest}, expected ${expected}`, { registry: t.registry, ...ctx, expected, actual: digest });
  }
  // Normalise to sha256 so digests compare across registries.
  return { bytes, mediaType, digest: digest.startsWith('sha256:') ? digest : digestOf(bytes) };
}

/** HEAD of a manifest; null on 404. Falls back to GET when the registry omits the digest header. */
export async function manifestHead(t: Transport, repo: string, ref: string, signal?: AbortSignal): Promise<ManifestHead | null> {
  const res = await t.send({ method: 'HEAD', path: path(repo, ref), headers: { accept: MANIFEST_ACCEPT.join(', ') }, scopes: [repoScope(repo, 'pull')], expect: [200, 404], ctx: { repo, ref }, signal });
  await res.discard();
  if (res.status === 404) return null;
  const digest = res.header('docker-content-digest');
  const size = Number(res.header('content-length') ?? NaN);
  if (digest && digest.startsWith('sha256:') && isDigest(digest) && Number.isFinite(size)) {
    return { digest, mediaType: baseType(res.header('content-type')), size };
  }
  try {
    const m = await manifestGet(t, repo, ref, MANIFEST_ACCEPT, signal);
    return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
  } catch (e) {
    if ((e as { code?: string }).code === 'HSB_REGISTRY_NOT_FOUND') return null;
    throw e;
  }
}

export async function manifestPut(t: Transport, repo: string, ref: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string> {
  if (bytes.length > MANIFEST_MAX_BYTES) throw registryError('HSB_REGISTRY_TOO_LARGE', `manifest of ${bytes.length} bytes exceeds ${MANIFEST_MAX_BYTES}`, { registry: t.registry, repo, ref });
  const digest = digestOf(bytes);
  const res = await t.send({
    method: 'PUT', path: path(repo, ref), headers: { 'content-type': mediaType }, body: bytes,
    scopes: [repoScope(repo, 'pull', 'push')], expect: [201, 200, 202], ctx: { repo, ref, digest }, signal,
  });
  await res.discard();
  const answered = res.header('docker-content-digest');
  if (answered && answered.startsWith('sha256:') && answered !== digest) {
    throw registryError('HSB_REGISTRY_DIGEST_MISMATCH', `registry stored the manifest as ${answered}, expected ${digest}`, { registry: t.registry, repo, ref, expected: digest, actual: answered });
  }
  return digest;
}

/** DELETE by digest; false when it was already gone. */
export async function manifestDelete(t: Transport, repo: string, digest: string, signal?: AbortSignal): Promise<boolean> {
  const res = await t.send({ method: 'DELETE', path: path(repo, digest), scopes: [repoScope(repo, 'pull', 'delete')], expect: [202, 200, 204, 404], ctx: { repo, ref: digest }, signal });
  await res.discard();
  return res.status !== 404;
}
