// One CNCF distribution registry per storage root on a random loopback port, tuned alike for every
// tool: no auth, no access log, warnings only. Reports the registry's own CPU seconds so the table
// can tell tool cost from registry cost on a 2-core machine. Which build runs is the caller's
// choice (run.sh: distribution v3 built with the current Go, or Debian's docker-registry).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { freePort } from '../../test/support/registry.ts';

export interface BenchRegistry {
  host: string;
  url: string;
  root: string;
  /** user+system CPU seconds the registry process has used so far. */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

const CLK_TCK = 100;

async function procCpu(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
}

export async function startBenchRegistry(bin: string, root: string, confDir: string): Promise<BenchRegistry> {
  await mkdir(root, { recursive: true });
  await mkdir(confDir, { recursive: true });
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const configFile = join(confDir, `registry-${port}.yml`);
    await writeFile(configFile, `version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: ${host}
  secret: ${randomBytes(16).toString('hex')}
`);
    const child: ChildProcess = spawn(bin, ['serve', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let logs = '';
    child.stderr!.on('data', (b: Buffer) => { logs = (logs + b.toString()).slice(-20000); });
    const url = `http://${host}`;
    const deadline = Date.now() + 15000;
    let ready = false;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        const res = await fetch(`${url}/v2/`);
        await res.arrayBuffer();
        if (res.status === 200) { ready = true; break; }
      } catch { /* not yet listening */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!ready) {
      child.kill('SIGKILL');
      if (attempt < 3 && /address already in use/.test(logs)) continue;
      throw new Error(`${bin} on ${host} did not start:\n${logs}`);
    }
    return {
      host, url, root,
      cpuSeconds: () => procCpu(child.pid!),
      async stop() {
        if (child.exitCode !== null) return;
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      },
    };
  }
}
