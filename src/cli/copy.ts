// `harbor-swr-bridge copy`: one image (`copy <src-ref> <dst-ref>`) or a whole list of them
// (`copy --from-file list.txt`), all through one process, one RegistryClient per registry and one
// shared CopyPool, so blobs shared between images move once and are mounted everywhere else.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { BridgeError, isBridgeError, toBridgeError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { RegistryClient, type RegistryClientOptions } from '../registry/client.ts';
import { isDigest } from '../registry/digest.ts';
import { copyArtifact, type CopyOptions, type CopyResult } from '../replication/copy.ts';
import { CopyPool } from '../replication/copy-pool.ts';
import { platformError } from '../replication/copy-plan.ts';
import { isLoopbackHost } from './loopback.ts';
import { basicSecretOf, registerSecrets } from '../observability/scrub.ts';

export const COPY_USAGE = `usage: harbor-swr-bridge copy [options] <src-ref> <dst-ref>
       harbor-swr-bridge copy [options] --from-file LIST

refs: host[:port]/repo[:tag|@digest]; http:// for loopback hosts or with --plain-http, else https.
LIST: one "src-ref dst-ref" pair per line; blank lines and # comments are ignored.

options:
  --src-creds USER:PASS      source credentials (or env HSB_SRC_CREDS)
  --dest-creds USER:PASS     target credentials (or env HSB_DEST_CREDS)
  --src-insecure-http        plain HTTP to the source registry
  --dest-insecure-http       plain HTTP to the target registry
  --plain-http               plain HTTP to both
  --src-tls-insecure, --dest-tls-insecure   skip TLS certificate verification
  --format preserve|docker   keep manifests byte-exact (default) or convert OCI to Docker
  --platform OS/ARCH[/VAR]   keep only these index children (repeatable)
  --referrers                also copy signatures, SBOMs and other referrers (OCI referrers and
                             cosign's sha256-<digest>.sig|.att|.sbom tags, children's too)
  --jobs N                   blob transfers (and images) in flight at once (default 8)
  --retries N                another pass over a copy that failed transiently (default 2)
`;

export interface ImageRef {
  /** host[:port] */
  registry: string;
  /** http://host[:port] or https://host[:port] */
  url: string;
  repo: string;
  tag?: string;
  digest?: string;
}

export interface CopyCliOptions {
  pairs: { src: ImageRef; dst: ImageRef }[];
  srcCreds?: { username: string; password: string };
  destCreds?: { username: string; password: string };
  srcTlsInsecure: boolean;
  destTlsInsecure: boolean;
  format: 'preserve' | 'docker';
  platforms: string[];
  referrers: boolean;
  jobs: number;
  /** Further attempts of a copy that failed with a retryable error. */
  retries: number;
}

export type CopyCommandArgs = {
  rest: string[];
  flags: Record<string, string | boolean | undefined>;
  logger: Logger;
  /** Extra RegistryClient options (upload tuning, retries) for embedding and benchmarks. */
  client?: Pick<RegistryClientOptions, 'upload' | 'retry'>;
  /** Where result lines (`out`) and failures and usage (`err`) go; default stdout and stderr. */
  print?: (line: string, stream: 'out' | 'err') => void;
};

const usageError = (message: string) => new BridgeError('HSB_CLI_USAGE', message);

const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/**
 * Parses `[http(s)://|docker://]host[:port]/repo[:tag][@digest]`. The host is mandatory (no Docker
 * Hub defaulting: a mirror tool should never guess where bytes go). Neither tag nor digest
 * leaves both undefined; the caller decides the default.
 */
