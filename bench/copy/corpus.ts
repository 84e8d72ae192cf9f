// The copy benchmark's corpus: which repositories, tags and layers exist (a pure spec per scale),
// and a generator that writes them straight into a distribution 2.8 filesystem storage root, so
// the source registry is populated at disk speed, once per scale, without any copy tool involved.
// Layers are stored-block gzip streams (the layout of test/support/images.ts) over a 1 MiB
// pseudo-random block derived from the layer's name: deterministic, cheap, incompressible enough.
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, open, rename, rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { storedGzip, storedGzipLayout } from '../../test/support/images.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export type Scale = 'small' | 'full';

export interface LayerSpec { id: string; size: number }
export interface ImageSpec { layers: string[]; platform?: { os: string; architecture: string; variant?: string } }
export interface TagSpec { repo: string; tag: string; image?: ImageSpec; index?: ImageSpec[]; sameAs?: string }
export interface CorpusSpec { scale: Scale; layers: LayerSpec[]; tags: TagSpec[] }

const L = (id: string, mib: number): LayerSpec => ({ id, size: Math.round(mib * MiB) });

/**
 * Ten repositories on shared bases (alpine-, debian- and ubuntu-like base layers, node, python and
 * JDK runtime layers), image sizes from 1 MB to ~500 MB, one image with a 2 GiB layer and one OCI
 * index of four platforms; `latest` repeats each repository's newest tag. Single-level repository
 * names, because `skopeo sync` keeps only the last path component.
 */
