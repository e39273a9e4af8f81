// The model-based test of edit histories (src/reconciler/workload-identity/edit-histories.test.ts), smaller and end to
// end: random sequences of kubectl edits — cloud switches, GKE mechanism switches, grants added and removed, a
// ServiceAccount pre-annotated by hand, namespace labels against a CloudAccount's selector, deletes, and SIGKILLed
// operator restarts — against the real operator, control plane, moto and the GCP and Azure emulators. After every
// step, read from the clouds themselves: a WorkloadIdentity without a record owns nothing anywhere, one with a record
// owns exactly what its spec asks for, objects Keyless does not own never change, and deleting everything leaves
// nothing of ours. KEYLESS_E2E_HISTORIES sets the number of histories (default 3).
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { GetRoleCommand, GetRolePolicyCommand, ListRolesCommand, type IAMClient } from '@aws-sdk/client-iam';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import fc from 'fast-check';
import type { WorkloadIdentity } from '../../src/api/types.ts';
import { managedIdentityName } from '../../src/providers/aks-workload-identity/desired.ts';
import { parseIamDocument } from '../../src/providers/aws/policy-document.ts';
import { directPrincipal, gcpServiceAccountId, serviceAccountEmail } from '../../src/providers/gke-workload-identity/naming.ts';
import type { PolicyTarget } from '../../src/providers/gke-workload-identity/resources.ts';
import { createOidcProvider, startAwsEmulator, TEST_ACCOUNT_ID, type AwsEmulator } from '../support/aws.ts';
import { TEST_RESOURCE_GROUP, TEST_SUBSCRIPTION as SUB, TEST_TENANT, DATA_RESOURCE_GROUP, startTestAzure, type TestAzure } from '../support/azure.ts';
import { clusterIssuer, eventually, freshNamespace, kubeConfig, kubectl, kubectlApply, statusCode } from '../support/cluster.ts';
import { startGcpTestEmulator, type GcpTestEmulator } from '../support/gcp.ts';
import { awsEnv, azureEnv, gcpEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';

const HISTORIES = Number(process.env['KEYLESS_E2E_HISTORIES'] ?? 3);
const CLUSTER = 'e2e-model';
const group = { group: 'keyless.dev', version: 'v1alpha1' };
const suffix = randomBytes(3).toString('hex');
const PROJECT = `e2e-model-${suffix}`;
const PROJECT_NUMBER = String(randomInt(100_000_000, 999_999_999));
const POOL = `${PROJECT}.svc.id.goog`;
const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
const NAMES = ['m1', 'm2'] as const;
const SERVICE_ACCOUNTS = ['msa1', 'msa2'] as const;
const ACCOUNTS = { aws: `model-aws-${suffix}`, gcp: `model-gcp-${suffix}`, azure: `model-azure-${suffix}` } as const;
const SELECTOR_LABEL = `keyless-model-${suffix}`;
type Cloud = keyof typeof ACCOUNTS;

const AWS_ACTIONS = ['s3:GetObject', 's3:PutObject'];
const GCP_ROLES = ['roles/cloudtrace.agent', 'roles/monitoring.metricWriter'];
const AZURE_SCOPES = [`/subscriptions/${SUB}/resourceGroups/${DATA_RESOURCE_GROUP}`, `/subscriptions/${SUB}/resourceGroups/${TEST_RESOURCE_GROUP}`];

type Step =
  | { kind: 'apply'; name: string; serviceAccount: string; cloud: Cloud; grants: number[]; directPrincipal: boolean }
  | { kind: 'delete'; name: string }
  | { kind: 'label'; admitted: boolean }
  | { kind: 'preAnnotate'; serviceAccount: string }
  | { kind: 'restart' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('apply' as const),
      name: fc.constantFrom(...NAMES),
      serviceAccount: fc.constantFrom(...SERVICE_ACCOUNTS),
      cloud: fc.constantFrom<Cloud>('aws', 'gcp', 'azure'),
      grants: fc.subarray([0, 1]),
      directPrincipal: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), name: fc.constantFrom(...NAMES) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('label' as const), admitted: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('preAnnotate' as const), serviceAccount: fc.constantFrom(...SERVICE_ACCOUNTS) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
);

