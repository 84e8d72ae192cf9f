// Copy benchmark (issue 4): one generated corpus on a loopback source registry, copied with each
// tool into its own fresh, empty target registry, in one run: wall time of the full copy, MB/s of
// distinct blob bytes, peak RSS and CPU of the tool (/usr/bin/time -v), the CPU the two registries
// spent, and the time of a second run where nothing changed. Every full copy is verified from the
// target's side (manifest digests read with skopeo, blob set read from the target's storage)
// before its figures count. Prints a markdown table and writes bench/copy/RESULTS.md.
import { spawn, spawnSync, execFile } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { corpusSpec, ensureCorpus, type Corpus, type Scale } from './corpus.ts';
import { startBenchRegistry, type BenchRegistry } from './registry.ts';
import { TOOLS, bridge, type Tool } from './tools.ts';

const execFileP = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const OUT = resolve(process.env.BENCH_OUT ?? join(ROOT, 'bench/copy/out'));
const BIN = join(OUT, 'bin');
const SCALE: Scale = process.env.BENCH_SCALE === 'small' ? 'small' : 'full';
const JOBS = Number(process.env.BENCH_JOBS ?? 8);
const ONLY = process.env.BENCH_TOOLS?.split(',').map((s) => s.trim()).filter(Boolean);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2));
const TIMEOUT_S = Number(process.env.BENCH_TOOL_TIMEOUT ?? 1200);
const RESULTS = process.env.BENCH_RESULTS ?? join(ROOT, 'bench/copy/RESULTS.md');
// Which registry build serves source and targets: distribution v3 built by run.sh with the current
// Go (whose sha256 uses the CPU's SHA instructions, as Harbor's own registry build does), or
// Debian's docker-registry 2.8 (built with Go 1.19, whose sha256 does not use them).
const REGISTRY = process.env.BENCH_REGISTRY === 'debian' ? 'debian' : 'v3';
const REGISTRY_BIN = REGISTRY === 'debian' ? '/usr/bin/docker-registry' : join(BIN, 'registry');
// Targets' storage: tmpfs by default, so the registries' page-cache writes and ext4 writeback
// (kernel CPU on the tool's two cores, and a `sync` between runs) stay out of the figures.
const TARGETS = resolve(process.env.BENCH_TARGET_DIR ?? (existsSync('/dev/shm') ? '/dev/shm/harbor-swr-bridge-bench' : join(OUT, 'targets')));
/** The registry build, as the table's header names it: its own version line and the Go it was built with. */
function registryLabel(): string {
  const out = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' }).stdout?.trim() ?? '';
  const version = out(REGISTRY_BIN, ['--version']).split(/\s+/).slice(1).join(' ') || REGISTRY_BIN;
  const go = out('go', ['version', REGISTRY_BIN]).match(/go\d+(?:\.\d+)+/)?.[0] ?? 'unknown Go';
  return REGISTRY === 'debian'
    ? `Debian's docker-registry (${version}, built with ${go}; BENCH_REGISTRY=debian)`
    : `CNCF distribution ${version} built by run.sh with ${go} (\`go install\`; its sha256 uses the CPU's SHA instructions, as Harbor's own registry build does; \`BENCH_REGISTRY=debian\` runs Debian's docker-registry 2.8 instead)`;
}
const MARKER = '<!-- analysis: kept by bench.ts when it rewrites the table above -->';

const log = (s: string) => process.stderr.write(`${s}\n`);

interface Timed { ok: boolean; exit: number | null; seconds: number; rssMB?: number; cpuS?: number; regCpuS: number; note?: string }

function parseTimeV(text: string): { rssMB?: number; cpuS?: number; exit?: number } {
  const num = (re: RegExp) => { const m = re.exec(text); return m ? Number(m[1]) : undefined; };
  const rss = num(/Maximum resident set size \(kbytes\): (\d+)/);
  const user = num(/User time \(seconds\): ([\d.]+)/);
  const sys = num(/System time \(seconds\): ([\d.]+)/);
  return {
    ...(rss !== undefined ? { rssMB: rss / 1024 } : {}),
    ...(user !== undefined && sys !== undefined ? { cpuS: user + sys } : {}),
    ...(num(/Exit status: (\d+)/) !== undefined ? { exit: num(/Exit status: (\d+)/)! } : {}),
  };
}

