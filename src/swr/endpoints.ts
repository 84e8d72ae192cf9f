import { BridgeError } from '../errors.ts';
import type { TargetConfig } from '../config/schema.ts';
import { swrDomain } from './names.ts';

export const SWR_DEFAULT_DOMAIN = 'myhuaweicloud.com';

export interface SwrEndpoints {
  /** Registry base URL, e.g. https://swr.cn-north-4.myhuaweicloud.com */
  registryUrl: string;
  /** Management API base URL, e.g. https://swr-api.cn-north-4.myhuaweicloud.com */
  apiUrl: string;
  /** Login prefix (`<project>@<AK>`); the region unless configured. Undefined when neither is known. */
  project: string | undefined;
  region: string | undefined;
}

export type SwrEndpointInput = Pick<TargetConfig, 'id' | 'region' | 'domain' | 'registryUrl' | 'apiUrl' | 'project'>;

function configError(id: string, message: string): BridgeError {
  return new BridgeError('HSB_SWR_CONFIG', `target ${id}: ${message}`, { retryable: false, context: { target: id } });
}

/**
 * The `<project>` of an AK/SK login (`<project>@<AK>`): the configured project, else the region.
 * Undefined when neither is set; config loading refuses AK/SK credentials then, for every edition.
 */
export function swrLoginProject(t: Pick<TargetConfig, 'project' | 'region'>): string | undefined {
  return t.project || t.region || undefined;
}

/** Derive SWR endpoints from a target: `swr.<region>.<domain>` and `swr-api.<region>.<domain>`,
 * each overridable (other clouds, private endpoints, tests). */
export function swrEndpoints(t: SwrEndpointInput): SwrEndpoints {
  const domain = swrDomain(t.domain || SWR_DEFAULT_DOMAIN);
  if (domain === undefined) throw configError(t.id, `domain "${t.domain}" is not a DNS domain`);
  const strip = (u: string) => u.replace(/\/+$/, '');
  const registryUrl = t.registryUrl ? strip(t.registryUrl) : t.region ? `https://swr.${t.region}.${domain}` : undefined;
  const apiUrl = t.apiUrl ? strip(t.apiUrl) : t.region ? `https://swr-api.${t.region}.${domain}` : undefined;
  if (!registryUrl) throw configError(t.id, 'an swr target needs a region or a registryUrl');
  if (!apiUrl) throw configError(t.id, 'an swr target without a region needs an apiUrl');
  return { registryUrl, apiUrl, project: swrLoginProject(t), region: t.region };
}

/**
 * A configured swr target's endpoints, as the replicator uses them. Enterprise: the management API
 * is not called, so without apiUrl or region the registry URL stands in for it.
 */
export function swrTargetEndpoints(t: SwrEndpointInput & Pick<TargetConfig, 'edition'>): SwrEndpoints {
  return swrEndpoints(t.edition === 'enterprise' && !t.apiUrl && !t.region ? { ...t, apiUrl: t.registryUrl } : t);
}