export function parseImageRef(input: string, opts: { plainHttp?: boolean } = {}): ImageRef {
  let s = input.trim();
  let scheme: 'http' | 'https' | undefined;
  const m = /^(https?|docker):\/\//.exec(s);
  if (m) {
    if (m[1] !== 'docker') scheme = m[1] as 'http' | 'https';
    s = s.slice(m[0].length);
  }
  // A reference written with `user:password@` would be repeated in the error: the credentials are masked.
  const shown = input.slice(0, 300).replace(/^((?:https?|docker):\/\/)?[^/@]*@(?=[^/]*\/)/, (_m, scheme: string | undefined) => `${scheme ?? ''}[redacted]@`);
  const bad = (why: string) => usageError(`invalid image reference ${JSON.stringify(shown)}: ${why}`);
  const slash = s.indexOf('/');
  if (slash <= 0) throw bad('expected host[:port]/repository[:tag|@digest]');
  const registry = s.slice(0, slash);
  if (!HOST_RE.test(registry)) throw bad(registry.includes('@') ? 'credentials go in --src-creds / --dest-creds, not in the reference' : `bad registry host "${registry.slice(0, 100)}"`);
  let rest = s.slice(slash + 1);
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw bad('bad digest (expected sha256:<64 hex> or sha512:<128 hex>)');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(`bad tag "${tag.slice(0, 130)}"`);
  }
  if (!REPO_RE.test(rest)) throw bad(`bad repository name "${rest.slice(0, 256)}" (lowercase letters, digits, separators . _ __ -, path components with /)`);
  scheme ??= opts.plainHttp || isLoopbackHost(registry) ? 'http' : 'https';
  return { registry, url: `${scheme}://${registry}`, repo: rest, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

export function formatRef(r: ImageRef): string {
  return `${r.registry}/${r.repo}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** `user:pass`, split at the first colon (robot names hold `$`, passwords may hold `:`). */
export function parseCreds(s: string, which: string): { username: string; password: string } {
  const i = s.indexOf(':');
  if (i <= 0) throw usageError(`--${which}-creds expects USER:PASSWORD`);
  const creds = { username: s.slice(0, i), password: s.slice(i + 1) };
  // Given on the command line, not in a config: scrubbed from messages all the same.
  registerSecrets([creds.password, basicSecretOf(creds.username, creds.password)]);
  return creds;
}

/** One `src-ref dst-ref` pair per line; `#` starts a comment. Errors name the line. */
export function parseCopyList(text: string): { src: string; dst: string }[] {
  const out: { src: string; dst: string }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) return;
    const parts = line.split(/\s+/);
    if (parts.length !== 2) throw usageError(`copy list line ${i + 1}: expected "src-ref dst-ref", got ${parts.length} field(s)`);
    out.push({ src: parts[0]!, dst: parts[1]! });
  });
  return out;
}

/**
 * What a copy of `src` to `dst` writes: the tag to set (the destination's, else the source's) or
 * none (by digest only). Pure, so the defaulting rules are tested without registries.
 */
export function resolvePair(src: ImageRef, dst: ImageRef): { srcRef: string; dstTag: string | undefined; expectDigest?: string } {
  if (dst.tag && dst.digest) throw usageError(`destination ${formatRef(dst)}: give a tag or a digest, not both`);
  const srcRef = src.digest ?? src.tag ?? 'latest';
  if (dst.digest) return { srcRef, dstTag: undefined, expectDigest: dst.digest };
  return { srcRef, dstTag: dst.tag ?? (src.digest ? undefined : src.tag ?? 'latest') };
}

