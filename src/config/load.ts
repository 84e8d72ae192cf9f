import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { BridgeError } from '../errors.ts';
import { ConfigSchema, type Config } from './schema.ts';
import { isSecretIssue, withSecretEnv } from './secret.ts';
import { registerSecrets } from '../observability/scrub.ts';

/**
 * Render zod issues as `file: field.path: message` lines. Given the raw config, an issue at a field
 * whose value holds `${...}` says that only secrets are expanded (a URL written as `${TARGET_URL}`
 * is otherwise refused as just "Invalid URL").
 */
export function formatIssues(file: string, issues: z.core.$ZodIssue[], raw?: unknown): string {
  return issues.map((i) => `${file}: ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}${referenceHint(raw, i)}`).join('\n');
}

function referenceHint(raw: unknown, issue: z.core.$ZodIssue): string {
  if (raw === undefined || isSecretIssue(issue)) return '';
  let v: unknown = raw;
  for (const key of issue.path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[key as PropertyKey] : undefined;
  return typeof v === 'string' && /\$\{[A-Za-z_]/.test(v)
    ? ' (${...} is expanded only in secret fields: passwords, keys, webhook secrets and API tokens; write this value out)'
    : '';
}

/** Env overrides from DESIGN.md: KAFKA_BROKERS, PORT, DATA_DIR, TOPIC_PREFIX; and METRICS_PORT for `work`. */
export function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(raw);
  // A section that is not a mapping (`bus: kafka`) is left alone for the schema to report at its field.
  const section = (name: string): Record<string, unknown> => {
    const v = out[name];
    if (v === undefined || v === null) return (out[name] = {}) as Record<string, unknown>;
    return typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : {};
  };
  const server = section('server');
  const bus = section('bus');
  if (env.METRICS_PORT !== undefined && env.METRICS_PORT.trim() !== '') section('worker').metricsPort = envPort('METRICS_PORT', env.METRICS_PORT);
  if (env.PORT !== undefined && env.PORT.trim() !== '') server.port = envPort('PORT', env.PORT);
  if (env.KAFKA_BROKERS) {
    bus.kind = 'kafka';
    bus.brokers = env.KAFKA_BROKERS.split(',').map((s) => s.trim()).filter(Boolean);
  }
  if (env.DATA_DIR) bus.dataDir = env.DATA_DIR;
  // Empty counts as unset, as for every other variable (a compose file's unset ${TOPIC_PREFIX}); `bus.topicPrefix: ""` in the file still means none.
  if (env.TOPIC_PREFIX) bus.topicPrefix = env.TOPIC_PREFIX;
  return out;
}

/**
 * The overrides that contradict what the file says outright rather than fill in for it:
 * KAFKA_BROKERS beside `bus.kind: embedded` (documented, but easy to forget in a shell or unit file).
 */
export function envOverrideNotes(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, file: string): string[] {
  const bus = raw.bus;
  const kind = bus !== null && typeof bus === 'object' ? (bus as Record<string, unknown>).kind : undefined;
  if (!env.KAFKA_BROKERS || kind !== 'embedded') return [];
  return [`KAFKA_BROKERS is set in the environment, so the bridge uses Kafka (${env.KAFKA_BROKERS.trim()}) although ${file} says bus.kind: embedded; unset KAFKA_BROKERS to use the embedded bus`];
}

/** A port from the environment, refused under its own name (the config file may not even have the field). */
function envPort(name: string, value: string): number {
  const n = Number(value.trim());
  if (/^\d+$/.test(value.trim()) && n <= 65535) return n;
  throw new BridgeError('HSB_CONFIG_INVALID', `invalid configuration\n${name} (environment): must be an integer from 0 to 65535, got ${JSON.stringify(value.slice(0, 40))}`, { context: { env: name } });
}

/** `lenientSecrets`: a secret that cannot be resolved loads as UNRESOLVED_SECRET instead of failing (bus-only commands). */
export interface ParseOptions {
  lenientSecrets?: boolean;
  /** Receives every credential the parse resolved (loadConfig registers them for scrubbing). */
  collectSecrets?: string[];
  /** Receives what the environment changed against the file's explicit word, for the caller to log. */
  collectNotes?: string[];
}

export function parseConfig(raw: unknown, file = '<config>', env: NodeJS.ProcessEnv = process.env, opts: ParseOptions = {}): Config {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new BridgeError('HSB_CONFIG_INVALID', `${file}: (root): expected a YAML mapping`, { context: { file } });
  }
  const input = applyEnv(raw as Record<string, unknown>, env);
  opts.collectNotes?.push(...envOverrideNotes(raw as Record<string, unknown>, env, file));
  const result = withSecretEnv(env, () => ConfigSchema.safeParse(input), { lenient: opts.lenientSecrets === true, collect: opts.collectSecrets });
  if (!result.success) {
    throw new BridgeError('HSB_CONFIG_INVALID', `invalid configuration\n${formatIssues(file, result.error.issues, input)}`, { context: { file } });
  }
  const cfg = result.data;
  cfg.bus.kind ??= cfg.bus.brokers.length ? 'kafka' : 'embedded';
  if (cfg.bus.kind === 'kafka' && cfg.bus.brokers.length === 0) {
    throw new BridgeError('HSB_CONFIG_INVALID', `invalid configuration\n${file}: bus.brokers: kafka needs at least one broker (or set KAFKA_BROKERS)`, { context: { file } });
  }
  return deepFreeze(cfg);
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env, opts: ParseOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new BridgeError('HSB_CONFIG_INVALID', `${file}: cannot read config file (${(e as NodeJS.ErrnoException).code}${whereRead(file, env)})`, { context: { file } });
  }
  const secrets: string[] = [];
  const config = parseConfig(parseYamlQuietly(text, file), file, env, { ...opts, collectSecrets: secrets });
  // This process's credentials never appear in an error message from here on (see observability/scrub.ts).
  registerSecrets(secrets);
  return config;
}

