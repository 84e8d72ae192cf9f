import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from '../observability/logger.ts';

export function sendError(res: Response, status: number, error: string, message: string, extra: Record<string, unknown> = {}): void {
  res.status(status).json({ error, message, ...extra });
}

// Turns body-parser and unexpected errors into JSON; bad input never becomes a 5xx.
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const e = err as { status?: number; statusCode?: number; type?: string; message?: string; limit?: number };
    const status = e.status ?? e.statusCode ?? 500;
    if (e.type === 'entity.too.large') return sendError(res, 413, 'payload_too_large', `body exceeds the limit of ${e.limit} bytes`);
    if (status >= 400 && status < 500) return sendError(res, status, e.type ?? 'bad_request', e.message ?? 'bad request');
    log.error({ err, path: req.path }, 'unhandled error');
    sendError(res, 500, 'internal', 'internal error');
  };
}
