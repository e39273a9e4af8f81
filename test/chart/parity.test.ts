// One install, two forms: the Helm chart (charts/keyless) with its default values, for a release named keyless in
// keyless-system, renders the same objects as config/ — field by field, the CRDs and the optional pieces included.
// Both are written by hand; this test is what keeps them from drifting, and names every field where they part.
// Needs bin/helm (hack/helm.sh) and bin/kubectl, no cluster.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { repoPath } from '../support/cluster.ts';
import { objectKey, renderChart, renderKustomize, withoutHelmLabels, type KubeObject } from '../support/helm.ts';
import { objectDifferences } from '../support/object-diff.ts';

/**
 * What differs between the two renderings, per object: missing on either side, or each differing field. Helm's own
 * labels are not differences; `kustomizeOnly` are objects the chart leaves out on purpose.
 */
function drift(kustomize: KubeObject[], chart: KubeObject[], kustomizeOnly: string[] = []): string[] {
  const byKey = (objects: KubeObject[]) => new Map(objects.map((o) => [objectKey(o), o]));
  const k = byKey(kustomize);
  const c = byKey(chart.map(withoutHelmLabels));
  const problems: string[] = [];
  for (const key of [...new Set([...k.keys(), ...c.keys()])].sort()) {
    if (kustomizeOnly.includes(key)) continue;
    const [fromConfig, fromChart] = [k.get(key), c.get(key)];
    if (!fromChart) problems.push(`${key}: in config/, not in the chart`);
    else if (!fromConfig) problems.push(`${key}: in the chart, not in config/`);
    else problems.push(...objectDifferences(fromConfig, fromChart, { names: ['config/', 'the chart'] }).map((d) => `${key}: ${d}`));
  }
  return problems;
}

const hint =
  'config/ and charts/keyless must install the same objects. The chart copies crds/*.yaml to charts/keyless/crds/ and ' +
  'config/prometheus/prometheus-rule.yaml to charts/keyless/files/ verbatim (cp them again); the rest is in charts/keyless/templates/.';

describe('the Helm chart and config/ install the same objects', () => {
  it('with the default values: what config/default creates, but for the namespace, which Helm does not own', async () => {
    const kustomize = await renderKustomize('config/default');
    const chart = await renderChart({ includeCrds: true });
    assert.ok(kustomize.some((o) => o.kind === 'Namespace' && o.metadata.name === 'keyless-system'), 'config/default creates keyless-system');
    assert.ok(!chart.some((o) => o.kind === 'Namespace'), 'the chart installs into a namespace that exists (helm --create-namespace, docs/install.md)');
    assert.deepEqual(drift(kustomize, chart, ['Namespace/keyless-system']), [], hint);
  });

  it('with the ServiceMonitor, the PrometheusRule and verification on: what config/prometheus and config/verification add', async () => {
    const kustomize = await renderKustomize('config/default', 'config/prometheus', 'config/verification');
    const chart = await renderChart({
      includeCrds: true,
      values: { metrics: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true } }, verification: { enabled: true } },
    });
    assert.deepEqual(drift(kustomize, chart, ['Namespace/keyless-system']), [], hint);
  });

  it('names the version of the operator it installs as package.json does', () => {
    const chart = parse(readFileSync(repoPath('charts/keyless/Chart.yaml'), 'utf8')) as { appVersion: string };
    const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { version: string };
    assert.equal(chart.appVersion, pkg.version);
  });
});