export function corpusSpec(scale: Scale): CorpusSpec {
  if (scale === 'small') {
    const layers = [L('alpine', 3), L('debian', 30), L('node', 45), L('python', 40), L('jdk', 90),
      L('t1', 1), L('t2', 4), L('w1', 20), L('w2', 35), L('a3', 120), L('d1', 200), L('j1', 25), L('m2', 60), L('g1', 12)];
    const plat = ['amd64', 'arm64', 'arm/v7', 'ppc64le'];
    for (const p of plat) layers.push(L(`mb-${p}`, 6), L(`ma-${p}`, 10));
    return {
      scale, layers, tags: [
        { repo: 'tools', tag: 'v1', image: { layers: ['t1'] } },
        { repo: 'tools', tag: 'v2', image: { layers: ['alpine', 't2'] } },
        { repo: 'web', tag: 'v1', image: { layers: ['debian', 'node', 'w1'] } },
        { repo: 'web', tag: 'v2', image: { layers: ['debian', 'node', 'w2'] } },
        { repo: 'web', tag: 'latest', sameAs: 'v2' },
        { repo: 'api', tag: 'v3', image: { layers: ['debian', 'node', 'a3'] } },
        { repo: 'data', tag: 'v1', image: { layers: ['debian', 'python', 'd1'] } },
        { repo: 'javasvc', tag: 'v1', image: { layers: ['debian', 'jdk', 'j1'] } },
        { repo: 'ml', tag: 'v2', image: { layers: ['debian', 'python', 'm2'] } },
        { repo: 'gateway', tag: 'v1', image: { layers: ['alpine', 'g1'] } },
        { repo: 'multiarch', tag: 'v1', index: plat.map((p) => ({ layers: [`mb-${p}`, `ma-${p}`], platform: platformOf(p) })) },
      ],
    };
  }
  const layers = [
    L('alpine', 3), L('debian', 30), L('ubuntu', 28), L('node', 45), L('python', 55), L('jdk', 190),
    L('t1', 1), L('t2', 2), L('t3', 8), L('g1', 12), L('g2', 20), L('g3', 5),
    L('w1', 20), L('w2', 35), L('w3', 60), L('a1', 15), L('a2', 80), L('a3', 150),
    L('k1', 40), L('k2', 90), L('k3', 120), L('d1', 200), L('d2', 400), L('d3', 10),
    L('j1', 25), L('j2', 120), L('j3', 280), L('b1', 50), L('b2', 90), L('b3', 30),
    { id: 'm1', size: 2 * GiB }, L('m2', 60),
  ];
  const plat = ['amd64', 'arm64', 'arm/v7', 'ppc64le'];
  for (const p of plat) layers.push(L(`mb-${p}`, 10), L(`ma-${p}`, 25));
  const img = (...ls: string[]): ImageSpec => ({ layers: ls });
  const tags: TagSpec[] = [
    { repo: 'tools', tag: 'v1', image: img('t1') },
    { repo: 'tools', tag: 'v2', image: img('alpine', 't2') },
    { repo: 'tools', tag: 'v3', image: img('alpine', 't3') },
    { repo: 'gateway', tag: 'v1', image: img('alpine', 'g1') },
    { repo: 'gateway', tag: 'v2', image: img('alpine', 'g2') },
    { repo: 'gateway', tag: 'v3', image: img('alpine', 'g3') },
    { repo: 'web', tag: 'v1', image: img('debian', 'node', 'w1') },
    { repo: 'web', tag: 'v2', image: img('debian', 'node', 'w2') },
    { repo: 'web', tag: 'v3', image: img('debian', 'node', 'w3') },
    { repo: 'api', tag: 'v1', image: img('debian', 'node', 'a1') },
    { repo: 'api', tag: 'v2', image: img('debian', 'node', 'a2') },
    { repo: 'api', tag: 'v3', image: img('debian', 'node', 'a3') },
    { repo: 'worker', tag: 'v1', image: img('debian', 'python', 'k1') },
    { repo: 'worker', tag: 'v2', image: img('debian', 'python', 'k2') },
    { repo: 'worker', tag: 'v3', image: img('debian', 'python', 'k3') },
    { repo: 'data', tag: 'v1', image: img('debian', 'python', 'd1') },
    { repo: 'data', tag: 'v2', image: img('debian', 'python', 'd2') },
    { repo: 'data', tag: 'v3', image: img('debian', 'python', 'd3') },
    { repo: 'javasvc', tag: 'v1', image: img('ubuntu', 'jdk', 'j1') },
    { repo: 'javasvc', tag: 'v2', image: img('ubuntu', 'jdk', 'j2') },
    { repo: 'javasvc', tag: 'v3', image: img('ubuntu', 'jdk', 'j3') },
    { repo: 'billing', tag: 'v1', image: img('ubuntu', 'jdk', 'b1') },
    { repo: 'billing', tag: 'v2', image: img('ubuntu', 'jdk', 'b2') },
    { repo: 'billing', tag: 'v3', image: img('ubuntu', 'b3') },
    { repo: 'ml', tag: 'v1', image: img('debian', 'python', 'm1') },
    { repo: 'ml', tag: 'v2', image: img('debian', 'python', 'm2') },
    { repo: 'multiarch', tag: 'v1', index: plat.map((p) => ({ layers: [`mb-${p}`, `ma-${p}`], platform: platformOf(p) })) },
  ];
  for (const repo of new Set(tags.map((t) => t.repo))) {
    const last = tags.filter((t) => t.repo === repo && !t.sameAs).at(-1)!;
    tags.push({ repo, tag: 'latest', sameAs: last.tag });
  }
  return { scale, layers, tags };
}

function platformOf(p: string): { os: string; architecture: string; variant?: string } {
  const [architecture, variant] = p.split('/') as [string, string | undefined];
  return { os: 'linux', architecture, ...(variant ? { variant } : {}) };
}

// --- generated corpus -----------------------------------------------------------------------

export interface Blob { digest: string; size: number; mediaType: string }
export interface CorpusTag { repo: string; tag: string; digest: string; mediaType: string; kind: 'image' | 'index'; bytes: number }
export interface Corpus {
  scale: Scale;
  specHash: string;
  tags: CorpusTag[];
  /** Every distinct blob (layers and configs) and manifest the registry stores. */
  blobs: Blob[];
  manifests: Blob[];
  /** Distinct layer + config bytes: what a copy has to move. */
  blobBytes: number;
}

const MT = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
export const specHash = (s: CorpusSpec) => sha256(JSON.stringify({ v: 1, s })).slice(0, 16);

