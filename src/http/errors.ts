import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler } from 'express';
import type { Logger } from '../observability/logger.ts';

export function sendError(res: ServerResponse, status: number, error: string, message: string, extra: Record<string, unknown> = {}): void {
  sendJson(res, status, { error, message, ...extra });
}

/**
 * A JSON answer written straight to the socket: what `res.json` sends for these bodies, without its
 * content-type negotiation and freshness checks, which cost a few percent per webhook and never
 * apply to a POST's answer. Headers set before (Retry-After) are kept.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export interface HttpErrorBody {
  status: number;
  error: string;
  message: string;
}

// body-parser's error types (`err.type`) → what the sender is told. Anything it raises about the
// request itself is the sender's problem: 4xx, never 5xx.
const BODY_ERRORS: Readonly<Record<string, { status: number; error: string; message: (limit?: number) => string }>> = {
  'entity.too.large': { status: 413, error: 'payload_too_large', message: (limit) => `body exceeds the limit of ${limit} bytes` },
  'encoding.unsupported': { status: 415, error: 'unsupported_content_encoding', message: () => 'Content-Encoding must be identity, gzip, deflate or br' },
  'charset.unsupported': { status: 415, error: 'unsupported_charset', message: () => 'unsupported charset' },
  'request.aborted': { status: 400, error: 'request_aborted', message: () => 'the request was aborted before its body was complete' },
  'request.size.invalid': { status: 400, error: 'request_size_invalid', message: () => 'the body length does not match Content-Length' },
  'entity.parse.failed': { status: 400, error: 'invalid_json', message: () => 'body is not valid JSON' },
};

function isBodyError(err: unknown): boolean {
  const type = (err as { type?: unknown } | null)?.type;
  return typeof type === 'string' && Object.hasOwn(BODY_ERRORS, type);
}

/**
 * The client-facing answer for an error raised while reading a request body. Always a 4xx: the
 * body is the sender's. Messages are fixed strings, so nothing from the request is echoed.
 */
export function bodyErrorOf(err: unknown): HttpErrorBody {
  const e = (err ?? {}) as { status?: unknown; statusCode?: unknown; type?: unknown; limit?: unknown };
  const known = typeof e.type === 'string' && Object.hasOwn(BODY_ERRORS, e.type) ? BODY_ERRORS[e.type] : undefined;
  if (known) return { status: known.status, error: known.error, message: known.message(typeof e.limit === 'number' ? e.limit : undefined) };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 400;
  // Decompression errors come as plain 400s; unexpected server-side states are still the body's fault.
  return { status: status >= 400 && status < 500 ? status : 400, error: 'bad_request', message: 'the request body could not be read' };
}

// Turns body-parser and unexpected errors into JSON; bad input never becomes a 5xx.
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => answerError(err, req.path, res, log);
}

/**
 * The answer to an error a handler raised, for Express's routes and for webhooks served ahead of
 * Express alike: a body error or an error carrying a 4xx status is the sender's (4xx); anything
 * else is a bug, logged with the path (never the query) and answered 500 without details.
 */
export function answerError(err: unknown, path: string, res: ServerResponse, log: Logger): void {
  const e = (err ?? {}) as { status?: number; statusCode?: number; type?: string; message?: string };
  const status = e.status ?? e.statusCode ?? 500;
  if (isBodyError(err)) {
    const b = bodyErrorOf(err);
    return sendError(res, b.status, b.error, b.message);
  }
  if (status >= 400 && status < 500) return sendError(res, status, e.type ?? 'bad_request', e.message ?? 'bad request');
  log.error({ err, path }, 'unhandled error');
  if (res.headersSent) return;
  sendError(res, 500, 'internal', 'internal error');
}

/** The path of a request target, as Express's `req.path` gives it: no query, no fragment, no scheme, host or userinfo. */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '';
  if (!url.startsWith('/')) {
    try {
      return new URL(url).pathname;
    } catch {
      return '';
    }
  }
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}
