import { readFileSync } from 'node:fs';
import { z } from 'zod';

// Secrets may be written inline, as `${ENV}` / `${ENV:-default}` references, or as
// `file:/path`. Resolution happens while parsing so a missing one is reported at its field.
export function resolveSecret(raw: string, env: NodeJS.ProcessEnv = process.env): { ok: true; value: string } | { ok: false; error: string } {
  if (raw.startsWith('file:')) {
    const path = raw.slice('file:'.length);
    try {
      return { ok: true, value: readFileSync(path, 'utf8').replace(/\r?\n$/, '') };
    } catch (e) {
      return { ok: false, error: `cannot read secret file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}` };
    }
  }
  const missing: string[] = [];
  // `${NAME}` or `${NAME:-default}` as in shells.
  const value = raw.replace(REFERENCE, (_m, name: string, dflt: string | undefined) => {
    const v = expand(env[name], dflt);
    if (v === undefined) missing.push(name);
    return v ?? '';
  });
  if (missing.length) return { ok: false, error: `environment variable ${missing.join(', ')} is not set` };
  return { ok: true, value };
}

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Why a secret came out empty, naming the file or the variables (set empty, or unset with an empty default). */
export function emptySecretMessage(raw: string): string {
  if (raw.startsWith('file:')) return `secret file ${raw.slice('file:'.length)} is empty`;
  const refs = [...raw.matchAll(REFERENCE)].map((m) => `\${${m[1]}}`);
  if (refs.length === 0) return 'secret is empty';
  return `secret resolves to an empty string: ${refs.join(', ')} ${refs.length === 1 ? 'expands' : 'expand'} to nothing`;
}

/**
 * A reference's value: `${NAME:-default}` takes the default when NAME is unset or empty (as a shell's
 * `:-`, and what a compose file passes for an unset variable); plain `${NAME}` takes NAME as set, even empty.
 */
function expand(value: string | undefined, dflt: string | undefined): string | undefined {
  return dflt !== undefined && !value ? dflt : value;
}

/**
 * What a secret that could not be resolved becomes for a command that reads the config for its
 * bus only (status, bus inspect, dlq): they must not need every registry's password to run.
 */
export const UNRESOLVED_SECRET = '\u0000unresolved secret';

// The environment secrets resolve against while a config is parsed (parsing is synchronous).
let parseEnv: NodeJS.ProcessEnv = process.env;
let lenient = false;
/** Where the parse in progress puts every secret value it resolved (see collectSecret). */
let collected: string[] | undefined;
export function withSecretEnv<T>(env: NodeJS.ProcessEnv, fn: () => T, opts: { lenient?: boolean; collect?: string[] } = {}): T {
  const [prevEnv, prevLenient, prevCollected] = [parseEnv, lenient, collected];
  parseEnv = env;
  lenient = opts.lenient === true;
  collected = opts.collect;
  try {
    return fn();
  } finally {
    [parseEnv, lenient, collected] = [prevEnv, prevLenient, prevCollected];
  }
}

/** Records a credential (or a form of one, such as a Basic header's) for the parse that asked for them. */
export function collectSecret(value: string): void {
  if (value !== UNRESOLVED_SECRET) collected?.push(value);
}

/** A zod string that resolves secret references and never echoes the value in errors. */
export const secretString = secretOf({ mayBeLenient: true });

/**
 * The same for a secret that the bus-only commands (status, bus inspect, dlq) use themselves, the
 * Kafka password: resolved even when the other secrets are read leniently, so that an unset
 * variable is reported at its field rather than sent to the broker as a wrong password.
 */
export const busSecretString = secretOf({ mayBeLenient: false });

/** Marks the issues a secret field raises, whose `${...}` was expanded (see config/load.ts formatIssues). */
const SECRET_ISSUE = { secret: true } as const;

export function isSecretIssue(issue: { code: string; params?: Record<string, unknown> }): boolean {
  return issue.code === 'custom' && issue.params?.secret === true;
}

function secretOf(opts: { mayBeLenient: boolean }) {
  return z.string().min(1).transform((raw, ctx) => {
    const r = resolveSecret(raw, parseEnv);
    // An unset variable, or one set empty (what a compose file passes for an unset one).
    if (opts.mayBeLenient && lenient && (!r.ok || r.value.length === 0)) return UNRESOLVED_SECRET;
    if (!r.ok) {
      ctx.addIssue({ code: 'custom', message: r.error, params: SECRET_ISSUE });
      return z.NEVER;
    }
    if (r.value.length === 0) {
      ctx.addIssue({ code: 'custom', message: emptySecretMessage(raw), params: SECRET_ISSUE });
      return z.NEVER;
    }
    collectSecret(r.value);
    return r.value;
  });
}
