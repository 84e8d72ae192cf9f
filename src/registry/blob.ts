// Blobs: HEAD, cross-repository mount, and GET with manual redirects (Authorization is dropped
// when the redirect leaves the registry's origin, e.g. to S3 or a CDN).
import { pipeline, Readable, Transform } from 'node:stream';
import type { Transport } from './transport.ts';
import { repoScope } from './scope.ts';
import { parseContentRange } from './content-range.ts';
import { registryError } from './errors.ts';

const REDIRECTS = [301, 302, 303, 307, 308];
const MAX_REDIRECTS = 5;

export async function blobHead(t: Transport, repo: string, digest: string, signal?: AbortSignal): Promise<{ size: number } | null> {
  let path = `/v2/${repo}/blobs/${digest}`;
  for (let i = 0; i <= MAX_REDIRECTS; i++) {
    const res = await t.send({ method: 'HEAD', path, scopes: [repoScope(repo, 'pull')], expect: [200, 404, ...REDIRECTS], ctx: { repo, digest }, signal });
    await res.discard();
    if (res.status === 404) return null;
    if (res.status === 200) return { size: Number(res.header('content-length') ?? -1) };
    const loc = res.header('location');
    if (!loc) break;
    path = new URL(loc, res.url).href;
  }
  throw registryError('HSB_REGISTRY_PROTOCOL', 'blob HEAD redirected without a usable Location', { registry: t.registry, repo, digest });
}

/** An open upload session: where to send the bytes, and the smallest chunk the registry takes (OCI-Chunk-Min-Length). */
export interface UploadSession { location: string; chunkMin: number }

/** A refused mount may come with an upload session, which the spec lets the client go on with. */
export type MountResult = { mounted: true } | { mounted: false; session?: UploadSession };

/**
 * POST ?mount=&from=. 201 means mounted. A 202 opens an upload session instead (the registry
 * could not or would not mount): it is handed back, so that the upload needs no session of its own.
 */
export async function blobMount(t: Transport, repo: string, digest: string, fromRepo: string, signal?: AbortSignal): Promise<MountResult> {
  const res = await t.send({
    method: 'POST', path: `/v2/${repo}/blobs/uploads/`, query: { mount: digest, from: fromRepo },
    scopes: [repoScope(repo, 'pull', 'push'), repoScope(fromRepo, 'pull')], expect: [201, 202],
    ctx: { repo, digest, from: fromRepo }, signal, headers: { 'content-length': '0' },
  });
  await res.discard();
  if (res.status === 201) return { mounted: true };
  const session = sessionOf(res);
  return session ? { mounted: false, session } : { mounted: false };
}

/** The session a 202 to POST /blobs/uploads/ opened; undefined when it names no Location. */
export function sessionOf(res: { url: URL; header(name: string): string | undefined }): UploadSession | undefined {
  const loc = res.header('location');
  if (!loc) return undefined;
  return { location: new URL(loc, res.url).href, chunkMin: Number(res.header('oci-chunk-min-length') ?? 0) || 0 };
}

export async function uploadCancel(t: Transport, repo: string, location: string, signal?: AbortSignal): Promise<void> {
  const res = await t.send({ method: 'DELETE', path: location, scopes: [repoScope(repo, 'pull', 'push')], expect: [204, 200, 202, 404], ctx: { repo }, signal });
  await res.discard();
}

/** Drops the first `n` bytes of a stream (a server that ignored our Range header). */
function skipBytes(n: number): Transform {
  let left = n;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (left >= chunk.length) { left -= chunk.length; cb(); return; }
      const rest = chunk.subarray(left);
      left = 0;
      cb(null, rest);
    },
  });
}

export interface BlobBody { body: Readable; size: number }

/** GET a blob from `offset`; `size` is the whole blob's size. The body must be consumed or destroyed. */
export async function blobGet(t: Transport, repo: string, digest: string, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<BlobBody> {
  const offset = opts.offset ?? 0;
  let path = `/v2/${repo}/blobs/${digest}`;
  const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
  for (let i = 0; i <= MAX_REDIRECTS; i++) {
    const res = await t.send({ method: 'GET', path, headers, scopes: [repoScope(repo, 'pull')], expect: [200, 206, ...REDIRECTS], ctx: { repo, digest }, signal: opts.signal, holdWhileStreaming: true });
    if (REDIRECTS.includes(res.status)) {
      await res.discard();
      const loc = res.header('location');
      if (!loc) break;
      path = new URL(loc, res.url).href;
      continue;
    }
    const length = Number(res.header('content-length') ?? NaN);
    const body = res.body as unknown as Readable;
    if (res.status === 206) {
      const cr = parseContentRange(res.header('content-range'));
      if (!cr || cr.start !== offset) {
        body.on('error', () => {}).destroy();
        throw registryError('HSB_REGISTRY_PROTOCOL', 'registry answered a ranged blob GET with another range', { registry: t.registry, repo, digest });
      }
      return { body, size: cr.total ?? offset + length };
    }
    if (offset > 0) return { body: pipeline(body, skipBytes(offset), () => {}), size: length };
    return { body, size: length };
  }
  throw registryError('HSB_REGISTRY_PROTOCOL', 'too many redirects, or a redirect without Location, on blob GET', { registry: t.registry, repo, digest });
}
