// The undici dispatcher for one registry: TLS verification on unless `insecure`, extra CA from
// `caFile` added to the system roots, keep-alive, and timeouts that fit long blob transfers.
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import type { TlsConfig } from '../config/schema.ts';

export interface AgentOptions {
  tls?: Partial<TlsConfig>;
  /** No byte for this long while reading a body, or no response headers, fails the request. */
  idleTimeoutMs?: number;
}

export function createAgent(opts: AgentOptions = {}): Dispatcher {
  const ca = opts.tls?.caFile ? [...rootCertificates, readFileSync(opts.tls.caFile, 'utf8')] : undefined;
  const idle = opts.idleTimeoutMs ?? 120_000;
  return new Agent({
    connect: { rejectUnauthorized: !(opts.tls?.insecure ?? false), ...(ca ? { ca } : {}) },
    keepAliveTimeout: 30_000,
    headersTimeout: idle,
    bodyTimeout: idle,
  });
}
