// What the chart renders from its values, with the real Helm (bin/helm): helm lint, the default values, a values
// file with every option set (test/chart/all-values.yaml), leader election off, and values the schema refuses.
// Needs bin/helm (hack/helm.sh), no cluster.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { V1ClusterRoleBinding, V1Deployment, V1EnvVar, V1ValidatingAdmissionPolicy } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { repoPath } from '../support/cluster.ts';
import { CHART, helm, objectKey, parseObjects, renderChart, valuePaths, type KubeObject } from '../support/helm.ts';

const allValues = repoPath('test/chart/all-values.yaml');

function only<T>(objects: KubeObject[], kind: string): T {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `one ${kind} among ${objects.map(objectKey).join(', ')}`);
  return found[0] as unknown as T;
}

function container(objects: KubeObject[]) {
  const c = only<V1Deployment>(objects, 'Deployment').spec?.template.spec?.containers[0];
  assert.ok(c, 'the Deployment has a container');
  return c;
}

function envOf(objects: KubeObject[]): Record<string, string | undefined> {
  return Object.fromEntries((container(objects).env ?? []).map((e: V1EnvVar) => [e.name, e.value ?? `fieldRef:${e.valueFrom?.fieldRef?.fieldPath}`]));
}

function has(document: unknown, dotted: string): boolean {
  let node: unknown = document;
  for (const key of dotted.split('.')) {
    if (typeof node !== 'object' || node === null || !(key in node)) return false;
    node = (node as Record<string, unknown>)[key];
  }
  return true;
}