/**
 * Where a relative path was looked for. `npm start -- --config my.yaml` runs from the package's
 * directory, not the one npm was started in (INIT_CWD), so a file beside the user is not found.
 */
function whereRead(file: string, env: NodeJS.ProcessEnv): string {
  if (isAbsolute(file)) return '';
  const from = env.INIT_CWD && resolve(env.INIT_CWD) !== process.cwd()
    ? `; npm runs the bridge from ${process.cwd()}, not ${env.INIT_CWD}: give the config's absolute path`
    : '';
  return `: looked for ${resolve(file)}${from}`;
}

/**
 * The file's YAML, or an error giving position and kind only: the parser's messages quote the
 * offending line, which may hold a secret. Warnings (an unresolved tag such as `!vault`) are
 * refused too, and never printed: left to the parser, they go to stderr with the line, and the
 * tagged value would load as a plain string.
 */
function parseYamlQuietly(text: string, file: string): unknown {
  const refuse = (what: string, e: unknown) => new BridgeError('HSB_CONFIG_INVALID', `${file}: ${what}${yamlPosition(e)}`, { context: { file } });
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { logLevel: 'silent' });
  } catch (e) {
    throw refuse('not valid YAML', e);
  }
  if (doc.errors.length > 0) throw refuse('not valid YAML', doc.errors[0]);
  if (doc.warnings.length > 0) throw refuse('YAML the bridge does not load', doc.warnings[0]);
  try {
    return doc.toJS();
  } catch (e) {
    throw refuse('not valid YAML', e);
  }
}

function yamlPosition(e: unknown): string {
  const { code, linePos } = e as { code?: string; linePos?: { line: number; col: number }[] };
  const at = linePos?.[0] ? ` at line ${linePos[0].line}, column ${linePos[0].col}` : '';
  return `${at}${code ? ` (${code})` : ''}`;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
