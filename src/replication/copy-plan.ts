// Pure decisions of a copy: what a manifest references, which index children a platform filter
// keeps, and the tree of manifests (children before parents) with the bytes the target gets.
import { z } from 'zod';
import { isForeignLayerType, isIndexType, isSchema1Type } from '../registry/media-types.ts';
import { digestOf } from '../registry/digest.ts';
import { registryError } from '../registry/errors.ts';
import type { Descriptor } from '../registry/referrers.ts';

const DescriptorSchema = z.looseObject({
  mediaType: z.string(),
  digest: z.string().regex(/^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/),
  size: z.number().int().min(0),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  artifactType: z.string().optional(),
  platform: z.looseObject({ os: z.string(), architecture: z.string(), variant: z.string().optional() }).optional(),
});

const ImageSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema).default([]),
  subject: DescriptorSchema.optional(),
});

const IndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(DescriptorSchema),
  subject: DescriptorSchema.optional(),
});

export type ImageDoc = z.infer<typeof ImageSchema>;
export type IndexDoc = z.infer<typeof IndexSchema>;
export type ParsedManifest = { kind: 'image'; doc: ImageDoc } | { kind: 'index'; doc: IndexDoc };

export function parseManifest(bytes: Buffer, mediaType: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw registryError('HSB_REGISTRY_MANIFEST_INVALID', 'source manifest is not JSON');
  }
  const declared = (json as { mediaType?: unknown }).mediaType;
  const indexLike = isIndexType(mediaType) || isIndexType(typeof declared === 'string' ? declared : '') || Array.isArray((json as { manifests?: unknown }).manifests);
  const r = indexLike ? IndexSchema.safeParse(json) : ImageSchema.safeParse(json);
  if (!r.success) throw registryError('HSB_REGISTRY_MANIFEST_INVALID', `source manifest does not parse: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return indexLike ? { kind: 'index', doc: r.data as IndexDoc } : { kind: 'image', doc: r.data as ImageDoc };
}

/** Blobs an image manifest needs in the target: config and layers, minus foreign layers. */
/** An index's children (every one: `cosign sign --recursive` signs them all); none for an image. */
export function indexChildren(bytes: Buffer, mediaType: string): string[] {
  const parsed = parsedOrUndefined(bytes, mediaType);
  return parsed?.kind === 'index' ? parsed.doc.manifests.map((d) => d.digest) : [];
}

/** The digest an OCI 1.1 referrer names as its `subject`, if any. */
export function subjectOf(bytes: Buffer, mediaType: string): string | undefined {
  return parsedOrUndefined(bytes, mediaType)?.doc.subject?.digest;
}

// For questions on the side of a copy (children, subject), where a manifest the copy itself
// would refuse is simply one without them.
function parsedOrUndefined(bytes: Buffer, mediaType: string): ParsedManifest | undefined {
  if (isSchema1Type(mediaType)) return undefined;
  try {
    return parseManifest(bytes, mediaType);
  } catch {
    return undefined;
  }
}

export function blobsOf(doc: ImageDoc): Descriptor[] {
  const all = [doc.config, ...doc.layers];
  const seen = new Set<string>();
  return all.filter((d) => {
    if (isForeignLayerType(d.mediaType)) return false;
    if (seen.has(d.digest)) return false;
    seen.add(d.digest);
    return true;
  });
}

export interface PlatformFilter { os: string; architecture: string; variant?: string }

/**
 * `os/arch[/variant]` as users write it: the one rule for `copy --platform` and a policy's `platforms`.
 * Any case and the spellings platformMatches normalises (`x86-64`, `Linux/AMD64`) are taken.
 */
const PLATFORM_FORMAT = /^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)?$/;

/** Why `s` is not a platform a user may write, or undefined when it is one (for schemas and argv). */
export function platformError(s: string): string | undefined {
  return PLATFORM_FORMAT.test(s) ? undefined : `expects os/arch[/variant], not "${s}"`;
}

export function parsePlatform(s: string): PlatformFilter {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw registryError('HSB_REGISTRY_BAD_REQUEST', `invalid platform "${s}": expected os/arch[/variant]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

/**
 * A filter without a variant matches every variant of its os/arch. Names are compared as container
 * runtimes normalise them: `arm64/v8` is plain `arm64`, `amd64/v1` plain `amd64`, an `arm` child
 * without a variant is `arm/v7`, `aarch64` is `arm64`, `x86_64` is `amd64`.
 */
export function platformMatches(p: Descriptor['platform'], filters: readonly PlatformFilter[]): boolean {
  if (!p) return false;
  const child = normalisePlatform(p);
  return filters.some((raw) => {
    const f = normalisePlatform(raw);
    return f.os === child.os && f.architecture === child.architecture && (raw.variant === undefined || f.variant === child.variant);
  });
}

function normalisePlatform(p: { os: string; architecture: string; variant?: string | undefined }): { os: string; architecture: string; variant: string } {
  const os = p.os.toLowerCase();
  const arch = p.architecture.toLowerCase();
  const variant = (p.variant ?? '').toLowerCase();
  switch (arch) {
    case 'i386': return { os, architecture: '386', variant: '' };
    case 'x86_64': case 'x86-64': case 'amd64': return { os, architecture: 'amd64', variant: variant === 'v1' ? '' : variant };
    case 'aarch64': case 'arm64': return { os, architecture: 'arm64', variant: variant === '8' || variant === 'v8' ? '' : variant };
    case 'armhf': return { os, architecture: 'arm', variant: 'v7' };
    case 'armel': return { os, architecture: 'arm', variant: 'v6' };
    case 'arm': return { os, architecture: 'arm', variant: variant === '' ? 'v7' : /^[5-8]$/.test(variant) ? `v${variant}` : variant };
    default: return { os, architecture: arch, variant };
  }
}

const REFERENCE_DIGEST = 'vnd.docker.reference.digest';
export const isAttestation = (d: Descriptor) => d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest';

/**
 * Index children kept by a platform filter. Children without a platform (artifacts) stay;
 * buildkit attestations stay when the image they describe stays.
 */
export function filterChildren(children: readonly Descriptor[], platforms: readonly string[] | undefined): Descriptor[] {
  if (!platforms || platforms.length === 0) return [...children];
  const filters = platforms.map(parsePlatform);
  const kept = children.filter((c) => !isAttestation(c) && (!c.platform || platformMatches(c.platform, filters)));
  const keptDigests = new Set(kept.map((c) => c.digest));
  return children.filter((c) => kept.includes(c) || (isAttestation(c) && keptDigests.has(c.annotations?.[REFERENCE_DIGEST] ?? '')));
}

/** Re-serialises an index with other children; the original bytes are kept when nothing changed. */
export function rewriteIndex(bytes: Buffer, doc: IndexDoc, children: Descriptor[]): Buffer {
  const same = children.length === doc.manifests.length && children.every((c, i) => {
    const o = doc.manifests[i]!;
    return c.digest === o.digest && c.size === o.size && c.mediaType === o.mediaType;
  });
  if (same) return bytes;
  return Buffer.from(JSON.stringify({ ...doc, manifests: children }, null, 3));
}

/** One manifest of the copy, as the target will hold it. */
export interface PlanNode {
  sourceDigest: string;
  digest: string;
  mediaType: string;
  bytes: Buffer;
  /** Child manifests (index only), each copied before this node. */
  children: PlanNode[];
  /** Blobs (image manifest only). */
  blobs: Descriptor[];
}

export function planDigest(bytes: Buffer): string {
  return digestOf(bytes);
}

/** Every distinct blob of a plan, children first. */
export function planBlobs(node: PlanNode, out = new Map<string, Descriptor>()): Map<string, Descriptor> {
  for (const c of node.children) planBlobs(c, out);
  for (const b of node.blobs) if (!out.has(b.digest)) out.set(b.digest, b);
  return out;
}
