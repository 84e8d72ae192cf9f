import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import type { Config } from '../config/schema.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { isBridgeError } from '../errors.ts';

// Each command imports its own modules when it runs: `copy` then starts without loading express,
// kafkajs, sqlite and the config stack (about 0.1 s of a no-op copy's 0.35 s).

const USAGE = `usage: harbor-swr-bridge <command> [--config FILE] [options]

daemons:
  run                      ingest + API + workers in one process (default)
  serve                    ingest + API only
  work                     consumers only (planner, replicator, scheduled reconcile); /metrics on METRICS_PORT
one-shot:
  sync [--dry-run]         one reconcile pass over every policy, copying what differs; exit 1 if anything failed
  policies import --harbor <sourceId> [--dry-run]
                           read Harbor's replication policies into the bridge
  dlq list [--json] [--target ID] [--policy ID] [--code CODE] [--limit N] [--offset N]
                           dead letters
  dlq replay --all | --id ID [--id ID ...]
                           re-publish dead letters as tasks
  status [--url URL] [--json] [--recent N] [--timeout MS]
                           recent outcomes, retries, DLQ, consumer lag (and in-flight tasks of a running bridge)
  bus inspect [--json]     topics, depths and group offsets of the configured bus
  check                    load and validate the config (no bus, no registry); where each target pushes
  copy <src-ref> <dst-ref> | copy --from-file LIST
                           copy images directly (no config needed); copy --help for options

Each command's --help lists all its options.
--config FILE (or BRIDGE_CONFIG). Environment overrides: KAFKA_BROKERS (set = Kafka, even over bus.kind: embedded;
unset = what bus says: Kafka with bus.brokers, else the embedded bus), PORT, LOG_LEVEL, DATA_DIR, TOPIC_PREFIX; METRICS_PORT (health and metrics of a work process).
`;

interface CommandArgs { argv: string[]; config: () => Promise<Config>; logger: Logger; configFile: string | undefined }
type Command = (a: CommandArgs) => Promise<number | 'running'>;

const daemon = (roles: { http: boolean; workers: boolean }): Command => async ({ config, logger }) => {
  const { startBridge } = await import('./bridge.ts');
  const bridge = await startBridge(await config(), logger, roles);
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

/**
 * The command's options, strictly: a mistyped flag (`sync --dryrun`) is a usage error (exit 2),
 * never a real run without it. `positionals` lists the words the command takes, in order.
 */
function strictArgs<O extends ParseArgsOptionsConfig>(argv: string[], options: O, positionals: readonly string[], usage: string) {
  const fail = (why: string): never => { throw usageError(why, usage); };
  let parsed: { values: ParsedValues<O>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: positionals.length > 0, strict: true }) as never;
  } catch (e) {
    return fail((e as Error).message);
  }
  if (parsed.positionals.join(' ') !== positionals.join(' ')) fail(`expected ${positionals.join(' ') || 'no arguments'}, got ${JSON.stringify(parsed.positionals.join(' '))}`);
  return parsed.values;
}
/** Printed by main without a stack trace, exit 2. */
function usageError(why: string, usage: string): Error {
  return Object.assign(new Error(`${why}\n\n${usage}`), { usage: true });
}
type ParsedValues<O extends ParseArgsOptionsConfig> = { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string };

const daemonCommand = (roles: { http: boolean; workers: boolean }): Command => async (a) => {
  strictArgs(a.argv, {}, [], USAGE);
  return daemon(roles)(a);
};

const POLICIES_USAGE = 'usage: harbor-swr-bridge policies import --harbor <sourceId> [--dry-run]';
const SYNC_USAGE = 'usage: harbor-swr-bridge sync [--dry-run]';
const BUS_USAGE = 'usage: harbor-swr-bridge bus inspect [--json]';
const CHECK_USAGE = 'usage: harbor-swr-bridge check --config FILE';

