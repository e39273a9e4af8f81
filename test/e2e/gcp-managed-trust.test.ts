// Issue 17's managed trust on Google Cloud, end to end: the real operator, the real control plane (not GKE) and the
// GCP emulator's IAM v1 pools and providers with their long-running operations. A CloudAccount that sets
// spec.gcp.manageWorkloadIdentityProvider gets the pool and the OIDC provider it lacks, marked in their description; a
// federated WorkloadIdentity goes Ready through them and a pod's google-auth-library chain gets its token from the
// emulator's STS; a provider or pool someone else made is used and left exactly as it was (the emulator's GET, byte
// for byte); deleting an account after its identities removes only what Keyless made — soft-deleted, as IAM does —
// and an account that asks again undeletes it rather than creating it anew.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { CloudAccount, Condition, WorkloadIdentity } from '../../src/api/types.ts';
import { kubernetesIssuer } from '../emulators/oidc/kubernetes.ts';
import { eventually, freshNamespace, kubeConfig, kubectl, kubectlApply } from '../support/cluster.ts';
import { mountedEnvironment, probe, scratchDir } from '../support/exchange.ts';
import { createWorkloadIdentityProvider, startGcpTestEmulator, type GcpTestEmulator } from '../support/gcp.ts';
import { gcpEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';

const group = { group: 'keyless.dev', version: 'v1alpha1' };
const CLUSTER = 'e2e-gcp-managed';
const suffix = randomBytes(3).toString('hex');
const PROJECT = `e2e-wipm-${suffix}`;
const PROJECT_NUMBER = String(randomInt(100_000_000, 999_999_999));
const BUCKET = `wipm-covers-${suffix}`;
/** What the platform team reads with: not the operator's token, so the emulator's log tells the two apart. */
const PLATFORM_TOKEN = 'e2e-platform-team';
const MOUNT = '/var/run/secrets/keyless.dev/gcp';
const providerName = (pool: string, provider: string) => `projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/${pool}/providers/${provider}`;
/** The operator's writes of pools and providers, from the emulator's call log. */
const poolWrite = (c: { method: string; operation: string }) => c.method !== 'GET' && c.operation.startsWith('workloadIdentityPools');
const poolName = (pool: string) => `projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/${pool}`;

describe('managed trust on Google Cloud: the workload identity pool and provider', () => {
  let kc: KubeConfig;
  let issuer: string;
  let gcp: GcpTestEmulator;
  let operator: RunningOperator;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  let dir: string;
  let dropDir: () => void;
  const accounts: string[] = [];

  const custom = () => kc.makeApiClient(CustomObjectsApi);
  const getAccount = async (name: string) => (await custom().getClusterCustomObject({ ...group, plural: 'cloudaccounts', name })) as CloudAccount;
  const condition = (obj: { status?: { conditions?: Condition[] } | undefined }, type: string) => obj.status?.conditions?.find((c) => c.type === type);
  /** The emulator's answer to IAM v1's GET, as the bytes a client receives; undefined for 404. */
  const iamGet = async (name: string): Promise<string | undefined> => {
    const res = await fetch(`${gcp.endpoint}/v1/${name}`, { headers: { authorization: `Bearer ${PLATFORM_TOKEN}` } });
    if (res.status === 404) return undefined;
    assert.equal(res.status, 200, `GET ${name}`);
    return res.text();
  };
  const iamRead = async (name: string) => {
    const text = await iamGet(name);
    return text === undefined ? undefined : (JSON.parse(text) as { state: string; description: string; oidc?: { issuerUri: string; allowedAudiences?: string[] }; attributeMapping?: Record<string, string> });
  };
  const account = async (name: string, gcpSpec: Record<string, unknown>) => {
    accounts.push(name);
    await kubectlApply({ apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name }, spec: { gcp: { projectId: PROJECT, projectNumber: PROJECT_NUMBER, ...gcpSpec } } });
  };
  const managedAccount = (name: string, provider: string) => account(name, { workloadIdentityProvider: provider, manageWorkloadIdentityProvider: true, oidcIssuer: issuer });
  const accountCondition = (name: string, type: string, ready: (c: Condition) => boolean = () => true) =>
    eventually(`${type} on CloudAccount ${name}`, async () => {
      const c = condition(await getAccount(name), type);
      return c && ready(c) ? c : undefined;
    });
  /** A ServiceAccount and a DirectPrincipal WorkloadIdentity for it that may read the bucket, Ready. */
  const identity = async (name: string, accountName: string) => {
    await kubectlApply(
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } },
      {
        apiVersion: 'keyless.dev/v1alpha1',
        kind: 'WorkloadIdentity',
        metadata: { name, namespace: ns },
        spec: { serviceAccountName: name, cloudAccountRef: { name: accountName }, gcp: { mechanism: 'DirectPrincipal', roles: [{ role: 'roles/storage.objectViewer', resource: `//storage.googleapis.com/projects/_/buckets/${BUCKET}` }] } },
      },
    );
    await kubectl(['wait', '--for=condition=Ready', '--timeout=90s', '-n', ns, `workloadidentity/${name}`]);
    return (await custom().getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns, name })) as WorkloadIdentity;
  };
  /** What google-auth-library gets in a pod of the identity's ServiceAccount that mounts what the docs say. */
  const podProbe = async (wi: WorkloadIdentity) => {
    const sa = wi.spec.serviceAccountName;
    const pod: V1Pod = {
      metadata: { name: `${sa}-${randomBytes(2).toString('hex')}`, namespace: ns },
      spec: {
        serviceAccountName: sa,
        containers: [{ name: 'app', image: 'registry.invalid/app:1', env: [{ name: 'GOOGLE_APPLICATION_CREDENTIALS', value: `${MOUNT}/credential-configuration.json` }, { name: 'GOOGLE_CLOUD_PROJECT', value: PROJECT }], volumeMounts: [{ name: 'keyless-gcp', mountPath: MOUNT, readOnly: true }] }],
        volumes: [{ name: 'keyless-gcp', projected: { sources: [{ serviceAccountToken: { audience: wi.status?.audience ?? '', expirationSeconds: 3600, path: 'token' } }, { configMap: { name: wi.status?.gcp?.credentialConfigMap ?? '' } }] } }],
      },
    };
    const created = await kc.makeApiClient(CoreV1Api).createNamespacedPod({ namespace: ns, body: pod });
    return probe('gcp', await mountedEnvironment(kc, created, dir), dir);
  };
  const deleteAccount = async (name: string) => kubectl(['delete', 'cloudaccount', name, '--timeout=60s']);

  before(async () => {
    kc = kubeConfig();
    const source = await kubernetesIssuer(kc);
    issuer = source.issuer;
    [dir, dropDir] = scratchDir();
    gcp = await startGcpTestEmulator({ issuers: [source] });
    await gcp.addProject(PROJECT, PROJECT_NUMBER);
    await gcp.addBucket(BUCKET);
    const operatorKubeconfig = await installOperator(kc, 'gcp-managed-trust');
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-wipm');
    operator = await startOperator({ name: 'gcp-managed-trust', kubeconfig: operatorKubeconfig, env: { ...gcpEnv(gcp.endpoint), KEYLESS_RESYNC_SECONDS: '5', KEYLESS_CLUSTER_NAME: CLUSTER } });
    // Operators of suites running beside this one share the leader Lease: wait for our turn.
    await eventually('the operator to lead', async () => ((await operator.metric('keyless_leader')) === 1 ? true : undefined), 600_000);
  });

  after(async () => {
    // The namespace first, while the operator runs, so every WorkloadIdentity's finalizer is honoured.
    await dropNamespace();
    for (const name of accounts) await kubectl(['delete', 'cloudaccount', name, '--ignore-not-found', '--timeout=60s']);
    await operator.stop();
    await gcp.stop();
    dropDir();
  });

  it('creates the missing pool and provider, marked, and a federated identity’s pod gets its Google token through them', async () => {
    const name = `wipm-managed-${suffix}`;
    const provider = providerName('keyless-managed', 'local');
    assert.equal(await iamGet(poolName('keyless-managed')), undefined, 'the emulator starts without the pool');
    await managedAccount(name, provider);
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${name}`]);

    const marker = `Managed by Keyless; do not edit. keyless.dev/cluster=${CLUSTER} keyless.dev/cloud-account=${name}`;
    assert.deepEqual(await iamRead(poolName('keyless-managed')), { name: poolName('keyless-managed'), displayName: 'Keyless', description: marker, state: 'ACTIVE', disabled: false });
    const created = await iamRead(provider);
    assert.equal(created?.description, marker);
    assert.deepEqual(created?.oidc, { issuerUri: issuer }, 'no allowedAudiences: the provider accepts its own name');
    assert.deepEqual(created?.attributeMapping, { 'google.subject': 'assertion.sub' });
    const status = (await getAccount(name)).status;
    assert.equal(status?.issuer, issuer);
    assert.deepEqual(status?.managedTrust, { workloadIdentityPools: [poolName('keyless-managed')], workloadIdentityProviders: [provider] });
    const managed = condition({ status }, 'OIDCProviderManaged');
    assert.deepEqual([managed?.status, managed?.reason], ['True', 'Managed']);
    const creates = (await gcp.operatorCalls()).filter(poolWrite).map((c) => c.operation);
    assert.deepEqual(creates, ['workloadIdentityPools.create', 'workloadIdentityPools.providers.create']);

    const wi = await identity('catalog', name);
    assert.equal(wi.status?.audience, `https://iam.googleapis.com/${provider}`);
    const result = await podProbe(wi);
    assert.equal(result.ok, true, JSON.stringify(result));
    const principal = `principal://iam.googleapis.com/projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/keyless-managed/subject/system:serviceaccount:${ns}:catalog`;
    assert.equal((await gcp.accessToken(result.identity ?? ''))?.principal, principal);
  });

  it('uses a provider made by hand as it is, byte for byte, and never deletes it', async () => {
    const name = `wipm-foreign-${suffix}`;
    const provider = await createWorkloadIdentityProvider(gcp.endpoint, PLATFORM_TOKEN, { project: PROJECT, pool: 'hand-made', provider: 'local', issuer });
    const before = [await iamGet(poolName('hand-made')), await iamGet(provider)];
    await managedAccount(name, provider);
    const existing = await accountCondition(name, 'OIDCProviderManaged');
    assert.deepEqual([existing.status, existing.reason], ['False', 'ExistingProvider']);
    assert.match(existing.message, /created outside Keyless.*never changes or deletes it/);
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${name}`]);
    assert.equal((await getAccount(name)).status?.managedTrust, undefined);

    const wi = await identity('inventory', name);
    assert.equal((await podProbe(wi)).ok, true, 'the hand-made provider is used');
    await kubectl(['delete', 'workloadidentity', '-n', ns, 'inventory', '--timeout=60s']);
    await deleteAccount(name);
    assert.deepEqual([await iamGet(poolName('hand-made')), await iamGet(provider)], before);
  });

  it('puts its own provider into a pool made by hand, and deletes only the provider', async () => {
    const name = `wipm-inpool-${suffix}`;
    // A pool without providers, as `gcloud iam workload-identity-pools create shared-pool` makes it.
    const res = await fetch(`${gcp.endpoint}/v1/projects/${PROJECT}/locations/global/workloadIdentityPools?workloadIdentityPoolId=shared-pool`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PLATFORM_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ displayName: 'shared', description: 'the platform team’s pool' }),
    });
    assert.equal(res.status, 200);
    const before = await iamGet(poolName('shared-pool'));
    const provider = providerName('shared-pool', 'local');
    await managedAccount(name, provider);
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${name}`]);
    assert.deepEqual((await getAccount(name)).status?.managedTrust, { workloadIdentityProviders: [provider] });
    assert.match(condition(await getAccount(name), 'OIDCProviderManaged')?.message ?? '', /which Keyless did not create and never changes or deletes/);

    await deleteAccount(name);
    assert.equal((await iamRead(provider))?.state, 'DELETED', 'its own provider, soft-deleted');
    assert.equal(await iamGet(poolName('shared-pool')), before, 'the pool exactly as it was');
  });

  it('deletes what it created only after the account’s identities are gone, and undeletes it when asked again', async () => {
    const name = `wipm-delete-${suffix}`;
    const provider = providerName('keyless-delete', 'local');
    await managedAccount(name, provider);
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${name}`]);
    await identity('orders', name);

    await kubectl(['delete', 'cloudaccount', name, '--wait=false']);
    const waiting = await accountCondition(name, 'Ready', (c) => c.reason === 'InUse');
    assert.match(waiting.message, /Deletion waits for the 1 WorkloadIdentities/);
    assert.equal((await iamRead(provider))?.state, 'ACTIVE', 'kept while its identity exists');

    await kubectl(['delete', 'workloadidentity', '-n', ns, 'orders', '--timeout=60s']);
    await kubectl(['wait', '--for=delete', '--timeout=60s', `cloudaccount/${name}`]);
    assert.deepEqual([(await iamRead(provider))?.state, (await iamRead(poolName('keyless-delete')))?.state], ['DELETED', 'DELETED']);

    // IAM keeps a deleted id for 30 days and refuses to create it again: Keyless undeletes its own.
    await gcp.clearLog();
    await managedAccount(name, provider);
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${name}`]);
    assert.deepEqual([(await iamRead(provider))?.state, (await iamRead(poolName('keyless-delete')))?.state], ['ACTIVE', 'ACTIVE']);
    const writes = (await gcp.operatorCalls()).filter(poolWrite).map((c) => c.operation);
    assert.deepEqual(writes, ['workloadIdentityPools.undelete', 'workloadIdentityPools.providers.undelete']);
  });
});