/** Runs argv under /usr/bin/time -v; output to `logFile`. */
async function timed(argv: string[], env: Record<string, string>, logFile: string, regs: BenchRegistry[]): Promise<Timed> {
  const timeFile = `${logFile}.time`;
  const hasTime = existsSync('/usr/bin/time');
  const full = hasTime ? ['/usr/bin/time', '-v', '-o', timeFile, ...argv] : argv;
  const fd = openSync(logFile, 'w');
  const cpu0 = await Promise.all(regs.map((r) => r.cpuSeconds()));
  const t0 = performance.now();
  const child = spawn(full[0]!, full.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  let timedOut = false;
  const kill = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, TIMEOUT_S * 1000);
  const exit = await new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const seconds = (performance.now() - t0) / 1000;
  clearTimeout(kill);
  closeSync(fd);
  const cpu1 = await Promise.all(regs.map((r) => r.cpuSeconds()));
  const t = hasTime && existsSync(timeFile) ? parseTimeV(readFileSync(timeFile, 'utf8')) : {};
  return {
    ok: exit === 0 && !timedOut, exit, seconds, regCpuS: cpu1.reduce((n, c, i) => n + c - cpu0[i]!, 0),
    ...(t.rssMB !== undefined ? { rssMB: t.rssMB } : {}), ...(t.cpuS !== undefined ? { cpuS: t.cpuS } : {}),
    ...(timedOut ? { note: `killed after ${TIMEOUT_S}s` } : exit !== 0 ? { note: `exit ${exit}; see ${logFile}` } : {}),
  };
}

async function mapLimit<T, R>(items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (i < items.length) { const k = i++; out[k] = await fn(items[k]!); } }));
  return out;
}

