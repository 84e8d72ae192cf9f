// `harbor-swr-bridge policies import --harbor <sourceId> [--dry-run]`: reads the Harbor's
// replication policies, publishes the ones the bridge can run to the `policies` topic (or, with
// --dry-run, prints them as config-file YAML), and says what it skipped and why.
import { stringify } from 'yaml';
import type { Bus } from '../bus/port.ts';
import { createBus } from '../bus/create.ts';
import type { Config } from '../config/schema.ts';
import { isBridgeError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { importFromHarbor, type HarborImportReport } from '../policy/importer.ts';
import type { HarborApi } from '../policy/harbor-api.ts';
import type { Policy } from '../policy/model.ts';
import { PolicyStore } from '../policy/store.ts';
import { PolicyTable } from '../policy/table.ts';

export interface PoliciesImportArgs {
  config: Config;
  sourceId: string;
  dryRun: boolean;
  logger: Logger;
  /** Where the report goes; default stdout. */
  out?: { write(s: string): unknown };
  /** Injected in tests; default: the configured bus. */
  bus?: Bus;
  api?: HarborApi;
}

export async function policiesImport(args: PoliciesImportArgs): Promise<number> {
  const out = args.out ?? process.stdout;
  let report: HarborImportReport;
  try {
    report = await importFromHarbor({ config: args.config, sourceId: args.sourceId, logger: args.logger, api: args.api });
  } catch (e) {
    out.write(`import failed: ${isBridgeError(e) ? e.message : (e as Error).message}\n`);
    return 1;
  }
  out.write(`Harbor "${args.sourceId}" (API ${report.api}${report.harborVersion ? `, ${report.harborVersion}` : ''}): ${report.imported.length + report.skipped.length} replication policies, ${report.imported.length} importable, ${report.skipped.length} skipped\n`);

  let status: Map<string, string> | undefined;
  if (!args.dryRun && report.imported.length) {
    const bus = args.bus ?? createBus(args.config, args.logger);
    try {
      if (!args.bus) await bus.connect();
      const store = new PolicyStore({ bus, table: new PolicyTable(), logger: args.logger });
      const s = await store.publishAll(report.imported, 'import');
      status = new Map([
        ...s.created.map((id) => [id, 'created'] as const),
        ...s.updated.map((id) => [id, 'updated'] as const),
        ...s.unchanged.map((id) => [id, 'unchanged'] as const),
      ]);
    } catch (e) {
      out.write(`publishing to the policies topic failed: ${isBridgeError(e) ? e.message : (e as Error).message}\n`);
      return 1;
    } finally {
      if (!args.bus) await bus.close().catch(() => undefined);
    }
  }

  if (report.imported.length) {
    out.write(args.dryRun ? '\nwould import (dry run, nothing published):\n' : '\nimported:\n');
    for (const p of report.imported) out.write(`  ${describe(p)}${status ? `  [${status.get(p.id) ?? '?'}]` : ''}\n`);
  }
  if (report.skipped.length) {
    out.write('\nskipped:\n');
    for (const s of report.skipped) out.write(`  #${s.harborId ?? '?'} "${s.name}": ${s.reason}\n`);
  }
  if (args.dryRun && report.imported.length) {
    out.write('\n# as config-file policies:\n');
    out.write(stringify({ policies: report.imported }));
  }
  return 0;
}

function describe(p: Policy): string {
  const trigger = p.trigger.type === 'scheduled' ? `scheduled "${p.trigger.trigger_settings?.cron}"` : p.trigger.type;
  return `${p.id}  "${p.name ?? ''}"  ${p.src_registry} → ${p.dest_registry}${p.dest_namespace ? `/${p.dest_namespace}` : ''}  ${trigger}${p.enabled ? '' : '  (disabled)'}${p.deletion ? '  deletion' : ''}`;
}
