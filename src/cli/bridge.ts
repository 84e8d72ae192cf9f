import { createServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { createMetrics, type Metrics } from '../observability/metrics.ts';
import type { Bus } from '../bus/port.ts';
import { createBus } from '../bus/create.ts';
import { createApp } from '../http/app.ts';
import { PolicyTable } from '../policy/table.ts';
import { Planner } from '../policy/planner.ts';
import { Replicator } from '../replication/replicator.ts';
import { Endpoints } from '../replication/endpoints.ts';

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

/**
 * Start order: HTTP (so /livez answers and /readyz says 503 while the bus connects), bus, then
 * consumers. Stop in reverse: stop taking webhooks, drain consumers, close the bus.
 */
export async function startBridge(config: Config, logger: Logger, roles: BridgeRoles): Promise<RunningBridge> {
  const metrics = createMetrics(undefined, { defaults: true });
  const bus = createBus(config, logger);
  logger.info({ bus: bus.kind, ...(config.bus.kind === 'kafka' ? { brokers: config.bus.brokers } : { dataDir: config.bus.dataDir }), topicPrefix: config.bus.topicPrefix }, `using the ${bus.kind === 'kafka' ? 'Kafka' : 'embedded (node:sqlite)'} bus`);
  for (const s of config.sources) {
    if (s.webhookSecrets.length === 0 && s.insecure) logger.warn({ source: s.id }, 'INSECURE: this source accepts webhooks without any Authorization check');
  }
  for (const x of [...config.sources, ...config.targets]) {
    if (x.tls.insecure) logger.warn({ registry: x.id }, 'TLS certificate verification is OFF for this registry');
  }
  const policies = new PolicyTable(config.policies);
  const endpoints = new Endpoints(config, logger);
  const planner = new Planner({ config, bus, policies, metrics, logger });
  const replicator = new Replicator({ config, bus, endpoints, metrics, logger });

  let server: Server | undefined;
  let port = 0;
  if (roles.http) {
    const app = createApp({ config, bus, metrics, logger });
    server = createServer(app);
    server.keepAliveTimeout = 65000;
    await new Promise<void>((res, rej) => {
      server!.once('error', rej);
      server!.listen(config.server.port, config.server.host, () => res());
    });
    port = (server.address() as { port: number }).port;
    logger.info({ port }, 'listening');
  }

  const stopping = new AbortController();
  // A `work` process on the embedded bus may hold no socket and no partition at all: keep it alive.
  const keepAlive = setInterval(() => undefined, 60_000);
  const started = (async () => {
    for (let attempt = 0; !stopping.signal.aborted; attempt++) {
      try {
        await bus.connect();
        metrics.busUp.set({ kind: bus.kind }, 1);
        logger.info({ bus: bus.kind }, 'bus connected');
        break;
      } catch (e) {
        logger.error({ err: (e as Error).message, attempt }, 'bus connection failed; retrying');
        await sleep(Math.min(10000, 500 * 2 ** attempt));
      }
    }
    if (roles.workers && !stopping.signal.aborted) {
      await planner.start();
      await replicator.start();
      logger.info({ concurrency: config.worker.concurrency }, 'workers started');
    }
  })();
  started.catch((e) => logger.error({ err: (e as Error).message }, 'start-up failed'));

  return {
    port,
    bus,
    metrics,
    stop: async () => {
      stopping.abort();
      clearInterval(keepAlive);
      if (server) await new Promise<void>((r) => { server!.close(() => r()); server!.closeIdleConnections(); });
      await started.catch(() => undefined);
      if (roles.workers) {
        await replicator.stop();
        await planner.stop();
      }
      await bus.close();
      await endpoints.close();
      logger.info('stopped');
    },
  };
}