/** Paths of distribution 2.8's filesystem driver under `root`. */
function paths(root: string) {
  const v2 = join(root, 'docker', 'registry', 'v2');
  return {
    blob: (hex: string) => join(v2, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'),
    layerLink: (repo: string, hex: string) => join(v2, 'repositories', repo, '_layers', 'sha256', hex, 'link'),
    revisionLink: (repo: string, hex: string) => join(v2, 'repositories', repo, '_manifests', 'revisions', 'sha256', hex, 'link'),
    tagCurrent: (repo: string, tag: string) => join(v2, 'repositories', repo, '_manifests', 'tags', tag, 'current', 'link'),
    tagIndex: (repo: string, tag: string, hex: string) => join(v2, 'repositories', repo, '_manifests', 'tags', tag, 'index', 'sha256', hex, 'link'),
    tmp: join(root, 'bench-tmp'),
  };
}

async function writeFileMkdir(path: string, data: string | Buffer): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, data);
}

/** A 1 MiB pseudo-random block from the layer's name (AES-CTR keystream: fast and repeatable). */
function patternFor(id: string): Buffer {
  const key = createHash('sha256').update(`hsb-bench-layer:${id}`).digest();
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([c.update(Buffer.alloc(MiB)), c.final()]);
}

/** Writes one layer into the blob store; returns its digest and the diff_id of its payload. */
async function writeLayer(root: string, spec: LayerSpec): Promise<{ digest: string; diffId: string }> {
  const p = paths(root);
  const layout = storedGzipLayout(spec.size);
  if (!layout) throw new Error(`layer ${spec.id}: ${spec.size} bytes is too small for a gzip stream`);
  await mkdir(p.tmp, { recursive: true });
  const tmp = join(p.tmp, `${spec.id.replace(/\//g, "-")}.${process.pid}`);
  const fh = await open(tmp, 'w');
  const hash = createHash('sha256');
  const diff = createHash('sha256');
  const pattern = patternFor(spec.id);
  const batch: Buffer[] = [];
  let pending = 0;
  const push = async (b: Buffer) => {
    hash.update(b);
    batch.push(b);
    pending += b.length;
    if (pending >= 8 * MiB) { await fh.write(Buffer.concat(batch)); batch.length = 0; pending = 0; }
  };
  try {
    for (const b of storedGzip(layout, pattern, (d) => diff.update(d))) await push(b);
    if (batch.length) await fh.write(Buffer.concat(batch));
  } finally {
    await fh.close();
  }
  const hex = hash.digest('hex');
  await mkdir(join(p.blob(hex), '..'), { recursive: true });
  await rename(tmp, p.blob(hex));
  return { digest: `sha256:${hex}`, diffId: `sha256:${diff.digest('hex')}` };
}

async function writeSmallBlob(root: string, bytes: Buffer): Promise<string> {
  const hex = sha256(bytes);
  await writeFileMkdir(paths(root).blob(hex), bytes);
  return `sha256:${hex}`;
}

/**
 * Generates the corpus into `root` (a registry's `rootdirectory`) unless `root/corpus.json` says
 * the same spec is already there. Returns the corpus description the benchmark checks against.
 */