const OPTIONS = {
  'src-creds': { type: 'string' },
  'dest-creds': { type: 'string' },
  'src-insecure-http': { type: 'boolean' },
  'dest-insecure-http': { type: 'boolean' },
  'plain-http': { type: 'boolean' },
  'src-tls-insecure': { type: 'boolean' },
  'dest-tls-insecure': { type: 'boolean' },
  format: { type: 'string' },
  platform: { type: 'string', multiple: true },
  referrers: { type: 'boolean' },
  jobs: { type: 'string' },
  retries: { type: 'string' },
  'from-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = Record<string, string | boolean | string[] | undefined>;

/**
 * Parses the sub-command's own argv (strictly: a misspelt flag is an error, not a positional),
 * over `preset` flags a caller already parsed. Returns the options and the list file, if any.
 */
export function parseCopyArgv(argv: string[], preset: Flags = {}, env: NodeJS.ProcessEnv = {}): { help: boolean; fromFile?: string; positionals: string[]; opts: Omit<CopyCliOptions, 'pairs'>; plain: { src: boolean; dst: boolean } } {
  let parsed: { values: Flags; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }) as { values: Flags; positionals: string[] };
  } catch (e) {
    throw usageError((e as Error).message);
  }
  const v: Flags = { ...preset, ...parsed.values };
  const str = (k: string) => (typeof v[k] === 'string' ? v[k] : undefined);
  const bool = (k: string) => v[k] === true || v[k] === 'true';
  const format = str('format') ?? 'preserve';
  if (format !== 'preserve' && format !== 'docker') throw usageError(`--format must be preserve or docker, not "${format}"`);
  const jobs = Number(str('jobs') ?? 8);
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) throw usageError('--jobs must be an integer from 1 to 64');
  const retries = Number(str('retries') ?? 2);
  if (!Number.isInteger(retries) || retries < 0 || retries > 10) throw usageError('--retries must be an integer from 0 to 10');
  const platformsRaw = v.platform;
  const platforms = (Array.isArray(platformsRaw) ? platformsRaw : typeof platformsRaw === 'string' ? [platformsRaw] : []).flatMap((p) => p.split(','));
  for (const p of platforms) {
    const why = platformError(p);
    if (why) throw usageError(`--platform ${why}`);
  }
  const srcCredsRaw = str('src-creds') ?? env.HSB_SRC_CREDS;
  const destCredsRaw = str('dest-creds') ?? env.HSB_DEST_CREDS;
  const fromFile = str('from-file');
  return {
    help: bool('help'),
    ...(fromFile ? { fromFile } : {}),
    positionals: parsed.positionals,
    plain: { src: bool('plain-http') || bool('src-insecure-http'), dst: bool('plain-http') || bool('dest-insecure-http') },
    opts: {
      ...(srcCredsRaw ? { srcCreds: parseCreds(srcCredsRaw, 'src') } : {}),
      ...(destCredsRaw ? { destCreds: parseCreds(destCredsRaw, 'dest') } : {}),
      srcTlsInsecure: bool('src-tls-insecure'),
      destTlsInsecure: bool('dest-tls-insecure'),
      format,
      platforms,
      referrers: bool('referrers'),
      jobs,
      retries,
    },
  };
}

/** Runs `fn` over `items` with at most `n` in flight; results keep the input order. */
async function mapLimit<T, R>(items: T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/** Bytes of blobs an image manifest or index (one level of children) references; 0 if unknown. */
export function manifestBytes(doc: unknown): number {
  const d = doc as { config?: { size?: unknown }; layers?: { size?: unknown }[] };
  const n = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : 0);
  return n(d?.config?.size) + (Array.isArray(d?.layers) ? d.layers.reduce((t, l) => t + n(l?.size), 0) : 0);
}

/**
 * Largest first (longest-processing-time order): a big image started last would finish alone on
 * one connection while the rest of the pool idles. Stable for equal sizes.
 */
export function largestFirst<T>(items: T[], sizes: number[]): T[] {
  return items.map((item, i) => ({ item, i, size: sizes[i] ?? 0 })).sort((a, b) => b.size - a.size || a.i - b.i).map((x) => x.item);
}

