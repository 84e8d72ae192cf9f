import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { busLabel, createBus } from '../bus/create.ts';
import { isViewGroup, type Bus, type BusInspection } from '../bus/port.ts';
import { formatTable } from './status.ts';

/**
 * Renders `bus inspect`: per topic its partitions' low/high offsets and depth; per group its lag.
 * Read-only views' groups (every `status` run leaves one) are counted, not listed; --json has them all.
 */
export function renderInspection(ins: BusInspection, bus: string): string {
  const topics = formatTable(['topic', 'partitions', 'records', 'offsets (low..high per partition)'], ins.topics.map((t) => [
    t.topic,
    String(t.partitions.length),
    String(t.partitions.reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0)),
    t.partitions.map((p) => `${p.partition}:${p.low}..${p.high}`).join(' '),
  ]));
  const views = ins.groups.filter((g) => isViewGroup(g.group)).length;
  const groups = formatTable(['group', 'topic', 'partition', 'committed', 'lag'], ins.groups.filter((g) => !isViewGroup(g.group)).flatMap((g) => g.offsets.map((o) => [
    g.group, o.topic, String(o.partition), o.committed, String(o.lag),
  ])));
  const note = views > 0 ? `\n${views} read-only view group(s) (status runs, policy followers) not listed; --json lists them\n` : '';
  return `bus: ${bus}\n\n${topics}\n\n${groups}\n${note}`;
}

export async function busCommand(a: { config: Config; args: string[]; logger: Logger; out?: (s: string) => void; bus?: Bus }): Promise<number> {
  const out = a.out ?? ((s: string) => process.stdout.write(s));
  if (a.args[0] !== 'inspect') {
    process.stderr.write('usage: harbor-swr-bridge bus inspect [--json]\n');
    return 2;
  }
  const bus = a.bus ?? createBus(a.config, a.logger, { existing: true });
  try {
    if (!a.bus) await bus.connect();
    const ins = await bus.inspect();
    out(a.args.includes('--json') ? `${JSON.stringify(ins, null, 2)}\n` : renderInspection(ins, busLabel(a.config)));
    return 0;
  } catch (e) {
    process.stderr.write(`inspecting the bus failed: ${(e as Error).message}\n`);
    return 1;
  } finally {
    if (!a.bus) await bus.close().catch(() => undefined);
  }
}