/** The environment variables the operator reads (src/, tests and fakes aside): KEYLESS_* and the AWS SDK's endpoint overrides. */
function variablesTheOperatorReads(): string[] {
  const files = (readdirSync(repoPath('src'), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.includes('fake'));
  const names = new Set<string>();
  for (const file of files) {
    for (const m of readFileSync(path.join(repoPath('src'), file), 'utf8').matchAll(/['"]((?:KEYLESS|AWS_ENDPOINT_URL)[A-Z0-9_]*)['"]/g)) names.add(m[1] ?? '');
  }
  return [...names].sort();
}

describe('helm lint', () => {
  it('passes --strict with the default values', async () => {
    const { stdout } = await helm(['lint', '--strict', CHART]);
    assert.match(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('passes --strict with every value set', async () => {
    const { stdout } = await helm(['lint', '--strict', CHART, '--values', allValues]);
    assert.match(stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });
});

describe('helm template with the default values', () => {
  it('sets no operator setting, so the operator’s own defaults apply; only the V8 heap is sized for the memory limit', async () => {
    assert.deepEqual(envOf(await renderChart()), {
      POD_NAMESPACE: 'fieldRef:metadata.namespace',
      POD_NAME: 'fieldRef:metadata.name',
      NODE_OPTIONS: '--max-old-space-size=128 --max-semi-space-size=4',
    });
  });

  it('renders the operator with its probes and resources', async () => {
    const c = container(await renderChart());
    assert.equal(c.image, 'keyless:dev');
    assert.deepEqual(c.livenessProbe, { httpGet: { path: '/healthz', port: 'http' }, initialDelaySeconds: 5, periodSeconds: 20 });
    assert.deepEqual(c.readinessProbe, { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 10 });
    assert.deepEqual(c.resources, { requests: { cpu: '100m', memory: '192Mi' }, limits: { memory: '320Mi' } });
  });

  it('leaves the optional pieces out: no ServiceMonitor, PrometheusRule, verification RBAC or admission policy', async () => {
    assert.deepEqual((await renderChart()).map(objectKey).sort(), [
      'ClusterRole/keyless-operator',
      'ClusterRoleBinding/keyless-operator',
      'Deployment/keyless-system/keyless-operator',
      'Role/keyless-system/keyless-leader-election',
      'RoleBinding/keyless-system/keyless-leader-election',
      'Service/keyless-system/keyless-operator-metrics',
      'ServiceAccount/keyless-system/keyless-operator',
    ]);
  });
});

describe('helm template with every value set (test/chart/all-values.yaml)', () => {
  const render = () => renderChart({ release: 'platform-keyless', namespace: 'ops', valuesFiles: [allValues] });

  it('sets every value values.yaml has', () => {
    const defaults = parse(readFileSync(path.join(CHART, 'values.yaml'), 'utf8')) as unknown;
    const all = parse(readFileSync(allValues, 'utf8')) as unknown;
    assert.deepEqual(valuePaths(defaults).filter((p) => !has(all, p)), []);
  });

  it('turns each operator setting into its environment variable, after the pod’s own and before extraEnv', async () => {
    assert.deepEqual(Object.entries(envOf(await render())), [
      ['POD_NAMESPACE', 'fieldRef:metadata.namespace'],
      ['POD_NAME', 'fieldRef:metadata.name'],
      ['AWS_ENDPOINT_URL', 'https://aws.example'],
      ['AWS_ENDPOINT_URL_EKS', 'https://eks.example'],
      ['AWS_ENDPOINT_URL_EKS_AUTH', 'https://eks-auth.example'],
      ['AWS_ENDPOINT_URL_IAM', 'https://iam.example'],
      ['AWS_ENDPOINT_URL_STS', 'https://sts.example'],
      ['KEYLESS_AWS_MAX_ATTEMPTS', '5'],
      ['KEYLESS_AZURE_AUTHORITY_HOST', 'https://login.example'],
      ['KEYLESS_AZURE_CREDENTIAL', 'static'],
      ['KEYLESS_AZURE_ENDPOINT', 'https://management.example'],
      ['KEYLESS_AZURE_MAX_RETRIES', '0'],
      ['KEYLESS_CLOUD_CALL_TIMEOUT_SECONDS', '20'],
      ['KEYLESS_CLOUD_READS_PER_SECOND', '50'],
      ['KEYLESS_CLOUD_WRITES_PER_SECOND', '2.5'],
      ['KEYLESS_CLOUD_WRITE_BURST', '3'],
      ['KEYLESS_CLUSTER_NAME', 'prod-use1'],
      ['KEYLESS_GCP_ACCESS_TOKEN', 'emulator-token'],
      ['KEYLESS_GCP_ENDPOINT', 'https://googleapis.example'],
      ['KEYLESS_LOG_LEVEL', 'debug'],
      ['KEYLESS_RECONCILE_TIMEOUT_SECONDS', '120'],
      ['KEYLESS_RESYNC_SECONDS', '300'],
      ['KEYLESS_VERIFY_GRACE_SECONDS', '0'],
      ['KEYLESS_WORKERS', '8'],
      ['NODE_OPTIONS', '--max-old-space-size=192'],
      ['AWS_REGION', 'eu-west-1'],
    ]);
  });

  it('can set every environment variable the operator reads, but the two the chart fixes', async () => {
    const settable = new Set([...Object.keys(envOf(await render())), ...Object.keys(envOf(await renderChart({ values: { leaderElection: { enabled: false } } })))]);
    // KEYLESS_HTTP_PORT: the image, the probes and the Service use 8080. KEYLESS_LEADER_ELECTION_NAMESPACE: the Lease
    // lives in POD_NAMESPACE, the release namespace, where the chart's Role grants it.
    const fixed = ['KEYLESS_HTTP_PORT', 'KEYLESS_LEADER_ELECTION_NAMESPACE'];
    const read = variablesTheOperatorReads();
    assert.ok(read.includes('KEYLESS_WORKERS') && read.includes('KEYLESS_AZURE_ENDPOINT'), `found the operator's variables: ${read.join(', ')}`);
    assert.deepEqual(read.filter((name) => !settable.has(name) && !fixed.includes(name)), []);
  });

  it('renders the image by digest, the pod’s scheduling, resources and probes as given', async () => {
    const deployment = only<V1Deployment>(await render(), 'Deployment');
    const pod = deployment.spec?.template;
    const c = container(await render());
    assert.equal(deployment.spec?.replicas, 2);
    assert.equal(c.image, 'registry.example/platform/keyless@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef');
    assert.equal(c.imagePullPolicy, 'Always');
    assert.deepEqual(pod?.spec?.imagePullSecrets, [{ name: 'registry-credentials' }]);
    assert.deepEqual(pod?.metadata?.labels, { 'app.kubernetes.io/name': 'keyless', 'app.kubernetes.io/component': 'operator', 'azure.workload.identity/use': 'true' });
    assert.deepEqual(pod?.metadata?.annotations, { 'example.com/team': 'platform' });
    assert.equal(pod?.spec?.priorityClassName, 'system-cluster-critical');
    assert.deepEqual(pod?.spec?.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.deepEqual(pod?.spec?.tolerations, [{ key: 'CriticalAddonsOnly', operator: 'Exists' }]);
    assert.equal(pod?.spec?.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0]?.weight, 100);
    assert.equal(pod?.spec?.terminationGracePeriodSeconds, 60);
    assert.deepEqual(c.resources, { requests: { cpu: '200m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } });
    assert.deepEqual(c.livenessProbe, { httpGet: { path: '/healthz', port: 'http' }, initialDelaySeconds: 10, periodSeconds: 30, timeoutSeconds: 3 });
    assert.deepEqual(c.readinessProbe, { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5, failureThreshold: 6 });
  });

  it('annotates the operator’s ServiceAccount with its own cloud identity', async () => {
    const sa = only<KubeObject>(await render(), 'ServiceAccount');
    assert.deepEqual(sa.metadata.annotations, { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/keyless-operator' });
  });

  it('adds the ServiceMonitor and the PrometheusRule with the labels Prometheus selects', async () => {
    const objects = await render();
    const monitor = only<KubeObject & { spec: { endpoints: { interval: string }[] } }>(objects, 'ServiceMonitor');
    const rule = only<KubeObject & { spec: { groups: { rules: { alert: string }[] }[] } }>(objects, 'PrometheusRule');
    assert.equal(monitor.spec.endpoints[0]?.interval, '15s');
    assert.equal(monitor.metadata.labels?.['release'], 'kube-prometheus-stack');
    assert.equal(rule.metadata.labels?.['release'], 'kube-prometheus-stack');
    assert.ok(rule.spec.groups.flatMap((g) => g.rules).some((r) => r.alert === 'KeylessNoLeader'));
  });

  it('names every object after the release, in its namespace, and the verification policy the operator’s ServiceAccount', async () => {
    const objects = await render();
    assert.deepEqual(objects.map(objectKey).sort(), [
      'ClusterRole/platform-keyless-operator',
      'ClusterRole/platform-keyless-verification',
      'ClusterRoleBinding/platform-keyless-operator',
      'ClusterRoleBinding/platform-keyless-verification',
      'Deployment/ops/platform-keyless-operator',
      'PrometheusRule/ops/platform-keyless',
      'Role/ops/platform-keyless-leader-election',
      'RoleBinding/ops/platform-keyless-leader-election',
      'Service/ops/platform-keyless-operator-metrics',
      'ServiceAccount/ops/platform-keyless-operator',
      'ServiceMonitor/ops/platform-keyless-operator',
      'ValidatingAdmissionPolicy/platform-keyless-verification-tokens',
      'ValidatingAdmissionPolicyBinding/platform-keyless-verification-tokens',
    ]);
    const binding = objects.find((o) => objectKey(o) === 'ClusterRoleBinding/platform-keyless-verification') as unknown as V1ClusterRoleBinding;
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'platform-keyless-operator', namespace: 'ops' }]);
    const policy = only<V1ValidatingAdmissionPolicy>(objects, 'ValidatingAdmissionPolicy');
    assert.deepEqual(policy.spec?.matchConditions, [{ name: 'platform-keyless-operator', expression: "request.userInfo.username == 'system:serviceaccount:ops:platform-keyless-operator'" }]);
  });
});

describe('helm template with leader election off', () => {
  it('tells the operator, drops the Lease Role and the leader alerts', async () => {
    const objects = await renderChart({ values: { leaderElection: { enabled: false }, metrics: { prometheusRule: { enabled: true } } } });
    assert.equal(envOf(objects)['KEYLESS_LEADER_ELECTION'], 'false');
    assert.deepEqual(objects.filter((o) => o.kind === 'Role' || o.kind === 'RoleBinding').map(objectKey), []);
    const alerts = only<KubeObject & { spec: { groups: { rules: { alert: string }[] }[] } }>(objects, 'PrometheusRule').spec.groups.flatMap((g) => g.rules.map((r) => r.alert));
    assert.ok(alerts.includes('KeylessReconcileErrors'));
    assert.deepEqual(alerts.filter((a) => a.includes('Leader')), []);
  });

  it('refuses more than one replica', async () => {
    await assert.rejects(renderChart({ values: { leaderElection: { enabled: false }, replicas: 2 } }), /leaderElection.enabled=false needs replicas: 1/);
  });
});

describe('the values schema', () => {
  it('refuses a value the chart does not have', async () => {
    await assert.rejects(renderChart({ values: { logLevl: 'debug' } }), /additional properties 'logLevl' not allowed/);
  });

  it('refuses a log level the operator does not know', async () => {
    await assert.rejects(renderChart({ values: { logLevel: 'verbose' } }), /logLevel/);
  });

  it('takes a rate with decimals from --set, which passes it as a string', async () => {
    const { stdout } = await helm(['template', 'keyless', CHART, '--set', 'cloudBudget.writesPerSecond=0.5', '--show-only', 'templates/deployment.yaml']);
    const [deployment] = parseObjects(stdout);
    assert.ok(deployment);
    assert.equal(envOf([deployment])['KEYLESS_CLOUD_WRITES_PER_SECOND'], '0.5');
  });
});
