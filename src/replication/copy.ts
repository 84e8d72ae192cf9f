// copyArtifact: make dst/dstRepo hold what src/srcRepo:srcRef is now, digest-exact (or in Docker
// format on request). Children before parents: blobs, child manifests, the index, then the tag.
// Nothing moves when the target already has the digest under the reference.
import type { RegistryClient } from '../registry/client.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import { isDigest } from '../registry/digest.ts';
import { isRefusal, registryError } from '../registry/errors.ts';
import { ByteRateLimiter, kbpsToBytesPerSecond } from '../registry/limits.ts';
import { BridgeError } from '../errors.ts';
import type { Descriptor } from '../registry/referrers.ts';
import { MediaType, isSchema1Type } from '../registry/media-types.ts';
import { cosignTags, referrersTag } from '../registry/referrers.ts';
import { filterChildren, indexChildren, isAttestation, subjectOf, parseManifest, planBlobs, planDigest, blobsOf, rewriteIndex, type PlanNode } from './copy-plan.ts';
import { imageToDocker, indexToDocker, isDockerType } from './convert-docker.ts';
import { CopyPool, defaultCopyPool, type BlobOutcome } from './copy-pool.ts';

export interface CopyOptions {
  manifestFormat?: 'preserve' | 'docker';
  /** Keep only these index children (`os/arch[/variant]`). */
  platforms?: string[];
  /**
   * Also copy referrers (signatures, SBOMs) of the copied manifest and of an index's children:
   * OCI 1.1 referrers, and cosign's `sha256-<hex>.sig|.att|.sbom` tags.
   */
  referrers?: boolean;
  /** Move an existing target tag that points elsewhere (default true). */
  override?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void;
  /** True while a blob of this copy queues in the pool (no bytes can move), false when it stops. */
  onWait?: (waiting: boolean) => void;
  /** Bandwidth cap for this copy's uploads in Kbit/s (a Harbor policy's `speed`), on top of the target's. */
  speedKbps?: number | undefined;
  logger?: Logger;
  pool?: CopyPool;
  /**
   * Add a copied manifest that names a `subject` to the subject's `sha256-<hex>` index on a target
   * without the referrers API, as a client pushing it would (default true; false where the caller
   * writes that index itself).
   */
  linkSubject?: boolean;
}

export interface CopyResult {
  /** Digest of the copied artifact, now present in the target (under the tag unless tagMoved is false). */
  digest: string;
  /** Blob bytes uploaded (mounted and skipped blobs move no bytes). */
  bytes: number;
  blobs: { uploaded: number; mounted: number; skipped: number };
  /** The target already had the digest under the reference: no blob traffic at all. */
  skipped: boolean;
  /** The tag now points at `digest` and did not before. */
  tagMoved: boolean;
  /** With override off: the digest the target's tag still points at. */
  tagDigest?: string;
  referrers?: number;
}

interface Ctx {
  src: RegistryClient;
  srcRepo: string;
  dst: RegistryClient;
  dstRepo: string;
  opts: CopyOptions;
  log: Logger;
  pool: CopyPool;
  counts: { uploaded: number; mounted: number; skipped: number };
  bytes: number;
  progress: { done: number; total: number; perBlob: Map<string, number> };
  bandwidth: ByteRateLimiter | undefined;
  /** Aborts the rest of this copy's transfers once one of them failed. */
  cancel: AbortController;
  /** The first failure: what the copy reports, not the aborts it caused. */
  failure?: { error: unknown };
}

/**
 * Waits for all of `work`; the first failure cancels the others (their transfers would hold
 * slots and bandwidth for a copy already reported failed) and is what this throws.
 */
async function together(c: Ctx, work: Promise<unknown>[]): Promise<void> {
  const settled = await Promise.allSettled(work.map((p) => p.catch((e: unknown) => {
    if (!c.failure) {
      c.failure = { error: e };
      c.cancel.abort(e);
    }
    throw e;
  })));
  if (settled.some((r) => r.status === 'rejected')) throw c.failure!.error;
}

