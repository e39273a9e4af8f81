// The ARM emulator, driven by the real @azure/arm-msi and @azure/arm-authorization clients: the wire shapes,
// status codes and behaviours the operator depends on (cloud-apis.md §4), so that a green end-to-end run means
// something.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import { DATA_RESOURCE_GROUP, TEST_RESOURCE_GROUP as RG, TEST_SUBSCRIPTION as SUB, startTestAzure, type TestAzure } from '../../support/azure.ts';

const AUD = ['api://AzureADTokenExchange'];
const READER = `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7`;
const SCOPE = `subscriptions/${SUB}/resourceGroups/${DATA_RESOURCE_GROUP}`;

type RestErrorLike = { statusCode?: number; code?: string; message: string };
const fails = (statusCode: number, code: string) => (err: unknown) => {
  const e = err as RestErrorLike;
  return e.statusCode === statusCode && e.code === code;
};

function raw(azure: TestAzure, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${azure.emulator.endpoint}${path}`, { method, ca: azure.ca, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Azure ARM emulator', () => {
  let azure: TestAzure;
  before(async () => {
    azure = await startTestAzure({ pageSize: 2 });
  });
  after(async () => {
    await azure.stop();
  });

  it('creates (201) and updates (200) an identity with server-generated GUIDs and a lowercase resourcegroups ID', async () => {
    const msi = azure.msi();
    const created = await msi.userAssignedIdentities.createOrUpdate(RG, 'id-basic', { location: 'eastus', tags: { a: '1' } });
    assert.match(created.clientId ?? '', /^[0-9a-f-]{36}$/);
    assert.match(created.principalId ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(created.id, `/subscriptions/${SUB}/resourcegroups/${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-basic`);
    const updated = await msi.userAssignedIdentities.createOrUpdate(RG, 'id-basic', { location: 'eastus', tags: { a: '2' } });
    assert.equal(updated.clientId, created.clientId);
    assert.deepEqual(updated.tags, { a: '2' });
    const statuses = azure.emulator.requests.filter((r) => r.operation === 'UserAssignedIdentities_CreateOrUpdate').map((r) => r.status);
    assert.deepEqual(statuses.slice(-2), [201, 200]);
    await assert.rejects(msi.userAssignedIdentities.get(RG, 'missing'), fails(404, 'ResourceNotFound'));
    await assert.rejects(msi.userAssignedIdentities.get('no-such-rg', 'x'), fails(404, 'ResourceGroupNotFound'));
  });

  it('requires a bearer token and the api-version', async () => {
    const path = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-basic`;
    const noAuth = await raw(azure, 'GET', `${path}?api-version=2024-11-30`);
    assert.equal(noAuth.status, 401);
    const noVersion = await raw(azure, 'GET', path, { authorization: 'Bearer x' });
    assert.equal(noVersion.status, 400);
    assert.equal((JSON.parse(noVersion.body) as { error: { code: string } }).error.code, 'MissingApiVersionParameter');
    const wrongVersion = await raw(azure, 'GET', `${path}?api-version=2018-11-30`, { authorization: 'Bearer x' });
    assert.equal((JSON.parse(wrongVersion.body) as { error: { code: string } }).error.code, 'InvalidApiVersionParameter');
  });

  it('validates federated credential names, keeps issuer+subject unique and caps an identity at 20 credentials', async () => {
    const msi = azure.msi();
    await msi.userAssignedIdentities.createOrUpdate(RG, 'id-fic', { location: 'eastus' });
    await assert.rejects(msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'a', { issuer: 'https://i/', subject: 's', audiences: AUD }), fails(400, 'BadRequest'));
    await msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'fic-0', { issuer: 'https://i/', subject: 's0', audiences: AUD });
    await assert.rejects(msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'fic-dup', { issuer: 'https://i/', subject: 's0', audiences: AUD }), (err: unknown) => /Issuer and subject combination already exists/.test((err as Error).message));
    for (let i = 1; i < 20; i++) await msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', `fic-${i}`, { issuer: 'https://i/', subject: `s${i}`, audiences: AUD });
    await assert.rejects(msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'fic-20', { issuer: 'https://i/', subject: 's20', audiences: AUD }), (err: unknown) => /maximum of 20 federated identity credentials/.test((err as Error).message));
    await msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-fic', 'fic-3', { issuer: 'https://i/', subject: 's3-updated', audiences: AUD });
    const listed = [];
    for await (const c of msi.federatedIdentityCredentials.list(RG, 'id-fic')) listed.push(c);
    assert.equal(listed.length, 20, 'every page is followed through the absolute nextLink');
    assert.equal(listed.find((c) => c.name === 'fic-3')?.subject, 's3-updated');
  });

  it('answers 409 ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity to overlapping writes on one identity', async () => {
    const msi = azure.msi();
    await msi.userAssignedIdentities.createOrUpdate(RG, 'id-race', { location: 'eastus' });
    await msi.userAssignedIdentities.createOrUpdate(RG, 'id-other', { location: 'eastus' });
    azure.emulator.state.config.ficWriteLatencyMs = 100;
    try {
      const results = await Promise.allSettled([
        msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-race', 'one', { issuer: 'https://i/', subject: 'one', audiences: AUD }),
        msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-race', 'two', { issuer: 'https://i/', subject: 'two', audiences: AUD }),
        msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-other', 'three', { issuer: 'https://i/', subject: 'three', audiences: AUD }),
      ]);
      const [one, two, other] = results;
      assert.equal(other?.status, 'fulfilled', 'a write to another identity is not affected');
      const rejected = [one, two].filter((r) => r?.status === 'rejected');
      assert.equal(rejected.length, 1, 'exactly one of the two overlapping writes on the same identity fails');
      assert.ok(rejected[0]?.status === 'rejected' && fails(409, 'ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity')(rejected[0].reason));
    } finally {
      azure.emulator.state.config.ficWriteLatencyMs = 0;
    }
  });

  it('deletes an identity with 200, then 204, taking its credentials with it', async () => {
    const msi = azure.msi();
    await msi.userAssignedIdentities.createOrUpdate(RG, 'id-gone', { location: 'eastus' });
    await msi.federatedIdentityCredentials.createOrUpdate(RG, 'id-gone', 'fic', { issuer: 'https://i/', subject: 's', audiences: AUD });
    await msi.userAssignedIdentities.delete(RG, 'id-gone');
    await msi.userAssignedIdentities.delete(RG, 'id-gone');
    const statuses = azure.emulator.requests.filter((r) => r.operation === 'UserAssignedIdentities_Delete').map((r) => r.status);
    assert.deepEqual(statuses.slice(-2), [200, 204]);
    await assert.rejects(msi.federatedIdentityCredentials.get(RG, 'id-gone', 'fic'), fails(404, 'ResourceNotFound'));
  });

  it('resolves built-in role names and GUIDs', async () => {
    const authz = azure.authorization();
    const found = [];
    for await (const d of authz.roleDefinitions.list(`subscriptions/${SUB}`, { filter: "roleName eq 'Storage Blob Data Reader'" })) found.push(d);
    assert.deepEqual(found.map((d) => [d.name, d.roleName, d.id]), [['2a2b9908-6ea1-4ae2-8e65-a410df84e7d1', 'Storage Blob Data Reader', `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1`]]);
    const reader = await authz.roleDefinitions.get(`subscriptions/${SUB}`, 'acdd72a7-3385-48ef-bd42-f606fba81ae7');
    assert.equal(reader.roleName, 'Reader');
  });

  it('keys role assignments by GUID name, refuses a (scope, role, principal) duplicate and a changed assignment', async () => {
    const authz = azure.authorization();
    const principalId = randomUUID();
    const name = randomUUID();
    const body = { roleDefinitionId: READER, principalId, principalType: 'ServicePrincipal' as const };
    await assert.rejects(authz.roleAssignments.create(SCOPE, 'not-a-guid', body), fails(400, 'InvalidRoleAssignmentId'));
    const created = await authz.roleAssignments.create(SCOPE, name, body);
    assert.equal(created.scope, `/${SCOPE}`);
    await authz.roleAssignments.create(SCOPE, name, body);
    await assert.rejects(authz.roleAssignments.create(SCOPE, randomUUID(), body), fails(409, 'RoleAssignmentExists'));
    await assert.rejects(authz.roleAssignments.create(SCOPE, name, { ...body, principalId: randomUUID() }), fails(400, 'RoleAssignmentUpdateNotPermitted'));
    await assert.rejects(authz.roleAssignments.create(SCOPE, randomUUID(), { ...body, roleDefinitionId: `${READER.slice(0, -4)}0000` }), fails(400, 'RoleDefinitionDoesNotExist'));

    const mine = [];
    for await (const a of authz.roleAssignments.listForScope(`subscriptions/${SUB}`, { filter: `principalId eq '${principalId}'` })) mine.push(a);
    assert.deepEqual(mine.map((a) => a.name), [name], 'listing at the subscription finds assignments below it, for that principal only');
    await authz.roleAssignments.delete(SCOPE, name);
    await authz.roleAssignments.delete(SCOPE, name);
    const statuses = azure.emulator.requests.filter((r) => r.operation === 'RoleAssignments_Delete').map((r) => r.status);
    assert.deepEqual(statuses.slice(-2), [200, 204]);
  });

  it('answers PrincipalNotFound while a new identity is not yet replicated', async () => {
    const msi = azure.msi();
    const authz = azure.authorization();
    azure.emulator.state.config.principalReplicationDelayMs = 60_000;
    try {
      const identity = await msi.userAssignedIdentities.createOrUpdate(RG, 'id-young', { location: 'eastus' });
      await assert.rejects(
        authz.roleAssignments.create(SCOPE, randomUUID(), { roleDefinitionId: READER, principalId: identity.principalId ?? '', principalType: 'ServicePrincipal' }),
        fails(400, 'PrincipalNotFound'),
      );
    } finally {
      azure.emulator.state.config.principalReplicationDelayMs = 0;
    }
  });

  it('injects 429: the SDK honours Retry-After, and gives up at once without it', async () => {
    const patient = new ManagedServiceIdentityClient({ getToken: () => Promise.resolve({ token: 't', expiresOnTimestamp: Date.now() + 60_000 }) }, SUB, {
      endpoint: azure.emulator.endpoint,
      tlsOptions: { ca: azure.ca },
      retryOptions: { maxRetries: 2 },
    });
    await patient.userAssignedIdentities.createOrUpdate(RG, 'id-429', { location: 'eastus' });
    const count = () => azure.emulator.requests.filter((r) => r.operation === 'UserAssignedIdentities_Get').length;

    let before = count();
    azure.emulator.addFault({ operation: 'UserAssignedIdentities_Get', status: 429, code: 'TooManyRequests', retryAfterSeconds: 0, times: 1 });
    assert.equal((await patient.userAssignedIdentities.get(RG, 'id-429')).name, 'id-429');
    assert.equal(count() - before, 2, 'one throttled request, one retried after Retry-After');

    azure.emulator.clearFaults();
    before = count();
    azure.emulator.addFault({ operation: 'UserAssignedIdentities_Get', status: 429, code: 'TooManyRequests', times: 1 });
    await assert.rejects(patient.userAssignedIdentities.get(RG, 'id-429'), fails(429, 'TooManyRequests'));
    assert.equal(count() - before, 1, 'no Retry-After: the SDK does not retry');
    azure.emulator.clearFaults();
  });

  it('fails every n-th matching request and logs which ones were faults', async () => {
    const msi = azure.msi();
    azure.emulator.addFault({ operation: 'UserAssignedIdentities_Get', status: 503, code: 'ServiceUnavailable', every: 2 });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await msi.userAssignedIdentities.get(RG, 'id-basic').then(() => 'ok', (e: RestErrorLike) => e.code));
    azure.emulator.clearFaults();
    assert.deepEqual(results, ['ServiceUnavailable', 'ok', 'ServiceUnavailable', 'ok']);
    assert.deepEqual(azure.emulator.requests.slice(-4).map((r) => Boolean(r.fault)), [true, false, true, false]);
  });

  it('serves its request log, state and faults over the admin path', async () => {
    const requests = JSON.parse((await raw(azure, 'GET', '/__emulator/requests')).body) as { operation: string }[];
    assert.ok(requests.some((r) => r.operation === 'FederatedIdentityCredentials_CreateOrUpdate'));
    const state = JSON.parse((await raw(azure, 'GET', '/__emulator/state')).body) as { identities: { name: string }[] };
    assert.ok(state.identities.some((i) => i.name === 'id-basic'));
    const created = await new Promise<number>((resolve, reject) => {
      const req = https.request(`${azure.emulator.endpoint}/__emulator/faults`, { method: 'POST', ca: azure.ca, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ operation: 'RoleAssignments_Create', status: 429, code: 'TooManyRequests' }));
    });
    assert.equal(created, 201);
    assert.equal(azure.emulator.faults.length, 1);
    assert.equal((await raw(azure, 'DELETE', '/__emulator/faults')).status, 200);
    assert.equal(azure.emulator.faults.length, 0);
  });
});
