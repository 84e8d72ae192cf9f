// `policies import --harbor <sourceId>`: reads a Harbor's replication policies and turns the ones
// the bridge can run into bridge policies. Kept: push mode (the source is the local Harbor, id 0),
// event_based or scheduled, enabled or not, whose destination registry is a configured target.
// Everything else is reported with the reason. The mapping is a pure function; the I/O is in
// harbor-api.ts.
import type { Config, TargetConfig } from '../config/schema.ts';
import { BridgeError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { swrTargetEndpoints } from '../swr/endpoints.ts';
import { HarborApi, HarborPolicySchema, type HarborApiVersion, type HarborPolicy, type HarborRegistry } from './harbor-api.ts';
import { PolicySchema, type Policy } from './model.ts';

export interface ImportSkip {
  /** Harbor's policy id; null when Harbor sent an entry without a readable id. */
  harborId: number | null;
  name: string;
  reason: string;
}

export interface ImportReport {
  imported: Policy[];
  skipped: ImportSkip[];
}

export interface HarborImportReport extends ImportReport {
  api: HarborApiVersion;
  harborVersion: string | undefined;
}

/** The bridge id of an imported policy: stable, so importing again updates in place. */
export function importedPolicyId(sourceId: string, harborId: number): string {
  return `harbor-${sourceId}-${harborId}`;
}

/** `host[:port]` of a registry URL, lowercased, default ports dropped; Harbor allows URLs without a scheme. */
export function registryHost(url: string): string | undefined {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url.trim()) ? url.trim() : `https://${url.trim()}`;
  try {
    const u = new URL(withScheme);
    return u.host.toLowerCase() || undefined;
  } catch {
    return undefined;
  }
}

/** The registry host a target pushes to (SWR: `swr.<region>.<domain>` unless overridden), resolved as the replicator does. */
export function targetHost(t: TargetConfig): string | undefined {
  if (t.kind === 'swr') {
    try {
      return registryHost(swrTargetEndpoints(t).registryUrl);
    } catch {
      return undefined;
    }
  }
  const url = t.registryUrl ?? t.url;
  return url ? registryHost(url) : undefined;
}

export interface MapInput {
  sourceId: string;
  targets: readonly TargetConfig[];
  /** Raw entries of Harbor's policy list. */
  policies: readonly unknown[];
  registries: readonly HarborRegistry[];
}

/** Pure: Harbor's policy list (either API version) → bridge policies plus the skipped ones. */
export function mapHarborPolicies(input: MapInput): ImportReport {
  const imported: Policy[] = [];
  const skipped: ImportSkip[] = [];
  const registries = new Map(input.registries.map((r) => [r.id, r]));
  const hosts = input.targets.map((t) => ({ id: t.id, host: targetHost(t) }));
  for (const raw of input.policies) {
    const parsed = HarborPolicySchema.safeParse(raw);
    if (!parsed.success) {
      const r = raw as { id?: unknown; name?: unknown } | null;
      skipped.push({
        harborId: typeof r?.id === 'number' ? r.id : null,
        name: typeof r?.name === 'string' ? r.name : '',
        reason: `Harbor sent this policy in a shape the importer does not understand (${issuesText(parsed.error.issues)})`,
      });
      continue;
    }
    const result = mapOne(parsed.data, input.sourceId, registries, hosts);
    if ('reason' in result) skipped.push({ harborId: parsed.data.id, name: parsed.data.name ?? '', reason: result.reason });
    else imported.push(result.policy);
  }
  return { imported, skipped };
}

