// Builds test images as OCI layouts on disk and pushes them with skopeo, so tests set up
// registries with a tool that is independent of the code under test.
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { mkdtemp, mkdir, writeFile, rm, open, rename, link, readdir } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const run = promisify(execFile);

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Platform { os: string; architecture: string; variant?: string }
export interface LocalBlob { digest: string; size: number; mediaType: string; path: string }

export interface LocalImage {
  dir: string;              // OCI layout directory
  layoutTag: string;        // name inside the layout (oci:<dir>:<layoutTag>)
  kind: 'manifest' | 'index';
  mediaType: string;
  digest: string;
  bytes: Buffer;            // exact manifest bytes
  config?: LocalBlob;
  layers: LocalBlob[];      // for an index: every layer of every child
  children: LocalImage[];
  platform?: Platform;
  cleanup(): Promise<void>;
}

export interface BuildImageOptions {
  /** Layer sizes in bytes (random gzip-valid content of exactly that size) or exact layer bytes. */
  layers: (number | Buffer)[];
  platform?: Platform;
  mediaTypes?: 'oci' | 'docker';
  /** Overrides the layer media type (e.g. zstd) for conversion tests. */
  layerMediaType?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Write into an existing layout (used by buildIndex). */
  dir?: string;
  layoutTag?: string;
}

export interface BuildIndexOptions {
  images: Omit<BuildImageOptions, 'dir' | 'mediaTypes' | 'layoutTag'>[];
  mediaTypes?: 'oci' | 'docker';
  annotations?: Record<string, string>;
  layoutTag?: string;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const BLOCK = 65535;

/**
 * Stored-block layout of a gzip stream of exactly `size` bytes: payload length n in k blocks
 * (trailing blocks may be empty so every size from 23 bytes up is reachable).
 */
/**
 * The pieces of a stored (uncompressed) gzip stream laid out as `layout`, its payload repeating
 * `pattern`; `onData` sees each payload piece (for the diff id).
 */
export function* storedGzip(layout: { n: number; k: number }, pattern: Buffer, onData?: (data: Buffer) => void): Generator<Buffer> {
  yield Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
  const { n, k } = layout;
  let done = 0;
  let crc = 0;
  for (let block = 0; block < k; block++) {
    const len = Math.min(BLOCK, n - done);
    const hdr = Buffer.alloc(5);
    hdr[0] = block === k - 1 ? 1 : 0;
    hdr.writeUInt16LE(len, 1);
    hdr.writeUInt16LE(~len & 0xffff, 3);
    const off = done % pattern.length;
    const data = off + len <= pattern.length ? pattern.subarray(off, off + len) : Buffer.concat([pattern.subarray(off), pattern.subarray(0, len - (pattern.length - off))]);
    crc = crc32(data, crc);
    onData?.(data);
    yield hdr;
    yield data;
    done += len;
  }
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(n >>> 0, 4);
  yield trailer;
}

export function storedGzipLayout(size: number): { n: number; k: number } | undefined {
  const m = size - 18; // 10-byte header + 8-byte trailer
  if (m < 5) return undefined;
  const k = Math.max(1, Math.ceil(m / (BLOCK + 5)));
  return { n: m - 5 * k, k };
}

async function writeBlob(dir: string, bytes: Buffer): Promise<{ digest: string; size: number; path: string }> {
  const digest = sha256(bytes);
  const path = join(dir, 'blobs', 'sha256', digest.slice(7));
  await writeFile(path, bytes);
  return { digest, size: bytes.length, path };
}

/**
 * Writes a random layer of exactly `size` bytes that is a valid gzip stream (stored blocks),
 * from a repeated random 1 MiB block so hundreds of MB are generated quickly.
 * Returns the blob and the diff_id (digest of the uncompressed payload).
 */
async function writeRandomLayer(dir: string, size: number): Promise<{ digest: string; size: number; path: string; diffId: string }> {
  const layout = storedGzipLayout(size);
  if (layout === undefined) {
    const b = randomBytes(size);
    return { ...(await writeBlob(dir, b)), diffId: sha256(b) };
  }
  const tmp = join(dir, 'blobs', `tmp-${randomBytes(6).toString('hex')}`);
  const fh = await open(tmp, 'w');
  const hash = createHash('sha256');
  const diff = createHash('sha256');
  const pattern = randomBytes(1 << 20);
  const out: Buffer[] = [];
  let pending = 0;
  const push = async (b: Buffer) => {
    hash.update(b);
    out.push(b);
    pending += b.length;
    if (pending >= 4 << 20) { await fh.write(Buffer.concat(out)); out.length = 0; pending = 0; }
  };
  for (const b of storedGzip(layout, pattern, (d) => diff.update(d))) await push(b);
  if (out.length) await fh.write(Buffer.concat(out));
  await fh.close();
  const digest = `sha256:${hash.digest('hex')}`;
  const path = join(dir, 'blobs', 'sha256', digest.slice(7));
  await rename(tmp, path);
  return { digest, size, path, diffId: `sha256:${diff.digest('hex')}` };
}

async function newLayout(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hsb-image-'));
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return dir;
}

/**
 * skopeo's `oci:` source only finds OCI-typed descriptors, so Docker-typed images are pushed
 * from the `dir:` transport: the same directory also gets `version`, `manifest.json`,
 * `<hex>.manifest.json` per index child and `<hex>` hard links to every blob.
 */
async function writeDirTransport(dir: string, top: Buffer, children: LocalImage[] | Omit<LocalImage, 'cleanup' | 'layoutTag'>[]): Promise<void> {
  await writeFile(join(dir, 'version'), 'Directory Transport Version: 1.1\n');
  await writeFile(join(dir, 'manifest.json'), top);
  for (const c of children) await writeFile(join(dir, `${c.digest.slice(7)}.manifest.json`), c.bytes);
  for (const hex of await readdir(join(dir, 'blobs', 'sha256'))) {
    if (hex.startsWith('tmp-')) continue;
    await link(join(dir, 'blobs', 'sha256', hex), join(dir, hex)).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
  }
}

async function writeLayoutIndex(dir: string, tag: string, desc: { mediaType: string; digest: string; size: number }): Promise<void> {
  const index = { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ ...desc, annotations: { 'org.opencontainers.image.ref.name': tag } }] };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