async function rawManifest(host: string, repo: string, ref: string): Promise<Buffer> {
  const { stdout } = await execFileP('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host}/${repo}:${ref}`], { encoding: 'buffer', maxBuffer: 16 << 20 });
  return stdout;
}

const childDigests = (raw: Buffer): string[] | undefined => {
  const doc = JSON.parse(raw.toString('utf8')) as { manifests?: { digest: string }[] };
  return doc.manifests?.map((m) => m.digest);
};

/**
 * The target's own view: every tag's manifest digest (skopeo) and the blobs its storage holds.
 * `ok`: all content is there (an index re-serialized with the same children still counts, as
 * not digest-exact); `exact`: every digest equals the source's.
 */
async function verify(src: BenchRegistry, dst: BenchRegistry, corpus: Corpus): Promise<{ ok: boolean; exact: boolean; detail: string }> {
  const wrong: string[] = [];
  const rewritten = new Set<string>();
  await mapLimit(corpus.tags, 4, async (t) => {
    let raw: Buffer;
    try {
      raw = await rawManifest(dst.host, t.repo, t.tag);
    } catch {
      wrong.push(`${t.repo}:${t.tag} missing`);
      return;
    }
    const d = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
    if (d === t.digest) return;
    const want = t.kind === 'index' ? childDigests(await rawManifest(src.host, t.repo, t.tag)) : undefined;
    const got = t.kind === 'index' ? childDigests(raw) : undefined;
    if (want && got && want.length === got.length && want.every((x, i) => x === got[i])) rewritten.add(t.digest);
    else wrong.push(`${t.repo}:${t.tag} has ${d.slice(0, 19)}`);
  });
  const base = join(dst.root, 'docker/registry/v2/blobs/sha256');
  const stored = new Set<string>();
  for (const pre of await readdir(base).catch(() => [] as string[])) {
    for (const hex of await readdir(join(base, pre))) if (existsSync(join(base, pre, hex, 'data'))) stored.add(`sha256:${hex}`);
  }
  const expected = [...corpus.blobs, ...corpus.manifests].map((b) => b.digest).filter((d) => !rewritten.has(d));
  const missing = expected.filter((d) => !stored.has(d));
  const ok = wrong.length === 0 && missing.length === 0;
  const exact = ok && rewritten.size === 0;
  const detail = !ok
    ? `${wrong.length} tags wrong (${wrong.slice(0, 3).join('; ')}), ${missing.length} blobs missing`
    : exact
      ? `${corpus.tags.length} tags digest-equal, ${expected.length} blobs+manifests stored`
      : `all content stored, but ${rewritten.size} OCI index re-serialized (same children, new digest: not digest-exact)`;
  return { ok, exact, detail };
}

const slug = (s: string) => s.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
const f1 = (n: number | undefined) => (n === undefined ? 'n/a' : n.toFixed(1));
const f2 = (n: number | undefined) => (n === undefined ? 'n/a' : n.toFixed(2));

interface Sample { full: Timed; noop: Timed; verified: { ok: boolean; exact: boolean; detail: string }; load: number }

/** One round for one tool: fresh empty target, full copy, verification, no-op run. */
async function runOnce(tool: Tool, src: BenchRegistry, corpus: Corpus, round: number): Promise<{ sample: Sample; config: string }> {
  const dir = join(OUT, 'runs', slug(tool.name), `round-${round}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const targetRoot = join(TARGETS, slug(tool.name));
  await rm(targetRoot, { recursive: true, force: true });
  const dst = await startBenchRegistry(REGISTRY_BIN, targetRoot, dir);
  try {
    const cmd = await tool.command({ root: ROOT, bin: BIN, dir, src: src.host, dst: dst.host, corpus, jobs: JOBS });
    writeFileSync(join(dir, 'command.txt'), `${cmd.argv.join(' ')}\n`);
    const load = loadavg()[0]!;
    log(`${tool.name} round ${round}: full copy (load ${load.toFixed(2)})`);
    const full = await timed(cmd.argv, cmd.env ?? {}, join(dir, 'full.log'), [src, dst]);
    log(`  ${f1(full.seconds)}s exit ${full.exit}, rss ${f1(full.rssMB)} MB, cpu ${f1(full.cpuS)}s, registries ${f1(full.regCpuS)}s`);
    const verified = await verify(src, dst, corpus);
    log(`  verify: ${verified.ok ? 'ok' : 'FAILED'} (${verified.detail})`);
    const noop = await timed(cmd.argv, cmd.env ?? {}, join(dir, 'noop.log'), [src, dst]);
    log(`  no-op ${f2(noop.seconds)}s exit ${noop.exit}`);
    return { sample: { full, noop, verified, load }, config: cmd.config };
  } finally {
    await dst.stop();
    // The next run starts on an empty target and a quiet disk.
    await rm(targetRoot, { recursive: true, force: true });
    spawnSync('sync');
  }
}

interface Row {
  tool: string; version: string; config?: string; missing?: string;
  samples: Sample[];
}

const good = (x: Sample) => x.full.ok && x.verified.ok;

/** Best of the rounds (least disturbed by the shared machine); any failed round shows instead. */
function best(r: Row): Sample | undefined {
  if (r.samples.length === 0 || r.samples.some((x) => !good(x))) return undefined;
  return [...r.samples].sort((a, b) => a.full.seconds - b.full.seconds)[0];
}

function table(rows: Row[], corpus: Corpus): string {
  const lines = [
    '| tool | version | full copy (s), best of rounds | all rounds (s) | MB/s | peak RSS (MB) | tool CPU (s) | registries CPU (s) | tool + registries CPU (s) | no-op (s) | no-op / full | verified |',
    '|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    if (r.missing) { lines.push(`| ${r.tool} | - | not run: ${r.missing} | | | | | | | | | |`); continue; }
    const all = r.samples.map((x) => (good(x) ? f1(x.full.seconds) : 'failed')).join(', ');
    const rss = Math.max(...r.samples.map((x) => x.full.rssMB ?? NaN));
    const b = best(r);
    if (!b) {
      const bad = r.samples.find((x) => !good(x))!;
      lines.push(`| ${r.tool} | ${r.version} | failed: ${bad.full.note ?? bad.verified.detail} | ${all} | - | ${f1(rss)} | | | | | | NO: ${bad.verified.detail} |`);
      continue;
    }
    const noop = Math.min(...r.samples.map((x) => (x.noop.ok ? x.noop.seconds : Infinity)));
    const noopCell = Number.isFinite(noop) ? f2(noop) : `failed (${r.samples[0]!.noop.note})`;
    const ratio = Number.isFinite(noop) ? `${((noop / b.full.seconds) * 100).toFixed(1)}%` : '-';
    const v = b.verified.exact ? 'yes' : `content yes; ${b.verified.detail.replace(/^all content stored, but /, '')}`;
    lines.push(`| ${r.tool} | ${r.version} | ${f1(b.full.seconds)} | ${all} | ${f1(corpus.blobBytes / 1e6 / b.full.seconds)} | ${f1(rss)} | ${f1(b.full.cpuS)} | ${f1(b.full.regCpuS)} | ${f1(b.full.cpuS === undefined ? undefined : b.full.cpuS + b.full.regCpuS)} | ${noopCell} | ${ratio} | ${v} |`);
  }
  return lines.join('\n');
}

function verdict(rows: Row[]): string[] {
  const me = rows.find((r) => r.tool === bridge.name);
  const mine = me && best(me);
  if (!me || !mine) return ['- harbor-swr-bridge did not complete verified copies in every round: no target met.'];
  const peers = rows.filter((r) => r !== me).map((r) => ({ r, b: best(r) })).filter((x) => x.b);
  const fastest = peers.sort((a, b) => a.b!.full.seconds - b.b!.full.seconds)[0];
  const out: string[] = [];
  if (fastest) {
    const x = fastest.b!.full.seconds / mine.full.seconds;
    out.push(`- speed: ${x.toFixed(2)}x the fastest peer (${fastest.r.tool}, ${f1(fastest.b!.full.seconds)}s): target >= 1.5x ${x >= 1.5 ? 'met' : 'MISSED'}`);
  } else {
    out.push('- speed: no peer completed a verified copy, nothing to compare with');
  }
  const noop = Math.min(...me.samples.map((x) => (x.noop.ok ? x.noop.seconds : Infinity)));
  const ratio = noop / mine.full.seconds;
  out.push(`- no-op: ${f2(noop)}s, ${(ratio * 100).toFixed(1)}% of the full copy: target < 5% ${ratio < 0.05 ? 'met' : 'MISSED'}`);
  const rss = Math.max(...me.samples.map((x) => x.full.rssMB ?? Infinity));
  out.push(`- peak RSS: ${f1(rss)} MB (worst round; no-op ${f1(Math.max(...me.samples.map((x) => x.noop.rssMB ?? NaN)))} MB): target < 200 MB ${rss < 200 ? 'met' : 'MISSED'}`);
  return out;
}

function describeCorpus(c: Corpus): string {
  const repos = new Set(c.tags.map((t) => t.repo)).size;
  const images = new Set(c.tags.map((t) => t.digest)).size;
  const biggest = Math.max(...c.blobs.map((b) => b.size));
  const sizes = c.tags.filter((t) => t.kind === 'image').map((t) => t.bytes);
  return `${c.tags.length} tags (${images} distinct artifacts, one an OCI index of 4 platforms) in ${repos} repositories; image sizes ${(Math.min(...sizes) / 1e6).toFixed(1)}–${(Math.max(...sizes) / 1e6).toFixed(0)} MB; biggest layer ${(biggest / 2 ** 20).toFixed(0)} MiB; ${c.blobs.length} distinct blobs, ${(c.blobBytes / 1e6).toFixed(0)} MB distinct blob bytes (what MB/s divides).`;
}

async function main(): Promise<void> {
  await mkdir(OUT, { recursive: true });
  const spec = corpusSpec(SCALE);
  const sourceRoot = join(OUT, `source-${SCALE}`);
  log(`corpus (${SCALE}) in ${sourceRoot}`);
  const t0 = performance.now();
  const corpus = await ensureCorpus(sourceRoot, spec, log);
  log(`  ${describeCorpus(corpus)} (ready in ${((performance.now() - t0) / 1000).toFixed(1)}s)`);
  // Same page-cache state for every tool: the source is read once before the first run.
  spawnSync('sh', ['-c', `find '${join(sourceRoot, 'docker')}' -name data -type f -exec cat {} + > /dev/null`]);
  spawnSync('sync');
  await rm(join(OUT, 'runs'), { recursive: true, force: true });
  const src = await startBenchRegistry(REGISTRY_BIN, sourceRoot, join(OUT, 'runs'));
  const tools = TOOLS.filter((t) => !ONLY || ONLY.some((o) => t.name.includes(o)));
  const rows: Row[] = [];
  for (const tool of tools) {
    const probe = await tool.probe({ root: ROOT, bin: BIN });
    rows.push('missing' in probe ? { tool: tool.name, version: '-', missing: probe.missing, samples: [] } : { tool: tool.name, version: probe.version, samples: [] });
  }
  const started = new Date();
  try {
    // Rounds interleave the tools, so a burst of load from other users hits them alike.
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [i, tool] of tools.entries()) {
        const row = rows[i]!;
        if (row.missing) continue;
        const { sample, config } = await runOnce(tool, src, corpus, round);
        row.samples.push(sample);
        row.config = config;
      }
    }
  } finally {
    await src.stop();
  }
  const loads = rows.flatMap((r) => r.samples.map((x) => x.load));
  const t = table(rows, corpus);
  const v = verdict(rows);
  process.stdout.write(`\n${t}\n\n${v.join('\n')}\n`);

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const prev = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  const analysis = prev.includes(MARKER) ? prev.slice(prev.indexOf(MARKER)) : `${MARKER}\n`;
  const md = `# Copy benchmark (bench/copy)

Reproduce: \`npm run bench:copy\` (full scale, the default) or \`BENCH_SCALE=small npm run bench:copy\`.
Knobs: \`BENCH_ROUNDS\` (default 2), \`BENCH_JOBS\` (parallel jobs given to every tool that has such a
setting, default 8), \`BENCH_TOOLS\` (comma list of name parts, e.g. \`bridge,regsync\`),
\`BENCH_TOOL_TIMEOUT\` (seconds, default 1200).

- Run: ${started.toISOString()}, scale **${SCALE}**, ${ROUNDS} round(s) with the tools interleaved, jobs ${JOBS}.
- Machine: ${cpus().length} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux, Node ${process.versions.node}.
  The 1-minute load average at the start of each full copy ranged ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} (this VM reports 1.5–2 when idle).
  The same command's wall time varies by up to ±40% from one minute to the next on this host, so the
  tools' rounds are interleaved and the best round counts; CPU seconds are the steadier figures.
- Registries: ${registryLabel()}; on 127.0.0.1, plain HTTP, filesystem storage (targets in
  ${TARGETS}), no auth, access log off, one source and one fresh empty target per run, all on the
  same 2 cores as the tool. The source storage is generated once per scale (bench/copy/corpus.ts)
  and read into the page cache before the first run.
- Corpus: ${describeCorpus(corpus)}
- Figures: wall time of the whole corpus in one process per tool (best of the rounds; every round
  listed); MB/s = distinct blob bytes / best wall time; peak RSS (worst round) and tool CPU from
  \`/usr/bin/time -v\`; registries CPU = source + target registry CPU seconds during that copy;
  no-op = the same command again with nothing to do (best round). A run counts only when every
  tag's manifest in the target (read with \`skopeo inspect --raw\`) has the source's digest and the
  target's storage holds every blob and manifest; a failed round is shown instead of a figure.

${t}

${v.join('\n')}

Tool configurations:
${rows.map((r) => `- ${r.tool}: ${r.missing ? `not run (${r.missing})` : r.config}`).join('\n')}

${analysis}`;
  writeFileSync(RESULTS, md);
  log(`wrote ${RESULTS}`);
}

await main();
