// One catalogue of registry and copy error codes, and the one status→error mapper.
// Resource modules describe what they were doing (ctx); this module decides code and retryability.
import { BridgeError, type ErrorContext } from '../errors.ts';
import { quoteUpstream } from '../observability/scrub.ts';

export const RegistryErrorCodes = {
  HSB_REGISTRY_UNAUTHORIZED: { retryable: false, doc: 'Registry answered 401 even after a fresh token or basic credentials: wrong credentials.' },
  HSB_REGISTRY_AUTH_EXPIRED: { retryable: true, doc: 'A streamed request (blob chunk) met a 401 because its token expired; the token was refreshed and the upload resumes.' },
  HSB_REGISTRY_DENIED: { retryable: false, doc: 'Registry answered 403: the credentials lack permission (push, pull or delete) on the repository.' },
  HSB_REGISTRY_NOT_FOUND: { retryable: false, doc: 'Registry answered 404: repository, manifest, blob or upload session unknown.' },
  HSB_REGISTRY_MANIFEST_INVALID: { retryable: false, doc: 'Registry rejected a manifest (400 MANIFEST_INVALID, MANIFEST_BLOB_UNKNOWN, TAG_INVALID, NAME_INVALID, 415 unsupported media type).' },
  HSB_REGISTRY_BAD_REQUEST: { retryable: false, doc: 'Registry answered another 4xx the bridge cannot fix by retrying.' },
  HSB_REGISTRY_UNSUPPORTED: { retryable: false, doc: 'Registry does not support the operation (405, e.g. deletes disabled).' },
  HSB_REGISTRY_TOO_LARGE: { retryable: false, doc: 'Registry refused the size of a request body (413) or a manifest exceeds the 8 MiB cap.' },
  HSB_REGISTRY_UPLOAD_INVALID: { retryable: true, doc: 'Upload session became unusable (BLOB_UPLOAD_INVALID, 416 range); the upload restarts.' },
  HSB_REGISTRY_THROTTLED: { retryable: true, doc: 'Registry answered 429 (context.retryAfterMs holds its Retry-After) beyond the in-process retries.' },
  HSB_REGISTRY_UNAVAILABLE: { retryable: true, doc: 'Registry answered 5xx or 408, or the connection failed or was reset, after the in-process retries.' },
  HSB_REGISTRY_TLS: { retryable: false, doc: 'TLS handshake failed: untrusted or expired certificate, wrong host name, or not a TLS endpoint. Fix tls.caFile / tls.insecure or the url.' },
  HSB_REGISTRY_PROTOCOL: { retryable: true, doc: 'Registry answered in a way the distribution spec does not allow (missing Location, bad Range, bad token response).' },
  HSB_REGISTRY_DIGEST_MISMATCH: { retryable: true, doc: 'Content does not hash to its digest (source served other bytes, or the target computed another digest).' },
  HSB_REGISTRY_SIZE_MISMATCH: { retryable: true, doc: 'A blob stream ended before or after its descriptor size.' },
  HSB_REGISTRY_SCHEMA1: { retryable: false, doc: 'Source serves a Docker schema1 manifest; the bridge refuses to copy schema1.' },
  HSB_REGISTRY_ZSTD_DOCKER: { retryable: false, doc: 'Docker format was asked for but a layer is zstd-compressed, which Docker schema2 cannot describe.' },
  HSB_REGISTRY_CONVERT_UNSUPPORTED: { retryable: false, doc: 'Docker format was asked for but the artifact is not a container image (other config or layer media types).' },
  HSB_REGISTRY_ABORTED: { retryable: false, doc: 'The operation was cancelled (shutdown or stall timeout).' },
  HSB_COPY_NO_MATCHING_PLATFORM: { retryable: false, doc: 'A platform filter matched none of the index children.' },
} as const;

export type RegistryErrorCode = keyof typeof RegistryErrorCodes;

export interface RegistryErrorCtx extends ErrorContext {
  registry?: string;
  repo?: string;
  ref?: string;
  digest?: string;
  method?: string;
  retryAfterMs?: number;
}

export function registryError(code: RegistryErrorCode, message: string, context: RegistryErrorCtx = {}, cause?: unknown): BridgeError {
  return new BridgeError(code, message, { retryable: RegistryErrorCodes[code].retryable, context, cause });
}

/** The first error of an OCI error body ({"errors":[{"code","message"}]}), if any. */
export function parseErrorBody(body: string | Buffer | undefined): { code?: string; message?: string } {
  if (!body || body.length === 0) return {};
  try {
    const j = JSON.parse(body.toString()) as { errors?: { code?: unknown; message?: unknown }[] };
    const e = j.errors?.[0];
    return { code: typeof e?.code === 'string' ? e.code : undefined, message: typeof e?.message === 'string' ? quoteUpstream(e.message) : undefined };
  } catch {
    return {};
  }
}

const MANIFEST_CODES = new Set(['MANIFEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_UNVERIFIED', 'TAG_INVALID', 'NAME_INVALID', 'UNSUPPORTED', 'MANIFEST_UNKNOWN_REFERENCE']);