async function buildInto(dir: string, opts: BuildImageOptions): Promise<Omit<LocalImage, 'cleanup' | 'layoutTag'>> {
  const docker = opts.mediaTypes === 'docker';
  const layerType = opts.layerMediaType ?? (docker ? MT.dockerLayerGzip : MT.ociLayerGzip);
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const layers: LocalBlob[] = [];
  const diffIds: string[] = [];
  for (const l of opts.layers) {
    if (typeof l === 'number') {
      const w = await writeRandomLayer(dir, l);
      layers.push({ digest: w.digest, size: w.size, path: w.path, mediaType: layerType });
      diffIds.push(w.diffId);
    } else {
      const w = await writeBlob(dir, l);
      layers.push({ ...w, mediaType: layerType });
      diffIds.push(w.digest);
    }
  }
  const configJson = {
    created: new Date().toISOString(),
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Labels: { 'hsb.test.nonce': randomBytes(8).toString('hex'), ...opts.labels } },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map(() => ({ created_by: 'hsb test layer' })),
  };
  const cw = await writeBlob(dir, Buffer.from(JSON.stringify(configJson)));
  const config: LocalBlob = { ...cw, mediaType: docker ? MT.dockerConfig : MT.ociConfig };
  const mediaType = docker ? MT.dockerManifest : MT.ociManifest;
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ...(opts.annotations && !docker ? { annotations: opts.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
  const mw = await writeBlob(dir, bytes);
  return { dir, kind: 'manifest', mediaType, digest: mw.digest, bytes, config, layers, children: [], platform };
}

export async function buildImage(opts: BuildImageOptions): Promise<LocalImage> {
  const own = !opts.dir;
  const dir = opts.dir ?? await newLayout();
  const layoutTag = opts.layoutTag ?? 'latest';
  const img = await buildInto(dir, opts);
  await writeLayoutIndex(dir, layoutTag, { mediaType: img.mediaType, digest: img.digest, size: img.bytes.length });
  if (opts.mediaTypes === 'docker') await writeDirTransport(dir, img.bytes, []);
  return { ...img, layoutTag, cleanup: async () => { if (own) await rm(dir, { recursive: true, force: true }); } };
}

/** A multi-arch image: one child per entry (default linux/amd64 and linux/arm64), in one layout. */
export async function buildIndex(opts: BuildIndexOptions): Promise<LocalImage> {
  const dir = await newLayout();
  const docker = opts.mediaTypes === 'docker';
  const layoutTag = opts.layoutTag ?? 'latest';
  const children: LocalImage[] = [];
  for (const c of opts.images) {
    const img = await buildInto(dir, { ...c, mediaTypes: opts.mediaTypes });
    children.push({ ...img, layoutTag, cleanup: async () => {} });
  }
  const mediaType = docker ? MT.dockerList : MT.ociIndex;
  const index = {
    schemaVersion: 2,
    mediaType,
    manifests: children.map((c) => ({ mediaType: c.mediaType, digest: c.digest, size: c.bytes.length, platform: c.platform })),
    ...(opts.annotations && !docker ? { annotations: opts.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(index, null, 2));
  const iw = await writeBlob(dir, bytes);
  await writeLayoutIndex(dir, layoutTag, { mediaType, digest: iw.digest, size: bytes.length });
  if (docker) await writeDirTransport(dir, bytes, children);
  return {
    dir, layoutTag, kind: 'index', mediaType, digest: iw.digest, bytes, layers: children.flatMap((c) => c.layers), children,
    cleanup: async () => { await rm(dir, { recursive: true, force: true }); },
  };
}

export interface RegistryLike { host: string; users?: { username: string; password: string }[] }
export type Creds = { username: string; password: string };

/** A registry URL (http://127.0.0.1:port) or a started test registry. */
const asRegistry = (r: string | RegistryLike): RegistryLike => (typeof r === 'string' ? { host: new URL(r).host } : r);

const credsArg = (flag: string, c?: Creds) => (c ? [`${flag}=${c.username}:${c.password}`] : []);

/** Pushes with skopeo, keeping digests byte-exact; credentials default to the registry's first user. */
export async function pushImage(image: LocalImage, registry: RegistryLike, repo: string, tag: string, creds?: Creds): Promise<void> {
  const c = creds ?? registry.users?.[0];
  await run('skopeo', [
    '--insecure-policy', 'copy', '--all', '--preserve-digests', '--quiet',
    '--dest-tls-verify=false', ...credsArg('--dest-creds', c),
    image.mediaType.startsWith('application/vnd.docker.') ? `dir:${image.dir}` : `oci:${image.dir}:${image.layoutTag}`, `docker://${registry.host}/${repo}:${tag}`,
  ], { maxBuffer: 16 << 20 });
}

/** The exact manifest bytes a registry serves for repo:ref, read by skopeo. */
export async function inspectRaw(reg: string | RegistryLike, repo: string, ref: string, creds?: Creds): Promise<Buffer> {
  const registry = asRegistry(reg);
  const c = creds ?? registry.users?.[0];
  const target = ref.startsWith('sha256:') ? `${repo}@${ref}` : `${repo}:${ref}`;
  const { stdout } = await run('skopeo', ['--insecure-policy', 'inspect', '--raw', '--tls-verify=false', ...credsArg('--creds', c), `docker://${registry.host}/${target}`], { encoding: 'buffer', maxBuffer: 16 << 20 });
  return stdout;
}

export async function inspectDigest(registry: string | RegistryLike, repo: string, ref: string, creds?: Creds): Promise<string> {
  return sha256(await inspectRaw(registry, repo, ref, creds));
}