describe('edit histories end to end (model-based)', () => {
  let kc: KubeConfig;
  let aws: AwsEmulator;
  let gcp: GcpTestEmulator;
  let azure: TestAzure;
  let operator: RunningOperator;
  let operatorKubeconfig: string;
  let issuer: string;
  let ns: string;
  let dropNamespace: () => Promise<void>;

  const custom = () => kc.makeApiClient(CustomObjectsApi);
  const start = async () => {
    operator = await startOperator({
      name: 'edit-history-model',
      kubeconfig: operatorKubeconfig,
      env: { ...awsEnv(aws.endpoint), ...gcpEnv(gcp.endpoint), ...azureEnv(azure.emulator.endpoint, azure.caFile), KEYLESS_CLUSTER_NAME: CLUSTER, KEYLESS_RESYNC_SECONDS: '600', KEYLESS_WORKERS: '4' },
    });
  };
  const identities = async () =>
    ((await custom().listNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns })) as { items: WorkloadIdentity[] }).items;
  const principal = (sa: string) => directPrincipal(PROJECT_NUMBER, POOL, ns, sa);
  const gsaEmail = (name: string) => serviceAccountEmail(gcpServiceAccountId(CLUSTER, ns, name), PROJECT);
  const projectTarget: PolicyTarget = { kind: 'project', project: PROJECT };

  /** The inline policy actions of the IAM role this WorkloadIdentity owns, or undefined when it has none. */
  const roleActions = async (iam: IAMClient, name: string): Promise<string[] | undefined> => {
    const roles = (await iam.send(new ListRolesCommand({ PathPrefix: '/keyless/' }))).Roles ?? [];
    for (const role of roles) {
      const tags = (await iam.send(new GetRoleCommand({ RoleName: role.RoleName }))).Role?.Tags ?? [];
      const tag = (k: string) => tags.find((t) => t.Key === k)?.Value;
      if (tag('keyless.dev/cluster') !== CLUSTER || tag('keyless.dev/namespace') !== ns || tag('keyless.dev/name') !== name) continue;
      try {
        const doc = parseIamDocument((await iam.send(new GetRolePolicyCommand({ RoleName: role.RoleName, PolicyName: 'keyless' }))).PolicyDocument ?? '') as { Statement: { Action: string[] }[] };
        return doc.Statement.flatMap((s) => s.Action).sort();
      } catch (err) {
        if (statusCode(err) === 404 || (err as { name?: string }).name === 'NoSuchEntityException') return [];
        throw err;
      }
    }
    return undefined;
  };
  const projectGrants = async (member: string) =>
    ((await gcp.client.getIamPolicy(projectTarget)).bindings ?? []).filter((b) => b.members.includes(member)).map((b) => b.role).sort();
  const azureAssignments = async (name: string): Promise<string[] | undefined> => {
    let identity;
    try {
      identity = await azure.msi().userAssignedIdentities.get(TEST_RESOURCE_GROUP, managedIdentityName(CLUSTER, ns, name));
    } catch (err) {
      if (statusCode(err) === 404 || (err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
    const list: string[] = [];
    for await (const a of azure.authorization().roleAssignments.listForScope(`subscriptions/${SUB}`, { filter: `principalId eq '${identity.principalId ?? ''}'` })) {
      list.push(`${(a.roleDefinitionId ?? '').split('/').pop() ?? ''}@${(a.scope ?? '').toLowerCase()}`);
    }
    return list.sort();
  };

  const FOREIGN_ROLE = 'roles/browser';
  const foreignState = async () => ({
    principal: (await projectGrants(principal('msa1'))).includes(FOREIGN_ROLE),
    owner: (await projectGrants('user:root@example.com')).includes('roles/owner'),
  });

  /** The invariants, read from the clouds; throws the first one that does not hold. */
  const check = async (): Promise<true> => {
    const live = await identities();
    const principalExpected = new Map<string, string[]>([['msa1', [FOREIGN_ROLE]], ['msa2', []]]);
    for (const wi of live) {
      const name = wi.metadata.name;
      assert.equal(wi.metadata.deletionTimestamp, undefined, `${name}: deletion finished`);
      assert.equal(wi.status?.observedGeneration, wi.metadata.generation, `${name}: status is for the current spec`);
      const record = wi.status?.provisioned;
      const actions = await roleActions(aws.iam(), name);
      const gsa = await gcp.client.getServiceAccount(PROJECT, gsaEmail(name));
      const gsaGrants = await projectGrants(`serviceAccount:${gsaEmail(name)}`);
      const assignments = await azureAssignments(name);
      const reason = wi.status?.conditions?.find((c) => c.type === 'Ready')?.reason ?? '';
      if (record?.cloud === 'aws') assert.deepEqual(actions, (wi.spec.aws?.policy ?? []).flatMap((s) => s.actions).sort(), `${name}: the role grants exactly the spec`);
      else assert.equal(actions, undefined, `${name}: no IAM role (${reason})`);
      const mode = wi.spec.gcp?.mechanism ?? 'ServiceAccount';
      if (record?.cloud === 'gcp') {
        const wanted = (wi.spec.gcp?.roles ?? []).map((r) => r.role).sort();
        assert.equal(gsa !== undefined, mode === 'ServiceAccount', `${name}: a Google service account exactly in ServiceAccount mode`);
        assert.deepEqual(gsaGrants, mode === 'ServiceAccount' ? wanted : [], `${name}: the service account holds exactly the spec`);
        if (mode === 'DirectPrincipal') principalExpected.set(wi.spec.serviceAccountName, [...(principalExpected.get(wi.spec.serviceAccountName) ?? []), ...wanted]);
      } else {
        assert.equal(gsa, undefined, `${name}: no Google service account (${reason})`);
        assert.deepEqual(gsaGrants, [], `${name}: no grants to it`);
      }
      if (record?.cloud === 'azure') {
        const wanted = [...new Set((wi.spec.azure?.roleAssignments ?? []).map((a) => `${READER}@${a.scope.toLowerCase()}`))].sort();
        assert.deepEqual(assignments, wanted, `${name}: the managed identity holds exactly the spec`);
      } else assert.equal(assignments, undefined, `${name}: no managed identity (${reason})`);
    }
    for (const [sa, wanted] of principalExpected) assert.deepEqual(await projectGrants(principal(sa)), [...new Set(wanted)].sort(), `principal of ${sa}`);
    for (const name of NAMES) {
      if (live.some((wi) => wi.metadata.name === name)) continue;
      assert.equal(await roleActions(aws.iam(), name), undefined, `${name} is gone: no role`);
      assert.equal(await gcp.client.getServiceAccount(PROJECT, gsaEmail(name)), undefined, `${name} is gone: no Google service account`);
      assert.equal(await azureAssignments(name), undefined, `${name} is gone: no managed identity`);
    }
    assert.deepEqual(await foreignState(), { principal: true, owner: true }, 'foreign bindings survive');
    return true;
  };

  const specFor = (step: Extract<Step, { kind: 'apply' }>, existing: WorkloadIdentity | undefined) => {
    const cloudAccountRef = existing?.spec.cloudAccountRef ?? { name: ACCOUNTS[step.cloud] };
    const serviceAccountName = existing?.spec.serviceAccountName ?? step.serviceAccount;
    switch (step.cloud) {
      case 'aws':
        return { serviceAccountName, cloudAccountRef, aws: { policy: step.grants.map((i) => ({ effect: 'Allow', actions: [AWS_ACTIONS[i]], resources: [`arn:aws:s3:::model-${suffix}/*`] })) } };
      case 'gcp':
        return { serviceAccountName, cloudAccountRef, gcp: { mechanism: step.directPrincipal ? 'DirectPrincipal' : 'ServiceAccount', roles: step.grants.map((i) => ({ role: GCP_ROLES[i] })) } };
      case 'azure':
        return { serviceAccountName, cloudAccountRef, azure: { roleAssignments: step.grants.map((i) => ({ role: 'Reader', scope: AZURE_SCOPES[i] })) } };
    }
  };

  const perform = async (step: Step) => {
    switch (step.kind) {
      case 'apply': {
        const existing = (await identities()).find((wi) => wi.metadata.name === step.name);
        if (existing?.metadata.deletionTimestamp) return;
        await kubectlApply({ apiVersion: 'keyless.dev/v1alpha1', kind: 'WorkloadIdentity', metadata: { name: step.name, namespace: ns }, spec: specFor(step, existing) });
        return;
      }
      case 'delete':
        await kubectl(['delete', 'workloadidentity', '-n', ns, step.name, '--ignore-not-found', '--wait=false']);
        return;
      case 'label':
        await kubectl(['label', 'namespace', ns, `${SELECTOR_LABEL}=${step.admitted ? 'yes' : 'no'}`, '--overwrite']);
        return;
      case 'preAnnotate':
        await kubectl(['annotate', 'serviceaccount', '-n', ns, step.serviceAccount, `eks.amazonaws.com/role-arn=arn:aws:iam::${TEST_ACCOUNT_ID}:role/hand-made`, '--overwrite']);
        return;
      case 'restart':
        await operator.kill();
        await start();
        return;
    }
  };

  before(async () => {
    kc = kubeConfig();
    [aws, gcp, azure] = await Promise.all([startAwsEmulator(), startGcpTestEmulator(), startTestAzure()]);
    await gcp.addProject(PROJECT, PROJECT_NUMBER);
    operatorKubeconfig = await installOperator(kc, 'edit-history-model');
    issuer = await clusterIssuer(kc);
    await createOidcProvider(aws.iam(), issuer);
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-model');
    await kubectl(['label', 'namespace', ns, `${SELECTOR_LABEL}=yes`]);
    // Foreign bindings: a person's grant to the ServiceAccount's principal, and an owner of the project.
    const p = await gcp.client.getIamPolicy(projectTarget);
    await gcp.client.setIamPolicy(projectTarget, { ...p, bindings: [...(p.bindings ?? []), { role: FOREIGN_ROLE, members: [principal('msa1')] }, { role: 'roles/owner', members: ['user:root@example.com'] }] });
    await kubectlApply(
      ...SERVICE_ACCOUNTS.map((name) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } })),
      { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: ACCOUNTS.aws }, spec: { aws: { accountId: TEST_ACCOUNT_ID, region: 'us-east-1', oidcIssuer: issuer }, namespaceSelector: { matchLabels: { [SELECTOR_LABEL]: 'yes' } } } },
      { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: ACCOUNTS.gcp }, spec: { gcp: { projectId: PROJECT, projectNumber: PROJECT_NUMBER } } },
      { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: ACCOUNTS.azure }, spec: { azure: { subscriptionId: SUB, tenantId: TEST_TENANT, resourceGroup: TEST_RESOURCE_GROUP, location: 'eastus', oidcIssuer: issuer } } },
    );
    await start();
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', ...Object.values(ACCOUNTS).map((a) => `cloudaccount/${a}`)]);
  });

  after(async () => {
    await dropNamespace();
    await kubectl(['delete', 'cloudaccount', ...Object.values(ACCOUNTS), '--ignore-not-found']);
    await operator.stop();
    await Promise.all([aws.stop(), gcp.stop(), azure.stop()]);
  });

  it(`keeps the clouds at what the specs ask through random edit histories, and deletion leaves nothing (${HISTORIES} histories)`, async (t) => {
    let histories = 0;
    let steps = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 2, maxLength: 6 }), async (history) => {
        histories += 1;
        for (const step of history) {
          steps += 1;
          await perform(step);
          await eventually(`the invariants after ${JSON.stringify(step)}`, check, 60_000);
        }
        await kubectl(['delete', 'workloadidentity', '-n', ns, '--all', '--wait=true', '--timeout=90s']);
        await kubectl(['label', 'namespace', ns, `${SELECTOR_LABEL}=yes`, '--overwrite']);
        await eventually('nothing left after deleting everything', check, 60_000);
      }),
      // Each history runs minutes against real processes: no shrinking, the failing history is printed as it is.
      { numRuns: HISTORIES, endOnFailure: true },
    );
    t.diagnostic(`${histories} histories, ${steps} steps`);
  });
});