export function registryErrorFromStatus(status: number, body: string | Buffer | undefined, ctx: RegistryErrorCtx = {}): BridgeError {
  const { code: regCode, message: regMessage } = parseErrorBody(body);
  const context: RegistryErrorCtx = { ...ctx, status, ...(regCode ? { registryCode: regCode } : {}) };
  const what = [ctx.method, ctx.repo && `${ctx.repo}${ctx.ref ? (ctx.ref.includes(':') ? '@' : ':') + ctx.ref : ''}`, ctx.digest && !ctx.ref ? ctx.digest : undefined].filter(Boolean).join(' ');
  const msg = (text: string) => `${text}${what ? ` (${what})` : ''}${ctx.registry ? ` at ${ctx.registry}` : ''}: HTTP ${status}${regCode ? ` ${regCode}` : ''}${regMessage ? ` ${regMessage}` : ''}`;
  if (status === 401) return registryError('HSB_REGISTRY_UNAUTHORIZED', msg('registry refused the credentials'), context);
  if (status === 403) return registryError('HSB_REGISTRY_DENIED', msg('registry denied access'), context);
  // A session the registry no longer knows comes as 404 (BLOB_UPLOAD_UNKNOWN per the spec, BLOB_UPLOAD_INVALID
  // from distribution): the upload starts over, it is not a missing artifact.
  if (status === 404 && (regCode === 'BLOB_UPLOAD_INVALID' || regCode === 'BLOB_UPLOAD_UNKNOWN')) return registryError('HSB_REGISTRY_UPLOAD_INVALID', msg('upload session unknown to the registry'), context);
  if (status === 404) return registryError('HSB_REGISTRY_NOT_FOUND', msg('not found'), context);
  if (status === 405) return registryError('HSB_REGISTRY_UNSUPPORTED', msg('operation not supported'), context);
  if (status === 408) return registryError('HSB_REGISTRY_UNAVAILABLE', msg('registry timed out'), context);
  if (status === 413) return registryError('HSB_REGISTRY_TOO_LARGE', msg('request too large'), context);
  if (status === 415) return registryError('HSB_REGISTRY_MANIFEST_INVALID', msg('media type not supported'), context);
  if (status === 416) return registryError('HSB_REGISTRY_UPLOAD_INVALID', msg('upload range not satisfiable'), context);
  if (status === 429) return registryError('HSB_REGISTRY_THROTTLED', msg('registry throttled the request'), context);
  if (status >= 500) return registryError('HSB_REGISTRY_UNAVAILABLE', msg('registry unavailable'), context);
  if (regCode === 'DIGEST_INVALID') return registryError('HSB_REGISTRY_DIGEST_MISMATCH', msg('registry computed another digest'), context);
  if (regCode === 'SIZE_INVALID') return registryError('HSB_REGISTRY_SIZE_MISMATCH', msg('registry saw another size'), context);
  if (regCode === 'BLOB_UPLOAD_INVALID' || regCode === 'BLOB_UPLOAD_UNKNOWN') return registryError('HSB_REGISTRY_UPLOAD_INVALID', msg('upload session invalid'), context);
  if (regCode && MANIFEST_CODES.has(regCode)) return registryError('HSB_REGISTRY_MANIFEST_INVALID', msg('registry rejected the manifest'), context);
  return registryError('HSB_REGISTRY_BAD_REQUEST', msg('registry rejected the request'), context);
}

const CONNECTION_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE', 'EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER',
]);

function errCode(e: unknown, set: Set<string>): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur && typeof cur === 'object'; i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && set.has(code)) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The TLS failure code (untrusted or expired certificate, wrong name, not TLS) behind an error, if any. */
export function tlsErrorCode(e: unknown): string | undefined {
  return errCode(e, TLS_CODES);
}

/** True for failures of the connection itself (reset, refused, timeouts), which a retry may fix. */
export function isConnectionError(e: unknown): boolean {
  return errCode(e, CONNECTION_CODES) !== undefined;
}

export function isAbortError(e: unknown): boolean {
  return !!e && typeof e === 'object' && ((e as { name?: string }).name === 'AbortError' || (e as { code?: string }).code === 'ABORT_ERR' || (e as { code?: string }).code === 'UND_ERR_ABORTED');
}

/** Wraps whatever a request threw: our own errors pass through, connection failures become UNAVAILABLE. */
export function registryErrorFromThrown(e: unknown, ctx: RegistryErrorCtx = {}, signal?: AbortSignal): BridgeError {
  // A cancelled operation fails with whatever reason the caller gave; it is still a cancellation.
  if (signal?.aborted && !(e instanceof BridgeError && e.code === 'HSB_REGISTRY_ABORTED')) return registryError('HSB_REGISTRY_ABORTED', 'operation cancelled', ctx, e);
  if (e instanceof BridgeError) return e;
  if (isAbortError(e)) return registryError('HSB_REGISTRY_ABORTED', 'operation cancelled', ctx, e);
  const code = (e as { code?: string } | undefined)?.code;
  const detail = e instanceof Error ? e.message : String(e);
  const tls = errCode(e, TLS_CODES);
  if (tls) return registryError('HSB_REGISTRY_TLS', `TLS connection to registry failed${ctx.registry ? ` (${ctx.registry})` : ''}: ${tls}`, { ...ctx, errno: tls }, e);
  if (isConnectionError(e)) return registryError('HSB_REGISTRY_UNAVAILABLE', `connection to registry failed${ctx.registry ? ` (${ctx.registry})` : ''}: ${code ?? ''} ${detail}`.trim(), { ...ctx, errno: code }, e);
  return registryError('HSB_REGISTRY_UNAVAILABLE', `request to registry failed${ctx.registry ? ` (${ctx.registry})` : ''}: ${detail}`, { ...ctx, errno: code }, e);
}

const REFUSALS = new Set(['HSB_REGISTRY_DENIED', 'HSB_REGISTRY_UNSUPPORTED', 'HSB_REGISTRY_BAD_REQUEST', 'HSB_REGISTRY_UNAUTHORIZED']);

/**
 * A refusal (401, 403, 405, 400) rather than a failure: what a look-up of something optional, such
 * as a cosign tag, takes as "not there" (a proxy or WAF in front of the registry may answer so).
 */
export function isRefusal(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && REFUSALS.has(code);
}
