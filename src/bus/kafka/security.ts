// TLS and SASL towards the Kafka brokers: the kafkajs options built from `bus.tls` / `bus.sasl`,
// what `check` and the start-up log say about them, and the coded errors a refused login or a
// failed handshake become. Nothing here ever puts the password into a message.
import { readFileSync } from 'node:fs';
import { rootCertificates, type ConnectionOptions } from 'node:tls';
import type { SASLOptions } from 'kafkajs';
import type { KafkaSaslConfig, KafkaTlsConfig } from '../../config/bus-security.ts';
import { BridgeError } from '../../errors.ts';
import { tlsErrorCode } from '../../registry/errors.ts';
import { busUnavailable } from '../codec.ts';
import { REDACTED } from '../../observability/scrub.ts';

export interface KafkaSecurity {
  /** Present: TLS to every broker. */
  tls?: Partial<KafkaTlsConfig>;
  sasl?: KafkaSaslConfig;
}

/**
 * kafkajs' `ssl` and `sasl`. The CA file is added to Node's roots, as for a registry. No
 * `servername`: kafkajs sets it per broker from the broker's host when that is a name (a fixed one
 * here would be sent to every broker of the cluster).
 */
export function kafkaSecurityOptions(s: KafkaSecurity): { ssl?: ConnectionOptions; sasl?: SASLOptions } {
  const out: { ssl?: ConnectionOptions; sasl?: SASLOptions } = {};
  if (s.tls) {
    const t = s.tls;
    out.ssl = {
      rejectUnauthorized: !(t.insecure ?? false),
      ...(t.caFile ? { ca: [...rootCertificates, readPem(t.caFile, 'bus.tls.caFile')] } : {}),
      ...(t.certFile ? { cert: readPem(t.certFile, 'bus.tls.certFile') } : {}),
      ...(t.keyFile ? { key: readPem(t.keyFile, 'bus.tls.keyFile') } : {}),
    };
  }
  if (s.sasl) {
    const { mechanism, username, password } = s.sasl;
    out.sasl = { mechanism, username, password };
  }
  return out;
}

// Checked when the config loads; a file removed since then fails the bus at once, naming the field.
function readPem(path: string, field: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new BridgeError('HSB_CONFIG_INVALID', `${field}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { context: { field }, cause: e });
  }
}

/** How the bridge talks to Kafka, for `check` and the start-up log: never the password. */
export function kafkaSecurityLabel(s: KafkaSecurity): string {
  const parts: string[] = [];
  if (!s.tls) parts.push('plaintext (no TLS)');
  else {
    const t = s.tls;
    parts.push(`TLS (${t.insecure ? 'certificate verification OFF' : `verified against ${t.caFile ? `Node's CAs and ${t.caFile}` : 'Node\'s CAs'}`}`
      + `${t.certFile ? `, client certificate ${t.certFile}` : ''})`);
  }
  parts.push(s.sasl ? `SASL ${s.sasl.mechanism} as ${s.sasl.username}` : 'no SASL');
  return parts.join(', ');
}

/** What the start-up log warns about: credentials or records in clear, or an unverified broker. */
export function kafkaSecurityWarnings(s: KafkaSecurity): string[] {
  const out: string[] = [];
  if (s.sasl && !s.tls) {
    out.push(s.sasl.mechanism === 'plain'
      ? 'SASL PLAIN without bus.tls: the Kafka password travels in clear text, as do all records'
      : `SASL ${s.sasl.mechanism} without bus.tls: the login does not reveal the password, but all records travel in clear text`);
  }
  if (s.tls?.insecure) out.push('TLS certificate verification is OFF for the Kafka bus (bus.tls.insecure)');
  return out;
}

/** The start-up warnings for a config's bus: Kafka's, or that the embedded bus ignores Kafka's settings. */
export function busSecurityWarnings(bus: KafkaSecurity & { kind?: 'kafka' | 'embedded' | undefined }): string[] {
  if (bus.kind === 'kafka') return kafkaSecurityWarnings(bus);
  // Settings written for Kafka while the bridge runs embedded (no brokers): the records stay on this machine.
  return bus.tls || bus.sasl ? ['bus.tls and bus.sasl are for Kafka: the embedded bus ignores them (set bus.brokers or KAFKA_BROKERS to use Kafka)'] : [];
}

/**
 * What a kafkajs failure means for an operator: the brokers refused the SASL login (HSB_BUS_AUTH),
 * the TLS handshake failed (HSB_BUS_TLS), or the brokers could not be reached or answer
 * (HSB_BUS_UNAVAILABLE). All are waited out like an outage (nothing is dead-lettered for them).
 */
