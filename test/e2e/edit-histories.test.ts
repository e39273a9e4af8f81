// Edit histories end to end: what a person does to an identity after it was provisioned — annotate its
// ServiceAccount by hand, switch its cloud, take its namespace out of the CloudAccount's selector, grant its
// principal something by hand, drop a subscription, tighten a guardrail, delete the loser of a conflict — and a
// cloud that stops answering. Each test states where the access must end up (DESIGN §3: teardown and removal read
// the record of what was provisioned, never the spec of the moment; nothing foreign is touched). The real operator
// runs with a long resync, so nothing here is repaired by a resync that happens to come along.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { GetRoleCommand } from '@aws-sdk/client-iam';
import { CoreV1Api, CustomObjectsApi, Watch, type KubeConfig, type V1ServiceAccount } from '@kubernetes/client-node';
import type { WorkloadIdentity } from '../../src/api/types.ts';
import { grantsOf } from '../../src/providers/gke-workload-identity/policy.ts';
import type { PolicyTarget } from '../../src/providers/gke-workload-identity/resources.ts';
import { createOidcProvider, startAwsEmulator, TEST_ACCOUNT_ID, type AwsEmulator } from '../support/aws.ts';
import {
  DATA_RESOURCE_GROUP,
  OTHER_RESOURCE_GROUP,
  OTHER_SUBSCRIPTION,
  TEST_RESOURCE_GROUP,
  TEST_SUBSCRIPTION,
  TEST_TENANT,
  startTestAzure,
  type TestAzure,
} from '../support/azure.ts';
import { clusterIssuer, eventually, freshNamespace, kubeConfig, kubectl, kubectlApply } from '../support/cluster.ts';
import { startGcpTestEmulator, type GcpTestEmulator } from '../support/gcp.ts';
import { awsEnv, azureEnv, gcpEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';

const RESYNC_SECONDS = 600;
const CLUSTER = 'e2e-edit-histories';
const group = { group: 'keyless.dev', version: 'v1alpha1' };
const suffix = randomBytes(3).toString('hex');
const PROJECT = `e2e-edits-${suffix}`;
const PROJECT_NUMBER = String(randomInt(100_000_000, 999_999_999));
const POOL = `${PROJECT}.svc.id.goog`;
const OBJECT_VIEWER = 'roles/storage.objectViewer';
const ROLE_ARN = 'eks.amazonaws.com/role-arn';
const SCOPE_A = `/subscriptions/${TEST_SUBSCRIPTION}/resourceGroups/${DATA_RESOURCE_GROUP}`;
const SCOPE_B = `/subscriptions/${OTHER_SUBSCRIPTION}/resourceGroups/${OTHER_RESOURCE_GROUP}`;
const projectTarget: PolicyTarget = { kind: 'project', project: PROJECT };

const principalOf = (namespace: string, serviceAccountName: string) =>
  `principal://iam.googleapis.com/projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/${POOL}/subject/ns/${namespace}/sa/${serviceAccountName}`;

describe('edit histories end to end', () => {
  let kc: KubeConfig;
  let aws: AwsEmulator;
  let gcp: GcpTestEmulator;
  let azure: TestAzure;
  let operator: RunningOperator;
  let operatorKubeconfig: string;
  let issuer: string;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  const awsAccountName = `e2e-edits-aws-${suffix}`;
  const gcpAccountName = `e2e-edits-gcp-${suffix}`;
  const azureAccountName = `e2e-edits-azure-${suffix}`;

  const custom = () => kc.makeApiClient(CustomObjectsApi);
  const core = () => kc.makeApiClient(CoreV1Api);
  const getWI = async (name: string, namespace = ns) =>
    (await custom().getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace, name })) as WorkloadIdentity;
  const condition = (wi: WorkloadIdentity, type: string) => wi.status?.conditions?.find((c) => c.type === type);
  const describeCondition = (wi: WorkloadIdentity, type: string) => {
    const c = condition(wi, type);
    return c ? `${type}=${c.status} ${c.reason}: ${c.message}` : `no ${type} condition (status: ${JSON.stringify(wi.status ?? null)})`;
  };
  const waitReady = (name: string, namespace = ns) => kubectl(['wait', '--for=condition=Ready', '--timeout=60s', '-n', namespace, `workloadidentity/${name}`]);
  /** Ready True for the spec as it is now (a `kubectl wait` right after an edit can still see the old Ready). */
  const readyForCurrentSpec = (name: string, also: (wi: WorkloadIdentity) => string | undefined = () => undefined, timeoutMs = 60_000) =>
    eventually(`${name} to be Ready for its current spec`, async () => {
      const wi = await getWI(name);
      if (wi.status?.observedGeneration !== wi.metadata.generation || condition(wi, 'Ready')?.status !== 'True') throw new Error(describeCondition(wi, 'Ready'));
      const problem = also(wi);
      if (problem) throw new Error(problem);
      return wi;
    }, timeoutMs);
  const serviceAccount = (name: string, namespace = ns) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } });
  const annotationsOf = async (name: string, namespace = ns) => (await core().readNamespacedServiceAccount({ namespace, name })).metadata?.annotations ?? {};
  const eventsOf = async (name: string, reason: string, namespace = ns) =>
    (await kubectl(['get', 'events', '-n', namespace, '--field-selector', `involvedObject.name=${name},reason=${reason}`, '-o', 'jsonpath={range .items[*]}{.type} {.message}{"\\n"}{end}'])).stdout.trim();

  const irsa = (name: string, serviceAccountName: string, opts: { account?: string; namespace?: string; finalizers?: string[] } = {}) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: opts.namespace ?? ns, ...(opts.finalizers ? { finalizers: opts.finalizers } : {}) },
    spec: {
      serviceAccountName,
      cloudAccountRef: { name: opts.account ?? awsAccountName },
      aws: { mechanism: 'IRSA', policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::your-org-book-covers/*'] }] },
    },
  });
  const gke = (name: string, serviceAccountName: string, mechanism: 'ServiceAccount' | 'DirectPrincipal', finalizers?: string[]) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns, ...(finalizers ? { finalizers } : {}) },
    spec: { serviceAccountName, cloudAccountRef: { name: gcpAccountName }, gcp: { mechanism, roles: [{ role: OBJECT_VIEWER }] } },
  });
  const aks = (name: string, serviceAccountName: string, scopes: string[], account = azureAccountName) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns },
    spec: { serviceAccountName, cloudAccountRef: { name: account }, azure: { roleAssignments: scopes.map((scope) => ({ role: 'Reader', scope })) } },
  });
  const awsAccount = (name: string, extra: Record<string, unknown> = {}) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name },
    spec: { aws: { accountId: TEST_ACCOUNT_ID, region: 'us-east-1', oidcIssuer: issuer }, ...extra },
  });
  const azureAccount = (name: string, extra: Record<string, unknown> = {}) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name },
    spec: { azure: { subscriptionId: TEST_SUBSCRIPTION, tenantId: TEST_TENANT, resourceGroup: TEST_RESOURCE_GROUP, location: 'eastus', oidcIssuer: issuer }, ...extra },
  });

  const roleExists = (roleName: string) =>
    aws.iam().send(new GetRoleCommand({ RoleName: roleName })).then(
      () => true,
      (err: { name?: string }) => {
        if (err.name === 'NoSuchEntityException') return false;
        throw err;
      },
    );
  const roleOf = async (name: string, namespace = ns) => {
    const status = (await getWI(name, namespace)).status?.aws;
    assert.ok(status?.roleName && status.roleArn, `${namespace}/${name} has status.aws`);
    return { roleName: status.roleName, roleArn: status.roleArn };
  };
  /** The roles a principal holds on the project, as the test's own Google client reads them. */
  const projectRolesOf = async (member: string) => grantsOf(await gcp.client.getIamPolicy(projectTarget), member).map((g) => g.role).sort();
  const grantByHand = (role: string, member: string) => gcp.editByHand(projectTarget, (bindings) => [...bindings, { role, members: [member] }]);
  const assignmentsIn = (subscriptionId: string, principalId: string) => azure.assignmentsOf(principalId, subscriptionId);
  const principalIdOf = async (name: string) => {
    const principalId = (await getWI(name)).status?.azure?.principalId;
    assert.ok(principalId, `${name} has status.azure.principalId`);
    return principalId;
  };

  /**
   * Deletes objects and waits for them to go; whatever is still there after 60 s has its finalizers stripped, so a
   * test that found a bug does not leave an object that blocks the rest of the run.
   */
  const removeAll = async (kind: string, names: string[], namespace?: string) => {
    if (!names.length) return;
    const where = namespace ? ['-n', namespace] : [];
    await kubectl(['delete', ...where, kind, ...names, '--ignore-not-found', '--wait=false']);
    await kubectl(['wait', ...where, '--for=delete', '--timeout=60s', ...names.map((n) => `${kind}/${n}`)]).catch(() => undefined);
    for (const name of names) {
      const left = (await kubectl(['get', ...where, kind, name, '--ignore-not-found', '-o', 'name'])).stdout.trim();
      if (left) await kubectl(['patch', ...where, left, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']).catch(() => undefined);
    }
  };

  /** Waits until the second `name` was created in has passed, so an object created next is strictly newer. */
  const newerThan = async (name: string) => {
    const created = new Date((await getWI(name)).metadata.creationTimestamp ?? 0).getTime();
    const wait = created + 1_000 - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait + 50));
  };

  /**
   * Records every version of a ServiceAccount the API server shows from now on, so a moment without an annotation
   * is seen even when something puts the annotation back right after.
   */
  const recordServiceAccount = async (name: string) => {
    const versions: V1ServiceAccount[] = [];
    const controller = await new Watch(kc).watch(
      `/api/v1/namespaces/${ns}/serviceaccounts`,
      { fieldSelector: `metadata.name=${name}` },
      (_phase, sa: V1ServiceAccount) => versions.push(sa),
      () => undefined,
    );
    await eventually(`the watch of ServiceAccount ${name} to start`, () => Promise.resolve(versions.length ? true : undefined));
    return { versions, stop: () => controller.abort() };
  };

  const startOperatorWith = async (name: string, env: Record<string, string>) => {
    const started = await startOperator({
      name,
      kubeconfig: operatorKubeconfig,
      env: {
        ...awsEnv(aws.endpoint),
        ...gcpEnv(gcp.endpoint),
        ...azureEnv(azure.emulator.endpoint, azure.caFile),
        KEYLESS_RESYNC_SECONDS: String(RESYNC_SECONDS),
        KEYLESS_CLUSTER_NAME: CLUSTER,
        ...env,
      },
    });
    await eventually(`operator ${name} to lead`, async () => ((await started.metric('keyless_leader')) === 1 ? true : undefined), 60_000);
    return started;
  };

  before(async () => {
    kc = kubeConfig();
    aws = await startAwsEmulator();
    gcp = await startGcpTestEmulator();
    await gcp.addProject(PROJECT, PROJECT_NUMBER);
    azure = await startTestAzure();
    operatorKubeconfig = await installOperator(kc, 'edit-histories');
    issuer = await clusterIssuer(kc);
    await createOidcProvider(aws.iam(), issuer);
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-edits');
    operator = await startOperatorWith('edit-histories', {});
    await kubectlApply(
      awsAccount(awsAccountName),
      { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: gcpAccountName }, spec: { gcp: { projectId: PROJECT, projectNumber: PROJECT_NUMBER } } },
      azureAccount(azureAccountName),
    );
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${awsAccountName}`, `cloudaccount/${gcpAccountName}`, `cloudaccount/${azureAccountName}`]);
  });

  after(async () => {
    await gcp.setFaults({ delays: [] });
    const left = (await kubectl(['get', '-n', ns, 'workloadidentities', '-o', 'jsonpath={.items[*].metadata.name}'])).stdout.split(' ').filter(Boolean);
    await removeAll('workloadidentity', left, ns);
    await dropNamespace();
    await removeAll('cloudaccount', [awsAccountName, gcpAccountName, azureAccountName]);
    await operator.stop();
    await aws.stop();
    await gcp.stop();
    await azure.stop();
  });

  describe('a ServiceAccount annotated by hand', () => {
    it('reports the annotation conflict naming the other field manager, and takes the annotation over when asked', async (t) => {
      t.after(() => removeAll('workloadidentity', ['handmade'], ns));
      await kubectlApply(serviceAccount('handmade-sa'));
      await kubectl(['annotate', '-n', ns, 'serviceaccount/handmade-sa', `${ROLE_ARN}=arn:aws:iam::${TEST_ACCOUNT_ID}:role/hand-made`]);
      await kubectlApply(irsa('handmade', 'handmade-sa'));

      const wi = await eventually('ServiceAccountReady=False AnnotationConflict', async () => {
        const current = await getWI('handmade');
        if (condition(current, 'ServiceAccountReady')?.reason !== 'AnnotationConflict') throw new Error(describeCondition(current, 'ServiceAccountReady'));
        return current;
      }, 60_000);
      const sa = condition(wi, 'ServiceAccountReady');
      assert.equal(sa?.status, 'False');
      assert.match(sa?.message ?? '', /kubectl-annotate/, 'the message names the field manager that owns the annotation');
      assert.match(sa?.message ?? '', /keyless\.dev\/take-over-annotations/, 'the message names the annotation that lets Keyless take it over');
      assert.equal(condition(wi, 'Ready')?.status, 'False');
      assert.equal(condition(wi, 'Ready')?.reason, 'AnnotationConflict');
      assert.equal(condition(wi, 'IdentityReady')?.status, 'True');
      const { roleName, roleArn } = await roleOf('handmade');
      assert.ok(await roleExists(roleName), 'the IAM role was created');
      assert.equal((await annotationsOf('handmade-sa'))[ROLE_ARN], `arn:aws:iam::${TEST_ACCOUNT_ID}:role/hand-made`, 'the hand-made annotation is left alone until asked');

      await kubectl(['annotate', '-n', ns, 'workloadidentity/handmade', 'keyless.dev/take-over-annotations=true']);
      await waitReady('handmade');
      assert.equal((await annotationsOf('handmade-sa'))[ROLE_ARN], roleArn);
    });
  });

  describe('the record of what was provisioned', () => {
    it('records the cloud, CloudAccount and IAM role in status.provisioned', async (t) => {
      t.after(() => removeAll('workloadidentity', ['recorded'], ns));
      await kubectlApply(serviceAccount('recorded-sa'), irsa('recorded', 'recorded-sa'));
      await waitReady('recorded');
      const wi = await getWI('recorded');
      const provisioned = wi.status?.provisioned;
      assert.ok(provisioned, `status.provisioned exists (status: ${JSON.stringify(wi.status)})`);
      assert.equal(provisioned.cloud, 'aws');
      assert.equal(provisioned.cloudAccount, awsAccountName);
      assert.equal(provisioned.mechanism, 'IRSA');
      assert.equal(provisioned.aws?.roleName, wi.status?.aws?.roleName);
      assert.equal(provisioned.aws?.roleArn, wi.status?.aws?.roleArn);
    });
  });

  describe('a spec that switches cloud', () => {
    it('revokes the AWS role and annotation when spec.aws becomes spec.gcp, says CloudMismatch, and deletes cleanly', async (t) => {
      t.after(() => removeAll('workloadidentity', ['switcher'], ns));
      await kubectlApply(serviceAccount('switcher-sa'), irsa('switcher', 'switcher-sa'));
      await waitReady('switcher');
      const { roleName, roleArn } = await roleOf('switcher');
      assert.equal((await annotationsOf('switcher-sa'))[ROLE_ARN], roleArn);

      // cloudAccountRef is immutable, so the spec now asks for a cloud its AWS CloudAccount cannot serve.
      const switched = irsa('switcher', 'switcher-sa') as { spec: Record<string, unknown> };
      await kubectlApply({ ...switched, spec: { ...switched.spec, aws: undefined, gcp: { roles: [{ role: OBJECT_VIEWER }] } } });
      await eventually('the AWS access to be revoked with CloudMismatch', async () => {
        const wi = await getWI('switcher');
        const problems: string[] = [];
        const ready = condition(wi, 'Ready');
        if (ready?.status !== 'False' || ready.reason !== 'CloudMismatch' || !/revokes any it had/.test(ready.message)) problems.push(`Ready is not False/CloudMismatch saying it revokes (${describeCondition(wi, 'Ready')})`);
        if (await roleExists(roleName)) problems.push(`IAM role ${roleName} still exists`);
        const annotation = (await annotationsOf('switcher-sa'))[ROLE_ARN];
        if (annotation !== undefined) problems.push(`ServiceAccount still carries ${ROLE_ARN}=${annotation}`);
        if (!(await eventsOf('switcher', 'Revoked'))) problems.push('no Revoked event');
        if (problems.length) throw new Error(problems.join('; '));
        return true;
      });

      await kubectl(['delete', '-n', ns, 'workloadidentity/switcher', '--wait=false']);
      await kubectl(['wait', '-n', ns, '--for=delete', '--timeout=60s', 'workloadidentity/switcher']);
    });
  });

  describe('a namespace its CloudAccount stops admitting', () => {
    it('revokes the role and annotation when the namespace loses the selected label, and restores them when it gets it back', async (t) => {
      const selective = `e2e-edits-selective-${suffix}`;
      const [tenantNs, dropTenantNs] = await freshNamespace(kc, 'e2e-edits-tenant');
      t.after(async () => {
        await removeAll('workloadidentity', ['tenant'], tenantNs);
        await dropTenantNs();
        await removeAll('cloudaccount', [selective]);
      });
      await kubectl(['label', 'namespace', tenantNs, 'keyless-e2e=allowed']);
      await kubectlApply(awsAccount(selective, { namespaceSelector: { matchLabels: { 'keyless-e2e': 'allowed' } } }));
      await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${selective}`]);
      await kubectlApply(serviceAccount('tenant-sa', tenantNs), irsa('tenant', 'tenant-sa', { account: selective, namespace: tenantNs }));
      await waitReady('tenant', tenantNs);
      const { roleName, roleArn } = await roleOf('tenant', tenantNs);
      assert.equal((await annotationsOf('tenant-sa', tenantNs))[ROLE_ARN], roleArn);

      await kubectl(['label', 'namespace', tenantNs, 'keyless-e2e-']);
      await eventually('the access to be revoked with NamespaceNotAllowed', async () => {
        const wi = await getWI('tenant', tenantNs);
        const problems: string[] = [];
        const ready = condition(wi, 'Ready');
        if (ready?.status !== 'False' || ready.reason !== 'NamespaceNotAllowed' || !/revokes any it had/.test(ready.message)) problems.push(`Ready is not False/NamespaceNotAllowed saying it revokes (${describeCondition(wi, 'Ready')})`);
        if (await roleExists(roleName)) problems.push(`IAM role ${roleName} still exists`);
        const annotation = (await annotationsOf('tenant-sa', tenantNs))[ROLE_ARN];
        if (annotation !== undefined) problems.push(`ServiceAccount still carries ${ROLE_ARN}=${annotation}`);
        if (problems.length) throw new Error(problems.join('; '));
        return true;
      });

      await kubectl(['label', 'namespace', tenantNs, 'keyless-e2e=allowed']);
      await waitReady('tenant', tenantNs);
      assert.ok(await roleExists(roleName), 'the role is created again');
      assert.equal((await annotationsOf('tenant-sa', tenantNs))[ROLE_ARN], (await roleOf('tenant', tenantNs)).roleArn);
    });
  });

  describe("GKE: the shared principal's bindings that Keyless did not make", () => {
    it("keeps a person's roles/viewer of the principal through ServiceAccount mode, DirectPrincipal, back, and deletion", async (t) => {
      t.after(() => removeAll('workloadidentity', ['viewer'], ns));
      const principal = principalOf(ns, 'viewer-sa');
      await grantByHand('roles/viewer', principal);
      await kubectlApply(serviceAccount('viewer-sa'), gke('viewer', 'viewer-sa', 'ServiceAccount'));
      await waitReady('viewer');
      assert.deepEqual(await projectRolesOf(principal), ['roles/viewer'], 'after ServiceAccount mode is Ready');

      await kubectl(['patch', '-n', ns, 'workloadidentity/viewer', '--type=merge', '-p', '{"spec":{"gcp":{"mechanism":"DirectPrincipal"}}}']);
      await readyForCurrentSpec('viewer', (wi) => (wi.status?.identity === principal ? undefined : `identity is ${wi.status?.identity ?? 'unset'}, not the principal`));
      assert.deepEqual(await projectRolesOf(principal), [OBJECT_VIEWER, 'roles/viewer'], 'after DirectPrincipal is Ready');

      await kubectl(['patch', '-n', ns, 'workloadidentity/viewer', '--type=merge', '-p', '{"spec":{"gcp":{"mechanism":"ServiceAccount"}}}']);
      await readyForCurrentSpec('viewer', (wi) => (wi.status?.gcp?.serviceAccountEmail ? undefined : 'no Google service account yet'));
      assert.deepEqual(await projectRolesOf(principal), ['roles/viewer'], 'after switching back to ServiceAccount mode');

      await kubectl(['delete', '-n', ns, 'workloadidentity/viewer', '--wait=true', '--timeout=60s']);
      assert.deepEqual(await projectRolesOf(principal), ['roles/viewer'], 'after deletion');
    });

    it('leaves a binding a person made before Keyless asked for the same one when the WorkloadIdentity is deleted', async (t) => {
      t.after(() => removeAll('workloadidentity', ['pregranted'], ns));
      const principal = principalOf(ns, 'pregranted-sa');
      await grantByHand(OBJECT_VIEWER, principal);
      await kubectlApply(serviceAccount('pregranted-sa'), gke('pregranted', 'pregranted-sa', 'DirectPrincipal'));
      await waitReady('pregranted');
      assert.deepEqual(await projectRolesOf(principal), [OBJECT_VIEWER]);

      await kubectl(['delete', '-n', ns, 'workloadidentity/pregranted', '--wait=true', '--timeout=60s']);
      assert.deepEqual(await projectRolesOf(principal), [OBJECT_VIEWER], 'the binding was not made by Keyless, so it stays');
    });
  });

  describe('AKS: role assignments in another subscription', () => {
    it("removes the assignment in subscription B when the spec stops naming it", async (t) => {
      t.after(() => removeAll('workloadidentity', ['two-subs'], ns));
      await kubectlApply(serviceAccount('two-subs-sa'), aks('two-subs', 'two-subs-sa', [SCOPE_A, SCOPE_B]));
      await waitReady('two-subs');
      const principalId = await principalIdOf('two-subs');
      assert.deepEqual((await assignmentsIn(OTHER_SUBSCRIPTION, principalId)).map((a) => a.scope), [SCOPE_B]);

      await kubectlApply(aks('two-subs', 'two-subs-sa', [SCOPE_A]));
      await eventually('the subscription-B assignment to be deleted', async () => {
        const left = await assignmentsIn(OTHER_SUBSCRIPTION, principalId);
        if (left.length) throw new Error(`still assigned in subscription B: ${left.map((a) => `${a.scope} (${a.name ?? ''})`).join(', ')}`);
        return true;
      });
      assert.deepEqual((await assignmentsIn(TEST_SUBSCRIPTION, principalId)).map((a) => a.scope), [SCOPE_A], 'the subscription-A assignment stays');
    });

    it('removes the assignment in subscription B when a guardrail stops allowing it, and says GuardrailViolation', async (t) => {
      const tight = `e2e-edits-tight-${suffix}`;
      t.after(async () => {
        await removeAll('workloadidentity', ['guarded'], ns);
        await removeAll('cloudaccount', [tight]);
      });
      await kubectlApply(azureAccount(tight));
      await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${tight}`]);
      await kubectlApply(serviceAccount('guarded-sa'), aks('guarded', 'guarded-sa', [SCOPE_A, SCOPE_B], tight));
      await waitReady('guarded');
      const principalId = await principalIdOf('guarded');
      assert.equal((await assignmentsIn(OTHER_SUBSCRIPTION, principalId)).length, 1);

      await kubectl(['patch', `cloudaccount/${tight}`, '--type=merge', '-p', JSON.stringify({ spec: { guardrails: { azure: { allowedScopePrefixes: [`/subscriptions/${TEST_SUBSCRIPTION}`] } } } })]);
      await eventually('GuardrailViolation and the subscription-B assignment deleted', async () => {
        const wi = await getWI('guarded');
        const problems: string[] = [];
        if (condition(wi, 'PermissionsReady')?.reason !== 'GuardrailViolation') problems.push(describeCondition(wi, 'PermissionsReady'));
        const left = await assignmentsIn(OTHER_SUBSCRIPTION, principalId);
        if (left.length) problems.push(`still assigned in subscription B: ${left.map((a) => a.scope).join(', ')}`);
        if (problems.length) throw new Error(problems.join('; '));
        return true;
      });
      assert.deepEqual((await assignmentsIn(TEST_SUBSCRIPTION, principalId)).map((a) => a.scope), [SCOPE_A], 'the permitted assignment stays');
    });

    it('leaves no assignment anywhere when deleted right after its spec stopped naming subscription B', async (t) => {
      t.after(() => removeAll('workloadidentity', ['forgetful'], ns));
      await kubectlApply(serviceAccount('forgetful-sa'), aks('forgetful', 'forgetful-sa', [SCOPE_A, SCOPE_B]));
      await waitReady('forgetful');
      const principalId = await principalIdOf('forgetful');
      assert.equal((await assignmentsIn(OTHER_SUBSCRIPTION, principalId)).length, 1);

      // The spec no longer names B when the deletion starts; the grant there is only in the record.
      await kubectlApply(aks('forgetful', 'forgetful-sa', [SCOPE_A]));
      await kubectl(['delete', '-n', ns, 'workloadidentity/forgetful', '--wait=true', '--timeout=60s']);
      const left = [...azure.emulator.state.assignments.values()].filter((a) => a.principalId.toLowerCase() === principalId.toLowerCase());
      assert.deepEqual(left.map((a) => a.scope), [], 'no role assignment of the deleted identity is left in any subscription');
    });
  });

  describe('deleting the loser of a Conflict', () => {
    it("keeps the winner's role ARN on the ServiceAccount when the loser (IRSA) is deleted", async (t) => {
      t.after(() => removeAll('workloadidentity', ['irsa-a', 'irsa-b'], ns));
      await kubectlApply(serviceAccount('contested-sa'), irsa('irsa-a', 'contested-sa'));
      await waitReady('irsa-a');
      const { roleArn } = await roleOf('irsa-a');
      assert.equal((await annotationsOf('contested-sa'))[ROLE_ARN], roleArn);

      // A manifest may carry the finalizer itself (copied from a live object, say): the loser then goes through it.
      await newerThan('irsa-a');
      await kubectlApply(irsa('irsa-b', 'contested-sa', { finalizers: ['keyless.dev/revoke'] }));
      await eventually('the loser to report Conflict', async () => {
        const wi = await getWI('irsa-b');
        if (condition(wi, 'Ready')?.reason !== 'Conflict') throw new Error(describeCondition(wi, 'Ready'));
        return true;
      });

      const recording = await recordServiceAccount('contested-sa');
      try {
        await kubectl(['delete', '-n', ns, 'workloadidentity/irsa-b', '--wait=true', '--timeout=60s']);
        const seen = () => recording.versions.map((sa) => sa.metadata?.annotations?.[ROLE_ARN] ?? '<none>');
        assert.deepEqual([...new Set(seen())], [roleArn], 'every version of the ServiceAccount during the deletion carries the winner\'s role ARN');
        // The resync is 10 minutes away: nothing else would put a removed annotation back in this window.
        await new Promise((resolve) => setTimeout(resolve, 10_000));
        assert.deepEqual([...new Set(seen())], [roleArn], 'and in the 10 s after it');
        assert.equal((await annotationsOf('contested-sa'))[ROLE_ARN], roleArn);
      } finally {
        recording.stop();
      }
    });

    it("keeps the winner's grant to the shared principal when the loser (GKE DirectPrincipal) is deleted", async (t) => {
      t.after(() => removeAll('workloadidentity', ['gke-a', 'gke-b'], ns));
      const principal = principalOf(ns, 'shared-principal-sa');
      await kubectlApply(serviceAccount('shared-principal-sa'), gke('gke-a', 'shared-principal-sa', 'DirectPrincipal'));
      await waitReady('gke-a');
      assert.deepEqual(await projectRolesOf(principal), [OBJECT_VIEWER]);

      await newerThan('gke-a');
      await kubectlApply(gke('gke-b', 'shared-principal-sa', 'DirectPrincipal', ['keyless.dev/revoke']));
      await eventually('the loser to report Conflict', async () => {
        const wi = await getWI('gke-b');
        if (condition(wi, 'Ready')?.reason !== 'Conflict') throw new Error(describeCondition(wi, 'Ready'));
        return true;
      });
      const from = (await gcp.policyWrites()).length;
      await kubectl(['delete', '-n', ns, 'workloadidentity/gke-b', '--wait=true', '--timeout=60s']);
      // The resync is 10 minutes away, but the winner reconciles when the loser goes: every version of the project
      // policy written meanwhile counts, not only the one a read finds afterwards.
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      const versions = (await gcp.policyWrites()).slice(from).filter((w) => w.key === `project/${PROJECT}`);
      const lost = versions.filter((w) => !w.bindings.some((b) => b.role === OBJECT_VIEWER && !b.condition && b.members.includes(principal)));
      assert.equal(lost.length, 0, `${lost.length} of ${versions.length} project policy versions written during and after the loser's deletion lack the winner's ${OBJECT_VIEWER}`);
      assert.deepEqual(await projectRolesOf(principal), [OBJECT_VIEWER]);
      assert.equal(condition(await getWI('gke-a'), 'Ready')?.status, 'True');
    });
  });

  describe('ordinary deletes', () => {
    it('deletes Ready identities without a single failed reconcile', async (t) => {
      // The last reconciles of a deletion race the watch that reports the object gone: ten deletions, ten chances.
      const names = Array.from({ length: 10 }, (_, i) => `plain-${i}`);
      t.after(() => removeAll('workloadidentity', names, ns));
      await kubectlApply(...names.flatMap((n) => [serviceAccount(`${n}-sa`), irsa(n, `${n}-sa`)]));
      await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', '-n', ns, ...names.map((n) => `workloadidentity/${n}`)]);
      const errorsBefore = await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity', result: 'error' });

      await kubectl(['delete', '-n', ns, ...names.map((n) => `workloadidentity/${n}`), '--wait=true', '--timeout=60s']);
      // Reconciles queued by the deletions themselves (the ServiceAccount edits, the finalizer removal) run now.
      await new Promise((resolve) => setTimeout(resolve, 5_000));

      const keys = new Set(names.map((n) => `${ns}/${n}`));
      const failures = readFileSync(operator.logFile, 'utf8')
        .split('\n')
        .flatMap((line) => {
          try {
            const entry = JSON.parse(line) as { msg?: string; key?: string; err?: { message?: string } };
            return entry.key && keys.has(entry.key) && entry.msg?.startsWith('reconcile failed') ? [`${entry.key}: ${entry.msg} (${entry.err?.message?.split('\n')[0] ?? ''})`] : [];
          } catch {
            return [];
          }
        });
      assert.deepEqual(failures, [], 'no reconcile of these keys failed');
      const errors = (await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity', result: 'error' })) - errorsBefore;
      assert.equal(errors, 0, 'keyless_reconcile_total{result="error"} did not move');
    });
  });

  describe('a cloud that does not answer', () => {
    before(async () => {
      // The same operator, with the call deadline the test needs to see.
      await operator.stop();
      operator = await startOperatorWith('edit-histories-deadline', { KEYLESS_CLOUD_CALL_TIMEOUT_SECONDS: '2' });
    });

    it('fails a call that does not answer within the deadline, says which, warns after repeated failures, and recovers', async (t) => {
      t.after(async () => {
        await gcp.setFaults({ delays: [] });
        await removeAll('workloadidentity', ['stalled'], ns);
      });
      // A new ServiceAccount-mode identity first looks for its Google service account.
      await gcp.setFaults({ delays: [{ operation: 'GetServiceAccount', delayMs: 120_000, count: 10_000 }] });
      await kubectlApply(serviceAccount('stalled-sa'), gke('stalled', 'stalled-sa', 'ServiceAccount'));

      const ready = await eventually('Ready=False naming the call that did not answer', async () => {
        const wi = await getWI('stalled');
        const c = condition(wi, 'Ready');
        if (c?.status !== 'False' || !/did not answer within 2s/.test(c.message) || !/GetServiceAccount/.test(c.message)) throw new Error(describeCondition(wi, 'Ready'));
        return c;
      }, 30_000);
      assert.equal(ready.status, 'False');
      await eventually('a ReconcileFailing event after repeated failures', async () => {
        const events = await eventsOf('stalled', 'ReconcileFailing');
        if (!events) throw new Error('no ReconcileFailing event yet');
        return events;
      }, 60_000);

      await gcp.setFaults({ delays: [] });
      await readyForCurrentSpec('stalled', () => undefined, 90_000);
    });
  });
});
