import type { Config, SourceConfig, TargetConfig } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { BridgeError } from '../errors.ts';
import { RegistryClient } from '../registry/client.ts';
import { isImageManifestType, isIndexType } from '../registry/media-types.ts';
import type { ManifestData } from '../registry/manifest.ts';
import { parseManifest, type ParsedManifest } from './copy-plan.ts';
import { resolveSwrTarget } from '../swr/target.ts';
import { validateSwrPath } from '../swr/names.ts';

export interface SourceHandle {
  id: string;
  client: RegistryClient;
}

export interface TargetHandle {
  id: string;
  kind: 'swr' | 'registry';
  client: RegistryClient;
  manifestFormat: 'preserve' | 'docker';
  /** Before the first push into a repository: SWR makes sure the organisation exists. */
  prepare(destRepository: string, signal?: AbortSignal): Promise<void>;
  /** Removes one tag from the target; true when something was deleted. */
  deleteTag(repository: string, tag: string, signal?: AbortSignal): Promise<boolean>;
  close(): Promise<void>;
}

/** Registry clients for every configured source and target, built once per process. */
export class Endpoints {
  readonly #sources = new Map<string, SourceHandle>();
  readonly #targets = new Map<string, TargetHandle>();
  readonly #config: Config;
  readonly #log: Logger;

  constructor(config: Config, logger: Logger) {
    this.#config = config;
    this.#log = logger;
  }

  source(id: string): SourceHandle {
    let h = this.#sources.get(id);
    if (!h) {
      const s = this.#config.sources.find((x) => x.id === id);
      if (!s) throw new BridgeError('HSB_UNKNOWN_SOURCE', `no source with id "${id}" is configured`, { context: { source: id } });
      h = { id, client: sourceClient(s, this.#log) };
      this.#sources.set(id, h);
    }
    return h;
  }

  target(id: string): TargetHandle {
    let h = this.#targets.get(id);
    if (!h) {
      const t = this.#config.targets.find((x) => x.id === id);
      if (!t) throw new BridgeError('HSB_UNKNOWN_TARGET', `no target with id "${id}" is configured`, { context: { target: id } });
      h = t.kind === 'swr' ? swrTarget(t, this.#log) : registryTarget(t, this.#log);
      this.#targets.set(id, h);
    }
    return h;
  }

  async close(): Promise<void> {
    await Promise.all([
      ...[...this.#sources.values()].map((h) => h.client.close().catch(() => undefined)),
      ...[...this.#targets.values()].map((h) => h.close().catch(() => undefined)),
    ]);
  }
}

function sourceClient(s: SourceConfig, logger: Logger): RegistryClient {
  return new RegistryClient({ url: s.registryUrl ?? s.url, credentials: s.credentials, tls: s.tls, limits: s.limits }, { logger: logger.child({ registry: s.id }) });
}

function registryTarget(t: TargetConfig, logger: Logger): TargetHandle {
  const credentials = t.credentials && 'username' in t.credentials ? t.credentials : undefined;
  const client = new RegistryClient({ url: t.url!, credentials, tls: t.tls, limits: t.limits }, { logger: logger.child({ registry: t.id }) });
  return {
    id: t.id,
    kind: 'registry',
    client,
    manifestFormat: t.manifestFormat ?? 'preserve',
    prepare: async () => undefined,
    deleteTag: (repo, tag, signal) => deleteTagByManifest(client, repo, tag, signal),
    close: () => client.close(),
  };
}

function swrTarget(t: TargetConfig, logger: Logger): TargetHandle {
  const swr = resolveSwrTarget(t, { logger: logger.child({ target: t.id }) });
  const client = new RegistryClient({ url: swr.registryUrl, credentials: swr.login, tls: t.tls, limits: swr.limits }, { logger: logger.child({ registry: t.id }) });
  return {
    id: t.id,
    kind: 'swr',
    client,
    manifestFormat: swr.manifestFormat,
    // Names are checked before any traffic; the organisation is created on first use.
    prepare: async (repo, signal) => { await swr.api.ensureNamespace(validateSwrPath(repo).namespace, signal); },
    deleteTag: async (repo, tag, signal) => {
      const p = validateSwrPath(repo);
      return swr.api.deleteTag(p.namespace, p.repository, tag, signal);
    },
    close: async () => { await Promise.all([client.close(), swr.api.close()]); },
  };
}

/**
 * The distribution API deletes manifests, not tags: a manifest is only deleted when no other tag
 * in the target points at it, or at an index that lists it (a per-platform tag such as v1-amd64
 * beside the multi-platform v1), else that tag would vanish or break too.
 */
async function deleteTagByManifest(client: RegistryClient, repo: string, tag: string, signal?: AbortSignal): Promise<boolean> {
  const head = await client.headManifest(repo, tag, signal);
  if (!head) return false;
  const tags = await client.listTags(repo, signal);
  // Indexes already opened (several tags often name one index): none of them lists the manifest.
  const opened = new Set<string>();
  for (const other of tags) {
    if (other === tag) continue;
    const h = await client.headManifest(repo, other, signal);
    if (!h) continue;
    const why = h.digest === head.digest ? `its manifest is also tagged ${other}`
      // Opened unless plainly an image: some registries answer HEAD with a generic Content-Type.
      : !isImageManifestType(h.mediaType) && await indexLists(client, repo, h.digest, head.digest, opened, signal) ? `the index tagged ${other} lists its manifest`
        : undefined;
    if (why !== undefined) {
      throw new BridgeError('HSB_TARGET_TAG_SHARED',
        `cannot delete ${repo}:${tag} on this registry: ${why}, and the registry API deletes manifests, not tags`,
        { context: { repository: repo, tag, digest: head.digest, sharedWith: other } });
    }
  }
  return client.deleteManifest(repo, head.digest, signal);
}

/** Whether the index `index` (or an index nested in it) lists `digest`; an index that does not parse might. */
async function indexLists(client: RegistryClient, repo: string, index: string, digest: string, seen: Set<string>, signal?: AbortSignal): Promise<boolean> {
  if (seen.has(index)) return false;
  seen.add(index);
  let m: ManifestData;
  try {
    m = await client.getManifest(repo, index, undefined, signal);
  } catch (e) {
    // Gone meanwhile, or a nested child the registry never held: it lists nothing.
    if ((e as { code?: string }).code === 'HSB_REGISTRY_NOT_FOUND') return false;
    throw e;
  }
  let parsed: ParsedManifest;
  try {
    parsed = parseManifest(m.bytes, m.mediaType);
  } catch {
    return true;
  }
  if (parsed.kind !== 'index') return false;
  for (const child of parsed.doc.manifests) {
    if (child.digest === digest) return true;
    if (isIndexType(child.mediaType) && await indexLists(client, repo, child.digest, digest, seen, signal)) return true;
  }
  return false;
}
