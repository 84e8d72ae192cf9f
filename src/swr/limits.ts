import type { LimitsConfig, TargetConfig } from '../config/schema.ts';

// SWR allows about 20 requests/s per tenant before answering 503; staying under it keeps
// retries rare. Concurrency matches the schema's default.
export const SWR_DEFAULT_REQUESTS_PER_SECOND = 15;
export const SWR_DEFAULT_CONCURRENCY = 16;

export type ManifestFormat = 'preserve' | 'docker';

/** The target's limits with SWR's defaults filled in where the config left them open. */
export function swrLimits(configured?: Partial<LimitsConfig>): LimitsConfig {
  return {
    ...configured,
    concurrency: configured?.concurrency ?? SWR_DEFAULT_CONCURRENCY,
    requestsPerSecond: configured?.requestsPerSecond ?? SWR_DEFAULT_REQUESTS_PER_SECOND,
  };
}

/** SWR Basic rejects OCI indexes and manifests, so convert to Docker formats; Enterprise keeps OCI. */
export function defaultManifestFormat(edition: TargetConfig['edition']): ManifestFormat {
  return edition === 'enterprise' ? 'preserve' : 'docker';
}
