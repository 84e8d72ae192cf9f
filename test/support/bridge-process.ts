// Runs the real CLI (`harbor-swr-bridge <command>`) as a child process with a config written to a
// temp file, the way users run it. Used by end-to-end and crash tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { freePort } from '../../scripts/kafka/broker.ts';

const ROOT = resolve(import.meta.dirname, '../..');
export const NODE = process.execPath;

export interface BridgeProcess {
  url: string;
  port: number;
  configFile: string;
  proc: ChildProcess;
  logs(): string;
  waitReady(timeoutMs?: number): Promise<void>;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
}

export function writeConfig(config: unknown, dir = mkdtempSync(join(tmpdir(), 'hsb-cfg-'))): string {
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

export async function startBridgeProcess(opts: { config: unknown; command?: string; env?: Record<string, string | undefined>; configFile?: string }): Promise<BridgeProcess> {
  const port = await freePort();
  const configFile = opts.configFile ?? writeConfig(opts.config);
  let out = '';
  // A key set to undefined in opts.env removes it from the child's environment.
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'info', ...opts.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const proc = spawn(NODE, [join(ROOT, 'src/cli/main.ts'), opts.command ?? 'run', '--config', configFile], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    url, port, configFile, proc,
    logs: () => out,
    waitReady: async (timeoutMs = 30000) => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (proc.exitCode !== null) throw new Error(`bridge exited with ${proc.exitCode}:\n${out}`);
        try {
          const r = await fetch(`${url}/readyz`);
          if (r.status === 200) return;
        } catch { /* not listening yet */ }
        await sleep(100);
      }
      throw new Error(`bridge not ready within ${timeoutMs} ms:\n${out.slice(-4000)}`);
    },
    waitForLog: async (pattern, timeoutMs = 30000) => {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(out)) {
        if (proc.exitCode !== null) throw new Error(`bridge exited with ${proc.exitCode}:\n${out}`);
        if (Date.now() > deadline) throw new Error(`no log line matching ${pattern} within ${timeoutMs} ms:\n${out.slice(-4000)}`);
        await sleep(50);
      }
    },
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** Polls `fn` until it returns a truthy value or the deadline passes. */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs: number, what: string, stepMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(stepMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