/** What the source holds for a reference (digest) and the blob bytes behind it (for ordering). */
async function probeSource(client: RegistryClient, repo: string, ref: string, signal: AbortSignal): Promise<{ digest?: string; bytes: number }> {
  try {
    const m = await client.getManifest(repo, ref, undefined, signal);
    const doc = JSON.parse(m.bytes.toString('utf8')) as { manifests?: { digest?: string }[] };
    if (!Array.isArray(doc.manifests)) return { digest: m.digest, bytes: manifestBytes(doc) };
    let bytes = 0;
    for (const c of doc.manifests) {
      if (typeof c?.digest !== 'string' || !isDigest(c.digest)) continue;
      const child = await client.getManifest(repo, c.digest, undefined, signal);
      bytes += manifestBytes(JSON.parse(child.bytes.toString('utf8')));
    }
    return { digest: m.digest, bytes };
  } catch {
    return { bytes: 0 }; // the copy itself reports whatever is wrong
  }
}

/**
 * Jobs for a list: pairs that put the same source artifact into the same target repository (tags
 * of one image) form one job and run one after another; the first moves the content, the rest
 * only add their tag. distribution answers 400 DIGEST_INVALID to an index PUT while another
 * request rewrites a child manifest's link in that repository, so such copies must not overlap.
 * Jobs come largest first.
 */
export function planJobs<T extends { dstKey: string; digest?: string; bytes: number }>(items: T[]): T[][] {
  const groups = new Map<string, T[]>();
  items.forEach((it, i) => {
    const key = it.digest ? `${it.dstKey}\0${it.digest}` : `\0${i}`;
    const g = groups.get(key);
    if (g) g.push(it); else groups.set(key, [it]);
  });
  const jobs = [...groups.values()];
  return largestFirst(jobs, jobs.map((g) => Math.max(...g.map((x) => x.bytes))));
}

type Outcome = { ok: true; result: CopyResult; ms: number } | { ok: false; error: BridgeError; ms: number };

function describe(r: CopyResult): string {
  if (r.skipped) return 'up to date';
  const b = r.blobs;
  return `${b.uploaded} uploaded, ${b.mounted} mounted, ${b.skipped} present`;
}