type PlanCtx = Pick<Ctx, 'src' | 'srcRepo' | 'opts'>;

/** Builds the plan tree: fetches child manifests by digest, filters platforms, converts formats. */
async function buildPlan(c: PlanCtx, bytes: Buffer, mediaType: string, sourceDigest: string, depth = 0): Promise<PlanNode> {
  if (depth > 4) throw registryError('HSB_REGISTRY_MANIFEST_INVALID', 'index nesting deeper than 4 levels', { digest: sourceDigest });
  if (isSchema1Type(mediaType)) throw registryError('HSB_REGISTRY_SCHEMA1', 'source serves a Docker schema1 manifest, which the bridge does not copy', { digest: sourceDigest });
  const docker = c.opts.manifestFormat === 'docker';
  const parsed = parseManifest(bytes, mediaType);
  if (parsed.kind === 'image') {
    const converted = docker && !isDockerType(mediaType) ? imageToDocker(parsed.doc, { digest: sourceDigest }) : { bytes, mediaType };
    return { sourceDigest, digest: planDigest(converted.bytes), mediaType: converted.mediaType, bytes: converted.bytes, children: [], blobs: blobsOf(parsed.doc) };
  }
  let wanted = filterChildren(parsed.doc.manifests, depth === 0 ? c.opts.platforms : undefined);
  // Docker lists cannot hold buildkit attestations (they are not images).
  if (docker) wanted = wanted.filter((d) => !isAttestation(d));
  if (wanted.length === 0) throw registryError('HSB_COPY_NO_MATCHING_PLATFORM', `no index child matches platforms ${c.opts.platforms?.join(', ')}`, { digest: sourceDigest });
  const children = await Promise.all(wanted.map(async (d) => {
    const m = await c.src.getManifest(c.srcRepo, d.digest, undefined, c.opts.signal);
    return buildPlan(c, m.bytes, m.mediaType, m.digest, depth + 1);
  }));
  const descs: Descriptor[] = wanted.map((d, i) => {
    const n = children[i]!;
    return n.digest === d.digest ? d : { ...d, digest: n.digest, size: n.bytes.length, mediaType: n.mediaType };
  });
  const out = docker && !isDockerType(mediaType) ? indexToDocker(descs) : { bytes: rewriteIndex(bytes, parsed.doc, descs), mediaType };
  return { sourceDigest, digest: planDigest(out.bytes), mediaType: out.mediaType, bytes: out.bytes, children, blobs: [] };
}

function reportProgress(c: Ctx, digest: string, bytes: number): void {
  const prev = c.progress.perBlob.get(digest) ?? 0;
  if (bytes <= prev) return;
  c.progress.perBlob.set(digest, bytes);
  c.progress.done += bytes - prev;
  c.opts.onProgress?.({ bytesDone: c.progress.done, bytesTotal: c.progress.total });
}

async function copyBlob(c: Ctx, desc: Descriptor): Promise<BlobOutcome> {
  const outcome = await c.pool.ensureBlob({
    src: c.src, srcRepo: c.srcRepo, dst: c.dst, dstRepo: c.dstRepo, desc, signal: c.opts.signal, logger: c.log,
    onProgress: (n) => reportProgress(c, desc.digest, n), onWait: c.opts.onWait, bandwidth: c.bandwidth,
  });
  c.counts[outcome]++;
  if (outcome === 'uploaded') c.bytes += desc.size;
  reportProgress(c, desc.digest, desc.size);
  return outcome;
}

/** Copies a node's content, children first; returns once the manifest is in the target by digest. */
async function copyNode(c: Ctx, node: PlanNode, blobTasks: Map<string, Promise<BlobOutcome>>, isRoot: boolean): Promise<void> {
  if (!isRoot && await c.dst.headManifest(c.dstRepo, node.digest, c.opts.signal)) {
    for (const b of planBlobs(node).values()) reportProgress(c, b.digest, b.size);
    return;
  }
  await together(c, node.children.map((ch) => copyNode(c, ch, blobTasks, false)));
  await together(c, node.blobs.map((b) => {
    // One transfer per digest within this copy, whichever manifests share it.
    let t = blobTasks.get(b.digest);
    if (!t) { t = copyBlob(c, b); blobTasks.set(b.digest, t); }
    return t;
  }));
  if (!isRoot) await c.dst.putManifest(c.dstRepo, node.digest, node.bytes, node.mediaType, c.opts.signal);
}

