// Keyless next to a GitOps owner, end to end: the real operator, the real control plane, kubectl, and moto. Argo
// CD's server-side apply is played by `kubectl apply --server-side --field-manager=argocd-controller` (Argo CD's
// field manager name). The ServiceAccount is shared: Git owns its labels and annotations, Keyless owns exactly
// its role-arn annotation, and neither re-apply nor reconcile takes anything from the other. The WorkloadIdentity
// and CloudAccount are Git's alone: Keyless writes their status and the finalizer, so a server-side diff of the
// Git manifests stays empty. Then what a person sees through kubectl: get -o wide, describe, explain, wait.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1ManagedFieldsEntry } from '@kubernetes/client-node';
import type { CloudAccount, WorkloadIdentity } from '../../src/api/types.ts';
import { startAwsEmulator, TEST_ACCOUNT_ID, type AwsEmulator, createOidcProvider } from '../support/aws.ts';
import { clusterIssuer, eventually, freshNamespace, kubeConfig, kubeconfigPath, kubectl } from '../support/cluster.ts';
import { awsEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';

const GITOPS = 'argocd-controller';
const ROLE_ARN = 'eks.amazonaws.com/role-arn';
const group = { group: 'keyless.dev', version: 'v1alpha1' };

type Fields = Record<string, unknown>;

/** The field paths a managedFields entry owns, as dotted `f:` keys: metadata.annotations.eks.amazonaws.com/role-arn. */
function ownedPaths(fields: unknown, prefix = ''): string[] {
  if (typeof fields !== 'object' || fields === null) return [];
  const paths: string[] = [];
  for (const [key, value] of Object.entries(fields as Fields)) {
    if (key === '.') continue;
    // f:name is a field, v:"value" a set member (finalizers), k:{...} a keyed list item.
    const name = key.startsWith('v:') ? String(JSON.parse(key.slice(2))) : key.replace(/^[fk]:/, '');
    const fieldPath = prefix ? `${prefix}.${name}` : name;
    const children = ownedPaths(value, fieldPath);
    paths.push(...(children.length ? children : [fieldPath]));
  }
  return paths;
}

/** A kubectl table as records keyed by column name, cut at the header's column starts (empty cells stay empty). */
function parseTable(text: string): Record<string, string>[] {
  const [header = '', ...rows] = text.replace(/\n$/, '').split('\n');
  const columns = [...header.matchAll(/\S+/g)].map((m) => ({ name: m[0], start: m.index }));
  return rows.map((row) =>
    Object.fromEntries(columns.map((c, i) => [c.name, row.slice(c.start, columns[i + 1]?.start ?? row.length).trim()])),
  );
}

const entriesOf = (managedFields: V1ManagedFieldsEntry[] | undefined, manager: string) => (managedFields ?? []).filter((e) => e.manager === manager);

describe('GitOps coexistence and the kubectl experience', () => {
  let kc: KubeConfig;
  let aws: AwsEmulator;
  let operator: RunningOperator;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  let issuer: string;
  const account = `e2e-gitops-${randomBytes(3).toString('hex')}`;

  const core = () => kc.makeApiClient(CoreV1Api);
  const custom = () => kc.makeApiClient(CustomObjectsApi);
  const getWI = async (name: string) => (await custom().getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns, name })) as WorkloadIdentity;
  const getAccount = async () => (await custom().getClusterCustomObject({ ...group, plural: 'cloudaccounts', name: account })) as CloudAccount;
  const getSA = () => core().readNamespacedServiceAccount({ namespace: ns, name: 'catalog-sa' });
  /** What Argo CD's sync does with ServerSideApply=true. */
  const gitopsApply = (object: object, ...flags: string[]) => kubectl(['apply', '--server-side', `--field-manager=${GITOPS}`, ...flags, '-f', '-'], JSON.stringify(object));

  const cloudAccount = () => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name: account, annotations: { 'argocd.argoproj.io/sync-wave': '-1' } },
    spec: { aws: { accountId: TEST_ACCOUNT_ID, region: 'us-east-1', oidcIssuer: issuer } },
  });
  const serviceAccount = (extraAnnotations: Record<string, string> = {}) => ({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {
      name: 'catalog-sa',
      namespace: ns,
      labels: { 'app.kubernetes.io/name': 'catalog', 'app.kubernetes.io/instance': 'bookstore' },
      annotations: { 'argocd.argoproj.io/tracking-id': `bookstore:/ServiceAccount:${ns}/catalog-sa`, ...extraAnnotations },
    },
  });
  const workloadIdentity = (name: string, cloudAccountRef = account) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns, labels: { 'app.kubernetes.io/instance': 'bookstore' } },
    spec: {
      serviceAccountName: 'catalog-sa',
      cloudAccountRef: { name: cloudAccountRef },
      aws: { policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::your-org-book-covers/*'] }] },
    },
  });

  before(async () => {
    kc = kubeConfig();
    aws = await startAwsEmulator();
    // Beside the test cluster's kubeconfig, so runs against different control planes never share the file.
    const operatorKubeconfig = await installOperator(kc, 'gitops', path.join(path.dirname(kubeconfigPath()), 'operator'));
    issuer = await clusterIssuer(kc);
    await createOidcProvider(aws.iam(), issuer);
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-gitops');
    operator = await startOperator({ name: 'gitops', kubeconfig: operatorKubeconfig, env: { ...awsEnv(aws.endpoint), KEYLESS_CLUSTER_NAME: 'e2e-gitops' } });
    // The tests below read this operator's metrics, so it must be the one reconciling.
    await eventually('the operator to hold the leader Lease', async () => ((await operator.metric('keyless_leader')) === 1 ? true : undefined), 60_000);
    await gitopsApply(cloudAccount());
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${account}`]);
  });

  after(async () => {
    // The namespace first, while the operator runs, so the finalizers are honoured; then what it depended on.
    await dropNamespace();
    await kubectl(['delete', 'cloudaccount', account, '--ignore-not-found']);
    await operator.stop();
    await aws.stop();
  });

  it('annotates a ServiceAccount that Git owns, and Git re-applying it takes nothing from either side', async () => {
    await gitopsApply(serviceAccount());
    await gitopsApply(workloadIdentity('catalog'));
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', '-n', ns, 'workloadidentity/catalog']);
    const roleArn = (await getWI('catalog')).status?.aws?.roleArn;
    assert.ok(roleArn, 'status.aws.roleArn');
    const annotated = await getSA();
    assert.equal(annotated.metadata?.annotations?.[ROLE_ARN], roleArn);

    // Argo CD's next sync: the same manifest. No conflict, and nothing to write.
    await gitopsApply(serviceAccount());
    const resynced = await getSA();
    assert.equal(resynced.metadata?.resourceVersion, annotated.metadata?.resourceVersion, 'an unchanged re-apply writes nothing');
    assert.equal(resynced.metadata?.annotations?.[ROLE_ARN], roleArn);

    // A commit adds an annotation: Git's change lands, ours survives, and Keyless does not write again.
    const writesBefore = await operator.metric('keyless_kubernetes_writes_total', { resource: 'serviceaccounts' });
    const reconcilesBefore = await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity' });
    await gitopsApply(serviceAccount({ 'bookstore.example/owner': 'team-books' }));
    await eventually('the operator to reconcile the changed ServiceAccount', async () =>
      (await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity' })) > reconcilesBefore ? true : undefined,
    );
    const edited = await getSA();
    assert.deepEqual(edited.metadata?.annotations, {
      'argocd.argoproj.io/tracking-id': `bookstore:/ServiceAccount:${ns}/catalog-sa`,
      'bookstore.example/owner': 'team-books',
      [ROLE_ARN]: roleArn,
    });
    assert.deepEqual(edited.metadata?.labels, { 'app.kubernetes.io/name': 'catalog', 'app.kubernetes.io/instance': 'bookstore' });
    assert.equal(await operator.metric('keyless_kubernetes_writes_total', { resource: 'serviceaccounts' }), writesBefore, 'Keyless did not write the ServiceAccount again');

    // Each manager owns exactly its own keys.
    const gitops = entriesOf(edited.metadata?.managedFields, GITOPS);
    // Keyless applies ServiceAccount annotations under one field manager per cloud.
    const keyless = entriesOf(edited.metadata?.managedFields, 'keyless-aws');
    assert.equal(gitops.length, 1, 'one argocd-controller entry');
    assert.equal(keyless.length, 1, 'one keyless-aws entry');
    assert.equal(gitops[0]?.operation, 'Apply');
    assert.equal(keyless[0]?.operation, 'Apply');
    assert.deepEqual(ownedPaths(gitops[0]?.fieldsV1).sort(), [
      'metadata.annotations.argocd.argoproj.io/tracking-id',
      'metadata.annotations.bookstore.example/owner',
      'metadata.labels.app.kubernetes.io/instance',
      'metadata.labels.app.kubernetes.io/name',
    ]);
    assert.deepEqual(ownedPaths(keyless[0]?.fieldsV1), [`metadata.annotations.${ROLE_ARN}`]);

    // A commit drops Git's annotation again: Git's own key goes, ours stays.
    await gitopsApply(serviceAccount());
    const dropped = await getSA();
    assert.equal(dropped.metadata?.annotations?.['bookstore.example/owner'], undefined);
    assert.equal(dropped.metadata?.annotations?.[ROLE_ARN], roleArn);
  });

  it('never writes a WorkloadIdentity or CloudAccount beyond status and its finalizer, so Git stays in sync', async () => {
    for (const [what, manifest, plural, get] of [
      ['WorkloadIdentity', workloadIdentity('catalog'), 'workloadidentities', () => getWI('catalog')],
      ['CloudAccount', cloudAccount(), 'cloudaccounts', getAccount],
    ] as const) {
      const live = await get();
      assert.equal(live.metadata.generation, 1, `${what}: the spec was never written after Git applied it`);

      // Argo CD's server-side diff: nothing to change.
      const diff = await kubectl(['diff', '--server-side', `--field-manager=${GITOPS}`, '-f', '-'], JSON.stringify(manifest)).then(
        (r) => ({ code: 0, stdout: r.stdout }),
        (e: { code?: number; stdout?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '' }),
      );
      assert.deepEqual(diff, { code: 0, stdout: '' }, `${what}: kubectl diff --server-side is empty`);
      const dryRun = JSON.parse((await gitopsApply(manifest, '--dry-run=server', '-o', 'json')).stdout) as { metadata: { resourceVersion: string } };
      assert.equal(dryRun.metadata.resourceVersion, live.metadata.resourceVersion, `${what}: re-applying the Git manifest would change nothing`);

      // Whoever else wrote the object (the operator: see the next test for its name) touched only the status and
      // the finalizer list.
      const others = (live.metadata.managedFields ?? []).filter((e) => e.manager !== GITOPS);
      for (const entry of others) {
        const paths = ownedPaths(entry.fieldsV1);
        if (entry.subresource === 'status') {
          assert.ok(paths.length && paths.every((p) => p.startsWith('status.')), `${what}: ${entry.manager} status entry owns ${paths.join(', ')}`);
        } else {
          const finalizer = plural === 'workloadidentities' ? 'keyless.dev/revoke' : 'keyless.dev/in-use';
          assert.deepEqual(paths, [`metadata.finalizers.${finalizer}`], `${what}: ${entry.manager} owns ${paths.join(', ')}`);
        }
      }
      assert.ok(others.some((e) => e.subresource === 'status'), `${what}: the operator wrote the status`);
      if (plural === 'workloadidentities') {
        assert.deepEqual(live.metadata.finalizers, ['keyless.dev/revoke']);
        assert.ok(others.some((e) => e.subresource === undefined), 'WorkloadIdentity: the operator added the finalizer');
      }
    }
  });

  it('writes status and the finalizer under its own field manager, keyless', async () => {
    const live = await getWI('catalog');
    const writers = (live.metadata.managedFields ?? []).filter((e) => e.manager !== GITOPS).map((e) => `${e.manager}/${e.subresource ?? 'main'}`);
    assert.deepEqual(writers.sort(), ['keyless/main', 'keyless/status']);
  });

  it('shows the reason and the subject in kubectl get -o wide', async () => {
    await gitopsApply(workloadIdentity('stray', 'no-such-account'));
    await kubectl(['wait', '--for=jsonpath={.status.conditions[?(@.type=="Ready")].reason}=CloudAccountNotFound', '--timeout=30s', '-n', ns, 'workloadidentity/stray']);

    const table = (await kubectl(['get', 'wi', '-n', ns, '-o', 'wide', '--sort-by=.metadata.name'])).stdout;
    assert.match(table, /^NAME\s+CLOUD\s+MECHANISM\s+SERVICEACCOUNT\s+READY\s+REASON\s+IDENTITY\s+SUBJECT\s+AGE\n/);
    const roleArn = (await getWI('catalog')).status?.aws?.roleArn ?? '';
    const [catalog, stray] = parseTable(table).map(({ AGE: _age, ...row }) => row);
    assert.deepEqual(catalog, {
      NAME: 'catalog',
      CLOUD: 'aws',
      MECHANISM: 'IRSA',
      SERVICEACCOUNT: 'catalog-sa',
      READY: 'True',
      REASON: 'Ready',
      IDENTITY: roleArn,
      SUBJECT: `system:serviceaccount:${ns}:catalog-sa`,
    });
    // Blocked before the cloud: no cloud, identity or subject yet, but the reason says why.
    assert.deepEqual(stray, { NAME: 'stray', CLOUD: '', MECHANISM: '', SERVICEACCOUNT: 'catalog-sa', READY: 'False', REASON: 'CloudAccountNotFound', IDENTITY: '', SUBJECT: '' });
  });

  it('shows every condition with its message, and the Events of what went wrong, in kubectl describe', async () => {
    const ready = await kubectl(['describe', 'wi', '-n', ns, 'catalog']);
    for (const type of ['IdentityReady', 'TrustReady', 'PermissionsReady', 'ServiceAccountReady', 'Ready']) {
      assert.match(ready.stdout, new RegExp(`Type:\\s+${type}\\b`), `condition ${type}`);
    }
    assert.match(ready.stdout, /Message:\s+Pods using ServiceAccount \S+\/catalog-sa can use arn:aws:iam::123456789012:role\//);
    assert.match(ready.stdout, /Message:\s+IAM role \S+ trusts issuer \S+ for subject system:serviceaccount:\S+:catalog-sa with audience sts.amazonaws.com only/);
    // A first provisioning is routine: its story is in the conditions, not in Events (docs/benchmarks.md: a new
    // identity costs 4 Kubernetes writes, Events included).
    assert.match(ready.stdout, /Events:\s+<none>/);

    const stray = await kubectl(['describe', 'wi', '-n', ns, 'stray']);
    assert.match(stray.stdout, /Message:\s+CloudAccount "no-such-account" does not exist\. Create it \(a platform team task\) or fix spec\.cloudAccountRef\.name\./);
    assert.match(stray.stdout, /Reason:\s+CloudAccountNotFound/);
    assert.match(stray.stdout, /Events:\s*\n\s+Type\s+Reason\s+Age\s+From\s+Message/);
    assert.match(stray.stdout, /Warning\s+CloudAccountNotFound\s+\S+\s+keyless\s+CloudAccount "no-such-account" does not exist/);
  });

  it('explains spec.aws.policy in words a person can act on', async () => {
    const { stdout } = await kubectl(['explain', 'workloadidentity.spec.aws.policy']);
    const prose = stdout.replace(/\s+/g, ' ');
    assert.match(stdout, /FIELD:\s+policy <\[\]Object>/);
    assert.match(prose, /The role's inline IAM policy, one entry per statement/);
    assert.match(prose, /List only the actions and resources the workload needs/);
    assert.match(prose, /Example: \[\{effect: Allow, actions: \["s3:GetObject"\], resources: \["arn:aws:s3:::your-org-book-covers\/\*"\]\}\]/);
    assert.match(prose, /Whether the statement allows or denies the actions/);
    for (const field of ['actions\\s+<\\[\\]string> -required-', 'effect\\s+<string> -required-', 'resources\\s+<\\[\\]string> -required-', 'conditions\\s+<map\\[string\\]map\\[string\\]\\[\\]string>', 'sid\\s+<string>']) {
      assert.match(stdout, new RegExp(field), field);
    }
    assert.match(stdout, /enum: Allow, Deny/);
  });

  it('works with kubectl wait, for Ready and for a named failure', async () => {
    await kubectl(['wait', '--for=condition=Ready', '--timeout=10s', '-n', ns, 'workloadidentity/catalog']);
    await kubectl(['wait', '--for=condition=Ready=False', '--timeout=10s', '-n', ns, 'workloadidentity/stray']);
    const timedOut = await kubectl(['wait', '--for=condition=Ready', '--timeout=1s', '-n', ns, 'workloadidentity/stray']).then(
      () => undefined,
      (e: { stderr?: string }) => e.stderr,
    );
    assert.match(timedOut ?? '', /timed out waiting for the condition/);
  });
});
