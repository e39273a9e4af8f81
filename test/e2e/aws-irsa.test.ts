// AWS IRSA end to end: the real operator (its own ServiceAccount and ClusterRole), the real control plane,
// kubectl, and moto behind a recording proxy.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  GetRoleCommand,
  GetRolePolicyCommand,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
  ListRolesCommand,
  ListRoleTagsCommand,
  PutRolePolicyCommand,
  UpdateAssumeRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { CreateClusterCommand } from '@aws-sdk/client-eks';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { CloudAccount, WorkloadIdentity } from '../../src/api/types.ts';
import { parseIamDocument } from '../../src/providers/aws/policy-document.ts';
import { isWrite, startAwsEmulator, TEST_ACCOUNT_ID, type AwsEmulator, createOidcProvider } from '../support/aws.ts';
import { clusterIssuer, eventually, freshNamespace, identityCountSettled, kubeConfig, kubectl, kubectlApply } from '../support/cluster.ts';
import { evaluateTrust } from '../support/iam-trust.ts';
import { awsEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';

const RESYNC_SECONDS = 5;
const group = { group: 'keyless.dev', version: 'v1alpha1' };

describe('AWS IRSA end to end', () => {
  let kc: KubeConfig;
  let aws: AwsEmulator;
  let operator: RunningOperator;
  let operatorKubeconfig: string;
  let issuer: string;
  let issuerKey: string;
  let providerArn: string;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  const account = `e2e-irsa-${randomBytes(3).toString('hex')}`;
  const operatorName = 'aws-irsa';

  const custom = () => kc.makeApiClient(CustomObjectsApi);
  const core = () => kc.makeApiClient(CoreV1Api);
  const getWI = async (name: string) =>
    (await custom().getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns, name })) as WorkloadIdentity;
  const getAccount = async () => (await custom().getClusterCustomObject({ ...group, plural: 'cloudaccounts', name: account })) as CloudAccount;
  const waitReady = (name: string) => kubectl(['wait', '--for=condition=Ready', '--timeout=90s', '-n', ns, `workloadidentity/${name}`]);
  const condition = (wi: WorkloadIdentity, type: string) => wi.status?.conditions?.find((c) => c.type === type);
  const start = async () => {
    operator = await startOperator({
      name: operatorName,
      kubeconfig: operatorKubeconfig,
      env: { ...awsEnv(aws.endpoint), KEYLESS_RESYNC_SECONDS: String(RESYNC_SECONDS), KEYLESS_CLUSTER_NAME: 'e2e-cluster' },
    });
  };
  const workloadIdentity = (name: string, serviceAccountName: string, spec: Record<string, unknown> = {}) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns },
    spec: {
      serviceAccountName,
      cloudAccountRef: { name: account },
      aws: { policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::your-org-book-covers/*'] }], maxSessionDuration: '2h', ...spec },
    },
  });
  const serviceAccount = (name: string) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } });
  const roleOf = async (name: string) => {
    const roleName = (await getWI(name)).status?.aws?.roleName;
    assert.ok(roleName, `${name} has status.aws.roleName`);
    return roleName;
  };

  before(async () => {
    kc = kubeConfig();
    aws = await startAwsEmulator();
    operatorKubeconfig = await installOperator(kc, operatorName);
    issuer = await clusterIssuer(kc);
    issuerKey = issuer.replace(/^https:\/\//, '');
    providerArn = `arn:aws:iam::${TEST_ACCOUNT_ID}:oidc-provider/${issuerKey}`;
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-irsa');
    await start();
  });

  after(async () => {
    // The namespace first, while the operator runs, so every WorkloadIdentity's finalizer is honoured.
    await dropNamespace();
    await kubectl(['delete', 'cloudaccount', account, '--ignore-not-found']);
    await operator.stop();
    await aws.stop();
  });

  it('reports a missing IAM OIDC provider on the CloudAccount with the command that creates it, then goes Ready', async () => {
    await kubectlApply({ apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: account }, spec: { aws: { accountId: TEST_ACCOUNT_ID, region: 'us-east-1', oidcIssuer: issuer } } });
    const missing = await eventually('OIDCProviderNotFound', async () => {
      const ready = (await getAccount()).status?.conditions?.find((c) => c.type === 'Ready');
      return ready?.reason === 'OIDCProviderNotFound' ? ready : undefined;
    });
    assert.equal(missing.status, 'False');
    assert.match(missing.message, new RegExp(`aws iam create-open-id-connect-provider --url ${issuer} --client-id-list sts.amazonaws.com`));

    await createOidcProvider(aws.iam(), issuer);
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${account}`]);
    const status = (await getAccount()).status;
    assert.equal(status?.issuer, issuer);
    assert.equal(status?.oidcProviderArn, providerArn);
  });

  it('discovers the issuer of an EKS cluster through DescribeCluster', async () => {
    const created = await aws.eks().send(
      new CreateClusterCommand({ name: 'discovered', roleArn: `arn:aws:iam::${TEST_ACCOUNT_ID}:role/eks`, resourcesVpcConfig: { subnetIds: ['subnet-1'] } }),
    );
    const eksIssuer = created.cluster?.identity?.oidc?.issuer;
    assert.ok(eksIssuer);
    const name = `${account}-eks`;
    await kubectlApply({ apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name }, spec: { aws: { accountId: TEST_ACCOUNT_ID, region: 'us-east-1', clusterName: 'discovered' } } });
    try {
      const discovered = await eventually('the discovered issuer', async () => {
        const ca = (await custom().getClusterCustomObject({ ...group, plural: 'cloudaccounts', name })) as CloudAccount;
        return ca.status?.issuer;
      });
      assert.equal(discovered, eksIssuer);
    } finally {
      await kubectl(['delete', 'cloudaccount', name]);
    }
  });

  it('creates the role, its exact trust and policy, and annotates the ServiceAccount (kubectl apply, wait, get)', async () => {
    await kubectlApply(serviceAccount('catalog-sa'), workloadIdentity('catalog', 'catalog-sa'));
    await waitReady('catalog');

    const wi = await getWI('catalog');
    const roleName = await roleOf('catalog');
    const { Role: role } = await aws.iam().send(new GetRoleCommand({ RoleName: roleName }));
    assert.ok(role?.Arn);
    assert.equal(role.Path, '/keyless/');
    assert.equal(role.MaxSessionDuration, 7200);
    assert.deepEqual(parseIamDocument(role.AssumeRolePolicyDocument ?? ''), {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'KeylessIRSA',
          Effect: 'Allow',
          Principal: { Federated: providerArn },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: { StringEquals: { [`${issuerKey}:sub`]: `system:serviceaccount:${ns}:catalog-sa`, [`${issuerKey}:aud`]: 'sts.amazonaws.com' } },
        },
      ],
    });
    const policies = await aws.iam().send(new ListRolePoliciesCommand({ RoleName: roleName }));
    assert.deepEqual(policies.PolicyNames, ['keyless']);
    const inline = await aws.iam().send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: 'keyless' }));
    assert.deepEqual(parseIamDocument(inline.PolicyDocument ?? ''), {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::your-org-book-covers/*'] }],
    });
    const tagList = (await aws.iam().send(new ListRoleTagsCommand({ RoleName: roleName }))).Tags ?? [];
    const tags: Record<string, string | undefined> = Object.fromEntries(tagList.map((t) => [t.Key ?? '', t.Value]));
    assert.deepEqual(tags, { 'keyless.dev/cluster': 'e2e-cluster', 'keyless.dev/namespace': ns, 'keyless.dev/name': 'catalog' });

    const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'catalog-sa' });
    assert.equal(sa.metadata?.annotations?.['eks.amazonaws.com/role-arn'], role.Arn);
    assert.equal(wi.status?.identity, role.Arn);
    assert.equal(wi.status?.subject, `system:serviceaccount:${ns}:catalog-sa`);
    for (const type of ['IdentityReady', 'TrustReady', 'PermissionsReady', 'ServiceAccountReady', 'Ready']) {
      assert.equal(condition(wi, type)?.status, 'True', type);
    }
    assert.match(condition(wi, 'TrustReady')?.message ?? '', new RegExp(`issuer ${issuer} for subject system:serviceaccount:${ns}:catalog-sa with audience sts.amazonaws.com`));

    const table = (await kubectl(['get', 'wi', '-n', ns, 'catalog'])).stdout;
    assert.match(table, /^NAME\s+CLOUD\s+MECHANISM\s+SERVICEACCOUNT\s+READY\s+IDENTITY\s+AGE/);
    assert.match(table, new RegExp(`catalog\\s+aws\\s+IRSA\\s+catalog-sa\\s+True\\s+${role.Arn.replace(/[/.]/g, '\\$&')}`));
  });

  it('trusts exactly that ServiceAccount and audience, proved by an independent IAM policy evaluator', async () => {
    const roleName = await roleOf('catalog');
    const { Role: role } = await aws.iam().send(new GetRoleCommand({ RoleName: roleName }));
    const trust = parseIamDocument(role?.AssumeRolePolicyDocument ?? '');
    const request = (principal: string, key: string, sub: string, aud: string) => ({
      principal,
      action: 'sts:AssumeRoleWithWebIdentity',
      roleArn: role?.Arn ?? '',
      context: { [`${key}:sub`]: sub, [`${key}:aud`]: aud },
    });
    const otherIssuer = 'oidc.eks.us-east-1.amazonaws.com/id/OTHER';
    const cases: [string, ReturnType<typeof request>, string][] = [
      ['the exact subject and audience', request(providerArn, issuerKey, `system:serviceaccount:${ns}:catalog-sa`, 'sts.amazonaws.com'), 'Allowed'],
      ['another ServiceAccount in the same namespace', request(providerArn, issuerKey, `system:serviceaccount:${ns}:other-sa`, 'sts.amazonaws.com'), 'ImplicitlyDenied'],
      ['the same ServiceAccount name in another namespace', request(providerArn, issuerKey, 'system:serviceaccount:other-ns:catalog-sa', 'sts.amazonaws.com'), 'ImplicitlyDenied'],
      ['a wrong audience', request(providerArn, issuerKey, `system:serviceaccount:${ns}:catalog-sa`, 'api://AzureADTokenExchange'), 'ImplicitlyDenied'],
      ['another issuer', request(`arn:aws:iam::${TEST_ACCOUNT_ID}:oidc-provider/${otherIssuer}`, otherIssuer, `system:serviceaccount:${ns}:catalog-sa`, 'sts.amazonaws.com'), 'ImplicitlyDenied'],
    ];
    for (const [what, req, expected] of cases) {
      assert.equal(evaluateTrust(trust, req), expected, what);
    }
  });

  it('makes no cloud writes and no Kubernetes writes at steady state', async (t) => {
    await identityCountSettled(account);
    const wi = await getWI('catalog');
    const callsBefore = aws.calls.length;
    const k8sWritesBefore = await operator.metric('keyless_kubernetes_writes_total');
    const reconcilesBefore = await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity', result: 'success' });
    // Several resync periods pass; the assertion is about what happened in them, not how long they took.
    await new Promise((resolve) => setTimeout(resolve, (RESYNC_SECONDS * 3 + 2) * 1000));
    const calls = aws.calls.slice(callsBefore);
    const reconciles = (await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity', result: 'success' })) - reconcilesBefore;
    assert.deepEqual(calls.filter((c) => isWrite(c.operation)), [], 'cloud writes at steady state');
    assert.equal((await operator.metric('keyless_kubernetes_writes_total')) - k8sWritesBefore, 0, 'Kubernetes writes at steady state');
    assert.equal((await getWI('catalog')).metadata.resourceVersion, wi.metadata.resourceVersion);
    assert.ok(reconciles >= 2, `at least two resyncs happened (${reconciles})`);
    const identities = Number((await kubectl(['get', 'wi', '-A', '-o', 'name'])).stdout.trim().split('\n').length);
    t.diagnostic(`steady state: ${calls.length} cloud reads over ${reconciles} reconciles of ${identities} identities: ${(calls.length / reconciles).toFixed(2)} reads per identity per resync (${[...new Set(calls.map((c) => c.operation))].join(', ')})`);
  });

  it('repairs a trust policy and inline policy edited behind its back within one resync, with an Event', async () => {
    const roleName = await roleOf('catalog');
    const widened = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Federated: providerArn }, Action: 'sts:AssumeRoleWithWebIdentity' }] };
    await aws.iam().send(new UpdateAssumeRolePolicyCommand({ RoleName: roleName, PolicyDocument: JSON.stringify(widened) }));
    await aws.iam().send(new PutRolePolicyCommand({ RoleName: roleName, PolicyName: 'keyless', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] }) }));

    await eventually('the trust and policy to be restored', async () => {
      const { Role } = await aws.iam().send(new GetRoleCommand({ RoleName: roleName }));
      const policy = await aws.iam().send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: 'keyless' }));
      const trustOk = JSON.stringify(parseIamDocument(Role?.AssumeRolePolicyDocument ?? '')).includes(`system:serviceaccount:${ns}:catalog-sa`);
      const policyOk = !JSON.stringify(parseIamDocument(policy.PolicyDocument ?? '')).includes('s3:*');
      return trustOk && policyOk ? true : undefined;
    }, RESYNC_SECONDS * 3 * 1000);
    const events = await kubectl(['get', 'events', '-n', ns, '--field-selector', 'involvedObject.name=catalog,reason=DriftRepaired', '-o', 'jsonpath={.items[*].message}']);
    assert.match(events.stdout, /Updated the trust policy of IAM role/);
    assert.match(events.stdout, /Put inline policy keyless on IAM role/);
  });

  it('rejects invalid specs at the API with a readable message', async () => {
    const bad = workloadIdentity('bad', 'catalog-sa', { maxSessionDuration: '13h' });
    const err = await kubectlApply(bad).then(() => undefined, (e: { stderr?: string }) => e.stderr);
    assert.match(err ?? '', /maxSessionDuration/);
  });

  it('reports a spec the cloud refuses (a malformed resource ARN) as CloudRejected, leaving nothing unmarked', async () => {
    await kubectlApply(serviceAccount('broken-sa'), workloadIdentity('broken', 'broken-sa', { policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:bad:s3:::x'] }] }));
    const ready = await eventually('Ready=False with CloudRejected', async () => {
      const c = condition(await getWI('broken'), 'Ready');
      return c?.reason === 'CloudRejected' ? c : undefined;
    });
    assert.equal(ready.status, 'False');
    assert.match(ready.message, /Partition "bad" is not valid/);
    assert.equal(condition(await getWI('broken'), 'PermissionsReady')?.status, 'False');
    const roles = (await aws.iam().send(new ListRolesCommand({ PathPrefix: '/keyless/' }))).Roles ?? [];
    for (const role of roles) {
      const tags = (await aws.iam().send(new ListRoleTagsCommand({ RoleName: role.RoleName }))).Tags ?? [];
      assert.ok(tags.some((tg) => tg.Key === 'keyless.dev/name'), `${role.RoleName} carries the ownership marker`);
    }
    await kubectl(['delete', '-n', ns, 'workloadidentity/broken', '--wait=true', '--timeout=60s']);
  });

  it('gives a second WorkloadIdentity for the same ServiceAccount a Conflict and keeps the first working', async () => {
    await kubectlApply(workloadIdentity('catalog-copy', 'catalog-sa'));
    const ready = await eventually('Conflict', async () => {
      const c = condition(await getWI('catalog-copy'), 'Ready');
      return c?.reason === 'Conflict' ? c : undefined;
    });
    assert.match(ready.message, new RegExp(`${ns}/catalog already gives ServiceAccount catalog-sa`));
    assert.equal(condition(await getWI('catalog'), 'Ready')?.status, 'True');
    assert.equal((await getWI('catalog-copy')).status?.aws?.roleArn, undefined, 'the loser created nothing');
    await kubectl(['delete', '-n', ns, 'workloadidentity/catalog-copy', '--wait=true', '--timeout=60s']);
  });

  it('provisions the cloud side before the ServiceAccount exists and annotates it once it appears', async () => {
    await kubectlApply(workloadIdentity('late', 'late-sa'));
    const sa = await eventually('ServiceAccountNotFound', async () => {
      const c = condition(await getWI('late'), 'ServiceAccountReady');
      return c?.reason === 'ServiceAccountNotFound' ? c : undefined;
    });
    assert.equal(sa.status, 'False');
    assert.equal(condition(await getWI('late'), 'IdentityReady')?.status, 'True');
    await kubectlApply(serviceAccount('late-sa'));
    await waitReady('late');
    const annotated = await core().readNamespacedServiceAccount({ namespace: ns, name: 'late-sa' });
    assert.equal(annotated.metadata?.annotations?.['eks.amazonaws.com/role-arn'], (await getWI('late')).status?.aws?.roleArn);
  });

  it('survives a SIGKILL between CreateRole and the status write with exactly one role', async () => {
    let killed: Promise<void> | undefined;
    aws.onAnswered = (operation) => {
      if (operation === 'CreateRole' && !killed) killed = operator.kill();
    };
    await kubectlApply(serviceAccount('crash-sa'), workloadIdentity('crash', 'crash-sa'));
    await eventually('the operator to be killed after CreateRole', () => Promise.resolve(killed ? true : undefined));
    await killed;
    aws.onAnswered = undefined;
    const before = await getWI('crash');
    assert.notEqual(condition(before, 'Ready')?.status, 'True', 'no Ready status was written before the kill');

    await start();
    await waitReady('crash');
    const roles = ((await aws.iam().send(new ListRolesCommand({ PathPrefix: '/keyless/' }))).Roles ?? []).filter((r) => r.RoleName?.includes('-crash-'));
    assert.equal(roles.length, 1);
    assert.equal(roles[0]?.Arn, (await getWI('crash')).status?.aws?.roleArn);
  });

  it('revokes on delete: annotation, policies and role gone, then the object', async () => {
    const roleName = await roleOf('catalog');
    await kubectl(['delete', '-n', ns, 'workloadidentity/catalog', '--wait=true', '--timeout=60s']);
    const gone = await aws.iam().send(new GetRoleCommand({ RoleName: roleName })).then(() => false, (e: { name?: string }) => e.name === 'NoSuchEntityException');
    assert.ok(gone, 'the role is deleted');
    const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'catalog-sa' });
    assert.equal(sa.metadata?.annotations?.['eks.amazonaws.com/role-arn'], undefined);
    // A delete is two Kubernetes writes (the annotation and the finalizer); what went is in the operator's log, not in Events.
    const revoked = (await operator.logged('revoked on delete')).filter((l) => l['workloadIdentity'] === `${ns}/catalog`);
    assert.equal(revoked.length, 1, 'the revocation is logged once');
  });

  it('leaves the role in place with deletionPolicy Orphan', async () => {
    await kubectlApply(serviceAccount('kept-sa'), workloadIdentity('kept', 'kept-sa'));
    await waitReady('kept');
    await kubectl(['patch', '-n', ns, 'workloadidentity/kept', '--type=merge', '-p', '{"spec":{"deletionPolicy":"Orphan"}}']);
    const roleName = await roleOf('kept');
    await kubectl(['delete', '-n', ns, 'workloadidentity/kept', '--wait=true', '--timeout=60s']);
    const { Role } = await aws.iam().send(new GetRoleCommand({ RoleName: roleName }));
    assert.equal(Role?.RoleName, roleName);
    const attached = await aws.iam().send(new ListAttachedRolePoliciesCommand({ RoleName: roleName }));
    assert.deepEqual(attached.AttachedPolicies, []);
  });
});
