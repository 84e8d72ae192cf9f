import express, { type Request, type Response, type Router } from 'express';
import type { Config, SourceConfig } from '../config/schema.ts';
import type { Bus } from '../bus/port.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Logger } from '../observability/logger.ts';
import { BridgeError, toBridgeError } from '../errors.ts';
import { matchesAnySecret } from '../http/auth.ts';
import { sendError } from '../http/errors.ts';
import { normaliseDistribution, normaliseHarbor, type NormaliseResult } from './normalise.ts';
import { eventKey, type ArtifactEvent } from './event.ts';

export interface IngestDeps {
  config: Config;
  bus: Bus;
  metrics: Metrics;
  logger: Logger;
}

const HARBOR_TYPES = ['application/json', 'application/cloudevents+json'];
const DISTRIBUTION_TYPES = ['application/vnd.docker.distribution.events.v1+json', 'application/json'];

/** `POST /webhooks/harbor[/:sourceId]` and `POST /webhooks/distribution/:sourceId`. */
export function ingestRouter(deps: IngestDeps): Router {
  const router = express.Router();
  const raw = express.raw({ type: () => true, limit: deps.config.server.bodyLimitBytes });
  const sources = new Map(deps.config.sources.map((s) => [s.id, s]));

  const handle = (kind: 'harbor' | 'distribution') => async (req: Request, res: Response) => {
    const sourceId = (req.params.sourceId as string | undefined) ?? (deps.config.sources.length === 1 ? deps.config.sources[0]!.id : undefined);
    const source = sourceId === undefined ? undefined : sources.get(sourceId);
    const count = (format: string, type: string, result: string) =>
      deps.metrics.webhooks.inc({ source: source?.id ?? 'unknown', format, type, result });
    if (!source) {
      count('unknown', 'unknown', 'unknown_source');
      return sendError(res, 404, 'unknown_source', sourceId === undefined
        ? 'several sources are configured: use /webhooks/harbor/<sourceId>'
        : `no source with id "${sourceId}" is configured`);
    }
    const log = deps.logger.child({ source: source.id, requestId: req.get('x-request-id') ?? undefined });
    if (!authorised(source, req.get('authorization'))) {
      count('unknown', 'unknown', 'unauthorized');
      log.warn('webhook refused: Authorization header does not match any webhook secret');
      return sendError(res, 401, 'unauthorized', 'the Authorization header does not match the webhook secret configured for this source');
    }
    const body = req.body as Buffer | undefined;
    const empty = !body || body.length === 0 || body.toString('utf8').trim() === '';
    const ctype = (req.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    const accepted = kind === 'harbor' ? HARBOR_TYPES : DISTRIBUTION_TYPES;
    if (!empty && !accepted.includes(ctype)) {
      count('unknown', 'unknown', 'unsupported_media_type');
      return sendError(res, 415, 'unsupported_media_type', `Content-Type must be one of ${accepted.join(', ')}`);
    }
    let parsed: unknown;
    if (!empty) {
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch (e) {
        count('unknown', 'unknown', 'invalid');
        return sendError(res, 400, 'invalid_json', `body is not valid JSON: ${(e as Error).message}`);
      }
    }
    const receivedAt = new Date();
    const result: NormaliseResult = kind === 'harbor'
      ? normaliseHarbor(parsed, { sourceId: source.id, contentType: ctype, receivedAt, rawEmpty: empty })
      : normaliseDistribution(parsed, { sourceId: source.id, receivedAt });
    if (result.kind === 'invalid') {
      count('unknown', 'unknown', 'invalid');
      return sendError(res, 400, 'invalid_payload', 'the payload does not match any supported webhook format', { issues: result.issues });
    }
    if (result.kind === 'ignored') {
      count(result.format, result.type, 'ignored');
      return res.status(200).json({ accepted: 0, ignored: result.type });
    }
    const end = deps.metrics.publishSeconds.startTimer({ topic: 'events' });
    try {
      await publishWithDeadline(deps.bus, result.events, deps.config.server.publishTimeoutMs);
    } catch (e) {
      const err = toBridgeError(e, 'HSB_BUS_UNAVAILABLE');
      count(result.format, result.type, 'unavailable');
      log.error({ code: err.code, err: err.message }, 'webhook not acknowledged: bus unavailable');
      res.set('Retry-After', '5');
      return sendError(res, 503, 'bus_unavailable', 'the event could not be made durable; retry later');
    } finally {
      end();
    }
    count(result.format, result.type, 'accepted');
    log.info({ type: result.type, events: result.events.map((e) => ({ id: e.id, repository: e.repository, tag: e.tag, digest: e.digest })) }, 'webhook accepted');
    res.status(200).json({ accepted: result.events.length, ids: result.events.map((e) => e.id) });
  };

  router.post('/webhooks/harbor', raw, handle('harbor'));
  router.post('/webhooks/harbor/:sourceId', raw, handle('harbor'));
  router.post('/webhooks/distribution/:sourceId', raw, handle('distribution'));
  return router;
}

function authorised(source: SourceConfig, header: string | undefined): boolean {
  if (source.webhookSecrets.length === 0) return source.insecure;
  return matchesAnySecret(header, source.webhookSecrets);
}

async function publishWithDeadline(bus: Bus, events: ArtifactEvent[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BridgeError('HSB_BUS_TIMEOUT', `bus did not acknowledge within ${ms} ms`, { retryable: true })), ms);
  });
  try {
    await Promise.race([bus.publish('events', events.map((e) => ({ key: eventKey(e), value: e }))), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