export function kafkaError(e: unknown, what: string, s: KafkaSecurity): BridgeError {
  if (e instanceof BridgeError) return e;
  const redact = (text: string) => (s.sasl && s.sasl.password.length >= 4 ? text.replaceAll(s.sasl.password, REDACTED) : text);
  const auth = findInChain(e, (x) => x.name === 'KafkaJSSASLAuthenticationError');
  if (auth) {
    const who = s.sasl ? `SASL ${s.sasl.mechanism} login of user "${s.sasl.username}"` : 'SASL login';
    return new BridgeError('HSB_BUS_AUTH', redact(`Kafka refused the ${who} (${what}): ${auth.message}; check bus.sasl (mechanism, username, password) and the user on the brokers`),
      { retryable: true, context: { mechanism: s.sasl?.mechanism, username: s.sasl?.username } });
  }
  // An authorizer's refusal (kafkajs carries the protocol error's name as `type`): no retry fixes it, only ACLs.
  const denied = findInChain(e, (x) => typeof x.type === 'string' && /_AUTHORIZATION_FAILED$/.test(x.type));
  if (denied) {
    const type = String(denied.type);
    const who = s.sasl ? ` for user "${s.sasl.username}"` : '';
    return new BridgeError('HSB_BUS_AUTH', redact(`Kafka denied ${type}${who} (${what}): the brokers' ACLs must allow the bridge its topics and groups (see the README's Kafka section)`),
      { retryable: true, context: { kafkaError: type, username: s.sasl?.username } });
  }
  const tls = tlsCode(e, s);
  if (tls) {
    const at = findInChain(e, (x) => typeof x.broker === 'string')?.broker;
    const detail = tlsDetail(findInChain(e, (x) => x.code === tls)?.message ?? '');
    return new BridgeError('HSB_BUS_TLS', redact(`TLS connection to Kafka${at ? ` broker ${String(at)}` : ''} failed (${what}): ${tls}${detail ? ` (${detail})` : ''}; ${tlsHint(tls)}`),
      { retryable: true, context: { errno: tls, broker: typeof at === 'string' ? at : undefined } });
  }
  const err = busUnavailable(e, what);
  // A TLS listener drops a plaintext client without a word.
  const hint = !s.tls && /Closed connection/.test(err.message)
    ? `; if the brokers' listener is TLS (SSL or SASL_SSL), set bus.tls${s.sasl ? '' : '; if it wants a login (SASL_PLAINTEXT), set bus.sasl'}`
    : '';
  const message = redact(err.message) + hint;
  return message === err.message ? err : new BridgeError(err.code, message, { retryable: true, cause: e });
}

/** What to look at for a handshake failure. */
function tlsHint(code: string): string {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'the broker address (bus.brokers, or the address the broker advertises) must be a name or IP in its certificate';
  if (/CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN/.test(code)) return 'the broker refused the client certificate or wants one: check bus.tls.certFile and keyFile';
  if (code === 'TLS_HANDSHAKE_CLOSED') return 'the broker closed the connection during the handshake: is this listener TLS (SSL or SASL_SSL)?';
  if (/CERT|SELF_SIGNED/.test(code)) return 'bus.tls.caFile must hold the CA that signed the broker\'s certificate (or, for this bus only, tls.insecure: true)';
  return 'check bus.tls and the listener\'s TLS settings';
}

/** Node's message without the "Connection error: " prefix; OpenSSL's long form cut to its reason. */
function tlsDetail(message: string): string {
  const text = message.replace(/^Connection error: /, '').split('\n')[0]!.trim();
  return /SSL routines:[^:]*:([^:]+)/.exec(text)?.[1] ?? text;
}

/**
 * Node's TLS failure codes (untrusted, expired, wrong name), OpenSSL's alerts (a client certificate
 * refused or missing) and, on a TLS bus, a connection closed during the handshake (a plaintext listener).
 */
function tlsCode(e: unknown, s: KafkaSecurity): string | undefined {
  const known = tlsErrorCode(e);
  if (known) return known;
  const code = findInChain(e, (x) => typeof x.code === 'string' && /^ERR_(SSL|TLS)_/.test(x.code))?.code;
  if (typeof code === 'string') return code;
  const closed = s.tls && findInChain(e, (x) => /before secure TLS connection was established/.test(x.message));
  return closed ? 'TLS_HANDSHAKE_CLOSED' : undefined;
}

type Chained = Error & { code?: unknown; broker?: unknown; type?: unknown; cause?: unknown };

function findInChain(e: unknown, hit: (x: Chained) => boolean): Chained | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 6 && cur instanceof Error; i++) {
    if (hit(cur as Chained)) return cur as Chained;
    cur = (cur as Chained).cause;
  }
  return undefined;
}
