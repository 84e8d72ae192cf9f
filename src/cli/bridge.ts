import { accessSync, constants, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { BridgeError } from '../errors.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { createMetrics, type Metrics } from '../observability/metrics.ts';
import { startQueueMetrics } from '../observability/queue-metrics.ts';
import type { Bus } from '../bus/port.ts';
import { createBus } from '../bus/create.ts';
import { busSecurityWarnings, kafkaSecurityLabel } from '../bus/kafka/security.ts';
import { createApp } from '../http/app.ts';
import { PolicyTable } from '../policy/table.ts';
import { PolicyStore } from '../policy/store.ts';
import { policyRouter } from '../policy/routes.ts';
import { PolicyScheduler } from '../policy/scheduler.ts';
import { Planner, PLANNER_GROUP } from '../policy/planner.ts';
import { Replicator, REPLICATOR_GROUP, retryGroupOf } from '../replication/replicator.ts';
import { Endpoints } from '../replication/endpoints.ts';
import { ResultsStore } from '../replication/results-store.ts';
import { DlqStore } from '../replication/dlq-store.ts';
import { replicationRouter } from '../replication/routes.ts';
import { Reconciler } from '../replication/reconciler.ts';

export interface BridgeRoles {
  http: boolean;
  workers: boolean;
}

export interface RunningBridge {
  port: number;
  bus: Bus;
  metrics: Metrics;
  stop(): Promise<void>;
}

function checkDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new BridgeError('HSB_CONFIG_INVALID', `bus.dataDir (DATA_DIR) ${dir}: the embedded bus cannot use this directory (${code})`, { context: { dataDir: dir } });
  }
}

/** Retries `fn` with capped backoff until it succeeds or `signal` aborts. */
async function untilDone(what: string, fn: () => Promise<void>, signal: AbortSignal, logger: Logger): Promise<void> {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      await fn();
      return;
    } catch (e) {
      logger.error({ err: (e as Error).message, code: (e as { code?: unknown }).code, attempt }, `${what} failed; retrying`);
      await sleep(Math.min(10000, 500 * 2 ** attempt), undefined, { signal }).catch(() => undefined);
    }
  }
}

/**
 * Start order: HTTP (so /livez answers and /readyz says 503 while the bus connects), bus,
 * policies, then consumers. Stop in reverse: stop taking webhooks, drain consumers, close the bus.
 */