export async function copyCommand(args: CopyCommandArgs): Promise<number> {
  const { logger } = args;
  const print = args.print ?? ((line, stream) => (stream === 'out' ? process.stdout : process.stderr).write(`${line}\n`));
  const out = (s: string) => print(s, 'out');
  const err = (s: string) => print(s, 'err');
  let parsed: ReturnType<typeof parseCopyArgv>;
  let pairs: CopyCliOptions['pairs'];
  try {
    parsed = parseCopyArgv(args.rest, args.flags, process.env);
    if (parsed.help) { out(COPY_USAGE.trimEnd()); return 0; }
    let textual: { src: string; dst: string }[];
    if (parsed.fromFile) {
      if (parsed.positionals.length > 0) throw usageError('give either --from-file or <src-ref> <dst-ref>, not both');
      textual = parseCopyList(await readFile(parsed.fromFile, 'utf8'));
      if (textual.length === 0) throw usageError(`${parsed.fromFile} lists no images`);
    } else {
      if (parsed.positionals.length !== 2) throw usageError(`expected <src-ref> <dst-ref>, got ${parsed.positionals.length} argument(s)`);
      textual = [{ src: parsed.positionals[0]!, dst: parsed.positionals[1]! }];
    }
    pairs = textual.map((p) => ({ src: parseImageRef(p.src, { plainHttp: parsed.plain.src }), dst: parseImageRef(p.dst, { plainHttp: parsed.plain.dst }) }));
    for (const p of pairs) resolvePair(p.src, p.dst);
  } catch (e) {
    err(`harbor-swr-bridge copy: ${(e as Error).message}\n\n${COPY_USAGE}`);
    return 2;
  }
  const o = parsed.opts;

  // One client per registry and side: connections, tokens and limits are shared by every image.
  // Per-registry request slots exceed the blob jobs, since an upload holds its slot to the end.
  const clients = new Map<string, RegistryClient>();
  const clientFor = (ref: ImageRef, side: 'src' | 'dst') => {
    const key = `${side} ${ref.url}`;
    let c = clients.get(key);
    if (!c) {
      const credentials = side === 'src' ? o.srcCreds : o.destCreds;
      c = new RegistryClient({
        url: ref.url,
        ...(credentials ? { credentials } : {}),
        tls: { insecure: side === 'src' ? o.srcTlsInsecure : o.destTlsInsecure },
        limits: { concurrency: Math.min(256, o.jobs * 2 + 8) },
      }, { ...args.client, logger: logger.child({ registry: ref.registry }) });
      clients.set(key, c);
    }
    return c;
  };
  const pool = new CopyPool({ concurrency: o.jobs });
  const abort = new AbortController();
  const onSignal = () => abort.abort(new BridgeError('HSB_REGISTRY_ABORTED', 'interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const copyOpts: CopyOptions = {
    manifestFormat: o.format,
    ...(o.platforms.length ? { platforms: o.platforms } : {}),
    referrers: o.referrers,
    pool,
    logger,
    signal: abort.signal,
  };

  const started = performance.now();
  let outcomes: Outcome[];
  try {
    const copyOne = async ({ src, dst }: CopyCliOptions['pairs'][number]): Promise<Outcome> => {
      const t0 = performance.now();
      const { srcRef, dstTag, expectDigest } = resolvePair(src, dst);
      const name = `${formatRef(src)} -> ${formatRef(dst)}`;
      for (let attempt = 0; ; attempt++) {
        try {
          const result = await copyArtifact(clientFor(src, 'src'), src.repo, srcRef, clientFor(dst, 'dst'), dst.repo, dstTag, copyOpts);
          if (expectDigest && result.digest !== expectDigest) {
            throw new BridgeError('HSB_COPY_DIGEST_CHANGED', `copied digest ${result.digest} differs from the requested destination digest ${expectDigest}`, { context: { digest: result.digest } });
          }
          const ms = performance.now() - t0;
          out(`${name} ${result.digest} ${result.bytes} bytes (${describe(result)}) ${(ms / 1000).toFixed(2)}s`);
          return { ok: true, result, ms };
        } catch (e) {
          const error = isBridgeError(e) ? e : toBridgeError(e);
          // Copies converge: another pass after a transient failure only moves what is missing.
          if (error.retryable && attempt < o.retries && !abort.signal.aborted) {
            logger.warn({ src: formatRef(src), dst: formatRef(dst), err: error.code, attempt: attempt + 1 }, 'copy failed; trying again');
            await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
            continue;
          }
          err(`${name} FAILED ${error.code}: ${error.message}`);
          return { ok: false, error, ms: performance.now() - t0 };
        }
      }
    };
    if (pairs.length === 1) {
      outcomes = [await copyOne(pairs[0]!)];
    } else {
      // One cheap manifest read per pair decides the jobs and their order (biggest first, so the
      // largest blobs overlap with everything else instead of finishing alone).
      const probed = await mapLimit(pairs, o.jobs, async (p) => ({
        pair: p, dstKey: `${p.dst.url}/${p.dst.repo}`,
        ...await probeSource(clientFor(p.src, 'src'), p.src.repo, resolvePair(p.src, p.dst).srcRef, abort.signal),
      }));
      const jobs = planJobs(probed);
      outcomes = (await mapLimit(jobs, o.jobs, async (job) => {
        const done: Outcome[] = [];
        for (const x of job) done.push(await copyOne(x.pair));
        return done;
      })).flat();
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await Promise.all([...clients.values()].map((c) => c.close().catch(() => undefined)));
  }

  const failed = outcomes.filter((x) => !x.ok).length;
  if (pairs.length > 1) {
    const bytes = outcomes.reduce((n, x) => n + (x.ok ? x.result.bytes : 0), 0);
    const secs = (performance.now() - started) / 1000;
    out(`copied ${outcomes.length - failed}/${outcomes.length} images, ${bytes} bytes uploaded in ${secs.toFixed(2)}s${failed ? `; ${failed} failed` : ''}`);
  }
  return failed > 0 ? 1 : 0;
}
