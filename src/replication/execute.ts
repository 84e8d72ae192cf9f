import type { Logger } from '../observability/logger.ts';
import { copyArtifact, copyReferrersOf, transformsManifest, type CopyResult } from './copy.ts';
import { referrerTagSubject } from '../registry/referrers.ts';
import type { CopyPool } from './copy-pool.ts';
import type { SourceHandle, TargetHandle } from './endpoints.ts';
import type { ReplicationTask } from './task.ts';

export interface Outcome {
  status: 'done' | 'skipped' | 'deleted';
  digest?: string;
  bytes: number;
  blobs?: CopyResult['blobs'];
  note?: string;
}

export interface ExecuteContext {
  signal?: AbortSignal;
  onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void;
  onWait?: (waiting: boolean) => void;
  logger: Logger;
  /** One pool per process so concurrent tasks share the blob-transfer bound and dedupe digests. */
  pool?: CopyPool;
}

/**
 * Level-triggered: look at what the source holds for the reference *now* and make the target
 * equal to it. The event's digest is only a hint, so late, duplicate or re-ordered tasks converge.
 */
export async function executeTask(task: ReplicationTask, src: SourceHandle, dst: TargetHandle, ctx: ExecuteContext): Promise<Outcome> {
  if (task.options.referrersOf) return executeReferrersTask(task, task.options.referrersOf, src, dst, ctx);
  const ref = task.tag ?? task.digest!;
  // Every request takes the task's signal: a registry that never answers must not outlast a stall or a shutdown.
  const now = await src.client.headManifest(task.repository, ref, ctx.signal);
  if (now) {
    await dst.prepare(task.destRepository, ctx.signal);
    const r = await copyArtifact(src.client, task.repository, task.tag ?? now.digest, dst.client, task.destRepository, task.tag, {
      manifestFormat: task.options.manifestFormat ?? dst.manifestFormat,
      platforms: task.options.platforms,
      referrers: task.options.referrers,
      // A signature tag (`sha256-<hex>.sig`, `sha256-<hex>`) is its artifact's set of signatures, not a user's tag: it always moves.
      override: task.tag !== undefined && referrerTagSubject(task.tag) !== undefined ? true : task.options.override,
      signal: ctx.signal,
      onProgress: ctx.onProgress,
      onWait: ctx.onWait,
      speedKbps: task.options.speedKbps,
      logger: ctx.logger,
      pool: ctx.pool,
    });
    const note = r.skipped ? `already up to date: the target has ${r.digest}`
      : task.tag && !r.tagMoved ? `override is off: the target's tag ${task.tag} was left where it was` : undefined;
    return { status: r.skipped ? 'skipped' : 'done', digest: r.digest, bytes: r.bytes, blobs: r.blobs, note };
  }
  if (!task.options.deletion) {
    return { status: 'skipped', bytes: 0, note: `source no longer has ${task.repository}:${ref} and the policy does not replicate deletions` };
  }
  if (task.tag) {
    const deleted = await dst.deleteTag(task.destRepository, task.tag, ctx.signal);
    return { status: deleted ? 'deleted' : 'skipped', bytes: 0, note: deleted ? undefined : 'already absent from the target' };
  }
  if (await dst.client.deleteManifest(task.destRepository, task.digest!, ctx.signal)) return { status: 'deleted', bytes: 0 };
  const rewritten = transformsManifest({ manifestFormat: task.options.manifestFormat ?? dst.manifestFormat, platforms: task.options.platforms });
  return { status: 'skipped', bytes: 0, note: rewritten ? untaggedRewrittenNote(task.digest!) : 'already absent from the target' };
}

// The converted manifest's digest follows from the source's bytes, which are gone by now; untagged,
// it is found by no tag either.
function untaggedRewrittenNote(digest: string): string {
  return `nothing in the target under ${digest}; copies to this target are converted (Docker format or a platform filter), so an untagged copy of it has another digest, which cannot be derived once the source's manifest is deleted: it stays until the target's garbage collection removes untagged manifests`;
}

/** A signature (or SBOM) pushed after its artifact: it follows the artifact into a target that holds it (see copyReferrersOf). */
async function executeReferrersTask(task: ReplicationTask, of: 'digest' | 'subject', src: SourceHandle, dst: TargetHandle, ctx: ExecuteContext): Promise<Outcome> {
  const digest = task.digest!;
  if ((task.options.manifestFormat ?? dst.manifestFormat) === 'docker') {
    return { status: 'skipped', bytes: 0, note: 'copies to this target are in Docker format, which carries no signatures or other referrers' };
  }
  if (!await src.client.headManifest(task.repository, digest, ctx.signal)) {
    return { status: 'skipped', bytes: 0, note: of === 'digest'
      ? `the source repository does not hold ${digest}, which the signature tag names (one kept in another repository is an ordinary tag: a tag filter that takes it copies it)`
      : `source no longer has ${task.repository}@${digest}` };
  }
  const r = await copyReferrersOf(src.client, task.repository, digest, dst.client, task.destRepository, of, {
    override: task.options.override, signal: ctx.signal, onProgress: ctx.onProgress, onWait: ctx.onWait, speedKbps: task.options.speedKbps, logger: ctx.logger, pool: ctx.pool,
  });
  if (r.kind === 'not-a-referrer') return { status: 'skipped', bytes: 0, note: 'an untagged artifact that names no subject: the policy\'s tag filter takes no untagged artifact' };
  if (r.kind === 'absent') return { status: 'skipped', bytes: 0, note: `${task.destRepository} in the target does not hold ${r.artifact}: its referrers go with it whenever it is copied there` };
  const { result } = r;
  return {
    status: result.skipped ? 'skipped' : 'done', digest: result.digest, bytes: result.bytes, blobs: result.blobs,
    note: result.skipped ? `the target already has the referrers of ${r.artifact}` : `referrers of ${r.artifact}`,
  };
}
