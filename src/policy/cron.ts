import { BridgeError } from '../errors.ts';

// Harbor's cron dialect (robfig/cron parser with Second|Minute|Hour|Dom|Month|Dow): exactly six
// fields `sec min hour dom month dow`, each `*`, `?`, a value, `a-b`, with `/step`, or a comma
// list of those; month and weekday also take names (JAN, MON). Evaluated in UTC.

export type CronSchedule = {
  readonly source: string;
  readonly second: ReadonlySet<number>;
  readonly minute: ReadonlySet<number>;
  readonly hour: ReadonlySet<number>;
  readonly dayOfMonth: ReadonlySet<number>;
  readonly month: ReadonlySet<number>;
  /** 0 = Sunday. */
  readonly dayOfWeek: ReadonlySet<number>;
  /** As robfig: when either day field is an unstepped `*`/`?`, both must match; else either. */
  readonly dayStar: boolean;
};

type FieldSpec = { name: string; min: number; max: number; names?: Record<string, number> };

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

const FIELDS: readonly FieldSpec[] = [
  { name: 'seconds', min: 0, max: 59 },
  { name: 'minutes', min: 0, max: 59 },
  { name: 'hours', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: Object.fromEntries(MONTHS.map((m, i) => [m, i + 1])) },
  { name: 'day of week', min: 0, max: 6, names: Object.fromEntries(DAYS.map((d, i) => [d, i])) },
];

function cronError(expr: string, why: string): BridgeError {
  return new BridgeError('HSB_POLICY_CRON_INVALID', `invalid cron "${expr}": ${why}`, { retryable: false, context: { cron: expr } });
}

export function parseCron(expr: string): CronSchedule {
  const fields = expr.trim().split(/\s+/).filter((f) => f !== '');
  if (fields.length !== 6) {
    throw cronError(expr, `expected 6 fields (seconds minutes hours day-of-month month day-of-week), got ${fields.length}`);
  }
  const parsed = fields.map((f, i) => parseField(expr, f, FIELDS[i]!));
  const [second, minute, hour, dom, month, dow] = parsed as [Parsed, Parsed, Parsed, Parsed, Parsed, Parsed];
  return {
    source: expr,
    second: second.values,
    minute: minute.values,
    hour: hour.values,
    dayOfMonth: dom.values,
    month: month.values,
    dayOfWeek: dow.values,
    dayStar: dom.star || dow.star,
  };
}

type Parsed = { values: Set<number>; star: boolean };

function parseField(expr: string, field: string, spec: FieldSpec): Parsed {
  const values = new Set<number>();
  let star = false;
  for (const part of field.split(',')) {
    const fail = (why: string) => cronError(expr, `${spec.name} field "${part}": ${why}`);
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined || range === undefined || range === '') throw fail('malformed');
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText)) throw fail('step must be a positive number');
      step = Number(stepText);
      if (step < 1) throw fail('step must be a positive number');
    }
    let lo: number;
    let hi: number;
    if (range === '*' || range === '?') {
      lo = spec.min;
      hi = spec.max;
      if (step === 1) star = true;
    } else {
      const bounds = range.split('-');
      if (bounds.length > 2) throw fail('malformed range');
      lo = value(bounds[0]!, spec, fail);
      // `n/step` runs from n to the field's maximum, as robfig does.
      hi = bounds.length === 2 ? value(bounds[1]!, spec, fail) : stepText !== undefined ? spec.max : lo;
      if (hi < lo) throw fail(`range start ${lo} is after its end ${hi}`);
    }
    for (let v = lo; v <= hi; v += step) values.add(v);
  }
  return { values, star };
}

function value(text: string, spec: FieldSpec, fail: (why: string) => BridgeError): number {
  const named = spec.names?.[text.toLowerCase()];
  if (named !== undefined) return named;
  if (!/^\d+$/.test(text)) throw fail(`"${text}" is not a number${spec.names ? ' or name' : ''}`);
  const v = Number(text);
  if (v < spec.min || v > spec.max) throw fail(`${v} is outside ${spec.min}-${spec.max}`);
  return v;
}

function dayMatches(s: CronSchedule, d: Date): boolean {
  const dom = s.dayOfMonth.has(d.getUTCDate());
  const dow = s.dayOfWeek.has(d.getUTCDay());
  return s.dayStar ? dom && dow : dom || dow;
}

/** The first time strictly after `after` (whole seconds, UTC) that the schedule fires. */
export function nextRun(schedule: CronSchedule, after: Date): Date {
  const t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
  const limit = t.getUTCFullYear() + 5;
  // Advance the coarsest field that does not match, resetting the finer ones (robfig's walk).
  while (t.getUTCFullYear() <= limit) {
    if (!schedule.month.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!dayMatches(schedule, t)) {
      t.setUTCDate(t.getUTCDate() + 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!schedule.hour.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
      continue;
    }
    if (!schedule.minute.has(t.getUTCMinutes())) {
      t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
      continue;
    }
    if (!schedule.second.has(t.getUTCSeconds())) {
      t.setUTCSeconds(t.getUTCSeconds() + 1, 0);
      continue;
    }
    return t;
  }
  throw cronError(schedule.source, 'it never fires (no matching time within five years)');
}

/**
 * Harbor's extra rule for replication schedules (controller/replication/model Validate): the
 * seconds field must be `0` and the minutes field must not be `*`. Only the literal `*`: Harbor
 * accepts `?` there (every minute to its cron library too), so a policy it runs is taken as is.
 * Returns the reason, or undefined when the expression is acceptable.
 */
export function replicationCronError(expr: string): string | undefined {
  try {
    nextRun(parseCron(expr), new Date(Date.UTC(2024, 0, 1)));
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  const fields = expr.trim().split(/\s+/);
  if (fields[0] !== '0') return `invalid cron "${expr}": the seconds field must be 0 for a replication schedule`;
  if (fields[1] === '*') return `invalid cron "${expr}": the minutes field must not be "*" for a replication schedule`;
  return undefined;
}
