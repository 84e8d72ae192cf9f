// Blob upload. Small blobs: POST then one streamed PUT (the registry checks the digest itself).
// Large blobs: PATCH chunks with Content-Range, hashed as they stream so the digest is known
// before the final PUT; a broken chunk is resumed from the registry's Range (GET upload status)
// by reopening the source there. distribution (and so Harbor) invalidates a session when a
// broken PATCH delivered some bytes; the upload then restarts in a new session.
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Transport } from './transport.ts';
import type { ByteRateLimiter } from './limits.ts';
import { repoScope } from './scope.ts';
import { contentRange, uploadOffsetFromRange } from './content-range.ts';
import { registryError, registryErrorFromThrown, type RegistryErrorCtx } from './errors.ts';
import { uploadCancel, blobHead, sessionOf, type UploadSession } from './blob.ts';
import { algorithmOf } from './digest.ts';
import { backoffMs, sleep } from './retry-policy.ts';
import type { BridgeError } from '../errors.ts';

export interface UploadTuning {
  /**
   * Blobs up to this size go in one streamed PUT, which the target verifies (`?digest=`) without
   * the client hashing a byte. Larger blobs, and any blob larger than a chunk whose single PUT
   * broke, go in resumable PATCH chunks, hashed while streaming so a resumed upload is checked.
   */
  monolithicMaxBytes: number;
  /** PATCH size for larger blobs (raised to the registry's OCI-Chunk-Min-Length). */
  chunkBytes: number;
  /** Resumes or restarts after failures, per blob. */
  maxRecoveries: number;
}

export const uploadDefaults: UploadTuning = { monolithicMaxBytes: 2 ** 40, chunkBytes: 32 * 1024 * 1024, maxRecoveries: 5 };

export interface BlobDescriptor { digest: string; size: number }
export type OpenSource = (offset: number) => Promise<Readable>;

/** What a caller may add to an upload besides the blob and its source. */
export interface BlobUploadOptions {
  onProgress?: ((bytes: number) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** A cap of the caller's own (a policy's `speed`), on top of the registry's. */
  bandwidth?: ByteRateLimiter | undefined;
  /** Runs a wait during which no byte moves (a backoff), so the caller can lend out its transfer slot meanwhile. */
  idle?: IdleWait | undefined;
  /** A session already open (a refused mount's 202): the first attempt uses it; the upload owns it from here. */
  session?: UploadSession | undefined;
}

export interface UploadArgs extends BlobUploadOptions {
  repo: string;
  desc: BlobDescriptor;
  open: OpenSource;
  tuning: UploadTuning;
}

export type IdleWait = <T>(wait: () => Promise<T>) => Promise<T>;

/** Pulls exact byte counts out of a stream, across chunk boundaries. */
export class ByteReader {
  readonly #stream: Readable;
  readonly #it: AsyncIterator<Buffer>;
  #left: Buffer | undefined;
  #ended = false;