export async function startBridge(config: Config, logger: Logger, roles: BridgeRoles): Promise<RunningBridge> {
  // A directory the embedded bus cannot use is a configuration error, not an outage to retry.
  if (config.bus.kind === 'embedded') checkDataDir(config.bus.dataDir);
  const metrics = createMetrics(undefined, { defaults: true });
  const bus = createBus(config, logger, { daemon: true });
  // The prefix names Kafka topics and groups; the embedded bus's data dir is its own namespace.
  logger.info({ bus: bus.kind, ...(config.bus.kind === 'kafka' ? { brokers: config.bus.brokers, topicPrefix: config.bus.topicPrefix, security: kafkaSecurityLabel(config.bus) } : { dataDir: config.bus.dataDir }) }, `using the ${bus.kind === 'kafka' ? 'Kafka' : 'embedded (node:sqlite)'} bus`);
  for (const w of busSecurityWarnings(config.bus)) logger.warn({ bus: config.bus.kind }, w);
  for (const s of config.sources) {
    if (s.webhookSecrets.length === 0 && s.insecure) logger.warn({ source: s.id }, 'INSECURE: this source accepts webhooks without any Authorization check');
  }
  for (const x of [...config.sources, ...config.targets]) {
    if (x.tls.insecure) logger.warn({ registry: x.id }, 'TLS certificate verification is OFF for this registry');
  }
  // The policy table is built from the compacted `policies` topic (config policies are seeded into it).
  const policies = new PolicyTable();
  const policyStore = new PolicyStore({ bus, table: policies, logger });
  const endpoints = new Endpoints(config, logger);
  const planner = new Planner({ config, bus, policies, metrics, logger });
  const replicator = new Replicator({ config, bus, endpoints, metrics, logger, policies });
  const reconciler = new Reconciler({ config, endpoints, logger, metrics, table: policies });
  const scheduler = new PolicyScheduler({ table: policies, logger, onFire: async (policy) => { await reconciler.reconcileAndPublish(policy, bus); } });
  const results = new ResultsStore({ bus, logger });
  const dlq = new DlqStore({ bus, logger });

  let server: Server | undefined;
  let port = 0;
  // `work` answers no webhooks, but a platform still probes and scrapes it: health and metrics only.
  const opsPort = roles.http ? config.server.port : config.worker.metricsPort;
  if (opsPort !== undefined) {
    const app = createApp(roles.http
      ? {
        config, bus, metrics, logger,
        api: [
          policyRouter({ store: policyStore, table: policies, config }),
          replicationRouter({ results, dlq, progress: () => replicator.progress.list(), bus, replicatorGroup: REPLICATOR_GROUP }),
        ],
      }
      : { config, bus, metrics, logger, ingest: false });
    server = createServer(app);
    server.keepAliveTimeout = 65000;
    await new Promise<void>((res, rej) => {
      server!.once('error', (e: NodeJS.ErrnoException) => rej(new BridgeError('HSB_LISTEN_FAILED',
        `cannot listen on ${config.server.host}:${opsPort} (${roles.http ? 'server.host, server.port / PORT' : 'server.host, worker.metricsPort / METRICS_PORT'}): ${e.code ?? e.message}`,
        { context: { host: config.server.host, port: opsPort }, cause: e })));
      server!.listen(opsPort, config.server.host, () => res());
    });
    port = (server.address() as { port: number }).port;
    logger.info({ port, ...(roles.http ? {} : { serves: 'livez, readyz, metrics' }) }, 'listening');
  }

  const stopping = new AbortController();
  // A `work` process on the embedded bus may hold no socket and no partition at all: keep it alive.
  const keepAlive = setInterval(() => undefined, 60_000);
  let stopQueueMetrics = () => undefined as void;
  // Every role (a `serve` process's queue gauges would otherwise read 0 beside a full DLQ); in a
  // worker once its consumers have joined their groups, so that the first sample has their lag.
  const sampleQueues = () => {
    stopQueueMetrics = startQueueMetrics(bus, metrics, logger, [PLANNER_GROUP, REPLICATOR_GROUP, retryGroupOf(REPLICATOR_GROUP)], 15000,
      async () => (await dlq.list({ limit: 0 })).total);
  };
  // 0 until the first connect: a bridge that never reaches its bus (brokers down, a refused login,
  // a failed handshake) must show it to the HarborSwrBridgeBusDown alert, not export no sample.
  metrics.busUp.set({ kind: bus.kind }, 0);
  const started = (async () => {
    await untilDone('bus connection', async () => {
      await bus.connect();
      metrics.busUp.set({ kind: bus.kind }, 1);
      logger.info({ bus: bus.kind }, 'bus connected');
    }, stopping.signal, logger);
    await untilDone('loading policies', async () => {
      await policyStore.seed(config.policies);
      await policyStore.start();
    }, stopping.signal, logger);
    if (roles.http && !stopping.signal.aborted) await untilDone('results view', () => results.start(), stopping.signal, logger);
    if (roles.workers && !stopping.signal.aborted) {
      // Retried like the bus connection: a worker whose consumers never started must not look healthy and idle.
      await untilDone('starting the planner', () => planner.start(), stopping.signal, logger);
      await untilDone('starting the replicator', () => replicator.start(), stopping.signal, logger);
      if (stopping.signal.aborted) return;
      sampleQueues();
      scheduler.start();
      // On start, one reconcile pass heals whatever was missed while nothing was running.
      // A policy whose pass failed (an outage at start) is passed again until it succeeds.
      void reconciler.startupPass(policies, bus, stopping.signal)
        .then((first) => reconciler.retryFailed(first, policies, bus, stopping.signal))
        .catch((e) => logger.warn({ err: (e as Error).message }, 'start-up reconcile failed'));
      logger.info({ concurrency: config.worker.concurrency, policies: policies.list().length }, 'workers started');
    }
    else if (!stopping.signal.aborted) sampleQueues();
  })();
  started.catch((e) => logger.error({ err: (e as Error).message }, 'start-up failed'));

  return {
    port,
    bus,
    metrics,
    stop: async () => {
      stopping.abort();
      clearInterval(keepAlive);
      stopQueueMetrics();
      if (server) await new Promise<void>((r) => { server!.close(() => r()); server!.closeIdleConnections(); });
      await started.catch(() => undefined);
      if (roles.workers) {
        await scheduler.stop();
        await replicator.stop();
        await planner.stop();
      }
      await results.stop();
      await policyStore.stop();
      await bus.close();
      await endpoints.close();
      logger.info('stopped');
    },
  };
}
