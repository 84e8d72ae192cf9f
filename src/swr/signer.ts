import { createHash, createHmac } from 'node:crypto';

// Huawei Cloud API signing, "SDK-HMAC-SHA256" (API Gateway / IAM AK/SK authentication):
//   canonical request = METHOD \n canonical URI \n canonical query \n canonical headers \n
//                       signed headers \n hex(sha256(body))
//   canonical URI     = each path segment URI-encoded (RFC 3986 unreserved kept), trailing "/" added
//   canonical headers = "name:trimmed value\n" per signed header, names lowercase and sorted
//                       (so a blank line precedes the signed-header list)
//   string to sign    = "SDK-HMAC-SHA256\n" + X-Sdk-Date + "\n" + hex(sha256(canonical request))
//   signature         = hex(HMAC-SHA256(SK, string to sign))
//   Authorization     = "SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b>, Signature=<sig>"
// Pure: the date is injected so a vector can pin it.

export const SIGN_ALGORITHM = 'SDK-HMAC-SHA256';
export const HEADER_SDK_DATE = 'X-Sdk-Date';
/** When present its value replaces the body hash (e.g. "UNSIGNED-PAYLOAD"). */
export const HEADER_CONTENT_SHA256 = 'X-Sdk-Content-Sha256';

export interface SignInput {
  method: string;
  url: string | URL;
  /** Headers that will be sent and signed (host and X-Sdk-Date are added). */
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  ak: string;
  sk: string;
  date?: Date;
}

/** YYYYMMDDTHHMMSSZ in UTC. */
export function sdkDate(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

/** Percent-encode everything except RFC 3986 unreserved characters, hex in upper case. */
export function uriEscape(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_.~-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Segments are decoded first so `%24` and `$` sign the same way the gateway sees them. */
export function canonicalUri(pathname: string): string {
  const p = pathname.split('/').map((seg) => uriEscape(safeDecode(seg))).join('/');
  return p.endsWith('/') ? p : `${p}/`;
}

export function canonicalQuery(search: string): string {
  const pairs = [...new URLSearchParams(search)].map(([k, v]) => [uriEscape(k), uriEscape(v)] as const);
  pairs.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) : a[0] < b[0] ? -1 : 1));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface CanonicalParts {
  canonicalRequest: string;
  signedHeaders: string[];
}

/** Build the canonical request from the headers that will be sent (names in any case). */
export function canonicalRequest(method: string, url: URL, headers: Record<string, string>, body: string | Uint8Array = ''): CanonicalParts {
  const lower = new Map<string, string>();
  for (const [k, v] of Object.entries(headers)) lower.set(k.toLowerCase(), v);
  const signedHeaders = [...lower.keys()].sort();
  const canonicalHeaders = signedHeaders.map((k) => `${k}:${(lower.get(k) ?? '').trim()}\n`).join('');
  const payloadHash = lower.get(HEADER_CONTENT_SHA256.toLowerCase()) ?? sha256Hex(body);
  const canonical = [
    method.toUpperCase(),
    canonicalUri(url.pathname),
    canonicalQuery(url.search),
    canonicalHeaders,
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  return { canonicalRequest: canonical, signedHeaders };
}

export function stringToSign(canonical: string, xSdkDate: string): string {
  return `${SIGN_ALGORITHM}\n${xSdkDate}\n${sha256Hex(canonical)}`;
}

/** Returns the headers to add to the request: X-Sdk-Date and Authorization. */
export function signRequest(input: SignInput): { 'X-Sdk-Date': string; Authorization: string } {
  const url = typeof input.url === 'string' ? new URL(input.url) : input.url;
  const xSdkDate = sdkDate(input.date ?? new Date());
  const toSign: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers ?? {})) {
    const l = k.toLowerCase();
    if (l !== 'authorization' && l !== 'x-sdk-date' && l !== 'host') toSign[l] = v;
  }
  toSign.host = url.host;
  toSign['x-sdk-date'] = xSdkDate;
  const { canonicalRequest: canonical, signedHeaders } = canonicalRequest(input.method, url, toSign, input.body ?? '');
  const signature = createHmac('sha256', input.sk).update(stringToSign(canonical, xSdkDate)).digest('hex');
  return {
    'X-Sdk-Date': xSdkDate,
    Authorization: `${SIGN_ALGORITHM} Access=${input.ak}, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`,
  };
}
