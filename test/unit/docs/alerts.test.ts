// docs/alerts.yaml is copied into users' Prometheus as it is: every expression must parse (with
// the Prometheus project's own PromQL grammar), and name only metrics, labels and label values
// the bridge exports, so that a rename here cannot leave an alert silently matching nothing.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { Registry } from 'prom-client';
import { parser } from '@prometheus-io/lezer-promql';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { WEBHOOK_RESULTS } from '../../../src/ingest/routes.ts';
import { TaskResultSchema } from '../../../src/replication/task.ts';

const ROOT = join(import.meta.dirname, '../../..');

type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

interface Rule { alert: string; expr: string; for: string; labels: Record<string, string>; annotations: Record<string, string> }

/** name → its label names and whether it is a histogram (whose _bucket, _sum and _count series exist). */
function exported(): Map<string, { labels: string[]; histogram: boolean }> {
  const registry = new Registry();
  createMetrics(registry);
  const out = new Map<string, { labels: string[]; histogram: boolean }>();
  for (const m of registry.getMetricsAsArray()) {
    const metric = m as unknown as { name: string; labelNames: string[] };
    out.set(metric.name, { labels: [...metric.labelNames], histogram: m.constructor.name === 'Histogram' });
  }
  return out;
}

/** Values a label may take, where the bridge fixes them. */
const VALUES: Record<string, readonly string[]> = {
  result: WEBHOOK_RESULTS,
  outcome: TaskResultSchema.shape.status.options,
};

interface Selector { metric: string; labels: string[]; matchers: { label: string; op: string; value: string }[] }

/** The syntax errors, vector selectors and grouping labels of one expression. */
function read(expr: string): { errors: number[]; selectors: Selector[]; grouping: string[] } {
  const tree = parser.parse(expr);
  const text = (n: SyntaxNode) => expr.slice(n.from, n.to);
  const errors: number[] = [];
  const selectors: Selector[] = [];
  const grouping: string[] = [];
  tree.iterate({
    enter: (ref) => {
      if (ref.type.isError) errors.push(ref.from);
      const n = ref.node;
      if (ref.name === 'VectorSelector') {
        const id = n.getChild('Identifier');
        const matchers = (n.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []).map((m) => ({
          label: text(m.getChild('LabelName')!),
          op: text(m.getChild('MatchOp')!),
          value: JSON.parse(text(m.getChild('StringLiteral')!)) as string,
        }));
        selectors.push({ metric: id ? text(id) : '', labels: matchers.map((m) => m.label), matchers });
      }
      if (ref.name === 'GroupingLabels') for (const l of n.getChildren('LabelName')) grouping.push(text(l));
    },
  });
  return { errors, selectors, grouping };
}

const rules = (): Rule[] => {
  const doc = parse(readFileSync(join(ROOT, 'docs/alerts.yaml'), 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
};

it('docs/alerts.yaml: every rule is complete, named once, and its severity is warning or critical', () => {
  const all = rules();
  assert.ok(all.length >= 5, `found ${all.length} rules`);
  assert.equal(new Set(all.map((r) => r.alert)).size, all.length, 'alert names are unique');
  for (const r of all) {
    assert.match(r.alert, /^HarborSwrBridge[A-Z][A-Za-z]+$/);
    assert.match(r.for, /^\d+[smh]$/, `${r.alert}: for`);
    assert.ok(['warning', 'critical'].includes(r.labels.severity!), `${r.alert}: severity`);
    assert.ok(r.annotations.summary && r.annotations.description, `${r.alert}: summary and description`);
  }
});

it('docs/alerts.yaml: every expression parses and names only exported metrics, labels and label values', () => {
  const metrics = exported();
  for (const r of rules()) {
    const { errors, selectors, grouping } = read(r.expr);
    assert.deepEqual(errors, [], `${r.alert}: PromQL syntax error at ${errors.join(', ')} in ${r.expr}`);
    assert.ok(selectors.length > 0, `${r.alert}: no metric`);
    const labelsInExpr = new Set<string>(['instance', 'job']);
    for (const s of selectors) {
      const suffix = /_(bucket|sum|count)$/.exec(s.metric);
      const base = suffix && metrics.get(s.metric.slice(0, suffix.index))?.histogram ? s.metric.slice(0, suffix.index) : s.metric;
      const m = metrics.get(base);
      assert.ok(m, `${r.alert}: ${s.metric} is not a metric the bridge exports`);
      const labels = [...m.labels, ...(suffix?.[1] === 'bucket' ? ['le'] : [])];
      for (const l of labels) labelsInExpr.add(l);
      for (const { label, op, value } of s.matchers) {
        assert.ok(labels.includes(label), `${r.alert}: ${s.metric} has no label ${label}`);
        const allowed = VALUES[label];
        if (!allowed) continue;
        const values = op === '=~' || op === '!~' ? value.split('|') : [value];
        for (const v of values) assert.ok(allowed.includes(v), `${r.alert}: ${label}="${v}" is never exported (${allowed.join(', ')})`);
      }
    }
    for (const g of grouping) assert.ok(labelsInExpr.has(g), `${r.alert}: grouped by ${g}, which none of its metrics has`);
    // An annotation can only name a label the expression keeps.
    for (const a of Object.values(r.annotations)) {
      for (const [, l] of a.matchAll(/\$labels\.([a-z_]+)/g)) assert.ok(grouping.includes(l!), `${r.alert}: annotation uses $labels.${l}, not kept by the expression`);
    }
  }
});
