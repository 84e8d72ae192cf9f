import { BridgeError } from '../errors.ts';

// JSON on the wire for both adapters; null value = tombstone.
export function encodeValue(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

export function decodeValue(buf: Buffer | null | undefined, where: string): unknown {
  if (buf === null || buf === undefined) return null;
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (e) {
    // A record we cannot parse is handed on as such; consumers validate and dead-letter it.
    return { __undecodable: true, error: (e as Error).message, where };
  }
}

export function busUnavailable(cause: unknown, what: string): BridgeError {
  return new BridgeError('HSB_BUS_UNAVAILABLE', `bus unavailable: ${what}: ${(cause as Error)?.message ?? String(cause)}`, { retryable: true, cause });
}
