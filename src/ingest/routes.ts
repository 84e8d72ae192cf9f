import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Router } from 'express';
import type { Config, SourceConfig } from '../config/schema.ts';
import type { Bus, OutgoingRecord } from '../bus/port.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Logger } from '../observability/logger.ts';
import { BridgeError, toBridgeError } from '../errors.ts';
import { secretMatcher } from '../http/auth.ts';
import { bodyReader } from '../http/body.ts';
import { answerError, pathOf, sendError, sendJson } from '../http/errors.ts';
import { normaliseDistribution, normaliseHarbor, type NormaliseResult } from './normalise.ts';
import { eventKey, type ArtifactEvent } from './event.ts';
import { DISTRIBUTION_CONTENT_TYPES } from './formats/distribution.ts';

export interface IngestDeps {
  config: Config;
  bus: Bus;
  metrics: Metrics;
  logger: Logger;
}

type Kind = 'harbor' | 'distribution';

/** Values of the `result` label of hsb_webhooks_total (docs/alerts.yaml matches on them). */
export const WEBHOOK_RESULTS = [
  'accepted', 'ignored', 'invalid', 'unauthorized', 'unknown_source', 'unsupported_media_type', 'too_large', 'unavailable',
] as const;
export type WebhookResult = typeof WEBHOOK_RESULTS[number];

const ACCEPTED_TYPES: Readonly<Record<Kind, readonly string[]>> = {
  harbor: ['application/json', 'application/cloudevents+json'],
  distribution: [...DISTRIBUTION_CONTENT_TYPES, 'application/json'],
};

const EVENTS_TOPIC = { topic: 'events' } as const;

/** Seconds Harbor is told to wait when the bus did not acknowledge (Harbor itself retries on its own schedule). */
const RETRY_AFTER_SECONDS = '5';

/** Most records in one publish: bounds the size of a produce request while a backlog drains. */
const MAX_GROUP_RECORDS = 500;
/** Webhooks waiting that make the next group worth sending without waiting for a turn of the event loop. */
const FULL_GROUP = 16;

/** What serves webhooks: a fast path in front of Express, and the same handler mounted on Express. */
export interface Ingest {
  /**
   * Serves `req` and returns true when it is a webhook at a plain path (`POST /webhooks/harbor[/<id>]`,
   * `POST /webhooks/distribution/<id>`, ids spelt as the config allows them); false leaves it to Express.
   * Express's per-request set-up (prototype swaps, router, final handler) cost about 8 µs of the
   * bridge's 45 µs per webhook at full speed; webhooks are nearly all of the traffic.
   */
  take(req: IncomingMessage, res: ServerResponse): boolean;
  /** Adds the same routes to Express, for webhook URLs `take` leaves (percent-encoded ids, absolute-form targets). */
  mount(router: Router): void;
}

/**
 * Order of checks: source (404), Authorization (401) — both before any byte of the body is read,
 * so unauthenticated callers cannot make the bridge buffer anything — then the body (413, 415,
 * 400), normalisation, and publish. 2xx only once the bus acknowledged; 503 + Retry-After when it
 * did not within `server.publishTimeoutMs`.
 */