const COMMANDS: Record<string, Command> = {
  run: daemonCommand({ http: true, workers: true }),
  serve: daemonCommand({ http: true, workers: false }),
  work: daemonCommand({ http: false, workers: true }),
  sync: async ({ argv, config, logger }) => {
    const o = strictArgs(argv, { 'dry-run': { type: 'boolean' } }, [], SYNC_USAGE);
    return (await import('./sync.ts')).syncCommand({ config: await config(), dryRun: o['dry-run'] === true, logger });
  },
  policies: async ({ argv, config, logger }) => {
    const o = strictArgs(argv, { harbor: { type: 'string' }, 'dry-run': { type: 'boolean' } }, ['import'], POLICIES_USAGE);
    if (!o.harbor) throw usageError('--harbor <sourceId> is required', POLICIES_USAGE);
    return (await import('./policies.ts')).policiesImport({ config: await config(), sourceId: o.harbor, dryRun: o['dry-run'] === true, logger });
  },
  dlq: async ({ argv, config, logger }) => (await import('./dlq.ts')).dlqCommand({ config: await config(), args: argv, logger }),
  status: async ({ argv, config, logger }) => (await import('./status.ts')).statusCommand({ config: await config(), args: argv, logger }),
  bus: async ({ argv, config, logger }) => {
    strictArgs(argv, { json: { type: 'boolean' } }, ['inspect'], BUS_USAGE);
    return (await import('./bus.ts')).busCommand({ config: await config(), args: argv, logger });
  },
  copy: async ({ argv, logger }) => (await import('./copy.ts')).copyCommand({ rest: argv, flags: {}, logger }),
  check: async ({ argv, config, configFile }) => {
    strictArgs(argv, {}, [], CHECK_USAGE);
    return (await import('./check.ts')).checkCommand({ config: await config(), file: configFile ?? '' });
  },
};

const DAEMONS = new Set(['run', 'serve', 'work']);
const BUS_ONLY = new Set(['status', 'bus', 'dlq']);

/** `<command> --help`: that command's usage on stdout, before any config is read. */
const HELP: Record<string, () => Promise<string>> = {
  run: async () => USAGE,
  serve: async () => USAGE,
  work: async () => USAGE,
  sync: async () => SYNC_USAGE,
  policies: async () => POLICIES_USAGE,
  dlq: async () => (await import('./dlq.ts')).DLQ_USAGE,
  status: async () => (await import('./status.ts')).STATUS_USAGE,
  bus: async () => BUS_USAGE,
  check: async () => CHECK_USAGE,
};

export async function main(argv: string[]): Promise<number | 'running'> {
  const args = [...argv];
  let configFile = process.env.BRIDGE_CONFIG;
  // The last one wins (`npm start -- --config mine.yaml` after the script's own --config).
  for (let i = 0; i < args.length;) {
    const a = args[i]!;
    if (a === '--config' || a === '-c') configFile = args.splice(i, 2)[1];
    else if (a.startsWith('--config=')) configFile = args.splice(i, 1)[0]!.slice('--config='.length);
    else i++;
  }
  if (args[0] === '--help' || args[0] === '-h' || args[0] === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const name = args[0] && !args[0].startsWith('-') ? args.shift()! : 'run';
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  const help = HELP[name];
  if (help && (args.includes('--help') || args.includes('-h'))) {
    const text = await help();
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    return 0;
  }
  const level = process.env.LOG_LEVEL;
  if (level !== undefined && level !== '' && !LOG_LEVELS.includes(level)) {
    process.stderr.write(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${level.slice(0, 40)}")\n`);
    return 2;
  }
  // Daemons log to stdout; one-shot commands keep stdout for their output and log to stderr.
  const logger = DAEMONS.has(name) ? createLogger(level || 'info') : createLogger(level || 'warn', process.stderr);
  const config = async () => {
    if (!configFile) throw Object.assign(new Error(`no config file: pass --config FILE or set BRIDGE_CONFIG\n\n${USAGE}`), { usage: true });
    // Commands that only read the bus run without the registries' secrets in the environment.
    const notes: string[] = [];
    const loaded = (await import('../config/load.ts')).loadConfig(configFile, process.env, { lenientSecrets: BUS_ONLY.has(name), collectNotes: notes });
    for (const note of notes) logger.warn(note);
    return loaded;
  };
  return cmd({ argv: args, config, logger, configFile });
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

main(process.argv.slice(2)).then(
  (code) => { if (code !== 'running') process.exit(code); },
  (e) => {
    process.stderr.write(`harbor-swr-bridge: ${isBridgeError(e) || (e as { usage?: boolean }).usage ? (e as Error).message : (e as Error).stack ?? String(e)}\n`);
    process.exit((e as { usage?: boolean }).usage ? 2 : 1);
  },
);
