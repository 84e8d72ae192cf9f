// The four copy tools, each configured for plain-HTTP loopback registries and the same number of
// parallel jobs where it has such a knob. Each returns the command line that copies the whole
// corpus in one process; the benchmark runs it twice (full copy, then the no-op run).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Corpus } from './corpus.ts';

const run = promisify(execFile);

export interface ToolContext {
  root: string;       // repository root
  bin: string;        // bench/copy/out/bin
  dir: string;        // scratch dir for this tool's config and logs
  src: string;        // source host:port
  dst: string;        // target host:port
  corpus: Corpus;
  jobs: number;
}

export interface Tool {
  name: string;
  /** Version string, or why the tool cannot run (shown in the table instead of figures). */
  probe(ctx: Pick<ToolContext, 'root' | 'bin'>): Promise<{ version: string } | { missing: string }>;
  command(ctx: ToolContext): Promise<{ argv: string[]; env?: Record<string, string>; config: string }>;
}

const repos = (c: Corpus) => [...new Set(c.tags.map((t) => t.repo))];

async function version(argv: string[], pick: (out: string) => string | undefined): Promise<string | undefined> {
  try {
    const { stdout, stderr } = await run(argv[0]!, argv.slice(1), { timeout: 20000 });
    return pick(stdout + stderr);
  } catch (e) {
    const o = e as { stdout?: string; stderr?: string };
    return o.stdout || o.stderr ? pick(`${o.stdout ?? ''}${o.stderr ?? ''}`) : undefined;
  }
}

export const bridge: Tool = {
  name: 'harbor-swr-bridge',
  async probe({ root }) {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    return { version: `${pkg.version}, Node ${process.versions.node}, bin/harbor-swr-bridge.js copy` };
  },
  async command(ctx) {
    const list = join(ctx.dir, 'copy-list.txt');
    await writeFile(list, ctx.corpus.tags.map((t) => `${ctx.src}/${t.repo}:${t.tag} ${ctx.dst}/${t.repo}:${t.tag}`).join('\n') + '\n');
    const entry = join(ctx.root, 'bin/harbor-swr-bridge.js');
    return {
      // The flags the binary's shebang and `npm start` give Node.
      argv: [process.execPath, '--no-warnings', entry, 'copy', '--from-file', list, '--jobs', String(ctx.jobs)],
      env: { LOG_LEVEL: 'warn' },
      config: `copy --from-file (${ctx.corpus.tags.length} lines) --jobs ${ctx.jobs}`,
    };
  },
};

export const skopeo: Tool = {
  name: 'skopeo sync',
  async probe() {
    const v = await version(['skopeo', '--version'], (o) => /skopeo version (\S+)/.exec(o)?.[1]);
    return v ? { version: v } : { missing: 'skopeo not installed (apt-get install skopeo)' };
  },
  async command(ctx) {
    // One process for the corpus: a YAML source lists every repository and tag.
    const yaml = join(ctx.dir, 'skopeo-sync.yaml');
    const images = repos(ctx.corpus).map((r) => `    ${r}: [${ctx.corpus.tags.filter((t) => t.repo === r).map((t) => JSON.stringify(t.tag)).join(', ')}]`);
    await writeFile(yaml, `${ctx.src}:\n  tls-verify: false\n  images:\n${images.join('\n')}\n`);
    return {
      argv: ['skopeo', '--insecure-policy', 'sync', '--all', '--preserve-digests', '--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', yaml, ctx.dst],
      config: 'sync --all --preserve-digests --src yaml --dest docker (images one after another; no parallelism knob)',
    };
  },
};

export const imageSyncer: Tool = {
  name: 'image-syncer',
  async probe({ bin }) {
    const exe = join(bin, 'image-syncer');
    if (!existsSync(exe)) return { missing: 'not installed (go install failed: see run.sh output)' };
    const info = await version(['go', 'version', '-m', exe], (o) => /\tmod\t\S+\t(\S+)/.exec(o)?.[1]);
    const src = existsSync(join(bin, 'image-syncer.source')) ? readFileSync(join(bin, 'image-syncer.source'), 'utf8').trim() : '';
    return { version: src || info || 'unknown' };
  },
  async command(ctx) {
    const auth = join(ctx.dir, 'auth.yaml');
    const images = join(ctx.dir, 'images.yaml');
    // `insecure: true` makes containers/image fall back to plain HTTP.
    await writeFile(auth, `${ctx.src}:\n  insecure: true\n${ctx.dst}:\n  insecure: true\n`);
    await writeFile(images, repos(ctx.corpus).map((r) => `${ctx.src}/${r}: ${ctx.dst}/${r}`).join('\n') + '\n');
    return {
      argv: [join(ctx.bin, 'image-syncer'), '--auth', auth, '--images', images, '--proc', String(ctx.jobs), '--log', join(ctx.dir, 'image-syncer.log')],
      config: `--proc ${ctx.jobs}, auth insecure: true, one rule per repository (all tags)`,
    };
  },
};

export const regsync: Tool = {
  name: 'regsync',
  async probe({ bin }) {
    const exe = join(bin, 'regsync');
    if (!existsSync(exe)) return { missing: 'not installed (go install failed: see run.sh output)' };
    const v = await version([exe, 'version'], (o) => /VCSTag:\s+(\S+)/.exec(o)?.[1]);
    return { version: v ?? 'unknown' };
  },
  async command(ctx) {
    const cfg = join(ctx.dir, 'regsync.yml');
    const host = (h: string) => `  - registry: ${h}\n    tls: disabled\n    reqConcurrent: ${ctx.jobs}\n`;
    await writeFile(cfg, `version: 1\ncreds:\n${host(ctx.src)}${host(ctx.dst)}defaults:\n  skipDockerConfig: true\nsync:\n${
      repos(ctx.corpus).map((r) => `  - source: ${ctx.src}/${r}\n    target: ${ctx.dst}/${r}\n    type: repository\n`).join('')}`);
    return {
      argv: [join(ctx.bin, 'regsync'), 'once', '-c', cfg, '-v', 'warn'],
      config: `once, tls: disabled, reqConcurrent ${ctx.jobs}, one repository step per repository (once runs steps one after another)`,
    };
  },
};

export const TOOLS: Tool[] = [bridge, skopeo, imageSyncer, regsync];