export function createIngest(deps: IngestDeps): Ingest {
  const readBody = bodyReader(deps.config.server.bodyLimitBytes);
  const sources = new Map(deps.config.sources.map((s) => [s.id, s]));
  const authorised = new Map(deps.config.sources.map((s) => [s.id, authorisation(s)]));
  const onlySource = deps.config.sources.length === 1 ? deps.config.sources[0] : undefined;
  const publisher = new GroupPublisher(deps.bus, MAX_GROUP_RECORDS, deps.config.server.publishTimeoutMs);

  const handle = async (kind: Kind, sourceId: string | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const source = sourceId === undefined ? onlySource : sources.get(sourceId);
    // Never a sender-chosen id as a label: unknown ids would grow the registry without bound.
    const count = (format: string, type: string, result: WebhookResult) =>
      deps.metrics.countWebhook({ source: source?.id ?? 'unknown', format, type, result });
    if (!source) {
      count('unknown', 'unknown', 'unknown_source');
      return sendError(res, 404, 'unknown_source', sourceId === undefined
        ? 'several sources are configured: use /webhooks/harbor/<sourceId>'
        : 'no source with this id is configured');
    }
    if (!authorised.get(source.id)!(req.headers.authorization)) {
      count('unknown', 'unknown', 'unauthorized');
      deps.logger.warn({ source: source.id }, 'webhook refused: Authorization header does not match any webhook secret');
      return sendError(res, 401, 'unauthorized', 'the Authorization header does not match the webhook secret configured for this source');
    }

    const read = await readBody(req, res);
    if (read.error) {
      count('unknown', 'unknown', read.error.status === 413 ? 'too_large' : read.error.status === 415 ? 'unsupported_media_type' : 'invalid');
      return sendError(res, read.error.status, read.error.error, read.error.message);
    }
    const body = read.body;
    const empty = isBlank(body);
    const ctype = mediaTypeOf(req.headers['content-type']);
    if (!empty && !ACCEPTED_TYPES[kind].includes(ctype)) {
      count('unknown', 'unknown', 'unsupported_media_type');
      return sendError(res, 415, 'unsupported_media_type', `Content-Type must be one of ${ACCEPTED_TYPES[kind].join(', ')}`);
    }
    let parsed: unknown;
    if (!empty) {
      try {
        parsed = JSON.parse(textOf(body));
      } catch (e) {
        count('unknown', 'unknown', 'invalid');
        return sendError(res, 400, 'invalid_json', `body is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
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
      sendJson(res, 200, { accepted: 0, ignored: result.senderType ?? result.type });
      return;
    }

    const started = performance.now();
    try {
      await publisher.publish(result.events.map((e) => ({ key: eventKey(e), value: e })));
    } catch (e) {
      const err = toBridgeError(e, 'HSB_BUS_UNAVAILABLE');
      count(result.format, result.type, 'unavailable');
      deps.logger.error({ source: source.id, code: err.code, err: err.message }, 'webhook not acknowledged: bus unavailable');
      res.setHeader('Retry-After', RETRY_AFTER_SECONDS);
      return sendError(res, 503, 'bus_unavailable', 'the event could not be made durable; retry later');
    } finally {
      deps.metrics.publishSeconds.observe(EVENTS_TOPIC, (performance.now() - started) / 1000);
    }
    count(result.format, result.type, 'accepted');
    // Debug, not info: a line per webhook costs a write per webhook (about a sixth of the throughput
    // at full speed); accepted webhooks are counted in hsb_webhooks_total and their events are in the topic.
    if (deps.logger.isLevelEnabled('debug')) {
      deps.logger.debug({ source: source.id, type: result.type, events: result.events.map(logged) }, 'webhook accepted');
    }
    sendJson(res, 200, { accepted: result.events.length, ids: result.events.map((e) => e.id) });
  };

  // Express's router no longer holds these promises (not even on its own routes): an error is
  // answered here, and should answering fail too, the connection is dropped rather than the process.
  const serve = (kind: Kind, sourceId: string | undefined, req: IncomingMessage, res: ServerResponse): void => {
    handle(kind, sourceId, req, res).catch((err: unknown) => {
      try {
        answerError(err, pathOf(req), res, deps.logger);
      } catch {
        res.destroy();
      }
    });
  };
  return {
    take(req, res) {
      if (req.method !== 'POST') return false;
      const route = plainWebhookRoute(req.url ?? '');
      if (!route) return false;
      serve(route.kind, route.sourceId, req, res);
      return true;
    },
    mount(router) {
      router.post('/webhooks/harbor', (req, res) => serve('harbor', undefined, req, res));
      router.post('/webhooks/harbor/:sourceId', (req, res) => serve('harbor', req.params.sourceId, req, res));
      router.post('/webhooks/distribution/:sourceId', (req, res) => serve('distribution', req.params.sourceId, req, res));
    },
  };
}

// The literal segments in any case, as Express matches them; the id only in the characters a
// config id may have (so it needs no decoding); an optional trailing slash; any query.
const PLAIN_ROUTE = /^\/webhooks\/(?:(harbor)(?:\/([A-Za-z0-9._-]+))?|(distribution)\/([A-Za-z0-9._-]+))\/?(?:\?|$)/i;

/** The webhook route a request target names when it is spelt plainly; undefined for anything else (Express decides). */
export function plainWebhookRoute(url: string): { kind: Kind; sourceId: string | undefined } | undefined {
  const m = PLAIN_ROUTE.exec(url);
  if (!m) return undefined;
  return m[1] !== undefined ? { kind: 'harbor', sourceId: m[2] } : { kind: 'distribution', sourceId: m[4] };
}

/** A source without secrets takes every webhook only when the config says `insecure: true`. */
function authorisation(source: SourceConfig): (header: string | undefined) => boolean {
  if (source.webhookSecrets.length === 0) return () => source.insecure;
  return secretMatcher(source.webhookSecrets);
}

/** Only whitespace (or nothing): v1.10's "test endpoint" call. Stops at the first other byte. */
function isBlank(buf: Buffer): boolean {
  for (const b of buf) if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return false;
  return true;
}

/** UTF-8 text without a byte-order mark, which JSON.parse would reject. */
function textOf(buf: Buffer): string {
  const start = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  return buf.toString('utf8', start);
}

function mediaTypeOf(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

function logged(e: ArtifactEvent) {
  return { id: e.id, repository: e.repository, tag: e.tag, digest: e.digest };
}

interface Waiter {
  records: OutgoingRecord[];
  state: 'queued' | 'sent' | 'settled';
  /** performance.now() after which the webhook is answered 503. */
  deadline: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for webhooks: one publish to the bus at a time, and the events of every webhook
 * that arrives meanwhile go out together in the next one. Under load the groups grow instead of
 * a queue of one-record produce requests forming behind the producer (kafkajs sends one idempotent
 * request per broker at a time). A webhook whose deadline passes while still queued is dropped
 * from the queue, so a 503 for it can never be followed by its event reaching the bus. Once handed
 * to the bus it cannot be withdrawn: an unreachable broker makes the bus give up well before the
 * deadline, but a slow one may still write it after the 503 (Harbor's retry then carries the same
 * event id, so consumers drop the duplicate).
 *
 * Every webhook has the same time allowed, so deadlines fall in arrival order and one timer, set for
 * the oldest unanswered webhook, serves them all (a timer per webhook cost about 2% of the CPU per
 * webhook at full speed).
 */
class GroupPublisher {
  readonly #bus: Bus;
  readonly #maxRecords: number;
  readonly #deadlineMs: number;
  #queue: Waiter[] = [];
  /** The group the bus has, oldest first; empty when none is out. */
  #sent: Waiter[] = [];
  #scheduled = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(bus: Bus, maxRecords: number, deadlineMs: number) {
    this.#bus = bus;
    this.#maxRecords = maxRecords;
    this.#deadlineMs = deadlineMs;
  }

  /** Resolves once the bus acknowledged every record; rejects with HSB_BUS_TIMEOUT after the deadline. */
  publish(records: OutgoingRecord[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ records, state: 'queued', deadline: performance.now() + this.#deadlineMs, resolve, reject });
      this.#arm();
      this.#schedule();
    });
  }

  #timeout(w: Waiter): void {
    w.state = 'settled';
    w.reject(new BridgeError('HSB_BUS_TIMEOUT', `bus did not acknowledge within ${this.#deadlineMs} ms`, { retryable: true }));
  }

  /** Answers every webhook past its deadline: queued ones leave the queue (never sent), sent ones stay in their group, answered. */
  #expire(): void {
    const now = performance.now();
    for (const w of this.#sent) if (w.state === 'sent' && w.deadline <= now) this.#timeout(w);
    while (this.#queue.length > 0 && this.#queue[0]!.deadline <= now) this.#timeout(this.#queue.shift()!);
  }

  // Unref'd: an unanswered webhook's connection keeps the process up, the timer need not.
  #arm(): void {
    if (this.#timer !== undefined) return;
    const oldest = this.#sent.find((w) => w.state === 'sent') ?? this.#queue[0];
    if (oldest === undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#expire();
      this.#arm();
    }, Math.max(0, oldest.deadline - performance.now()));
    this.#timer.unref();
  }

  // On the next turn of the event loop, so that webhooks read in the same turn share a group.
  #schedule(): void {
    if (this.#sent.length > 0 || this.#scheduled || this.#queue.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#sent.length > 0 || this.#queue.length === 0) return;
    const group: Waiter[] = [];
    let count = 0;
    const now = performance.now();
    while (this.#queue.length > 0 && (group.length === 0 || count + this.#queue[0]!.records.length <= this.#maxRecords)) {
      const w = this.#queue.shift()!;
      // Past its deadline before the timer said so: answered, never sent.
      if (w.deadline <= now) {
        this.#timeout(w);
        continue;
      }
      w.state = 'sent';
      count += w.records.length;
      group.push(w);
    }
    if (group.length === 0) return;
    this.#sent = group;
    const settle = (error: unknown) => {
      for (const w of group) {
        if (w.state === 'settled') continue;
        w.state = 'settled';
        if (error === undefined) w.resolve();
        else w.reject(error);
      }
      this.#sent = [];
      // Under load (a full group waiting) the next group goes now; otherwise after this turn of the
      // event loop, so that webhooks still being read join it.
      if (this.#queue.length >= FULL_GROUP) this.#flush();
      else this.#schedule();
    };
    let sent: Promise<void>;
    try {
      const records: OutgoingRecord[] = [];
      for (const w of group) for (const r of w.records) records.push(r);
      sent = this.#bus.publish('events', records);
    } catch (e) {
      sent = Promise.reject(e);
    }
    sent.then(() => settle(undefined), (e: unknown) => settle(e ?? new Error('publish failed')));
  }
}