/**
 * The digest a copy with these options would write for `srcRef`: the source's own unless the
 * manifest is converted (Docker format) or filtered (platforms). Reads manifests only.
 */
/** Whether copies with these options write the target a manifest of their own (Docker format, platform filter). */
export function transformsManifest(opts: Pick<CopyOptions, 'manifestFormat' | 'platforms'>): boolean {
  return opts.manifestFormat === 'docker' || (opts.platforms?.length ?? 0) > 0;
}

export async function targetDigestOf(src: RegistryClient, srcRepo: string, srcRef: string, opts: Pick<CopyOptions, 'manifestFormat' | 'platforms' | 'signal'>): Promise<string> {
  const root = await src.getManifest(srcRepo, srcRef, undefined, opts.signal);
  if (!transformsManifest(opts)) return root.digest;
  return (await buildPlan({ src, srcRepo, opts }, root.bytes, root.mediaType, root.digest)).digest;
}

function newCtx(src: RegistryClient, srcRepo: string, srcRef: string, dst: RegistryClient, dstRepo: string, dstTag: string | undefined, opts: CopyOptions): Ctx {
  const log = (opts.logger ?? silentLogger).child({ src: `${src.host}/${srcRepo}:${srcRef}`, dst: `${dst.host}/${dstRepo}${dstTag ? `:${dstTag}` : ''}` });
  const cancel = new AbortController();
  opts = { ...opts, signal: opts.signal ? AbortSignal.any([opts.signal, cancel.signal]) : cancel.signal };
  return {
    cancel,
    src, srcRepo, dst, dstRepo, opts, log, pool: opts.pool ?? defaultCopyPool,
    counts: { uploaded: 0, mounted: 0, skipped: 0 }, bytes: 0, progress: { done: 0, total: 0, perBlob: new Map() },
    bandwidth: opts.speedKbps ? new ByteRateLimiter(kbpsToBytesPerSecond(opts.speedKbps)) : undefined,
  };
}