export async function ensureCorpus(root: string, spec: CorpusSpec, log: (s: string) => void = () => {}): Promise<Corpus> {
  const hash = specHash(spec);
  const meta = join(root, 'corpus.json');
  const cached = await readFile(meta, 'utf8').then((s) => JSON.parse(s) as Corpus, () => undefined);
  if (cached?.specHash === hash) return cached;
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const p = paths(root);

  const layers = new Map<string, { digest: string; diffId: string; size: number }>();
  const t0 = performance.now();
  for (const l of spec.layers) {
    layers.set(l.id, { ...(await writeLayer(root, l)), size: l.size });
    if (l.size >= 100 * MiB) log(`  layer ${l.id}: ${(l.size / MiB).toFixed(0)} MiB`);
  }
  log(`  layers written in ${((performance.now() - t0) / 1000).toFixed(1)}s`);

  const blobs = new Map<string, Blob>();
  const manifests = new Map<string, Blob>();
  const linkLayer = async (repo: string, digest: string) => writeFileMkdir(p.layerLink(repo, digest.slice(7)), digest);
  const linkRevision = async (repo: string, digest: string) => writeFileMkdir(p.revisionLink(repo, digest.slice(7)), digest);

  const buildImage = async (repo: string, tag: string, img: ImageSpec): Promise<{ digest: string; bytes: Buffer }> => {
    const ls = img.layers.map((id) => { const l = layers.get(id); if (!l) throw new Error(`unknown layer ${id}`); return l; });
    const platform = img.platform ?? { os: 'linux', architecture: 'amd64' };
    const config = Buffer.from(JSON.stringify({
      created: '2024-01-01T00:00:00Z', ...platform,
      config: { Labels: { 'bench.image': `${repo}:${tag}/${platform.architecture}${platform.variant ?? ''}` } },
      rootfs: { type: 'layers', diff_ids: ls.map((l) => l.diffId) },
      history: ls.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `bench layer ${img.layers[i]}` })),
    }));
    const configDigest = await writeSmallBlob(root, config);
    blobs.set(configDigest, { digest: configDigest, size: config.length, mediaType: MT.config });
    for (const l of ls) blobs.set(l.digest, { digest: l.digest, size: l.size, mediaType: MT.layer });
    for (const d of [configDigest, ...ls.map((l) => l.digest)]) await linkLayer(repo, d);
    const bytes = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MT.manifest,
      config: { mediaType: MT.config, digest: configDigest, size: config.length },
      layers: ls.map((l) => ({ mediaType: MT.layer, digest: l.digest, size: l.size })),
    }, null, 2));
    const digest = await writeSmallBlob(root, bytes);
    manifests.set(digest, { digest, size: bytes.length, mediaType: MT.manifest });
    await linkRevision(repo, digest);
    return { digest, bytes };
  };

  const out: CorpusTag[] = [];
  for (const t of spec.tags) {
    let entry: Omit<CorpusTag, 'repo' | 'tag'>;
    if (t.sameAs) {
      const other = out.find((o) => o.repo === t.repo && o.tag === t.sameAs);
      if (!other) throw new Error(`${t.repo}:${t.tag} repeats unknown tag ${t.sameAs}`);
      entry = { digest: other.digest, mediaType: other.mediaType, kind: other.kind, bytes: other.bytes };
    } else if (t.image) {
      const m = await buildImage(t.repo, t.tag, t.image);
      entry = { digest: m.digest, mediaType: MT.manifest, kind: 'image', bytes: t.image.layers.reduce((n, id) => n + layers.get(id)!.size, 0) };
    } else if (t.index) {
      const children = [];
      for (const c of t.index) {
        const m = await buildImage(t.repo, t.tag, c);
        children.push({ mediaType: MT.manifest, digest: m.digest, size: m.bytes.length, platform: c.platform });
      }
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: children }, null, 2));
      const digest = await writeSmallBlob(root, bytes);
      manifests.set(digest, { digest, size: bytes.length, mediaType: MT.index });
      await linkRevision(t.repo, digest);
      entry = { digest, mediaType: MT.index, kind: 'index', bytes: t.index.flatMap((c) => c.layers).reduce((n, id) => n + layers.get(id)!.size, 0) };
    } else {
      throw new Error(`${t.repo}:${t.tag} has no content`);
    }
    await writeFileMkdir(p.tagCurrent(t.repo, t.tag), entry.digest);
    await writeFileMkdir(p.tagIndex(t.repo, t.tag, entry.digest.slice(7)), entry.digest);
    out.push({ repo: t.repo, tag: t.tag, ...entry });
  }
  await rm(p.tmp, { recursive: true, force: true });
  const corpus: Corpus = {
    scale: spec.scale, specHash: hash, tags: out, blobs: [...blobs.values()], manifests: [...manifests.values()],
    blobBytes: [...blobs.values()].reduce((n, b) => n + b.size, 0),
  };
  await writeFile(meta, JSON.stringify(corpus, null, 1));
  return corpus;
}
