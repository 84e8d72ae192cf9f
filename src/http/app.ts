import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type Express, type RequestHandler, type Router } from 'express';
import type { Config } from '../config/schema.ts';
import type { Bus } from '../bus/port.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Logger } from '../observability/logger.ts';
import { createIngest, type Ingest } from '../ingest/routes.ts';
import { bearerMatches } from './auth.ts';
import { errorHandler, sendError } from './errors.ts';

export interface AppDeps {
  config: Config;
  bus: Bus;
  metrics: Metrics;
  logger: Logger;
  /** Routers mounted under /api/v1, behind bearer-token auth. */
  api?: Router[];
  /** false: health and metrics only (a `work` process). Default true. */
  ingest?: boolean;
}

/**
 * The HTTP request listener: webhooks at their plain paths go straight to ingest, everything else
 * (and any webhook URL spelt otherwise) through the Express app.
 */
export function createApp(deps: AppDeps): RequestListener<typeof IncomingMessage, typeof ServerResponse> {
  const ingest = deps.ingest !== false ? createIngest(deps) : undefined;
  const app = expressApp(deps, ingest);
  if (!ingest) return app;
  return (req, res) => {
    if (!ingest.take(req, res)) app(req, res);
  };
}

/** The same routes with every request, webhooks included, through Express's router (what the fast path is tested against). */
export function createExpressApp(deps: AppDeps): Express {
  return expressApp(deps, deps.ingest !== false ? createIngest(deps) : undefined);
}

function expressApp(deps: AppDeps, ingest: Ingest | undefined): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  // Webhooks first: they are nearly all of the traffic.
  ingest?.mount(app);
  app.get('/livez', (_req, res) => { res.json({ status: 'ok' }); });
  app.get('/readyz', (_req, res) => {
    const ready = deps.bus.isReady();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', bus: deps.bus.kind, busConnected: ready });
  });
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });

  if (deps.api?.length) app.use('/api/v1', apiAuth(deps.config.server.apiTokens), express.json({ limit: '1mb' }), ...deps.api);

  app.use((_req, res) => { sendError(res, 404, 'not_found', 'no such route'); });
  app.use(errorHandler(deps.logger));
  return app;
}

function apiAuth(tokens: readonly string[]): RequestHandler {
  return (req, res, next) => {
    if (tokens.length === 0) return sendError(res, 403, 'api_disabled', 'no server.apiTokens configured: the API is disabled');
    if (!bearerMatches(req.get('authorization'), tokens)) return sendError(res, 401, 'unauthorized', 'a valid bearer token is required');
    next();
  };
}
