// AKS workload identity end to end: the real operator (its own ServiceAccount and ClusterRole), the real control
// plane, kubectl, and the in-project ARM emulator over HTTPS, checked with the real Azure SDK clients.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { FederatedIdentityCredential } from '@azure/arm-msi';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { CloudAccount, WorkloadIdentity } from '../../src/api/types.ts';
import { roleAssignmentName } from '../../src/providers/aks-workload-identity/desired.ts';
import type { RequestRecord } from '../emulators/azure/server.ts';
import { DATA_RESOURCE_GROUP, TEST_RESOURCE_GROUP, TEST_SUBSCRIPTION as SUB, TEST_TENANT, startTestAzure, type TestAzure } from '../support/azure.ts';
import { clusterIssuer, eventually, freshNamespace, identityCountSettled, kubeConfig, kubectl, kubectlApply } from '../support/cluster.ts';
import { azureEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';

const RESYNC_SECONDS = 5;
const group = { group: 'keyless.dev', version: 'v1alpha1' };
const AUDIENCE = 'api://AzureADTokenExchange';
const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
const BLOB_READER = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1';
const DATA_RG = `/subscriptions/${SUB}/resourceGroups/${DATA_RESOURCE_GROUP}`;
const BOOKS = `${DATA_RG}/providers/Microsoft.Storage/storageAccounts/books`;
const roleId = (guid: string) => `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;
const isWrite = (r: RequestRecord) => r.method !== 'GET';

describe('AKS workload identity end to end', () => {
  let kc: KubeConfig;
  let azure: TestAzure;
  let operator: RunningOperator;
  let issuer: string;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  const account = `e2e-aks-${randomBytes(3).toString('hex')}`;
  /** An assignment on the same scope and role as ours, for a principal that is not ours. */
  const foreign = { name: randomUUID(), principalId: randomUUID() };

  const custom = () => kc.makeApiClient(CustomObjectsApi);
  const core = () => kc.makeApiClient(CoreV1Api);
  const getWI = async (name: string) => (await custom().getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns, name })) as WorkloadIdentity;
  const getAccount = async (name: string) => (await custom().getClusterCustomObject({ ...group, plural: 'cloudaccounts', name })) as CloudAccount;
  const condition = (wi: WorkloadIdentity, type: string) => wi.status?.conditions?.find((c) => c.type === type);
  const serviceAccount = (name: string) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } });
  const workloadIdentity = (name: string, serviceAccountName: string, roleAssignments: { role: string; scope: string }[], labels: Record<string, string> = {}) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns, labels },
    spec: { serviceAccountName, cloudAccountRef: { name: account }, azure: { roleAssignments } },
  });
  const azureAccount = (name: string, resourceGroup: string) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name },
    spec: { azure: { subscriptionId: SUB, tenantId: TEST_TENANT, resourceGroup, location: 'eastus', oidcIssuer: issuer } },
  });
  const identityOf = async (name: string) => {
    const status = (await getWI(name)).status?.azure;
    assert.ok(status?.identityId && status.principalId, `${name} has status.azure`);
    const identityName = status.identityId.split('/').pop() ?? '';
    return { ...status, identityName, principalId: status.principalId };
  };
  const credentialsOf = async (identityName: string) => {
    const list: FederatedIdentityCredential[] = [];
    for await (const c of azure.msi().federatedIdentityCredentials.list(TEST_RESOURCE_GROUP, identityName)) list.push(c);
    return list;
  };
  const assignmentsOf = (principalId: string) => azure.assignmentsOf(principalId);

  before(async () => {
    kc = kubeConfig();
    azure = await startTestAzure();
    const operatorKubeconfig = await installOperator(kc, 'aks');
    issuer = await clusterIssuer(kc);
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-aks');
    operator = await startOperator({
      name: 'aks',
      kubeconfig: operatorKubeconfig,
      env: {
        ...azureEnv(azure.emulator.endpoint, azure.caFile),
        KEYLESS_RESYNC_SECONDS: String(RESYNC_SECONDS),
        KEYLESS_CLUSTER_NAME: 'e2e-aks-cluster',
        KEYLESS_WORKERS: '8',
        KEYLESS_CLOUD_WRITES_PER_SECOND: '100',
        KEYLESS_CLOUD_WRITE_BURST: '50',
      },
    });
  });

  after(async () => {
    // The namespace first, while the operator runs, so every WorkloadIdentity's finalizer is honoured.
    await dropNamespace();
    await kubectl(['delete', 'cloudaccount', account, '--ignore-not-found']);
    await operator.stop();
    await azure.stop();
  });

  it('reports a missing resource group on the CloudAccount with the command that creates it', async () => {
    const name = `${account}-nogroup`;
    await kubectlApply(azureAccount(name, 'no-such-group'));
    try {
      const ready = await eventually('ResourceGroupNotFound', async () => {
        const c = (await getAccount(name)).status?.conditions?.find((x) => x.type === 'Ready');
        return c?.reason === 'ResourceGroupNotFound' ? c : undefined;
      });
      assert.equal(ready.status, 'False');
      assert.match(ready.message, new RegExp(`az group create --subscription ${SUB} --name no-such-group --location eastus`));
    } finally {
      await kubectl(['delete', 'cloudaccount', name]);
    }
  });

  it('makes the CloudAccount Ready with the issuer from its spec', async () => {
    await kubectlApply(azureAccount(account, TEST_RESOURCE_GROUP));
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${account}`]);
    assert.equal((await getAccount(account)).status?.issuer, issuer);
  });

  it('creates the identity, the exact federated credential and each role assignment, and annotates the ServiceAccount', async (t) => {
    await azure.authorization().roleAssignments.create(DATA_RG.slice(1), foreign.name, { roleDefinitionId: roleId(READER), principalId: foreign.principalId, principalType: 'ServicePrincipal' });
    const firstSeq = azure.emulator.requests.length;
    await kubectlApply(serviceAccount('catalog-sa'), workloadIdentity('catalog', 'catalog-sa', [{ role: 'Storage Blob Data Reader', scope: BOOKS }, { role: READER, scope: DATA_RG }]));
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', '-n', ns, 'workloadidentity/catalog']);
    const createCalls = azure.emulator.requests.slice(firstSeq);

    const wi = await getWI('catalog');
    const { identityName, principalId, clientId } = await identityOf('catalog');
    const identity = await azure.msi().userAssignedIdentities.get(TEST_RESOURCE_GROUP, identityName);
    assert.equal(identity.clientId, clientId);
    assert.equal(identity.location, 'eastus');
    assert.deepEqual(identity.tags, { 'keyless.dev/cluster': 'e2e-aks-cluster', 'keyless.dev/namespace': ns, 'keyless.dev/name': 'catalog' });
    assert.deepEqual(wi.status?.azure, { clientId: identity.clientId, principalId: identity.principalId, tenantId: TEST_TENANT, identityId: identity.id });
    assert.equal(wi.status?.identity, identity.clientId);
    assert.equal(wi.status?.audience, AUDIENCE);

    const credentials = await credentialsOf(identityName);
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0]?.issuer, issuer);
    assert.equal(credentials[0]?.subject, `system:serviceaccount:${ns}:catalog-sa`);
    assert.deepEqual(credentials[0]?.audiences, [AUDIENCE]);

    const assignments = (await assignmentsOf(principalId)).map((a) => ({ name: a.name, scope: a.scope, roleDefinitionId: a.roleDefinitionId, principalType: a.principalType })).sort((a, b) => (a.scope ?? '').localeCompare(b.scope ?? ''));
    assert.deepEqual(assignments, [
      { name: roleAssignmentName(DATA_RG, READER, principalId), scope: DATA_RG, roleDefinitionId: roleId(READER), principalType: 'ServicePrincipal' },
      { name: roleAssignmentName(BOOKS, BLOB_READER, principalId), scope: BOOKS, roleDefinitionId: roleId(BLOB_READER), principalType: 'ServicePrincipal' },
    ]);

    const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'catalog-sa' });
    assert.equal(sa.metadata?.annotations?.['azure.workload.identity/client-id'], identity.clientId);
    assert.equal(sa.metadata?.annotations?.['azure.workload.identity/tenant-id'], TEST_TENANT);
    for (const type of ['IdentityReady', 'TrustReady', 'PermissionsReady', 'ServiceAccountReady', 'Ready']) assert.equal(condition(wi, type)?.status, 'True', type);
    assert.match(condition(wi, 'ServiceAccountReady')?.message ?? '', /azure\.workload\.identity\/use: "true"/);
    assert.match(condition(wi, 'TrustReady')?.message ?? '', new RegExp(`issuer ${issuer} for subject system:serviceaccount:${ns}:catalog-sa with audience ${AUDIENCE} only`));

    const table = (await kubectl(['get', 'wi', '-n', ns, 'catalog'])).stdout;
    assert.match(table, new RegExp(`catalog\\s+azure\\s+WorkloadIdentity\\s+catalog-sa\\s+True\\s+${identity.clientId}`));
    t.diagnostic(`create: ${createCalls.length} ARM calls (${createCalls.filter(isWrite).length} writes): ${createCalls.map((r) => r.operation).join(', ')}`);
  });

  it('reports a data-plane role on a resource of another provider as GrantsNothing, never Ready', async () => {
    const vault = `${DATA_RG}/providers/Microsoft.KeyVault/vaults/secrets`;
    await kubectlApply(serviceAccount('misplaced-sa'), workloadIdentity('misplaced', 'misplaced-sa', [{ role: 'Storage Blob Data Reader', scope: vault }]));
    const permissions = await eventually('GrantsNothing', async () => {
      const c = condition(await getWI('misplaced'), 'PermissionsReady');
      return c?.reason === 'GrantsNothing' ? c : undefined;
    });
    assert.match(permissions.message, /Storage Blob Data Reader grants nothing at .*vaults\/secrets: Storage Blob Data Reader acts on Microsoft\.Storage resources, and this scope is a Microsoft\.KeyVault resource/);
    assert.equal(condition(await getWI('misplaced'), 'Ready')?.reason, 'GrantsNothing');
    await kubectl(['delete', '-n', ns, 'workloadidentity/misplaced', '--wait=true', '--timeout=60s']);
  });

  it("leaves another principal's role assignment on the same scope and role alone while creating", async () => {
    const kept = await azure.authorization().roleAssignments.get(DATA_RG.slice(1), foreign.name);
    assert.equal(kept.principalId, foreign.principalId);
  });

  it('makes no cloud writes and no Kubernetes writes at steady state', async (t) => {
    await identityCountSettled(account);
    const wi = await getWI('catalog');
    const from = azure.emulator.requests.length;
    const k8sWritesBefore = await operator.metric('keyless_kubernetes_writes_total');
    const reconcilesBefore = await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity', result: 'success' });
    // Several resync periods pass; the assertion is about what happened in them, not how long they took.
    await new Promise((resolve) => setTimeout(resolve, (RESYNC_SECONDS * 3 + 2) * 1000));
    const calls = azure.emulator.requests.slice(from);
    const reconciles = (await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity', result: 'success' })) - reconcilesBefore;
    assert.deepEqual(calls.filter(isWrite).map((r) => r.operation), [], 'cloud writes at steady state');
    assert.equal((await operator.metric('keyless_kubernetes_writes_total')) - k8sWritesBefore, 0, 'Kubernetes writes at steady state');
    assert.equal((await getWI('catalog')).metadata.resourceVersion, wi.metadata.resourceVersion);
    assert.ok(reconciles >= 2, `at least two resyncs happened (${reconciles})`);
    // The CloudAccount check reads the identity list the identities share, so its reads are counted with theirs.
    t.diagnostic(`steady state: ${calls.length} ARM reads over ${reconciles} WorkloadIdentity reconciles: ${(calls.length / reconciles).toFixed(2)} per identity per resync (${[...new Set(calls.map((r) => r.operation))].join(', ')})`);
  });

  it('repairs a foreign federated credential and a deleted role assignment within a resync, with Events', async () => {
    const { identityName, principalId } = await identityOf('catalog');
    await azure.msi().federatedIdentityCredentials.createOrUpdate(TEST_RESOURCE_GROUP, identityName, 'backdoor', { issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:someone/else:ref:refs/heads/main', audiences: [AUDIENCE] });
    await azure.authorization().roleAssignments.delete(BOOKS.slice(1), roleAssignmentName(BOOKS, BLOB_READER, principalId));
    await eventually('the trust and the grant to be restored', async () => {
      const credentials = await credentialsOf(identityName);
      const assignments = await assignmentsOf(principalId);
      return credentials.length === 1 && credentials[0]?.subject === `system:serviceaccount:${ns}:catalog-sa` && assignments.length === 2 ? true : undefined;
    }, RESYNC_SECONDS * 3 * 1000);
    const events = await kubectl(['get', 'events', '-n', ns, '--field-selector', 'involvedObject.name=catalog,reason=DriftRepaired', '-o', 'jsonpath={.items[*].message}']);
    assert.match(events.stdout, /Removed federated credential backdoor/);
    assert.match(events.stdout, /Assigned Storage Blob Data Reader/);
  });

  it('retries PrincipalNotFound after the identity is created quietly, without a failure condition', async () => {
    azure.emulator.state.config.principalReplicationDelayMs = 1_500;
    const from = azure.emulator.requests.length;
    try {
      await kubectlApply(serviceAccount('young-sa'), workloadIdentity('young', 'young-sa', [{ role: READER, scope: DATA_RG }]));
      await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', '-n', ns, 'workloadidentity/young']);
    } finally {
      azure.emulator.state.config.principalReplicationDelayMs = 0;
    }
    assert.ok(azure.emulator.requests.slice(from).some((r) => r.code === 'PrincipalNotFound'), 'the replication delay was hit');
    const reasons = (await kubectl(['get', 'events', '-n', ns, '--field-selector', 'involvedObject.name=young', '-o', 'jsonpath={.items[*].reason}'])).stdout.split(' ');
    assert.deepEqual(reasons.filter((r) => !['Reconciling', 'Created', 'TrustCreated', 'RoleAssigned', 'Ready'].includes(r)), [], 'no failure was reported');
    assert.equal(condition(await getWI('young'), 'PermissionsReady')?.status, 'True');
  });

  it('brings 30 WorkloadIdentities created at once to Ready through concurrency 409s and 429s, without duplicates', async (t) => {
    const count = 30;
    const faults = [
      azure.emulator.addFault({ operation: 'FederatedIdentityCredentials_CreateOrUpdate', status: 409, code: 'ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity', message: 'Too many Federated Identity Credentials are written concurrently for the managed identity. Concurrent Federated Identity Credentials writes under the same managed identity are not supported.', every: 4 }),
      azure.emulator.addFault({ operation: 'RoleAssignments_Create', status: 429, code: 'TooManyRequests', message: 'The request is being throttled.', retryAfterSeconds: 1, every: 4 }),
      azure.emulator.addFault({ status: 429, code: 'TooManyRequests', message: 'The request is being throttled.', every: 30 }),
    ];
    const from = azure.emulator.requests.length;
    const reconcilesBefore = await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity' });
    const objects = [];
    for (let i = 0; i < count; i++) {
      objects.push(serviceAccount(`burst-${i}`), workloadIdentity(`burst-${i}`, `burst-${i}`, [{ role: 'Storage Blob Data Reader', scope: BOOKS }, { role: 'Reader', scope: DATA_RG }], { batch: 'burst' }));
    }
    try {
      await kubectlApply(...objects);
      await kubectl(['wait', '--for=condition=Ready', '--timeout=90s', '-n', ns, 'workloadidentity', '-l', 'batch=burst']);
    } finally {
      azure.emulator.clearFaults();
    }
    for (const f of faults) assert.ok(f.fired > 0, `fault ${f.code}${f.retryAfterSeconds === undefined ? '' : ' with Retry-After'} on ${f.operation ?? 'every operation'} fired`);
    const calls = azure.emulator.requests.slice(from);

    const ours = [...azure.emulator.state.identities.values()].filter((i) => i.tags['keyless.dev/namespace'] === ns && i.tags['keyless.dev/name']?.startsWith('burst-'));
    assert.equal(ours.length, count, 'one identity per WorkloadIdentity');
    assert.equal(new Set(ours.map((i) => i.tags['keyless.dev/name'])).size, count);
    const triples = [...azure.emulator.state.assignments.values()].map((a) => `${a.scope.toLowerCase()}|${a.roleDefinitionId.split('/').pop()}|${a.principalId}`);
    assert.equal(new Set(triples).size, triples.length, 'no duplicate (scope, role, principal) assignment');
    for (const identity of ours) {
      assert.equal(identity.credentials.size, 1, `${identity.name} has exactly one federated credential`);
      const its = [...azure.emulator.state.assignments.values()].filter((a) => a.principalId === identity.principalId);
      assert.equal(its.length, 2, `${identity.name} has exactly its two role assignments`);
    }
    const statuses = await Promise.all(Array.from({ length: count }, (_, i) => getWI(`burst-${i}`)));
    assert.equal(new Set(statuses.map((w) => w.status?.azure?.identityId)).size, count);
    const faulted = calls.filter((r) => r.fault).length;
    const byOperation = new Map<string, number>();
    for (const r of calls) byOperation.set(r.operation, (byOperation.get(r.operation) ?? 0) + 1);
    const reconciles = (await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity' })) - reconcilesBefore;
    t.diagnostic(`burst: ${calls.length} ARM calls for ${count} identities (${(calls.length / count).toFixed(1)} each) in ${reconciles} reconciles, ${faulted} answered by injected faults: ${[...byOperation].map(([op, n]) => `${op} ${n}`).join(', ')}`);
  });

  it('revokes on delete in order — federated credential, role assignments, identity — and removes the annotations', async () => {
    const { identityName, principalId, identityId } = await identityOf('catalog');
    const ours = new Set((await assignmentsOf(principalId)).map((a) => a.name?.toLowerCase()));
    const from = azure.emulator.requests.length;
    await kubectl(['delete', '-n', ns, 'workloadidentity/catalog', '--wait=true', '--timeout=60s']);

    const deletes = azure.emulator.requests
      .slice(from)
      .filter((r) => r.method === 'DELETE' && r.status < 300 && (r.path.includes(`/userAssignedIdentities/${identityName}`) || ours.has(r.path.split('/').pop()?.toLowerCase())));
    assert.deepEqual(
      deletes.map((r) => r.operation),
      ['FederatedIdentityCredentials_Delete', 'RoleAssignments_Delete', 'RoleAssignments_Delete', 'UserAssignedIdentities_Delete'],
    );
    await assert.rejects(azure.msi().userAssignedIdentities.get(TEST_RESOURCE_GROUP, identityName), (err: unknown) => (err as { statusCode?: number }).statusCode === 404);
    assert.deepEqual(await assignmentsOf(principalId), []);
    assert.ok(![...azure.emulator.state.identities.values()].some((i) => i.tags['keyless.dev/name'] === 'catalog' && i.tags['keyless.dev/namespace'] === ns), `${identityId} is gone`);
    const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'catalog-sa' });
    assert.equal(sa.metadata?.annotations?.['azure.workload.identity/client-id'], undefined);
    assert.equal(sa.metadata?.annotations?.['azure.workload.identity/tenant-id'], undefined);
    // A delete is two Kubernetes writes (the annotation and the finalizer); what went is in the operator's log, not in Events.
    const revoked = (await operator.logged('revoked on delete')).filter((l) => l['workloadIdentity'] === `${ns}/catalog`);
    assert.equal(revoked.length, 1, 'the revocation is logged once');
  });

  it("leaves another principal's role assignment on the same scope and role alone while deleting", async () => {
    const kept = await azure.authorization().roleAssignments.get(DATA_RG.slice(1), foreign.name);
    assert.equal(kept.principalId, foreign.principalId);
    assert.equal(kept.roleDefinitionId, roleId(READER));
  });
});
