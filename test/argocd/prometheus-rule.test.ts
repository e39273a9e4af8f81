// The sample alerts in config/prometheus/ and the metrics reference in docs/metrics.md, checked against the metrics
// the operator actually registers (src/observability/metrics.ts), so neither can drift into naming metrics that do
// not exist.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { Metrics } from '../../src/observability/metrics.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface PrometheusRule {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: { groups: { name: string; rules: Rule[] }[] };
}

const ruleFile = parse(readFileSync(path.join(root, 'config/prometheus/prometheus-rule.yaml'), 'utf8')) as PrometheusRule;
const rules = ruleFile.spec.groups.flatMap((g) => g.rules);

const registered = (await new Metrics().registry.getMetricsAsJSON()).map((m) => ({ name: m.name, type: String(m.type) }));
/** Every series name a query may use: histograms expose _bucket, _sum and _count, counters only their name. */
const queryable = new Set(
  registered.flatMap(({ name, type }) => (type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name])),
);
const keylessMetrics = registered.filter((m) => m.name.startsWith('keyless_')).map((m) => m.name);

/** Metric-looking identifiers in a PromQL expression: the operator's own and prom-client's default ones. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...withoutStrings.matchAll(/\b(?:keyless|process|nodejs)_[a-z0-9_]+\b/g)].map((m) => m[0]);
}

describe('PrometheusRule (config/prometheus/prometheus-rule.yaml)', () => {
  it('is a Prometheus Operator PrometheusRule in keyless-system', () => {
    assert.equal(ruleFile.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(ruleFile.kind, 'PrometheusRule');
    assert.equal(ruleFile.metadata.namespace, 'keyless-system');
    assert.ok(rules.length >= 8, `${rules.length} rules`);
  });

  it('uses only metrics the operator registers', () => {
    for (const rule of rules) {
      const names = metricNames(rule.expr);
      assert.ok(names.length > 0, `${rule.alert}: uses at least one Keyless metric`);
      for (const name of names) assert.ok(queryable.has(name), `${rule.alert} uses ${name}, which src/observability/metrics.ts does not register`);
    }
  });

  it('gives every alert a unique name, a hold time, a severity and a summary and description', () => {
    const names = rules.map((r) => r.alert);
    assert.equal(new Set(names).size, names.length, 'alert names are unique');
    for (const rule of rules) {
      assert.match(rule.alert ?? '', /^Keyless[A-Z]\w+$/, 'alerts are named Keyless...');
      assert.match(rule.for ?? '', /^\d+[smh]$/, `${rule.alert}: for`);
      assert.ok(['critical', 'warning', 'info'].includes(rule.labels?.['severity'] ?? ''), `${rule.alert}: severity`);
      assert.ok(rule.annotations?.['summary'], `${rule.alert}: summary`);
      assert.ok(rule.annotations?.['description'], `${rule.alert}: description`);
    }
  });

  it('covers reconcile errors, cloud throttling, informer restarts and a missing leader', () => {
    const used = new Set(rules.flatMap((r) => metricNames(r.expr)));
    for (const name of ['keyless_reconcile_total', 'keyless_cloud_api_calls_total', 'keyless_informer_restarts_total', 'keyless_leader']) {
      assert.ok(used.has(name), `an alert uses ${name}`);
    }
    assert.ok(rules.some((r) => /Throttling/.test(r.expr)), 'an alert matches throttling codes');
  });

  it('is documented alert by alert in docs/metrics.md', () => {
    const doc = readFileSync(path.join(root, 'docs/metrics.md'), 'utf8');
    for (const rule of rules) assert.match(doc, new RegExp(`\\| \`${rule.alert}\``), `${rule.alert} has a row in docs/metrics.md`);
  });
});

describe('docs/metrics.md', () => {
  it('lists every metric the operator registers, and no other', () => {
    const doc = readFileSync(path.join(root, 'docs/metrics.md'), 'utf8');
    const documented = [...doc.matchAll(/^\| `(keyless_[a-z0-9_]+)` \|/gm)].map((m) => m[1] ?? '');
    assert.deepEqual(documented.sort(), [...keylessMetrics].sort());
  });
});
