import { BridgeError } from '../errors.ts';
import { quoteUpstream } from '../observability/scrub.ts';

// One status → BridgeError mapper for SWR's management API. SWR answers with two body
// shapes: its own `{"errorCode":"SVCSTG.SWR.x","errorMessage":"..."}` (the docs also show
// it wrapped in an array) and, when the API gateway rejects a request before SWR sees it,
// `{"error_code":"APIG.0301","error_msg":"...","request_id":"..."}` (also spelled APIGW.*).

export const SWR_CODE_QUOTA = 'SVCSTG.SWR.4000097';
export const SWR_CODE_TOO_MANY_REQUESTS = 'SVCSTG.SWR.4031042';
/** 409 "The system is busy. Try again later" (SWR error-code appendix): not "already exists". */
export const SWR_CODE_BUSY = 'SVCSTG.SWR.4090023';
/** 409 "The organization already exists". */
export const SWR_CODE_ORG_EXISTS = 'SVCSTG.SWR.4090060';
// SWR's own 403s for request limits (4031042, and 4031032 "number of requests exceeds the maximum"),
// its busy 409, and the API gateway's flow control.
const THROTTLE_CODES = new Set([SWR_CODE_TOO_MANY_REQUESTS, 'SVCSTG.SWR.4031032', SWR_CODE_BUSY, 'APIG.0308', 'APIGW.0308']);

/** Whether an error code says SWR itself answered (not the API gateway in front of it). */
export const isSwrCode = (code: string | undefined): boolean => code?.startsWith('SVCSTG.SWR.') ?? false;
const IAM_AUTH_CODES = new Set(['APIG.0301', 'APIGW.0301', 'SVCSTG.SWR.4010000']);

export interface SwrErrorBody {
  code: string | undefined;
  message: string | undefined;
  requestId: string | undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** Read either error shape (or neither) from a response body. */
export function parseSwrErrorBody(text: string): SwrErrorBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { code: undefined, message: text.trim() || undefined, requestId: undefined };
  }
  const o = (Array.isArray(parsed) ? parsed[0] : parsed) as Record<string, unknown> | null | undefined;
  if (!o || typeof o !== 'object') return { code: undefined, message: undefined, requestId: undefined };
  return {
    code: str(o.errorCode) ?? str(o.error_code),
    message: str(o.errorMessage) ?? str(o.error_msg) ?? str(o.message),
    requestId: str(o.request_id) ?? str(o.requestId),
  };
}

/** Retry-After as delta-seconds or an HTTP date, in ms (undefined when absent or unreadable). */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

export type SwrOperation = 'createNamespace' | 'getNamespace' | 'deleteTag';

export interface SwrErrorInput {
  status: number;
  body: string;
  retryAfter?: string | string[] | undefined;
  operation: SwrOperation;
  namespace?: string | undefined;
  repository?: string | undefined;
  tag?: string | undefined;
  now?: number;
}

/** Map an unsuccessful SWR API response to a BridgeError with a stable code. */
export function swrErrorFromResponse(input: SwrErrorInput): BridgeError {
  const { status, operation } = input;
  const b = parseSwrErrorBody(input.body);
  // Classified on SWR's whole message below; quoted (scrubbed, cut to 200 characters) for the error's text.
  const said = b.message === undefined ? 'no message' : quoteUpstream(b.message);
  const huawei = b.code ? `${b.code}: ${said}` : said;
  const context = {
    status,
    operation,
    huaweiCode: b.code,
    requestId: b.requestId,
    namespace: input.namespace,
    repository: input.repository,
    tag: input.tag,
  };
  const what = `SWR ${operation}${input.namespace ? ` ${input.namespace}` : ''}`;

  if (status === 429 || status === 503 || (b.code !== undefined && THROTTLE_CODES.has(b.code))) {
    const retryAfterMs = parseRetryAfter(input.retryAfter, input.now);
    return new BridgeError('HSB_SWR_THROTTLED', `${what} throttled (HTTP ${status}, ${huawei})`, {
      retryable: true,
      context: { ...context, retryAfterMs },
    });
  }
  if (b.code === SWR_CODE_QUOTA || (operation === 'createNamespace' && status === 400 && /quota|upper limit|exceed/i.test(b.message ?? ''))) {
    return new BridgeError('HSB_SWR_QUOTA', `${what}: organisation quota reached (${huawei}); delete unused organisations or raise the quota`, {
      retryable: false,
      context,
    });
  }
  if (status === 401 || (b.code !== undefined && IAM_AUTH_CODES.has(b.code))) {
    // The gateway's AK/SK check ("signature expired, signature time: …"), not an IAM token that expired.
    if (/signature expired/i.test(b.message ?? '')) {
      return new BridgeError('HSB_SWR_CLOCK_SKEW', `${what}: signature rejected as expired (${huawei}); the host clock differs from Huawei Cloud's by more than 15 minutes`, {
        retryable: false,
        context,
      });
    }
    return new BridgeError('HSB_SWR_AUTH', `${what}: authentication failed (${huawei}); check the AK/SK or IAM token`, { retryable: false, context });
  }
  if (status === 403) return new BridgeError('HSB_SWR_FORBIDDEN', `${what}: permission denied (${huawei})`, { retryable: false, context });
  if (status === 400 && operation === 'createNamespace') {
    return new BridgeError('HSB_SWR_NAME_INVALID', `${what}: SWR rejected the organisation (${huawei})`, { retryable: false, context });
  }
  if (status >= 500) return new BridgeError('HSB_SWR_UNAVAILABLE', `${what} failed (HTTP ${status}, ${huawei})`, { retryable: true, context });
  return new BridgeError('HSB_SWR_RESPONSE', `${what} failed (HTTP ${status}, ${huawei})`, { retryable: false, context });
}
