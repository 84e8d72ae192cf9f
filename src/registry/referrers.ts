// Referrers (signatures, SBOMs, attestations): the OCI 1.1 referrers API, and the tag schema
// fallback (`sha256-<hex>` tag holding an index) for registries without it, such as
// distribution 2.8. Which one a registry speaks is probed once and cached.
import type { Transport } from './transport.ts';
import { repoScope } from './scope.ts';
import { MediaType } from './media-types.ts';
import type { ManifestData } from './manifest.ts';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string };
  urls?: string[];
}

export interface ReferrersResult {
  via: 'api' | 'tag';
  descriptors: Descriptor[];
  /** With the tag schema: the index behind the `sha256-<hex>` tag (to copy as it is). */
  tagIndex?: ManifestData & { tag: string };
}

interface ClientLike {
  readonly transport: Transport;
  getManifest(repo: string, ref: string, accept?: string[], signal?: AbortSignal): Promise<ManifestData>;
}

const apiSupport = new WeakMap<Transport, boolean>();

export const referrersTag = (digest: string) => digest.replace(':', '-').slice(0, 128);

export async function referrersList(c: ClientLike, repo: string, digest: string, signal?: AbortSignal): Promise<ReferrersResult> {
  const t = c.transport;
  if (apiSupport.get(t) !== false) {
    const res = await t.send({ method: 'GET', path: `/v2/${repo}/referrers/${digest}`, headers: { accept: MediaType.ociIndex }, scopes: [repoScope(repo, 'pull')], expect: [200, 404, 400, 405], ctx: { repo, digest }, signal });
    const ct = (res.header('content-type') ?? '').split(';')[0]!.trim();
    if (res.status === 200 && ct === MediaType.ociIndex) {
      apiSupport.set(t, true);
      const body = JSON.parse((await t.readBody(res, 4 * 1024 * 1024)).toString('utf8')) as { manifests?: Descriptor[] };
      return { via: 'api', descriptors: body.manifests ?? [] };
    }
    await res.discard();
    apiSupport.set(t, false);
  }
  const tag = referrersTag(digest);
  try {
    const m = await c.getManifest(repo, tag, [MediaType.ociIndex], signal);
    const body = JSON.parse(m.bytes.toString('utf8')) as { manifests?: Descriptor[] };
    return { via: 'tag', descriptors: body.manifests ?? [], tagIndex: { ...m, tag } };
  } catch (e) {
    if ((e as { code?: string }).code === 'HSB_REGISTRY_NOT_FOUND') return { via: 'tag', descriptors: [] };
    throw e;
  }
}
