// Artifact labels for policies with label filters. Neither Harbor's webhooks nor the registry API
// carry labels, so they are read from Harbor's REST API: one artifact for an event, one listing per
// repository for a reconcile pass. Only Harbor sources have labels.
import type { Config, SourceConfig } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { SharedFlight } from '../registry/shared-flight.ts';
import { HarborApi, type HarborApiVersion, type HarborArtifact } from './harbor-api.ts';

export interface SourceLabels {
  /** Label names of one artifact (tag or digest); undefined when Harbor does not have it (any more). */
  of(repository: string, reference: string, signal?: AbortSignal): Promise<string[] | undefined>;
  /** Every artifact of a repository with its tags and label names. */
  listing(repository: string, signal?: AbortSignal): Promise<HarborArtifact[]>;
  /** The source's API generation (probed once; a failed probe is tried again by the next call). */
  apiVersion(signal?: AbortSignal): Promise<HarborApiVersion>;
}

export type HarborApiFactory = (source: SourceConfig, logger: Logger) => HarborApi;

const defaultFactory: HarborApiFactory = (source, logger) => HarborApi.forSource(source, logger);

export class HarborLabels {
  readonly #sources: Map<string, SourceConfig>;
  readonly #log: Logger;
  readonly #factory: HarborApiFactory;
  readonly #apis = new Map<string, SourceLabels>();
  readonly #clients: HarborApi[] = [];

  constructor(config: Pick<Config, 'sources'>, logger: Logger, factory: HarborApiFactory = defaultFactory) {
    this.#sources = new Map(config.sources.map((s) => [s.id, s]));
    this.#log = logger;
    this.#factory = factory;
  }

  /** Undefined for a source that is not a Harbor (a plain registry has no labels). */
  forSource(sourceId: string): SourceLabels | undefined {
    const known = this.#apis.get(sourceId);
    if (known) return known;
    const source = this.#sources.get(sourceId);
    if (!source || source.kind !== 'harbor') return undefined;
    const api = this.#factory(source, this.#log);
    this.#clients.push(api);
    // The API version is probed once; a failed probe is tried again by the next caller.
    const probe = new SharedFlight<HarborApiVersion>();
    let version: HarborApiVersion | undefined;
    const versionOf = async (signal?: AbortSignal): Promise<HarborApiVersion> => {
      if (version) return version;
      version = await probe.run('version', async () => (await api.detectVersion(signal)).api);
      return version;
    };
    const labels: SourceLabels = {
      of: async (repository, reference, signal) => api.artifactLabels(await versionOf(signal), repository, reference, signal),
      listing: async (repository, signal) => api.listArtifacts(await versionOf(signal), repository, signal),
      apiVersion: versionOf,
    };
    this.#apis.set(sourceId, labels);
    return labels;
  }

  /** Closes the API clients' connections; a later call opens new ones. */
  async close(): Promise<void> {
    const clients = this.#clients.splice(0);
    this.#apis.clear();
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
}

/**
 * Labels for each entry of a registry listing: a tag gets its artifact's labels (1.10: the tag's),
 * an untagged digest those of every artifact entry with that digest.
 */
export function labelsByReference(artifacts: readonly HarborArtifact[]): { byTag: Map<string, string[]>; byDigest: Map<string, string[]> } {
  const byTag = new Map<string, string[]>();
  const byDigest = new Map<string, string[]>();
  for (const a of artifacts) {
    for (const t of a.tags) byTag.set(t, a.labels);
    const have = byDigest.get(a.digest) ?? [];
    byDigest.set(a.digest, [...new Set([...have, ...a.labels])]);
  }
  return { byTag, byDigest };
}
