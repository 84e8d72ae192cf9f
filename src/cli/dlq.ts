// `harbor-swr-bridge dlq list [--target T] [--policy P] [--code C] [--limit N] [--offset N] [--json]`
// `harbor-swr-bridge dlq replay (--all | --id ID [--id ID ...]) [--target T] [--policy P] [--code C] [--json]`
// Works on the bus directly, so it needs no running bridge.
import { parseArgs } from 'node:util';
import type { Bus } from '../bus/port.ts';
import { createBus } from '../bus/create.ts';
import type { Config } from '../config/schema.ts';
import { isBridgeError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { DlqStore, type DlqFilter } from '../replication/dlq-store.ts';
import { clip, formatTable, plural, type Output } from './status.ts';

export interface DlqCommandArgs {
  config: Config;
  /** After `dlq`: ['list', ...] or ['replay', '--all'] or ['replay', '--id', X, '--id', Y]. */
  args: string[];
  logger: Logger;
  out?: Output;
  /** Usage errors (default stderr). */
  err?: Output;
  /** Injected in tests; default: the configured bus, connected and closed here. */
  bus?: Bus;
}

export const DLQ_USAGE = `usage: harbor-swr-bridge dlq list [--target T] [--policy P] [--code C] [--limit N] [--offset N] [--json]
       harbor-swr-bridge dlq replay (--all | --id ID [--id ID ...]) [--target T] [--policy P] [--code C] [--json]
`;

export async function dlqCommand(a: DlqCommandArgs): Promise<number> {
  const out = a.out ?? process.stdout;
  const err = a.err ?? process.stderr;
  let parsed;
  try {
    parsed = parseArgs({
      args: a.args,
      allowPositionals: true,
      strict: true,
      options: {
        id: { type: 'string', multiple: true },
        all: { type: 'boolean', default: false },
        target: { type: 'string' },
        policy: { type: 'string' },
        code: { type: 'string' },
        limit: { type: 'string', default: '100' },
        offset: { type: 'string', default: '0' },
        json: { type: 'boolean', default: false },
        config: { type: 'string', short: 'c' },
      },
    });
  } catch (e) {
    err.write(`${(e as Error).message}\n${DLQ_USAGE}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const [sub, ...extra] = positionals;
  const filter: DlqFilter = { target: v.target, policy: v.policy, code: v.code };
  const ids = v.id ?? [];
  if (extra.length || (sub !== 'list' && sub !== 'replay')) {
    err.write(DLQ_USAGE);
    return 2;
  }
  if (sub === 'replay' && v.all === (ids.length > 0)) {
    err.write(`dlq replay needs either --all or one or more --id\n${DLQ_USAGE}`);
    return 2;
  }
  const limit = Number(v.limit);
  const offset = Number(v.offset);
  if (!Number.isInteger(limit) || limit < 0 || !Number.isInteger(offset) || offset < 0) {
    err.write(`--limit and --offset take non-negative integers\n${DLQ_USAGE}`);
    return 2;
  }

  const bus = a.bus ?? createBus(a.config, a.logger, { existing: true });
  try {
    if (!a.bus) await bus.connect();
    const store = new DlqStore({ bus, logger: a.logger });
    if (sub === 'list') {
      const page = await store.list({ ...filter, limit, offset });
      if (v.json) out.write(`${JSON.stringify(page, null, 2)}\n`);
      else if (page.total === 0) out.write('the dead-letter queue is empty\n');
      else {
        out.write(`${formatTable(['ID', 'FAILED AT', 'ATTEMPTS', 'TARGET', 'REPOSITORY', 'REFERENCE', 'ERROR'], page.items.map((l) => [
          l.id, l.failedAt, String(l.attempts), l.task?.targetId ?? '-', l.task?.destRepository ?? '(unparseable task)',
          l.task ? (l.task.tag ?? l.task.digest ?? '') : '-', clip(`${l.error.code}: ${l.error.message}`, 80),
        ]))}\n`);
        out.write(`${plural(page.total, 'dead letter')}${page.items.length < page.total ? ` (showing ${page.items.length ? `${offset + 1}-${offset + page.items.length}` : 'none'})` : ''}\n`);
      }
      return 0;
    }
    const r = await store.replay({ ids: v.all ? undefined : ids, all: v.all, filter });
    if (v.json) out.write(`${JSON.stringify(r, null, 2)}\n`);
    else {
      out.write(r.replayed.length ? `replayed ${plural(r.replayed.length, 'dead letter')} onto tasks:\n${r.replayed.map((id) => `  ${id}\n`).join('')}` : 'nothing replayed\n');
      if (r.missing.length) out.write(`not replayed:\n${r.missing.map((id) => `  ${id}: ${r.reasons[id]}\n`).join('')}`);
    }
    return r.missing.length ? 1 : 0;
  } catch (e) {
    out.write(`dlq ${sub} failed: ${isBridgeError(e) ? e.message : (e as Error).message}\n`);
    return 1;
  } finally {
    if (!a.bus) await bus.close().catch(() => undefined);
  }
}
