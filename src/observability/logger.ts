import { pino, type Logger } from 'pino';

export type { Logger };

// Paths that may hold credentials anywhere in a logged object.
const REDACT = [
  'password', 'secret', 'secretKey', 'token', 'authorization', 'Authorization',
  '*.password', '*.secret', '*.secretKey', '*.token', '*.authorization', '*.Authorization',
  'headers.authorization', 'req.headers.authorization', 'credentials', '*.credentials',
];

export function createLogger(level = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'harbor-swr-bridge' }, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}

export const silentLogger: Logger = pino({ level: 'silent' });