export async function copyArtifact(src: RegistryClient, srcRepo: string, srcRef: string, dst: RegistryClient, dstRepo: string, dstTag: string | undefined, opts: CopyOptions = {}): Promise<CopyResult> {
  const c = newCtx(src, srcRepo, srcRef, dst, dstRepo, dstTag, opts);
  opts = c.opts;
  const log = c.log;
  const root = await src.getManifest(srcRepo, srcRef, undefined, opts.signal);
  const transforms = transformsManifest(opts);
  const ref = dstTag ?? (transforms ? undefined : root.digest);

  // Fast path: preserved bytes, so the target digest is the source digest; one HEAD decides.
  let existing = ref ? await dst.headManifest(dstRepo, ref, opts.signal) : null;
  if (!transforms && existing?.digest === root.digest) {
    log.debug({ digest: root.digest }, 'target already up to date');
    // Signatures may have come after the artifact: this is where a later task brings them over.
    const refs = opts.referrers ? await referrersOf(c, [root.digest, ...indexChildren(root.bytes, root.mediaType)]) : {};
    await linkToSubject(c, root);
    return { digest: root.digest, bytes: c.bytes, blobs: c.counts, skipped: true, tagMoved: false, ...counted(refs) };
  }

  const plan = await buildPlan(c, root.bytes, root.mediaType, root.digest);
  // Signatures and SBOMs name the source digest: only a manifest copied unchanged has them (a
  // platform filter that drops a child changes the index, not the children). Never in Docker
  // format: such a target takes no OCI manifest.
  const signed = opts.referrers === true && opts.manifestFormat !== 'docker'
    ? [plan, ...plan.children].filter((n) => n.digest === n.sourceDigest).map((n) => n.digest)
    : [];
  if (transforms) {
    existing = await dst.headManifest(dstRepo, dstTag ?? plan.digest, opts.signal);
    if (existing?.digest === plan.digest) {
      const refs = await referrersOf(c, signed);
      return { digest: plan.digest, bytes: c.bytes, blobs: c.counts, skipped: true, tagMoved: false, ...counted(refs) };
    }
  }
  const keepTag = dstTag !== undefined && existing !== null && opts.override === false;
  c.progress.total = [...planBlobs(plan).values()].reduce((n, b) => n + b.size, 0);
  opts.onProgress?.({ bytesDone: 0, bytesTotal: c.progress.total });

  await copyNode(c, plan, new Map(), true);
  // Referrers go in before the tag, so a tag in the target never points at an artifact whose
  // signature is missing; the manifest they name goes in by digest first.
  const byDigestFirst = keepTag || !dstTag || signed[0] === plan.digest;
  if (byDigestFirst) await dst.putManifest(dstRepo, plan.digest, plan.bytes, plan.mediaType, opts.signal);
  const refs = await referrersOf(c, signed);
  // The tag last (which makes it visible), unless it stays put.
  if (dstTag && !keepTag) {
    if (!isDigest(srcRef)) await sourceTagUnmoved(c, srcRef, root.digest);
    await dst.putManifest(dstRepo, dstTag, plan.bytes, plan.mediaType, opts.signal);
  }
  if (plan.digest === root.digest) await linkToSubject(c, root);
  log.info({ digest: plan.digest, bytes: c.bytes, ...c.counts, keepTag }, keepTag ? 'copied by digest; target tag left in place (override off)' : 'artifact copied');
  return {
    digest: plan.digest, bytes: c.bytes, blobs: c.counts, skipped: false,
    tagMoved: dstTag !== undefined && !keepTag,
    ...(keepTag && existing ? { tagDigest: existing.digest } : {}),
    ...counted(refs),
  };
}

/**
 * Level-triggered means the tag written is what the source holds at the time of writing: a copy
 * that started before the source tag moved (say, a retried task outliving a newer one) must not
 * put the older digest back over the newer. Retryable, so the next try resolves the tag afresh.
 */
async function sourceTagUnmoved(c: Ctx, tag: string, copied: string): Promise<void> {
  const now = await c.src.headManifest(c.srcRepo, tag, c.opts.signal);
  if (now?.digest === copied) return;
  throw new BridgeError('HSB_COPY_SOURCE_MOVED', `source tag ${c.srcRepo}:${tag} moved during the copy (${copied} -> ${now?.digest ?? 'gone'}); the tag was not written`, {
    retryable: true, context: { repository: c.srcRepo, tag, copied, now: now?.digest ?? 'gone' },
  });
}

/** What {@link copyReferrersOf} did: copied, the target lacks the artifact, or (`of: 'subject'`) no subject named. */
export type ReferrersCopy =
  | { kind: 'copied'; artifact: string; result: CopyResult }
  | { kind: 'absent'; artifact: string }
  | { kind: 'not-a-referrer' };

/**
 * A signature (or SBOM) pushed after its artifact, into a target that already holds the artifact
 * (as Harbor replicates an accessory pushed later). `of: 'digest'`: `digest` is the artifact (a
 * referrer tag named it); its referrers and its children's are copied. `of: 'subject'`: `digest`
 * is an untagged push; when its manifest names a subject, it is that subject's referrer, and is
 * copied by digest (with the subject's tag-schema index where the target has no referrers API).
 */
