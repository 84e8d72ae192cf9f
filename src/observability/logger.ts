import { pino, type Logger } from 'pino';
import { scrubSecrets } from './scrub.ts';

export type { Logger };

// Keys that hold credentials, redacted at the top level and down to three levels below it (a whole
// config, a config entry, a request's headers); messages are scrubbed by value (see scrub.ts),
// these catch objects logged whole.
const SECRET_KEYS = [
  'password', 'secret', 'secretKey', 'accessKey', 'token', 'iamToken', 'authorization', 'Authorization',
  'credentials', 'webhookSecrets', 'apiTokens', 'sasl',
];
const REDACT = [
  ...SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]),
  'headers["x-auth-token"]', '*.headers["x-auth-token"]', '*.*.headers["x-auth-token"]',
];

export function createLogger(level = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'harbor-swr-bridge' }, redact: { paths: REDACT, censor: '[redacted]' }, serializers: { err: scrubbedErr } }, destination);
}

/**
 * `err` as a message string (most log calls) or an error object, whose message, stack and cause
 * chain pino would print whole: scrubbed like a BridgeError's message, for errors that are not one.
 */
function scrubbedErr(err: unknown): unknown {
  if (typeof err === 'string') return scrubSecrets(err);
  if (!(err instanceof Error)) return err;
  const out = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
  for (const k of ['message', 'stack'] as const) if (typeof out[k] === 'string') out[k] = scrubSecrets(out[k]);
  return out;
}

export const silentLogger: Logger = pino({ level: 'silent' });
