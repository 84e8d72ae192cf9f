// RegistryClient: one OCI distribution registry, as the replication code sees it. It composes
// the transport (auth, retries, limits) with the per-resource modules.
import { z } from 'zod';
import type { Dispatcher } from 'undici';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import { TlsSchema, LimitsSchema, type TlsConfig, type LimitsConfig } from '../config/schema.ts';
import { Transport } from './transport.ts';
import { createAgent } from './agent.ts';
import { retryPolicy, type RetryPolicy } from './retry-policy.ts';
import { manifestDelete, manifestGet, manifestHead, manifestPut, type ManifestData, type ManifestHead } from './manifest.ts';
import { blobGet, blobHead, blobMount, uploadCancel, type BlobBody, type MountResult, type UploadSession } from './blob.ts';
import { blobUpload, uploadDefaults, type BlobDescriptor, type BlobUploadOptions, type OpenSource, type UploadTuning } from './upload.ts';
import { catalogList, tagList } from './tag.ts';
import { referrersList, type ReferrersResult } from './referrers.ts';
import { assertDigest } from './digest.ts';

export interface RegistryEndpoint {
  /** https://host[:port] (http:// for plain-HTTP registries). */
  url: string;
  credentials?: { username: string; password: string };
  tls?: TlsConfig;
  limits?: LimitsConfig;
}

export interface RegistryClientOptions {
  logger?: Logger;
  dispatcher?: Dispatcher;
  retry?: Partial<RetryPolicy>;
  upload?: Partial<UploadTuning>;
}

export const RegistryEndpointSchema = z.object({
  url: z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')),
  credentials: z.object({ username: z.string().min(1), password: z.string() }).optional(),
  tls: TlsSchema.optional(),
  limits: LimitsSchema.optional(),
});

const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

function checkRepo(repo: string): void {
  if (!REPO_RE.test(repo)) throw new TypeError(`invalid repository name: ${JSON.stringify(repo.slice(0, 256))}`);
}
function checkRef(ref: string): void {
  if (ref.includes(':')) assertDigest(ref, 'reference');
  else if (!TAG_RE.test(ref)) throw new TypeError(`invalid tag: ${JSON.stringify(ref.slice(0, 200))}`);
}

export class RegistryClient {
  readonly endpoint: RegistryEndpoint;
  readonly transport: Transport;
  readonly #dispatcher: Dispatcher;
  readonly #ownDispatcher: boolean;
  readonly #upload: UploadTuning;
  readonly #log: Logger;

  constructor(ep: RegistryEndpoint, opts: RegistryClientOptions = {}) {
    const parsed = RegistryEndpointSchema.parse(ep);
    this.endpoint = parsed;
    this.#log = opts.logger ?? silentLogger;
    this.#ownDispatcher = !opts.dispatcher;
    this.#dispatcher = opts.dispatcher ?? createAgent({ tls: parsed.tls });
    this.#upload = { ...uploadDefaults, ...opts.upload };
    this.transport = new Transport({
      baseUrl: parsed.url,
      credentials: parsed.credentials,
      dispatcher: this.#dispatcher,
      concurrency: parsed.limits?.concurrency ?? 16,
      requestsPerSecond: parsed.limits?.requestsPerSecond,
      speedKbps: parsed.limits?.speedKbps,
      retry: { ...retryPolicy, ...opts.retry },
      logger: this.#log,
    });
  }

  /** host[:port], the registry's identity in logs, errors and caches. */
  get host(): string { return this.transport.registry; }

  /** host[:port] and the account: what one set of credentials may see there (mount candidates). Never the password. */
  get identity(): string { return `${this.endpoint.credentials?.username ?? ''}@${this.transport.registry}`; }
  get url(): string { return this.endpoint.url; }

  getManifest(repo: string, ref: string, accept?: string[], signal?: AbortSignal): Promise<ManifestData> {
    checkRepo(repo); checkRef(ref);
    return manifestGet(this.transport, repo, ref, accept, signal);
  }

  headManifest(repo: string, ref: string, signal?: AbortSignal): Promise<ManifestHead | null> {
    checkRepo(repo); checkRef(ref);
    return manifestHead(this.transport, repo, ref, signal);
  }

  putManifest(repo: string, ref: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string> {
    checkRepo(repo); checkRef(ref);
    return manifestPut(this.transport, repo, ref, bytes, mediaType, signal);
  }

  deleteManifest(repo: string, digest: string, signal?: AbortSignal): Promise<boolean> {
    checkRepo(repo); assertDigest(digest);
    return manifestDelete(this.transport, repo, digest, signal);
  }

  listTags(repo: string, signal?: AbortSignal): Promise<string[]> {
    checkRepo(repo);
    return tagList(this.transport, repo, signal);
  }

  catalog(signal?: AbortSignal): Promise<string[]> {
    return catalogList(this.transport, signal);
  }

  async hasBlob(repo: string, digest: string, signal?: AbortSignal): Promise<boolean> {
    checkRepo(repo); assertDigest(digest);
    return (await blobHead(this.transport, repo, digest, signal)) !== null;
  }

  /** A refused mount may hand back an upload session: pass it to uploadBlob, or give it back with cancelUpload. */
  mountBlob(repo: string, digest: string, fromRepo: string, signal?: AbortSignal): Promise<MountResult> {
    checkRepo(repo); checkRepo(fromRepo); assertDigest(digest);
    return blobMount(this.transport, repo, digest, fromRepo, signal);
  }

  /** Ends an upload session that will not be used (best effort: a registry also expires them). */
  async cancelUpload(repo: string, session: UploadSession): Promise<void> {
    checkRepo(repo);
    await uploadCancel(this.transport, repo, session.location).catch(() => {});
  }

  getBlob(repo: string, digest: string, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<BlobBody> {
    checkRepo(repo); assertDigest(digest);
    return blobGet(this.transport, repo, digest, opts);
  }

  /**
   * Uploads a blob from a source that can be reopened at any offset (for resume and restart).
   * `onProgress` receives the bytes of this blob sent so far.
   */
  async uploadBlob(repo: string, desc: BlobDescriptor, open: OpenSource, opts: BlobUploadOptions = {}): Promise<void> {
    checkRepo(repo); assertDigest(desc.digest);
    await blobUpload(this.transport, { repo, desc, open, ...opts, tuning: this.#upload });
  }

  /** Referrers of a manifest (OCI 1.1 API, falling back to the `sha256-<hex>` tag schema). */
  referrers(repo: string, digest: string, signal?: AbortSignal): Promise<ReferrersResult> {
    checkRepo(repo); assertDigest(digest);
    return referrersList(this, repo, digest, signal);
  }

  async close(): Promise<void> {
    if (this.#ownDispatcher) await this.#dispatcher.close();
  }
}