export async function copyReferrersOf(src: RegistryClient, srcRepo: string, digest: string, dst: RegistryClient, dstRepo: string, of: 'digest' | 'subject', opts: CopyOptions = {}): Promise<ReferrersCopy> {
  const c = newCtx(src, srcRepo, digest, dst, dstRepo, undefined, { ...opts, referrers: true });
  const root = await src.getManifest(srcRepo, digest, undefined, c.opts.signal);
  if (of === 'subject') {
    const subject = subjectOf(root.bytes, root.mediaType);
    if (subject === undefined) return { kind: 'not-a-referrer' };
    if (!await dst.headManifest(dstRepo, subject, c.opts.signal)) return { kind: 'absent', artifact: subject };
    return { kind: 'copied', artifact: subject, result: await copyArtifact(src, srcRepo, digest, dst, dstRepo, undefined, { ...c.opts, platforms: undefined, manifestFormat: 'preserve' }) };
  }
  if (!await dst.headManifest(dstRepo, digest, c.opts.signal)) return { kind: 'absent', artifact: digest };
  const refs = await referrersOf(c, [digest, ...indexChildren(root.bytes, root.mediaType)]);
  return { kind: 'copied', artifact: digest, result: { digest, bytes: c.bytes, blobs: c.counts, skipped: refs.copied === 0, tagMoved: false, ...counted(refs) } };
}

/**
 * With referrers on: a copied manifest that names a subject is found through the subject's
 * referrers, so a target without the referrers API needs it in the subject's `sha256-<hex>` index,
 * which the client pushing it writes (OCI distribution spec, referrers tag schema). The manifest
 * itself is in by now: a target refusing the index is logged and leaves the copy done.
 */
async function linkToSubject(c: Ctx, m: { digest: string; mediaType: string; bytes: Buffer }): Promise<void> {
  if (c.opts.linkSubject === false || !c.opts.referrers || c.opts.manifestFormat === 'docker') return;
  const subject = subjectOf(m.bytes, m.mediaType);
  if (subject === undefined) return;
  const doc = parseManifest(m.bytes, m.mediaType).doc as { artifactType?: string; config?: { mediaType?: string }; annotations?: Record<string, string> };
  const artifactType = doc.artifactType ?? doc.config?.mediaType;
  const desc: Descriptor = {
    mediaType: m.mediaType, digest: m.digest, size: m.bytes.length,
    ...(artifactType ? { artifactType } : {}), ...(doc.annotations ? { annotations: doc.annotations } : {}),
  };
  try {
    await addToTagSchemaIndex(c, subject, [desc]);
  } catch (e) {
    // A transient failure fails the task, whose retry links it (the copy itself is then a no-op).
    if (c.opts.signal?.aborted || (e as { retryable?: boolean }).retryable) throw e;
    c.log.warn({ subject, digest: m.digest, code: (e as { code?: string }).code, err: (e as Error).message }, 'copied a referrer but could not add it to its subject\'s sha256-<digest> index in the target');
  }
}

/** Index writes per target repository and subject, one at a time in this process: each reads the index and writes it back. */
const indexWrites = new Map<string, Promise<unknown>>();

/**
 * On a target without the referrers API, puts `descs` into `subject`'s `sha256-<hex>` index
 * (after what it lists), or `replace` when given (the source's own index, when it differs). True
 * when it wrote. Serialised per index, so concurrent copies in this process do not lose entries.
 */
async function addToTagSchemaIndex(c: Ctx, subject: string, descs: readonly Descriptor[], replace?: { digest: string; bytes: Buffer; mediaType: string }): Promise<boolean> {
  const key = `${c.dst.identity}\0${c.dstRepo}\0${subject}`;
  const run = async (): Promise<boolean> => {
    const target = await c.dst.referrers(c.dstRepo, subject, c.opts.signal);
    if (target.via !== 'tag') return false;
    if (replace) {
      if (target.tagIndex?.digest === replace.digest) return false;
      await c.dst.putManifest(c.dstRepo, referrersTag(subject), replace.bytes, replace.mediaType, c.opts.signal);
      return true;
    }
    const have = new Set(target.descriptors.map((d) => d.digest));
    const missing = descs.filter((d) => !have.has(d.digest));
    if (missing.length === 0) return false;
    const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [...target.descriptors, ...missing] };
    await c.dst.putManifest(c.dstRepo, referrersTag(subject), Buffer.from(JSON.stringify(index)), MediaType.ociIndex, c.opts.signal);
    return true;
  };
  const prev = indexWrites.get(key) ?? Promise.resolve();
  const mine = prev.catch(() => undefined).then(run);
  indexWrites.set(key, mine);
  try {
    return await mine;
  } finally {
    if (indexWrites.get(key) === mine) indexWrites.delete(key);
  }
}