function mapOne(
  h: HarborPolicy,
  sourceId: string,
  registries: Map<number, HarborRegistry>,
  hosts: { id: string; host: string | undefined }[],
): { policy: Policy } | { reason: string } {
  const srcId = h.src_registry?.id ?? 0;
  const destId = h.dest_registry?.id ?? 0;
  if (srcId !== 0) {
    const src = registries.get(srcId) ?? h.src_registry!;
    return { reason: `pull-mode policy (source is registry ${describe(src)}): the bridge only replicates from this Harbor outward` };
  }
  if (destId === 0) return { reason: 'no destination registry' };

  const triggerType = h.trigger?.type || 'manual';
  if (triggerType === 'manual') {
    return { reason: 'manual trigger: the bridge replicates on events or on a schedule; set the trigger to event_based or scheduled to import it' };
  }
  if (triggerType !== 'event_based' && triggerType !== 'scheduled') return { reason: `unknown trigger type "${triggerType}"` };

  const dest = registries.get(destId) ?? h.dest_registry!;
  if (!dest.url) return { reason: `destination registry id ${destId} is not in Harbor's registry list` };
  const host = registryHost(dest.url);
  const matches = hosts.filter((t) => t.host !== undefined && t.host === host);
  if (matches.length === 0) return { reason: `destination registry ${describe(dest)} matches no configured target (by host ${host ?? '?'})` };
  if (matches.length > 1) return { reason: `destination registry ${describe(dest)} matches several targets (${matches.map((m) => m.id).join(', ')}); add the policy through the API instead` };

  const filters: Record<string, unknown>[] = [];
  for (const f of h.filters ?? []) {
    if (f.type === 'resource' && f.value === 'chart') {
      return { reason: 'replicates Helm charts (resource filter "chart"), which the bridge does not copy' };
    }
    const out: Record<string, unknown> = { type: f.type, value: f.type === 'label' && typeof f.value === 'string' ? [f.value] : f.value };
    // Harbor sends `decoration: ""` (or nothing) on name and resource filters, where it means nothing.
    if (f.decoration && (f.type === 'tag' || f.type === 'label')) out.decoration = f.decoration;
    filters.push(out);
  }

  const candidate = {
    id: importedPolicyId(sourceId, h.id),
    ...(h.name ? { name: h.name } : {}),
    ...(h.description ? { description: h.description } : {}),
    // Harbor 2.x omits false booleans; 1.10 always sends them.
    enabled: h.enabled ?? false,
    src_registry: sourceId,
    dest_registry: matches[0]!.id,
    dest_namespace: h.dest_namespace ?? '',
    // 1.10 has no replace count: its rule (namespace + last path element) is 2.x's legacy -1.
    dest_namespace_replace_count: h.dest_namespace_replace_count ?? -1,
    filters,
    trigger: triggerType === 'scheduled'
      ? { type: 'scheduled', trigger_settings: { cron: h.trigger?.trigger_settings?.cron ?? '' } }
      : { type: 'event_based' },
    deletion: h.replicate_deletion ?? h.deletion ?? false,
    override: h.override ?? false,
    // Harbor stores a negative speed as 0; both mean unlimited.
    speed: h.speed === undefined || h.speed === null || h.speed < 0 ? -1 : h.speed,
    copy_by_chunk: h.copy_by_chunk ?? false,
  };
  const parsed = PolicySchema.safeParse(candidate);
  if (!parsed.success) return { reason: `does not fit the bridge's policy model: ${issuesText(parsed.error.issues)}` };
  return { policy: parsed.data };
}

function describe(r: HarborRegistry): string {
  return `"${r.name ?? `#${r.id}`}"${r.url ? ` (${r.url})` : ''}`;
}

function issuesText(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues.map((i) => `${i.path.length ? i.path.map(String).join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** Reads the Harbor configured as `sourceId` and maps its policies. */
export async function importFromHarbor(opts: { config: Config; sourceId: string; logger: Logger; api?: HarborApi }): Promise<HarborImportReport> {
  const source = opts.config.sources.find((s) => s.id === opts.sourceId);
  if (!source) {
    throw new BridgeError('HSB_POLICY_IMPORT_SOURCE', `no source "${opts.sourceId}" in the config (sources: ${opts.config.sources.map((s) => s.id).join(', ')})`, {
      retryable: false, context: { source: opts.sourceId },
    });
  }
  if (source.kind !== 'harbor') {
    throw new BridgeError('HSB_POLICY_IMPORT_SOURCE', `source "${source.id}" is a plain registry, not a Harbor: it has no replication policies`, {
      retryable: false, context: { source: source.id },
    });
  }
  const api = opts.api ?? HarborApi.forSource(source, opts.logger);
  try {
    const { api: version, harborVersion } = await api.detectVersion();
    const registries = await api.listRegistries(version);
    const policies = await api.listPolicies(version);
    opts.logger.info({ source: source.id, api: version, harborVersion, policies: policies.length, registries: registries.length }, 'read Harbor replication policies');
    return { api: version, harborVersion, ...mapHarborPolicies({ sourceId: source.id, targets: opts.config.targets, policies, registries }) };
  } finally {
    if (!opts.api) await api.close();
  }
}
