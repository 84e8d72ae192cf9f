// The undici dispatcher for one registry: TLS verification on unless `insecure`, extra CA from
// `caFile` added to the system roots, keep-alive, and timeouts that fit long blob transfers.
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import type { TlsConfig } from '../config/schema.ts';
import { BridgeError } from '../errors.ts';

export interface AgentOptions {
  tls?: Partial<TlsConfig>;
  /** No byte for this long while reading a body, or no response headers, fails the request. */
  idleTimeoutMs?: number;
}

export function createAgent(opts: AgentOptions = {}): Dispatcher {
  const ca = opts.tls?.caFile ? [...rootCertificates, readCa(opts.tls.caFile)] : undefined;
  const idle = opts.idleTimeoutMs ?? 120_000;
  return new Agent({
    connect: { rejectUnauthorized: !(opts.tls?.insecure ?? false), ...(ca ? { ca } : {}) },
    keepAliveTimeout: 30_000,
    headersTimeout: idle,
    bodyTimeout: idle,
  });
}

// Checked when the config loads; a file removed since then fails the client, not every task's retries.
function readCa(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new BridgeError('HSB_CONFIG_INVALID', `cannot read CA file ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { retryable: false, cause: e });
  }
}
