// Error messages leave the process: logs, dead letters and results on the bus, the API, the CLI.
// Some quote text a server chose to send (a token service or an API gateway may echo the
// Authorization header it was given), so every BridgeError message goes through scrubSecrets.
// Two nets: the credentials this process was configured with (registered once the config is
// loaded; module state because messages are made deep in every adapter, and the set is the
// process's), and the shapes credentials take in HTTP headers and JSON bodies.

export const REDACTED = '[redacted]';

const known = new Set<string>();
/** Longest first, so a secret containing another is replaced whole. */
let ordered: string[] = [];

/**
 * Whether a value is distinctive enough to be replaced wherever it appears. A weak one (short, or of
 * one kind of character, such as `registry` or `harbor`) would rewrite the bridge's own words, hosts
 * and repositories, and where `[redacted]` then stands would give the value away.
 */
function distinctive(v: string): boolean {
  if (v.length < 8) return false;
  const kinds = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(v)).length;
  return kinds >= 2;
}

export function registerSecrets(values: Iterable<string>): void {
  for (const v of values) {
    // A header value such as Harbor's `Bearer <token>` is quoted with or without its scheme.
    for (const form of [v, /^(?:Basic|Bearer)\s+(.+)$/i.exec(v)?.[1]]) if (form !== undefined && distinctive(form)) known.add(form);
  }
  ordered = [...known].sort((a, b) => b.length - a.length);
}

/** A username/password pair also travels as the base64 of `user:password` (HTTP Basic). */
export function basicSecretOf(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`).toString('base64');
}

const PATTERNS: [RegExp, string][] = [
  // Authorization schemes with their credential: `Basic <b64>`, `Bearer <token>`, the scheme in any
  // case (RFC 9110); not a challenge's `Bearer realm=`, nor prose: a credential has a capital, digit or symbol.
  [/\b([Bb][Aa][Ss][Ii][Cc]|[Bb][Ee][Aa][Rr][Ee][Rr])(\s+)(?!realm=)(?=[a-z]*[A-Z0-9._~+/-])[A-Za-z0-9._~+/-]{8,}=*/g, `$1$2${REDACTED}`],
  // A user and password in a URL: `https://user:pass@host`.
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+:[^\s/@]+@/gi, `$1${REDACTED}@`],
  // Form and query fields: `password=...&`, `access_token=...`.
  [/(^|[?&\s;,])(password|passwd|secret|client_secret|token|access_token|refresh_token)=[^&\s"',;]+/gi, `$1$2=${REDACTED}`],
  // Signed-request fields: Huawei's SDK-HMAC-SHA256 `Access=<AK>, Signature=<hex>` (and AWS-style `Credential=`).
  [/\b(Access|Signature|Credential)=[^\s,;"']+/g, `$1=${REDACTED}`],
  // Token and secret headers as `name: value` or `name=value`.
  [/\b(x-auth-token|x-subject-token|x-security-token|authorization)(["']?\s*[:=]\s*["']?)(?!Basic\b|Bearer\b)[^\s"',;]+/gi, `$1$2${REDACTED}`],
  // JSON fields that hold one: `"password":"..."`, `"token": "..."`.
  [/("(?:password|secret|token|access_token|refresh_token|secret_key|secretKey|sk)"\s*:\s*")[^"]*"/gi, `$1${REDACTED}"`],
];

export function scrubSecrets(text: string): string {
  let out = text;
  for (const s of ordered) if (out.includes(s)) out = out.split(s).join(REDACTED);
  for (const [re, to] of PATTERNS) out = out.replace(re, to);
  return out;
}

/** Upstream text quoted in a message: scrubbed, on one line, and at most `max` characters. */
export function quoteUpstream(text: string, max = 200): string {
  const line = scrubSecrets(text).replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max)}…` : line;
}