const counted = (r: { referrers?: number }): { referrers?: number } => (r.referrers === undefined ? {} : { referrers: r.referrers });

/** {@link copyReferrers} for each digest, at once; `copied` counts what the target did not have yet. */
async function referrersOf(c: Ctx, digests: readonly string[]): Promise<{ referrers?: number; copied: number }> {
  if (!c.opts.referrers) return { copied: 0 };
  const each = await Promise.all([...new Set(digests)].map((d) => copyReferrers(c, d)));
  return { referrers: each.reduce((n, r) => n + r.found, 0), copied: each.reduce((n, r) => n + r.copied, 0) };
}

/**
 * Copies the referrers of `digest`: those the source's OCI 1.1 API or its tag schema lists, by
 * digest, and cosign's tags, under the same tags. A target without the referrers API gets the
 * `sha256-<hex>` tag index: the source's own bytes when the source has one, else one built from
 * the target's and the source's referrers. Of referrers' own referrers, only their cosign
 * signatures are followed (a signed SBOM), one level down.
 */
async function copyReferrers(c: Ctx, digest: string): Promise<{ found: number; copied: number }> {
  if (!isDigest(digest)) return { found: 0, copied: 0 };
  const [r, cosign] = await Promise.all([c.src.referrers(c.srcRepo, digest, c.opts.signal), tagsPresent(c, cosignTags(digest))]);
  let copied = 0;
  const copy = async (ref: string, tag: string | undefined) => {
    const res = await copyArtifact(c.src, c.srcRepo, ref, c.dst, c.dstRepo, tag, {
      ...c.opts, referrers: false, platforms: undefined, manifestFormat: 'preserve', linkSubject: false,
      // A signature tag is the artifact's set of signatures, not a user's tag: it always moves.
      ...(tag !== undefined ? { override: true } : {}),
      // Bytes moved here are not in the artifact's total; a call still shows the task is not stalled.
      onProgress: c.opts.onProgress ? () => c.opts.onProgress!({ bytesDone: c.progress.done, bytesTotal: c.progress.total }) : undefined,
    });
    c.bytes += res.bytes;
    if (!res.skipped) copied++;
  };
  let found = r.descriptors.length + cosign.length;
  for (const d of r.descriptors) {
    await copy(d.digest, undefined);
    // A signed SBOM or attestation: its own cosign signatures, one level down (not further).
    const signatures = await tagsPresent(c, cosignTags(d.digest));
    for (const tag of signatures) await copy(tag, tag);
    found += signatures.length;
  }
  for (const tag of cosign) await copy(tag, tag);
  if (r.descriptors.length > 0 && await addToTagSchemaIndex(c, digest, r.descriptors, r.tagIndex)) copied++;
  return { found, copied };
}

/** Registries (by account) already warned about refusing cosign look-ups: once per process is enough. */
const refusedProbes = new Set<string>();

async function tagsPresent(c: Ctx, tags: readonly string[]): Promise<string[]> {
  const heads = await Promise.all(tags.map((t) => c.src.headManifest(c.srcRepo, t, c.opts.signal).catch((e: unknown) => {
    if (!isRefusal(e) || c.opts.signal?.aborted) throw e;
    const code = (e as { code?: string }).code;
    if (refusedProbes.has(c.src.identity)) c.log.debug({ tag: t, code }, 'cosign tag look-up refused: taken as absent');
    else {
      refusedProbes.add(c.src.identity);
      c.log.warn({ tag: t, code }, 'the source refuses look-ups of cosign tags: taken as absent (said once per source)');
    }
    return null;
  })));
  return tags.filter((_, i) => heads[i] !== null);
}