  constructor(stream: Readable) {
    this.#stream = stream;
    this.#it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async #next(): Promise<Buffer | undefined> {
    if (this.#left) { const b = this.#left; this.#left = undefined; return b; }
    if (this.#ended) return undefined;
    const r = await this.#it.next();
    if (r.done) { this.#ended = true; return undefined; }
    return Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
  }

  /** Yields exactly `n` bytes; a source that ends early fails with HSB_REGISTRY_SIZE_MISMATCH. */
  async *take(n: number, onChunk?: (b: Buffer) => void): AsyncGenerator<Buffer> {
    let need = n;
    while (need > 0) {
      const b = await this.#next();
      if (!b) throw registryError('HSB_REGISTRY_SIZE_MISMATCH', `source ended ${need} bytes early`, { missing: need });
      const part = b.length > need ? b.subarray(0, need) : b;
      if (b.length > need) this.#left = b.subarray(need);
      need -= part.length;
      onChunk?.(part);
      yield part;
    }
  }

  /** Reads `n` bytes and discards them (after feeding them to `onChunk`). */
  async skip(n: number, onChunk?: (b: Buffer) => void): Promise<void> {
    for await (const _ of this.take(n, onChunk)) { /* consumed */ }
  }

  async atEnd(): Promise<boolean> {
    const b = await this.#next();
    if (!b) return true;
    if (b.length === 0) return this.atEnd();
    this.#left = b;
    return false;
  }

  destroy(): void {
    // An undici body emits an abort error when destroyed unread; nobody needs to hear it.
    this.#stream.on('error', () => {}).destroy();
  }
}

/** A body of exactly `n` bytes from the reader, paced by the registry's and the caller's bandwidth caps. */
function body(t: Transport, reader: ByteReader, n: number, onChunk: (b: Buffer) => void, signal?: AbortSignal, extra?: ByteRateLimiter): Readable {
  const caps = [t.bandwidth, extra].filter((c): c is ByteRateLimiter => c !== undefined);
  if (caps.length === 0) return Readable.from(reader.take(n, onChunk), { objectMode: false });
  return Readable.from((async function* paced() {
    for await (const part of reader.take(n, onChunk)) {
      for (const cap of caps) await cap.consume(part.length, signal);
      yield part;
    }
  })(), { objectMode: false });
}


async function startSession(t: Transport, repo: string, ctx: RegistryErrorCtx, signal?: AbortSignal, idle?: IdleWait): Promise<UploadSession> {
  const res = await t.send({ method: 'POST', path: `/v2/${repo}/blobs/uploads/`, headers: { 'content-length': '0' }, scopes: [repoScope(repo, 'pull', 'push')], expect: [202], ctx, signal, idle });
  await res.discard();
  const session = sessionOf(res);
  if (!session) throw registryError('HSB_REGISTRY_PROTOCOL', 'upload session started without a Location', { registry: t.registry, ...ctx });
  return session;
}

/**
 * Bytes the registry holds for the session and the URL to go on with (the spec's status answer
 * carries the session's current Location), or undefined when the session is gone or invalid.
 */
async function sessionOffset(t: Transport, repo: string, location: string, ctx: RegistryErrorCtx, signal?: AbortSignal, idle?: IdleWait): Promise<{ held: number; location: string } | undefined> {
  try {
    const res = await t.send({ method: 'GET', path: location, scopes: [repoScope(repo, 'pull', 'push')], expect: [204, 200], ctx, signal, idle });
    await res.discard();
    const loc = res.header('location');
    return { held: uploadOffsetFromRange(res.header('range')) ?? 0, location: loc ? new URL(loc, res.url).href : location };
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'HSB_REGISTRY_NOT_FOUND' || code === 'HSB_REGISTRY_UPLOAD_INVALID' || code === 'HSB_REGISTRY_BAD_REQUEST') return undefined;
    throw e;
  }
}

/**
 * The digest the registry says it stored (Docker-Content-Digest on the 201), when it names one in
 * the same algorithm, must be the one asked for: a registry that files bytes under their claimed
 * digest without checking them would otherwise hide a corrupt source.
 */
function checkStoredDigest(t: Transport, stored: string | undefined, expected: string, ctx: RegistryErrorCtx): void {
  if (!stored || stored.split(':')[0] !== expected.split(':')[0] || stored === expected) return;
  throw registryError('HSB_REGISTRY_DIGEST_MISMATCH', `registry stored the blob as ${stored}, expected ${expected}`, { registry: t.registry, ...ctx, expected, actual: stored });
}

/** The session URL with `digest=` appended: the registry's own query parameters are kept as sent (the spec says clients must not rebuild them). */
function finalUrl(location: string, digest: string): string {
  const hash = location.indexOf('#');
  const base = hash >= 0 ? location.slice(0, hash) : location;
  return `${base}${base.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

const octet = (len: number, extra: Record<string, string> = {}) => ({ 'content-type': 'application/octet-stream', 'content-length': String(len), ...extra });

export async function blobUpload(t: Transport, a: UploadArgs): Promise<{ restarts: number; resumes: number }> {
  const ctx: RegistryErrorCtx = { repo: a.repo, digest: a.desc.digest };
  const stats = { restarts: 0, resumes: 0 };
  let given = a.session;
  // The given session for the first attempt, a new one for every other.
  const open = (): Promise<UploadSession> => {
    const s = given;
    given = undefined;
    return s ? Promise.resolve(s) : startSession(t, a.repo, ctx, a.signal, a.idle);
  };
  let refusedWhole = false;
  if (a.desc.size <= a.tuning.monolithicMaxBytes) {
    const r = await monolithic(t, a, ctx, stats, open);
    if (r === 'done') return stats;
    refusedWhole = r === 'too-large';
  }
  await chunked(t, a, ctx, stats, refusedWhole ? firstChunkBelow(a.desc.size, a.tuning.chunkBytes) : a.tuning.chunkBytes, open);
  return stats;
}

/** Decides whether a failure is worth another try; throws it otherwise. */
async function recoverable(t: Transport, e: unknown, ctx: RegistryErrorCtx, failures: number, a: UploadArgs): Promise<BridgeError> {
  const err = registryErrorFromThrown(e, { registry: t.registry, ...ctx }, a.signal);
  // Mismatched source content is not fixed by sending it again within this upload.
  if (!err.retryable || a.signal?.aborted || failures > a.tuning.maxRecoveries || err.code === 'HSB_REGISTRY_DIGEST_MISMATCH' || err.code === 'HSB_REGISTRY_SIZE_MISMATCH') throw err;
  // Upload bodies are never retried by the transport: this is where a throttled PUT/PATCH waits.
  const retryAfter = Number(err.context.retryAfterMs) || undefined;
  if (retryAfter !== undefined && retryAfter > t.retryPolicy.maxRetryAfterMs) throw err;
  const pause = () => sleep(backoffMs(failures - 1, t.retryPolicy, retryAfter), a.signal).catch((x: unknown) => { throw registryErrorFromThrown(x, ctx, a.signal); });
  await (a.idle ? a.idle(pause) : pause());
  return err;
}

/** One streamed PUT. 'too-large': the registry refused the body (413); 'broken': a large blob's PUT broke. Either way: carry on in chunks. */
async function monolithic(t: Transport, a: UploadArgs, ctx: RegistryErrorCtx, stats: { restarts: number }, open: () => Promise<UploadSession>): Promise<'done' | 'too-large' | 'broken'> {
  for (let failures = 0; ; ) {
    let session: UploadSession | undefined;
    let reader: ByteReader | undefined;
    try {
      session = await open();
      reader = new ByteReader(await a.open(0));
      let sent = 0;
      const stream = body(t, reader, a.desc.size, (b) => { sent += b.length; a.onProgress?.(sent); }, a.signal, a.bandwidth);
      const res = await t.send({ method: 'PUT', path: finalUrl(session.location, a.desc.digest), headers: octet(a.desc.size), stream, scopes: [repoScope(a.repo, 'pull', 'push')], expect: [201], ctx, signal: a.signal, idle: a.idle });
      await res.discard();
      checkStoredDigest(t, res.header('docker-content-digest'), a.desc.digest, ctx);
      // Exactly `size` bytes were read: the source's end may not have been seen, so close it here
      // (a download holds its registry request slot until its body is over).
      reader.destroy();
      return 'done';
    } catch (e) {
      reader?.destroy();
      if (session) await uploadCancel(t, a.repo, session.location).catch(() => {});
      // A handed-over session (a refused mount's) the registry no longer knows: a fresh one at once, no failure counted.
      if (session !== undefined && session === a.session && sessionGone(e) && !a.signal?.aborted) continue;
      failures++;
      // A gateway that caps request bodies (413) takes the blob in chunks below its limit.
      if ((e as BridgeError).code === 'HSB_REGISTRY_TOO_LARGE' && a.desc.size > MIN_CHUNK_BYTES && !a.signal?.aborted) {
        t.logger.info({ registry: t.registry, repo: a.repo, digest: a.desc.digest }, 'registry refused the blob in one request (413); uploading it in chunks');
        return 'too-large';
      }
      const err = await recoverable(t, e, ctx, failures, a);
      // The PUT may have landed with only its answer lost.
      if (await blobHead(t, a.repo, a.desc.digest, a.signal).catch(() => null)) return 'done';
      stats.restarts++;
      if (a.desc.size > a.tuning.chunkBytes) {
        t.logger.info({ registry: t.registry, repo: a.repo, digest: a.desc.digest, err: err.code }, 'blob upload broke; continuing in resumable chunks');
        return 'broken';
      }
      t.logger.info({ registry: t.registry, repo: a.repo, digest: a.desc.digest, err: err.code, failures }, 'blob upload failed; restarting');
    }
  }
}

/** The registry does not know the session (any more): 404, with or without the spec's BLOB_UPLOAD_UNKNOWN. */
function sessionGone(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'HSB_REGISTRY_UPLOAD_INVALID' || code === 'HSB_REGISTRY_NOT_FOUND';
}

/** Smallest chunk a 413 halves down to (a gateway capping bodies below this is not worth chunking through). */
const MIN_CHUNK_BYTES = 64 * 1024;

/** After the whole blob was refused as too large: chunks smaller than the blob, at most the configured size (a power of two). */
function firstChunkBelow(size: number, chunkBytes: number): number {
  let c = MIN_CHUNK_BYTES;
  while (c * 2 < size && c * 2 <= chunkBytes) c *= 2;
  return c;
}

async function chunked(t: Transport, a: UploadArgs, ctx: RegistryErrorCtx, stats: { restarts: number; resumes: number }, chunkBytes: number, open: () => Promise<UploadSession>): Promise<void> {
  const alg = algorithmOf(a.desc.digest);
  const size = a.desc.size;
  let session = await open();
  let chunk = Math.max(chunkBytes, session.chunkMin);
  let hash: Hash = createHash(alg);
  // Hash state at the last offset the registry acknowledged, to resume without rehashing all.
  let mark = { offset: 0, hash: hash.copy() };
  let offset = 0;
  let reader: ByteReader;
  try {
    reader = new ByteReader(await a.open(0));
  } catch (e) {
    await uploadCancel(t, a.repo, session.location).catch(() => {});
    throw registryErrorFromThrown(e, { registry: t.registry, ...ctx }, a.signal);
  }
  let failures = 0;
  let sentInChunk = 0;
  const progress = (b: Buffer) => { hash.update(b); a.onProgress?.(offset + (sentInChunk += b.length)); };
  try {
    while (offset < size) {
      const len = Math.min(chunk, size - offset);
      sentInChunk = 0;
      try {
        const stream = body(t, reader, len, progress, a.signal, a.bandwidth);
        const res = await t.send({
          method: 'PATCH', path: session.location, headers: octet(len, { 'content-range': contentRange(offset, len) }), stream,
          scopes: [repoScope(a.repo, 'pull', 'push')], expect: [202, 204], ctx, signal: a.signal, idle: a.idle,
        });
        await res.discard();
        const loc = res.header('location');
        if (loc) session = { ...session, location: new URL(loc, res.url).href };
        offset += len;
        const held = uploadOffsetFromRange(res.header('range'));
        if (held !== undefined && held !== offset) throw registryError('HSB_REGISTRY_PROTOCOL', `registry holds ${held} bytes after a chunk ending at ${offset}`, { registry: t.registry, ...ctx });
        mark = { offset, hash: hash.copy() };
        // Only breaks in a row without progress count against maxRecoveries: a long upload over
        // a link that drops now and then still finishes.
        failures = 0;
      } catch (e) {
        reader.destroy();
        let err: BridgeError;
        if ((e as { code?: string }).code === 'HSB_REGISTRY_TOO_LARGE' && chunk / 2 >= Math.max(session.chunkMin, MIN_CHUNK_BYTES) && !a.signal?.aborted) {
          // A gateway caps request bodies below the chunk size: halve it and go on from the registry's offset.
          chunk = Math.floor(chunk / 2);
          err = e as BridgeError;
          t.logger.info({ registry: t.registry, repo: a.repo, digest: a.desc.digest, chunkBytes: chunk }, 'registry refused a chunk as too large (413); sending smaller chunks');
        } else if (session === a.session && offset === 0 && sessionGone(e) && !a.signal?.aborted) {
          // A handed-over session (a refused mount's) the registry no longer knows: restarted below, no failure counted.
          err = e as BridgeError;
        } else {
          failures++;
          err = await recoverable(t, e, ctx, failures, a);
        }
        const status = await sessionOffset(t, a.repo, session.location, ctx, a.signal, a.idle);
        const held = status?.held;
        if (status === undefined || held === undefined || held > size) {
          // Session lost (distribution cancels it when a broken PATCH wrote some bytes): start over.
          await uploadCancel(t, a.repo, session.location).catch(() => {});
          session = await startSession(t, a.repo, ctx, a.signal, a.idle);
          // The new session may want bigger chunks than the one it replaces (a refused mount's, say).
          chunk = Math.max(chunk, session.chunkMin);
          stats.restarts++;
          offset = 0;
          hash = createHash(alg);
          mark = { offset: 0, hash: hash.copy() };
          reader = new ByteReader(await a.open(0));
          t.logger.info({ registry: t.registry, repo: a.repo, digest: a.desc.digest, err: err.code, failures }, 'blob upload session lost; restarting');
          continue;
        }
        // Resume at the registry's offset, at the Location it gave: rebuild the hash state there from the last mark.
        session = { ...session, location: status.location };
        stats.resumes++;
        const base = mark.offset <= held ? mark : { offset: 0, hash: createHash(alg) };
        hash = base.hash.copy();
        reader = new ByteReader(await a.open(base.offset));
        await reader.skip(held - base.offset, (b) => hash.update(b));
        offset = held;
        mark = { offset, hash: hash.copy() };
        t.logger.info({ registry: t.registry, repo: a.repo, digest: a.desc.digest, err: err.code, offset, failures }, 'blob upload resumed');
      }
    }
    const actual = `${alg}:${hash.digest('hex')}`;
    if (actual !== a.desc.digest) {
      throw registryError('HSB_REGISTRY_DIGEST_MISMATCH', `source blob hashes to ${actual}, expected ${a.desc.digest}`, { registry: t.registry, ...ctx, expected: a.desc.digest, actual });
    }
    if (!(await reader.atEnd())) throw registryError('HSB_REGISTRY_SIZE_MISMATCH', `source blob is longer than ${size} bytes`, { registry: t.registry, ...ctx });
    reader.destroy();
    try {
      const res = await t.send({ method: 'PUT', path: finalUrl(session.location, a.desc.digest), headers: { 'content-length': '0' }, scopes: [repoScope(a.repo, 'pull', 'push')], expect: [201], ctx, signal: a.signal, idle: a.idle, retry: true });
      await res.discard();
      checkStoredDigest(t, res.header('docker-content-digest'), a.desc.digest, ctx);
    } catch (e) {
      // A retried PUT of a session that already completed answers 404: the blob may be there.
      if (await blobHead(t, a.repo, a.desc.digest, a.signal).catch(() => null)) return;
      throw e;
    }
  } catch (e) {
    reader.destroy();
    // Never leave a session holding bytes that must not become a blob.
    await uploadCancel(t, a.repo, session.location).catch(() => {});
    throw registryErrorFromThrown(e, { registry: t.registry, ...ctx }, a.signal);
  }
}
