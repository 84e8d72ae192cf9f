import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { isBridgeError } from '../errors.ts';
import { startBridge } from './bridge.ts';

const USAGE = `usage: harbor-swr-bridge <command> [--config FILE]

commands:
  run        ingest + API + workers in one process (default)
  serve      ingest + API only
  work       consumers only (planner and replicator)

options:
  --config FILE   YAML config (or BRIDGE_CONFIG); env overrides: KAFKA_BROKERS, PORT, LOG_LEVEL, DATA_DIR, TOPIC_PREFIX
`;

type Command = (args: { config: string; rest: string[]; flags: Record<string, string | boolean | undefined>; logger: Logger }) => Promise<number | 'running'>;

const daemon = (roles: { http: boolean; workers: boolean }): Command => async ({ config, logger }) => {
  const cfg = loadConfig(config);
  const bridge = await startBridge(cfg, logger, roles);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    bridge.stop().then(() => process.exit(0), (e) => { logger.error({ err: (e as Error).message }, 'unclean shutdown'); process.exit(1); });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  return 'running';
};

const COMMANDS: Record<string, Command> = {
  run: daemon({ http: true, workers: true }),
  serve: daemon({ http: true, workers: false }),
  work: daemon({ http: false, workers: true }),
};

export async function main(argv: string[]): Promise<number | 'running'> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [name = 'run', ...rest] = positionals;
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  const config = (values.config as string | undefined) ?? process.env.BRIDGE_CONFIG;
  if (!config) {
    process.stderr.write(`no config file: pass --config FILE or set BRIDGE_CONFIG\n\n${USAGE}`);
    return 2;
  }
  const logger = createLogger();
  return cmd({ config, rest, flags: values, logger });
}

main(process.argv.slice(2)).then(
  (code) => { if (code !== 'running') process.exit(code); },
  (e) => {
    process.stderr.write(`harbor-swr-bridge: ${isBridgeError(e) ? `${e.message}` : (e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
