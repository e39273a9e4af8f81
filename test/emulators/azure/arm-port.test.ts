// The operator's ARM ports (src/providers/aks-workload-identity/arm-client.ts) over the real SDK clients, through
// the emulator: scopes without the SDK's doubled slash, one instrumented call per page, and ARM errors classified.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import { Metrics } from '../../../src/observability/metrics.ts';
import { CloudError } from '../../../src/providers/cloud-error.ts';
import { instrumentedCall, type CallBudget } from '../../../src/providers/instrument.ts';
import { createAuthorizationPort, createMsiPort } from '../../../src/providers/aks-workload-identity/arm-client.ts';
import type { AuthorizationPort, MsiPort } from '../../../src/providers/aks-workload-identity/arm-port.ts';
import { classifyAzureError } from '../../../src/providers/aks-workload-identity/errors.ts';
import { DATA_RESOURCE_GROUP, TEST_RESOURCE_GROUP as RG, TEST_SUBSCRIPTION as SUB, startTestAzure, type TestAzure } from '../../support/azure.ts';

const free = { take: () => Promise.resolve() };
const UNLIMITED: CallBudget = { read: free, write: free };

const READER = `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7`;
const SCOPE = `/subscriptions/${SUB}/resourceGroups/${DATA_RESOURCE_GROUP}`;

describe('ARM ports over the SDK and the emulator', () => {
  let azure: TestAzure;
  let msi: MsiPort;
  let authz: AuthorizationPort;
  let metrics: Metrics;
  const calls = async (operation: string) => (await metrics.cloudApiCalls.get()).values.filter((v) => v.labels.operation === operation).reduce((n, v) => n + v.value, 0);

  before(async () => {
    azure = await startTestAzure({ pageSize: 1 });
    metrics = new Metrics();
    const call = instrumentedCall('azure', UNLIMITED, metrics, classifyAzureError, { timeoutMs: 10_000, endpoint: azure.emulator.endpoint });
    const credential = { getToken: () => Promise.resolve({ token: 't', expiresOnTimestamp: Date.now() + 60_000 }) };
    const options = { endpoint: azure.emulator.endpoint, tlsOptions: { ca: azure.ca }, retryOptions: { maxRetries: 0 } };
    msi = createMsiPort(new ManagedServiceIdentityClient(credential, SUB, options), RG, call);
    authz = createAuthorizationPort(new AuthorizationManagementClient(credential, SUB, options), call);
  });
  after(async () => {
    await azure.stop();
  });

  it('reads a missing identity as undefined and deletes a missing one without error', async () => {
    assert.equal(await msi.getIdentity('nobody'), undefined);
    await msi.deleteIdentity('nobody');
  });

  it('round-trips an identity and its credentials, one counted call per page', async () => {
    const identity = await msi.putIdentity('port-id', { location: 'eastus', tags: { 'keyless.dev/name': 'x' } });
    assert.deepEqual((await msi.getIdentity('port-id'))?.tags, { 'keyless.dev/name': 'x' });
    for (const n of ['c-one', 'c-two', 'c-three']) await msi.putCredential(identity.name, { name: n, issuer: 'https://issuer/', subject: n, audiences: ['api://AzureADTokenExchange'] });
    const before = await calls('FederatedIdentityCredentials_List');
    const listed = await msi.listCredentials(identity.name);
    assert.deepEqual(listed.map((c) => c.subject).sort(), ['c-one', 'c-three', 'c-two']);
    assert.equal((await calls('FederatedIdentityCredentials_List')) - before, 3, 'three pages of one, each its own call');
    await msi.deleteCredential(identity.name, 'c-two');
    assert.equal((await msi.listCredentials(identity.name)).length, 2);
  });

  it('sends scopes with one leading slash and finds roles by name', async () => {
    assert.deepEqual(await authz.findRoleDefinitions(`/subscriptions/${SUB}`, 'Reader'), ['acdd72a7-3385-48ef-bd42-f606fba81ae7']);
    const principalId = randomUUID();
    const name = randomUUID();
    const created = await authz.createRoleAssignment(SCOPE, name, { roleDefinitionId: READER, principalId });
    assert.equal(created.scope, SCOPE);
    const last = azure.emulator.requests.at(-1);
    assert.equal(last?.path, `${SCOPE}/providers/Microsoft.Authorization/roleAssignments/${name}`);
    assert.deepEqual((await authz.listRoleAssignments(`/subscriptions/${SUB}`, principalId)).map((a) => a.name), [name]);
    await assert.rejects(authz.createRoleAssignment(SCOPE, randomUUID(), { roleDefinitionId: READER, principalId }), (err: unknown) => err instanceof CloudError && err.kind === 'alreadyExists' && err.code === 'RoleAssignmentExists');
    await authz.deleteRoleAssignment(SCOPE, name);
    assert.deepEqual(await authz.listRoleAssignments(`/subscriptions/${SUB}`, principalId), []);
  });

  it('classifies a missing resource group as terminal, a concurrent credential write as conflict and a bare 429 as throttled', async () => {
    const otherGroup = createMsiPort(
      new ManagedServiceIdentityClient({ getToken: () => Promise.resolve({ token: 't', expiresOnTimestamp: Date.now() + 60_000 }) }, SUB, { endpoint: azure.emulator.endpoint, tlsOptions: { ca: azure.ca }, retryOptions: { maxRetries: 0 } }),
      'no-such-group',
      instrumentedCall('azure', UNLIMITED, metrics, classifyAzureError, { timeoutMs: 10_000, endpoint: azure.emulator.endpoint }),
    );
    await assert.rejects(otherGroup.listIdentities(), (err: unknown) => err instanceof CloudError && err.kind === 'terminal' && err.code === 'ResourceGroupNotFound');

    azure.emulator.addFault({ operation: 'FederatedIdentityCredentials_CreateOrUpdate', status: 409, code: 'ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity', times: 1 });
    await assert.rejects(msi.putCredential('port-id', { name: 'c-four', issuer: 'https://issuer/', subject: 'four', audiences: ['api://AzureADTokenExchange'] }), (err: unknown) => err instanceof CloudError && err.kind === 'conflict');
    azure.emulator.addFault({ operation: 'UserAssignedIdentities_Get', status: 429, code: 'TooManyRequests', times: 1 });
    await assert.rejects(msi.getIdentity('port-id'), (err: unknown) => err instanceof CloudError && err.kind === 'throttled');
    azure.emulator.clearFaults();
  });
});
