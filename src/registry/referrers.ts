// Referrers (signatures, SBOMs, attestations): the OCI 1.1 referrers API, and the tag schema
// fallback (`sha256-<hex>` tag holding an index) for registries without it, such as
// distribution 2.8. Which one a registry speaks is probed once and cached.
import type { RegistryResponse, Transport } from './transport.ts';
import { repoScope } from './scope.ts';
import { MediaType } from './media-types.ts';
import type { ManifestData } from './manifest.ts';
import { nextLink } from './tag.ts';

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

const REFERRERS_PAGE_MAX_BYTES = 4 * 1024 * 1024;
const REFERRERS_MAX_PAGES = 1000;

/** The first answer's descriptors and those of every page its `Link: <...>; rel="next"` leads to. */
async function referrerPages(t: Transport, repo: string, digest: string, first: RegistryResponse, signal?: AbortSignal): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  let res = first;
  let path: string | undefined = `/v2/${repo}/referrers/${digest}`;
  for (let page = 0; ; page++) {
    const body = JSON.parse((await t.readBody(res, REFERRERS_PAGE_MAX_BYTES)).toString('utf8')) as { manifests?: Descriptor[] };
    out.push(...(body.manifests ?? []));
    const next = nextLink(res.header('link'));
    if (next === undefined || next === path || page + 1 >= REFERRERS_MAX_PAGES) return out;
    path = next;
    res = await t.send({ method: 'GET', path, headers: { accept: MediaType.ociIndex }, scopes: [repoScope(repo, 'pull')], expect: [200], ctx: { repo, digest }, signal });
  }
}

export const referrersTag = (digest: string) => digest.replace(':', '-').slice(0, 128);

/** cosign's tag schema (what it writes unless told to use OCI 1.1): `sha256-<hex>.sig`, `.att`, `.sbom` beside the subject. */
const COSIGN_SUFFIXES = ['sig', 'att', 'sbom'] as const;

/** The cosign tags that may hold signatures, attestations and SBOMs of `digest` (sha256 only, as cosign writes them). */
export function cosignTags(digest: string): string[] {
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) return [];
  return COSIGN_SUFFIXES.map((s) => `${referrersTag(digest)}.${s}`);
}

/**
 * The subject digest a referrer tag names: `sha256-<hex>` (OCI 1.1's tag fallback) or a cosign
 * tag; `cosignOnly` leaves the fallback out. Undefined for any other tag.
 */
export function referrerTagSubject(tag: string, opts: { cosignOnly?: boolean } = {}): string | undefined {
  const m = /^sha256-([0-9a-f]{64})(?:\.(sig|att|sbom))?$/.exec(tag);
  if (!m || (opts.cosignOnly && m[2] === undefined)) return undefined;
  return `sha256:${m[1]}`;
}

export async function referrersList(c: ClientLike, repo: string, digest: string, signal?: AbortSignal): Promise<ReferrersResult> {
  const t = c.transport;
  if (apiSupport.get(t) !== false) {
    const res = await t.send({ method: 'GET', path: `/v2/${repo}/referrers/${digest}`, headers: { accept: MediaType.ociIndex }, scopes: [repoScope(repo, 'pull')], expect: [200, 404, 400, 405], ctx: { repo, digest }, signal });
    const ct = (res.header('content-type') ?? '').split(';')[0]!.trim();
    if (res.status === 200 && ct === MediaType.ociIndex) {
      apiSupport.set(t, true);
      return { via: 'api', descriptors: await referrerPages(t, repo, digest, res, signal) };
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
