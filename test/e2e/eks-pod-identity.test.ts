// EKS Pod Identity end to end, and migration between IRSA and Pod Identity by flipping one field: the real
// operator, the real control plane, moto for IAM and EKS clusters, the in-project Pod Identity emulator.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { GetRoleCommand, GetRolePolicyCommand } from '@aws-sdk/client-iam';
import { CreateClusterCommand, CreatePodIdentityAssociationCommand, ListPodIdentityAssociationsCommand, DescribePodIdentityAssociationCommand } from '@aws-sdk/client-eks';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { WorkloadIdentity } from '../../src/api/types.ts';
import { parseIamDocument } from '../../src/providers/aws/policy-document.ts';
import { isWrite, startAwsEmulator, TEST_ACCOUNT_ID, type AwsEmulator, createOidcProvider } from '../support/aws.ts';
import { clusterIssuer, eventually, freshNamespace, kubeConfig, kubectl, kubectlApply } from '../support/cluster.ts';
import { evaluateTrust } from '../support/iam-trust.ts';
import { awsEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';

const RESYNC_SECONDS = 5;
const CLUSTER = 'keyless-e2e';
const CLUSTER_ARN = `arn:aws:eks:us-east-1:${TEST_ACCOUNT_ID}:cluster/${CLUSTER}`;
const group = { group: 'keyless.dev', version: 'v1alpha1' };

describe('EKS Pod Identity end to end', () => {
  let kc: KubeConfig;
  let aws: AwsEmulator;
  let operator: RunningOperator;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  const account = `e2e-pod-${randomBytes(3).toString('hex')}`;

  const getWI = async (name: string) =>
    (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns, name })) as WorkloadIdentity;
  const waitReady = (name: string) => kubectl(['wait', '--for=condition=Ready', '--timeout=90s', '-n', ns, `workloadidentity/${name}`]);
  const condition = (wi: WorkloadIdentity, type: string) => wi.status?.conditions?.find((c) => c.type === type);
  const serviceAccount = (name: string) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } });
  const workloadIdentity = (name: string, sa: string, mechanism?: string) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns },
    spec: {
      serviceAccountName: sa,
      cloudAccountRef: { name: account },
      aws: { ...(mechanism ? { mechanism } : {}), policy: [{ effect: 'Allow', actions: ['sqs:SendMessage'], resources: [`arn:aws:sqs:us-east-1:${TEST_ACCOUNT_ID}:orders`] }] },
    },
  });
  const associationsFor = async (sa: string) =>
    (await aws.eks().send(new ListPodIdentityAssociationsCommand({ clusterName: CLUSTER, namespace: ns, serviceAccount: sa }))).associations ?? [];
  const trustOf = async (roleName: string) => parseIamDocument((await aws.iam().send(new GetRoleCommand({ RoleName: roleName }))).Role?.AssumeRolePolicyDocument ?? '');
  const sids = (trust: unknown) => ((trust as { Statement: { Sid: string }[] }).Statement ?? []).map((s) => s.Sid).sort();

  before(async () => {
    kc = kubeConfig();
    aws = await startAwsEmulator();
    const kubeconfig = await installOperator(kc, 'eks-pod-identity');
    const issuer = await clusterIssuer(kc);
    await aws.eks().send(new CreateClusterCommand({ name: CLUSTER, roleArn: `arn:aws:iam::${TEST_ACCOUNT_ID}:role/eks`, resourcesVpcConfig: { subnetIds: ['subnet-1'] } }));
    // IRSA for the migration tests: the test cluster's issuer is registered as an IAM OIDC provider.
    await createOidcProvider(aws.iam(), issuer);
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-pod');
    operator = await startOperator({
      name: 'eks-pod-identity',
      kubeconfig,
      env: { ...awsEnv(aws.endpoint), KEYLESS_RESYNC_SECONDS: String(RESYNC_SECONDS), KEYLESS_CLUSTER_NAME: 'e2e-cluster' },
    });
    await kubectlApply({
      apiVersion: 'keyless.dev/v1alpha1',
      kind: 'CloudAccount',
      metadata: { name: account },
      spec: { aws: { accountId: TEST_ACCOUNT_ID, region: 'us-east-1', clusterName: CLUSTER, oidcIssuer: issuer, mechanism: 'PodIdentity' } },
    });
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${account}`]);
  });

  after(async () => {
    await dropNamespace();
    await kubectl(['delete', 'cloudaccount', account, '--ignore-not-found']);
    await operator.stop();
    await aws.stop();
  });

  it('creates the association, the tag-scoped trust and the policy, with no ServiceAccount annotation', async () => {
    await kubectlApply(serviceAccount('orders-sa'), workloadIdentity('orders', 'orders-sa'));
    await waitReady('orders');
    const wi = await getWI('orders');
    const roleName = wi.status?.aws?.roleName ?? '';
    const roleArn = wi.status?.aws?.roleArn ?? '';
    assert.equal(wi.status?.mechanism, 'PodIdentity');

    const [summary] = await associationsFor('orders-sa');
    assert.ok(summary?.associationId);
    assert.equal(wi.status?.aws?.associationId, summary.associationId);
    const { association } = await aws.eks().send(new DescribePodIdentityAssociationCommand({ clusterName: CLUSTER, associationId: summary.associationId }));
    assert.equal(association?.roleArn, roleArn);
    assert.equal(association?.namespace, ns);
    assert.equal(association?.serviceAccount, 'orders-sa');
    assert.equal(association?.disableSessionTags, false, 'session tags stay on: the trust conditions need them');

    assert.deepEqual(await trustOf(roleName), {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'KeylessPodIdentity',
          Effect: 'Allow',
          Principal: { Service: 'pods.eks.amazonaws.com' },
          Action: ['sts:AssumeRole', 'sts:TagSession'],
          Condition: { StringEquals: { 'aws:RequestTag/kubernetes-namespace': ns, 'aws:RequestTag/kubernetes-service-account': 'orders-sa', 'aws:RequestTag/eks-cluster-arn': CLUSTER_ARN } },
        },
      ],
    });
    const policy = await aws.iam().send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: 'keyless' }));
    assert.deepEqual(parseIamDocument(policy.PolicyDocument ?? ''), {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: [`arn:aws:sqs:us-east-1:${TEST_ACCOUNT_ID}:orders`] }],
    });
    const sa = await kc.makeApiClient(CoreV1Api).readNamespacedServiceAccount({ namespace: ns, name: 'orders-sa' });
    assert.equal(sa.metadata?.annotations?.['eks.amazonaws.com/role-arn'], undefined);
    assert.match(condition(wi, 'ServiceAccountReady')?.message ?? '', /eks-pod-identity-agent/);
  });

  it('trusts only EKS Pod Identity sessions tagged with this namespace, ServiceAccount and cluster', async () => {
    const wi = await getWI('orders');
    const trust = await trustOf(wi.status?.aws?.roleName ?? '');
    const request = (tags: Record<string, string>, action = 'sts:AssumeRole', principal = 'pods.eks.amazonaws.com') => ({
      principal,
      action,
      roleArn: wi.status?.aws?.roleArn ?? '',
      context: Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
    });
    const tags = { 'kubernetes-namespace': ns, 'kubernetes-service-account': 'orders-sa', 'eks-cluster-arn': CLUSTER_ARN };
    const cases: [string, ReturnType<typeof request>, string][] = [
      ['matching session tags', request(tags), 'Allowed'],
      ['TagSession with matching tags', request(tags, 'sts:TagSession'), 'Allowed'],
      ['another namespace', request({ ...tags, 'kubernetes-namespace': 'other' }), 'ImplicitlyDenied'],
      ['another ServiceAccount', request({ ...tags, 'kubernetes-service-account': 'other-sa' }), 'ImplicitlyDenied'],
      ['another cluster', request({ ...tags, 'eks-cluster-arn': `arn:aws:eks:us-east-1:${TEST_ACCOUNT_ID}:cluster/other` }), 'ImplicitlyDenied'],
      ['no session tags', request({}), 'ImplicitlyDenied'],
      ['another service principal', request(tags, 'sts:AssumeRole', 'ec2.amazonaws.com'), 'ImplicitlyDenied'],
    ];
    for (const [what, req, expected] of cases) assert.equal(evaluateTrust(trust, req), expected, what);
  });

  it('makes no cloud writes at steady state', async (t) => {
    const before = aws.calls.length;
    const reconcilesBefore = await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity', result: 'success' });
    await new Promise((resolve) => setTimeout(resolve, (RESYNC_SECONDS * 2 + 2) * 1000));
    const calls = aws.calls.slice(before);
    const reconciles = (await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity', result: 'success' })) - reconcilesBefore;
    assert.deepEqual(calls.filter((c) => isWrite(c.operation)), []);
    t.diagnostic(`steady state: ${calls.length} cloud reads over ${reconciles} reconciles (${[...new Set(calls.map((c) => c.operation))].join(', ')})`);
  });

  it('reports a foreign association for the same ServiceAccount as a Conflict naming it, and leaves it untouched', async () => {
    await kubectlApply(serviceAccount('taken-sa'));
    const foreign = await aws.eks().send(
      new CreatePodIdentityAssociationCommand({ clusterName: CLUSTER, namespace: ns, serviceAccount: 'taken-sa', roleArn: `arn:aws:iam::${TEST_ACCOUNT_ID}:role/someone-else` }),
    );
    const id = foreign.association?.associationId ?? '';
    await kubectlApply(workloadIdentity('taken', 'taken-sa'));
    const ready = await eventually('Conflict', async () => {
      const c = condition(await getWI('taken'), 'Ready');
      return c?.reason === 'Conflict' ? c : undefined;
    });
    assert.match(ready.message, new RegExp(id));
    await kubectl(['delete', '-n', ns, 'workloadidentity/taken', '--wait=true', '--timeout=60s']);
    const { association } = await aws.eks().send(new DescribePodIdentityAssociationCommand({ clusterName: CLUSTER, associationId: id }));
    assert.equal(association?.roleArn, `arn:aws:iam::${TEST_ACCOUNT_ID}:role/someone-else`, 'the foreign association is untouched');
  });

  it('migrates IRSA → Pod Identity → IRSA with a valid credential path at every observed step', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    await kubectlApply(serviceAccount('mig-sa'), workloadIdentity('mig', 'mig-sa', 'IRSA'));
    await waitReady('mig');
    const { roleName = '', roleArn = '' } = (await getWI('mig')).status?.aws ?? {};
    const pod = (name: string, env: string, volume: string, value = 'injected'): V1Pod => ({
      metadata: { name, namespace: ns },
      spec: {
        serviceAccountName: 'mig-sa',
        containers: [{ name: 'app', image: 'registry.example/app:1', env: [{ name: env, value }] }],
        volumes: [{ name: volume, projected: { sources: [{ serviceAccountToken: { path: 'token', audience: 'sts.amazonaws.com', expirationSeconds: 86400 } }] } }],
      },
    });
    // A pod the IRSA webhook injected before the switch, pointed at this role.
    await core.createNamespacedPod({ namespace: ns, body: pod('irsa-pod', 'AWS_ROLE_ARN', 'aws-iam-token', roleArn) });

    // Sample the whole credential picture while the migration runs. Reads go annotation → pods → cloud, the order in
    // which the operator changes things, so a sample never pairs a newer annotation with an older trust.
    const violations: string[] = [];
    let samples = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const sa = await core.readNamespacedServiceAccount({ namespace: ns, name: 'mig-sa' });
        const annotated = sa.metadata?.annotations?.['eks.amazonaws.com/role-arn'] !== undefined;
        const pods = (await core.listNamespacedPod({ namespace: ns })).items.map((p) => p.metadata?.name);
        const trust = sids(await trustOf(roleName));
        const association = (await associationsFor('mig-sa')).length > 0;
        const irsa = trust.includes('KeylessIRSA');
        const podIdentity = trust.includes('KeylessPodIdentity') && association;
        const state = `annotated=${annotated} pods=${pods.join('|')} trust=${trust.join('+')} association=${association}`;
        if (annotated && !irsa) violations.push(`new pods would get IRSA without its trust: ${state}`);
        if (!annotated && !podIdentity) violations.push(`new pods would get Pod Identity without its path: ${state}`);
        if (pods.includes('irsa-pod') && !irsa) violations.push(`a running IRSA pod lost its trust: ${state}`);
        if (pods.includes('pod-identity-pod') && !podIdentity) violations.push(`a running Pod Identity pod lost its path: ${state}`);
        samples++;
      }
    })();

    try {
      await kubectl(['patch', '-n', ns, 'workloadidentity/mig', '--type=merge', '-p', '{"spec":{"aws":{"mechanism":"PodIdentity"}}}']);
      await eventually('the annotation to go and the association to exist', async () => {
        const sa = await core.readNamespacedServiceAccount({ namespace: ns, name: 'mig-sa' });
        return !sa.metadata?.annotations?.['eks.amazonaws.com/role-arn'] && (await associationsFor('mig-sa')).length ? true : undefined;
      }, 60_000);
      assert.deepEqual(sids(await trustOf(roleName)), ['KeylessIRSA', 'KeylessPodIdentity'], 'IRSA stays while its pod runs');
      await eventually('TrustReady to say what it waits for', async () => (/still waiting for 1 running pod/.test(condition(await getWI('mig'), 'TrustReady')?.message ?? '') ? true : undefined));

      await core.deleteNamespacedPod({ namespace: ns, name: 'irsa-pod', gracePeriodSeconds: 0 });
      await eventually('the IRSA trust to go', async () => (sids(await trustOf(roleName)).join() === 'KeylessPodIdentity' ? true : undefined), 60_000);

      // Back to IRSA while a Pod Identity pod runs.
      await core.createNamespacedPod({ namespace: ns, body: pod('pod-identity-pod', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'eks-pod-identity-token') });
      await kubectl(['patch', '-n', ns, 'workloadidentity/mig', '--type=merge', '-p', '{"spec":{"aws":{"mechanism":"IRSA"}}}']);
      await eventually('the annotation to return', async () => {
        const sa = await core.readNamespacedServiceAccount({ namespace: ns, name: 'mig-sa' });
        return sa.metadata?.annotations?.['eks.amazonaws.com/role-arn'] ? true : undefined;
      }, 60_000);
      assert.equal((await associationsFor('mig-sa')).length, 1, 'the association stays while its pod runs');
      await core.deleteNamespacedPod({ namespace: ns, name: 'pod-identity-pod', gracePeriodSeconds: 0 });
      await eventually('only IRSA to remain', async () =>
        sids(await trustOf(roleName)).join() === 'KeylessIRSA' && (await associationsFor('mig-sa')).length === 0 ? true : undefined, 60_000);
      await waitReady('mig');
    } finally {
      sampling = false;
      await sampler;
    }
    assert.ok(samples > 5, `sampled ${samples} states`);
    assert.deepEqual(violations, []);
  });

  it('deletes the association before the role', async () => {
    const roleName = (await getWI('orders')).status?.aws?.roleName ?? '';
    const from = aws.calls.length;
    await kubectl(['delete', '-n', ns, 'workloadidentity/orders', '--wait=true', '--timeout=60s']);
    const writes = aws.calls.slice(from).map((c) => c.operation).filter(isWrite);
    assert.ok(writes.indexOf('DeletePodIdentityAssociation') >= 0, writes.join());
    assert.ok(writes.indexOf('DeletePodIdentityAssociation') < writes.indexOf('DeleteRole'), writes.join());
    assert.equal((await associationsFor('orders-sa')).length, 0);
    await assert.rejects(aws.iam().send(new GetRoleCommand({ RoleName: roleName })), { name: 'NoSuchEntityException' });
  });
});
