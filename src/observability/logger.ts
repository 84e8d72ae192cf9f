import { pino, type Logger } from 'pino';

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
  return pino({ level, base: { service: 'harbor-swr-bridge' }, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}

export const silentLogger: Logger = pino({ level: 'silent' });
