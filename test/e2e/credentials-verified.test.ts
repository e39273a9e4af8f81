// CredentialsVerified end to end: the real operator, with verification on and config/verification installed, mints
// tokens and performs the real exchanges against the emulators — which check them as the clouds do (signature against
// the cluster's JWKS, issuer, audience, subject against the trust) — for every mechanism; and says what is wrong when
// the cloud stops honouring an identity: the IAM OIDC provider deleted, a federated credential's subject edited, a
// Google service account's workloadIdentityUser binding removed — the last two behind Keyless's back, so drift repair
// brings them back to Verified.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CreateClusterCommand } from '@aws-sdk/client-eks';
import { DeleteOpenIDConnectProviderCommand } from '@aws-sdk/client-iam';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Condition, WorkloadIdentity } from '../../src/api/types.ts';
import { kubernetesIssuer } from '../emulators/oidc/kubernetes.ts';
import { createOidcProvider, startAwsEmulator, TEST_ACCOUNT_ID, TEST_REGION, type AwsEmulator } from '../support/aws.ts';
import { DATA_RESOURCE_GROUP, TEST_RESOURCE_GROUP, TEST_SUBSCRIPTION, TEST_TENANT, startTestAzure, type TestAzure } from '../support/azure.ts';
import { eventually, freshNamespace, kubeConfig, kubectl, kubectlApply, repoPath } from '../support/cluster.ts';
import { startGcpTestEmulator, type GcpTestEmulator } from '../support/gcp.ts';
import { awsEnv, azureEnv, gcpEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';

const group = { group: 'keyless.dev', version: 'v1alpha1' };
const suffix = randomBytes(3).toString('hex');
const CLUSTER = 'e2e-verify';
const PROJECT = `e2e-verify-${suffix}`;
const PROJECT_NUMBER = String(randomInt(100_000_000, 999_999_999));
const POOL = `${PROJECT}.svc.id.goog`;
const account = { aws: `e2e-verify-aws-${suffix}`, gcp: `e2e-verify-gcp-${suffix}`, azure: `e2e-verify-azure-${suffix}` };
const IDENTITIES = ['irsa', 'pod', 'gsa', 'direct', 'aks'];

describe('CredentialsVerified end to end', () => {
  let kc: KubeConfig;
  let issuer: string;
  let aws: AwsEmulator;
  let gcp: GcpTestEmulator;
  let azure: TestAzure;
  let operator: RunningOperator;
  let ns: string;
  let dropNamespace: () => Promise<void>;

  const getWI = async (name: string) => (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns, name })) as WorkloadIdentity;
  const verified = async (name: string): Promise<Condition | undefined> => (await getWI(name)).status?.conditions?.find((c) => c.type === 'CredentialsVerified');
  /** Waits until `name`'s CredentialsVerified has `reason`, and returns it. */
  const until = (name: string, reason: string, timeoutMs = 60_000) =>
    eventually(`${name} CredentialsVerified ${reason}`, async () => {
      const c = await verified(name);
      if (c?.reason === reason) return c;
      throw new Error(`${c?.status ?? 'none'} ${c?.reason ?? ''}: ${c?.message ?? ''}`);
    }, timeoutMs);
  const workloadIdentity = (name: string, cloudAccount: string, spec: object) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns },
    spec: { serviceAccountName: `${name}-sa`, cloudAccountRef: { name: cloudAccount }, ...spec },
  });

  before(async () => {
    kc = kubeConfig();
    const source = await kubernetesIssuer(kc);
    issuer = source.issuer;
    aws = await startAwsEmulator({ issuers: [source], clusters: [{ name: CLUSTER, issuer }] });
    await aws.eks().send(new CreateClusterCommand({ name: CLUSTER, roleArn: `arn:aws:iam::${TEST_ACCOUNT_ID}:role/eks`, resourcesVpcConfig: { subnetIds: ['subnet-1'] } }));
    await createOidcProvider(aws.iam(), issuer);
    // On GKE the cluster's issuer is the identity provider the identity namespace audience names.
    gcp = await startGcpTestEmulator({ issuers: [source], pools: [{ pool: POOL, issuer }] });
    await gcp.addProject(PROJECT, PROJECT_NUMBER);
    azure = await startTestAzure({}, [source]);

    const operatorKubeconfig = await installOperator(kc, 'credentials-verified');
    await kubectl(['apply', '--server-side', '--field-manager=keyless-e2e', '-k', repoPath('config/verification')]);
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-verify');
    operator = await startOperator({
      name: 'credentials-verified',
      kubeconfig: operatorKubeconfig,
      // A short resync and grace, so drift and its repair are seen within seconds.
      env: { ...awsEnv(aws.endpoint), ...gcpEnv(gcp.endpoint), ...azureEnv(azure.emulator.endpoint, azure.caFile), KEYLESS_RESYNC_SECONDS: '5', KEYLESS_VERIFY_GRACE_SECONDS: '3', KEYLESS_CLUSTER_NAME: CLUSTER },
    });
    const verification = { enabled: true };
    await kubectlApply(
      { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: account.aws }, spec: { aws: { accountId: TEST_ACCOUNT_ID, region: TEST_REGION, clusterName: CLUSTER, oidcIssuer: issuer }, verification } },
      { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: account.gcp }, spec: { gcp: { projectId: PROJECT, projectNumber: PROJECT_NUMBER }, verification } },
      {
        apiVersion: 'keyless.dev/v1alpha1',
        kind: 'CloudAccount',
        metadata: { name: account.azure },
        spec: { azure: { subscriptionId: TEST_SUBSCRIPTION, tenantId: TEST_TENANT, resourceGroup: TEST_RESOURCE_GROUP, location: 'eastus', oidcIssuer: issuer }, verification },
      },
    );
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', ...Object.values(account).map((a) => `cloudaccount/${a}`)]);
    const policy = [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::your-org-book-covers/*'] }];
    await kubectlApply(
      ...IDENTITIES.map((n) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: `${n}-sa`, namespace: ns } })),
      workloadIdentity('irsa', account.aws, { aws: { policy } }),
      workloadIdentity('pod', account.aws, { aws: { mechanism: 'PodIdentity', policy } }),
      workloadIdentity('gsa', account.gcp, { gcp: { roles: [{ role: 'roles/cloudtrace.agent' }] } }),
      workloadIdentity('direct', account.gcp, { gcp: { mechanism: 'DirectPrincipal', roles: [{ role: 'roles/cloudtrace.agent' }] } }),
      workloadIdentity('aks', account.azure, { azure: { roleAssignments: [{ role: 'Reader', scope: `/subscriptions/${TEST_SUBSCRIPTION}/resourceGroups/${DATA_RESOURCE_GROUP}` }] } }),
    );
    await kubectl(['wait', '--for=condition=Ready', '--timeout=90s', '-n', ns, ...IDENTITIES.map((n) => `workloadidentity/${n}`)]);
  });

  after(async () => {
    await dropNamespace();
    await kubectl(['delete', 'cloudaccount', ...Object.values(account), '--ignore-not-found']);
    await kubectl(['delete', '-k', repoPath('config/verification'), '--ignore-not-found']);
    await operator.stop();
    await Promise.all([aws.stop(), gcp.stop(), azure.stop()]);
  });

  it('goes Verified for IRSA, Pod Identity, both GKE modes and AKS, naming the identity the cloud answered with', async () => {
    for (const name of IDENTITIES) {
      const c = await until(name, 'Verified');
      assert.equal(c.status, 'True', name);
    }
    const irsa = await getWI('irsa');
    assert.match((await verified('irsa'))?.message ?? '', new RegExp(`assumed-role/${irsa.status?.aws?.roleName ?? ''}/`));
    const clientId = (await getWI('aks')).status?.azure?.clientId;
    assert.ok(clientId && (await verified('aks'))?.message.includes(clientId), 'the AKS verdict names the managed identity');
    assert.equal((await getWI('irsa')).status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True', 'Ready is unaffected');
  });

  it('says IssuerNotTrusted, with the command that fixes it, once the IAM OIDC provider is deleted; Verified when it is back', async () => {
    await until('irsa', 'Verified');
    const arn = `arn:aws:iam::${TEST_ACCOUNT_ID}:oidc-provider/${issuer.replace(/^https:\/\//, '')}`;
    await aws.iam().send(new DeleteOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn }));
    try {
      const c = await until('irsa', 'IssuerNotTrusted');
      assert.equal(c.status, 'False');
      assert.match(c.message, new RegExp(`aws iam create-open-id-connect-provider --url ${issuer}`));
    } finally {
      await createOidcProvider(aws.iam(), issuer);
    }
    await until('irsa', 'Verified', 90_000);
  });

  it('says TrustRejected when the federated credential\'s subject is edited behind its back, then Verified after the repair', async () => {
    await until('aks', 'Verified');
    const identityName = ((await getWI('aks')).status?.azure?.identityId ?? '').split('/').pop() ?? '';
    const credentials = azure.msi().federatedIdentityCredentials;
    for await (const c of credentials.list(TEST_RESOURCE_GROUP, identityName)) {
      await credentials.createOrUpdate(TEST_RESOURCE_GROUP, identityName, c.name ?? '', { issuer: c.issuer ?? '', subject: `system:serviceaccount:${ns}:someone-else`, audiences: c.audiences ?? [] });
    }
    const c = await until('aks', 'TrustRejected');
    assert.equal(c.status, 'False');
    assert.match(c.message, /AADSTS700213/);
    await until('aks', 'Verified');
  });

  it('says TrustRejected when the Google service account\'s workloadIdentityUser binding is removed behind its back, then Verified after the repair', async () => {
    await until('gsa', 'Verified');
    const email = (await getWI('gsa')).status?.gcp?.serviceAccountEmail ?? '';
    const target = { kind: 'serviceAccount' as const, project: PROJECT, email };
    const policy = await gcp.client.getIamPolicy(target);
    await gcp.client.setIamPolicy(target, { ...policy, bindings: [] });
    const c = await until('gsa', 'TrustRejected');
    assert.equal(c.status, 'False');
    assert.match(c.message, /roles\/iam\.workloadIdentityUser binding is missing/);
    await until('gsa', 'Verified');
  });
});
