// `harbor-swr-bridge check`: the config as the bridge would load it, and where each registry is,
// without connecting to the bus or to any registry (for a first set-up, or a CI step before deploy).
import type { Config } from '../config/schema.ts';
import { busLabel } from '../bus/create.ts';
import { busSecurityWarnings, kafkaSecurityLabel } from '../bus/kafka/security.ts';
import { isBridgeError } from '../errors.ts';
import { resolveSwrTarget } from '../swr/target.ts';
import { formatTable } from './status.ts';

/** Exit 0 with a summary when the config holds; 1 naming each SWR target the replicator could not set up. */
export async function checkCommand(a: { config: Config; file: string; out?: { write(s: string): unknown } }): Promise<number> {
  const out = a.out ?? process.stdout;
  const problems: string[] = [];
  const targets: string[][] = [];
  for (const t of a.config.targets) {
    if (t.kind === 'registry') {
      targets.push([t.id, 'registry', t.url ?? '']);
      continue;
    }
    try {
      // What the replicator derives for the target (endpoints, login, API auth), without a request.
      const r = resolveSwrTarget(t);
      await r.api.close();
      targets.push([t.id, `swr ${t.edition}, ${r.manifestFormat} manifests`, `${r.registryUrl} (API ${r.apiUrl})`]);
    } catch (e) {
      problems.push(isBridgeError(e) ? e.message : String(e));
    }
  }
  if (problems.length > 0) {
    out.write(`${a.file}: ${problems.join('\n')}\n`);
    return 1;
  }
  const n = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;
  out.write([
    `${a.file}: valid (${n(a.config.sources.length, 'source')}, ${n(a.config.targets.length, 'target')}, ${n(a.config.policies.length, 'policy', 'policies')} in the file)`,
    `bus: ${busLabel(a.config)}`,
    // How it would connect: TLS, client certificate, SASL mechanism and user; never the password.
    ...(a.config.bus.kind === 'kafka' ? [`bus security: ${kafkaSecurityLabel(a.config.bus)}`] : []),
    // What the start-up log would warn about (login or records in clear, Kafka settings on the embedded bus).
    ...busSecurityWarnings(a.config.bus).map((w) => `warning: ${w}`),
    '',
    formatTable(['SOURCE', 'KIND', 'URL'], a.config.sources.map((s) => [s.id, s.kind, s.url])),
    '',
    formatTable(['TARGET', 'KIND', 'PUSHES TO'], targets),
    '',
  ].join('\n'));
  return 0;
}
