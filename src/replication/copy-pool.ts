// Shared by every copy in a process: a bound on concurrent blob transfers, one transfer per
// (target registry, digest) at a time, and an in-memory digest → repositories index per target
// so a blob already pushed anywhere in the target is mounted instead of uploaded again.
import { BridgeError } from '../errors.ts';
import type { RegistryClient } from '../registry/client.ts';
import { Semaphore, type ByteRateLimiter } from '../registry/limits.ts';
import type { Descriptor } from '../registry/referrers.ts';
import type { UploadSession } from '../registry/blob.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';

export type BlobOutcome = 'uploaded' | 'mounted' | 'skipped';

export interface EnsureBlobArgs {
  src: RegistryClient;
  srcRepo: string;
  dst: RegistryClient;
  dstRepo: string;
  desc: Descriptor;
  /** Bytes of this blob sent so far (uploads only). */
  onProgress?: (bytes: number) => void;
  /** True while the blob waits for a transfer slot or for another copy of the same digest, false after. */
  onWait?: (waiting: boolean) => void;
  /** The copy's own bandwidth cap (a policy's `speed`), shared by its blobs. */
  bandwidth?: ByteRateLimiter | undefined;
  signal?: AbortSignal;
  logger?: Logger;
}

export interface CopyPoolOptions {
  /** Blob transfers running at once across all copies. */
  concurrency?: number;
  /** Digests remembered per target before the oldest are forgotten. */
  maxIndexedDigests?: number;
  /** Mount candidates tried before uploading. */
  maxMountAttempts?: number;
}

export class CopyPool {
  readonly #transfers: Semaphore;
  readonly #inflight = new Map<string, Promise<BlobOutcome>>();
  readonly #index = new Map<string, Map<string, string[]>>();
  readonly #maxDigests: number;
  readonly #maxMounts: number;

  constructor(opts: CopyPoolOptions = {}) {
    this.#transfers = new Semaphore(opts.concurrency ?? 8);
    this.#maxDigests = opts.maxIndexedDigests ?? 200_000;
    this.#maxMounts = opts.maxMountAttempts ?? 3;
  }

  /** Repositories of `target` known to hold `digest`, most recent first. */
  knownRepos(target: string, digest: string): string[] {
    return [...(this.#index.get(target)?.get(digest) ?? [])];
  }

  remember(target: string, digest: string, repo: string): void {
    let byDigest = this.#index.get(target);
    if (!byDigest) { byDigest = new Map(); this.#index.set(target, byDigest); }
    const repos = (byDigest.get(digest) ?? []).filter((r) => r !== repo);
    repos.unshift(repo);
    byDigest.delete(digest); // re-insert: Map order doubles as recency
    byDigest.set(digest, repos.slice(0, 4));
    if (byDigest.size > this.#maxDigests) byDigest.delete(byDigest.keys().next().value!);
  }

  /** Makes `desc` present in dst/dstRepo: already there, mounted from a known repo, or uploaded. */
  async ensureBlob(a: EnsureBlobArgs): Promise<BlobOutcome> {
    const key = `${a.dst.identity}\0${a.desc.digest}`;
    // Another copy is moving this digest into the same target: wait, then mount from it.
    for (let running = this.#inflight.get(key); running; running = this.#inflight.get(key)) {
      a.onWait?.(true);
      // Another task's transfer: an aborted or cancelled copy stops waiting for it at once.
      await untilSettledOrAborted(running, a.signal).finally(() => a.onWait?.(false));
    }
    const p = this.#ensure(a);
    this.#inflight.set(key, p);
    try {
      return await p;
    } finally {
      if (this.#inflight.get(key) === p) this.#inflight.delete(key);
    }
  }

  async #ensure(a: EnsureBlobArgs): Promise<BlobOutcome> {
    const log = a.logger ?? silentLogger;
    const { digest, size } = a.desc;
    // Per account: another account on the same registry may not read the repositories this one wrote.
    const target = a.dst.identity;
    if (await a.dst.hasBlob(a.dstRepo, digest, a.signal)) {
      this.remember(target, digest, a.dstRepo);
      return 'skipped';
    }
    const candidates = this.knownRepos(target, digest).filter((r) => r !== a.dstRepo);
    // Same registry on both sides: the source repository itself is a mount candidate.
    if (a.src.host === a.dst.host && a.srcRepo !== a.dstRepo && !candidates.includes(a.srcRepo)) candidates.push(a.srcRepo);
    // A refused mount's 202 is an upload session: the first one is kept for the upload (saving the
    // registry a cancel and a new session), any later one given back.
    let session: UploadSession | undefined;
    for (const from of candidates.slice(0, this.#maxMounts)) {
      try {
        const mount = await a.dst.mountBlob(a.dstRepo, digest, from, a.signal);
        if (mount.mounted) {
          if (session) await a.dst.cancelUpload(a.dstRepo, session);
          this.remember(target, digest, a.dstRepo);
          log.debug({ digest, from, repo: a.dstRepo }, 'blob mounted');
          return 'mounted';
        }
        if (mount.session && session) await a.dst.cancelUpload(a.dstRepo, mount.session);
        else session ??= mount.session;
      } catch (e) {
        // A refused mount (no pull on the other repo) only means uploading instead.
        log.debug({ digest, from, err: (e as { code?: string }).code }, 'blob mount failed');
        if (a.signal?.aborted) {
          if (session) void a.dst.cancelUpload(a.dstRepo, session);
          throw e;
        }
      }
    }
    const acquire = async () => {
      a.onWait?.(true);
      return this.#transfers.acquire(a.signal).finally(() => a.onWait?.(false));
    };
    // The kept session is used only with a slot free now: held through a wait in the queue, it would
    // count against the target's open sessions (unbounded by worker.transfers) and might go stale.
    let release: (() => void) | undefined = session ? this.#transfers.tryAcquire() : undefined;
    if (session && !release) {
      void a.dst.cancelUpload(a.dstRepo, session);
      session = undefined;
    }
    release ??= await acquire();
    // A backoff moves no byte: the slot goes to another transfer meanwhile (a failing target must not hold them all).
    const idle = async <T>(wait: () => Promise<T>): Promise<T> => {
      release?.();
      release = undefined;
      try {
        return await wait();
      } finally {
        release = await acquire();
      }
    };
    try {
      await a.dst.uploadBlob(a.dstRepo, { digest, size }, async (offset) => (await a.src.getBlob(a.srcRepo, digest, { offset, signal: a.signal })).body, { onProgress: a.onProgress, signal: a.signal, bandwidth: a.bandwidth, idle, session });
    } catch (e) {
      // The target hashes what the source served: a mismatch it reports is the source's bytes.
      if ((e as { code?: string }).code === 'HSB_REGISTRY_DIGEST_MISMATCH' && e instanceof BridgeError) {
        throw new BridgeError('HSB_REGISTRY_DIGEST_MISMATCH', `the bytes ${a.src.host}/${a.srcRepo} served for ${digest} do not hash to it (${e.message})`, {
          retryable: e.retryable, cause: e, context: { ...e.context, source: a.src.host, sourceRepository: a.srcRepo, digest },
        });
      }
      throw e;
    } finally {
      release?.();
    }
    this.remember(target, digest, a.dstRepo);
    return 'uploaded';
  }
}

/** Resolves when `p` settles; rejects with the signal's reason if it aborts first. */
function untilSettledOrAborted(p: Promise<unknown>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return p.then(() => undefined, () => undefined);
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(() => undefined, () => undefined).then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/** The pool used when a caller passes none. */
export const defaultCopyPool = new CopyPool();
