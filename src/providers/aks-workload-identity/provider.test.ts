import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { WorkloadIdentitySpec } from '../../api/types.ts';
import { CloudError } from '../cloud-error.ts';
import { converge, revokeIntended } from '../fake/contract.ts';
import { fakeToken } from '../fake/token.ts';
import type { SharedReadsOptions } from '../shared-reads.ts';
import { FakeClock } from '../../controller/fake-clock.ts';
import { ProviderError, type IdentityContext } from '../types.ts';
import { checkAzureAccount } from './account-check.ts';
import { managedIdentityName, roleAssignmentName } from './desired.ts';
import { CREDENTIAL_LIMIT_CODE } from './errors.ts';
import { FakeArm } from './fake/arm.ts';
import { FakeAzureExchange } from './fake/exchange.ts';
import { AZURE_ISSUER, AZURE_SUBSCRIPTION as SUB, azureContext } from './fake/context.ts';
import { KeyedMutex } from '../keyed-mutex.ts';
import { AksWorkloadIdentityProvider } from './provider.ts';
import { shareArmReads } from './shared-port.ts';

const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
const BLOB_READER = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1';
const DATA_RG = `/subscriptions/${SUB}/resourceGroups/data`;
const BOOKS = `${DATA_RG}/providers/Microsoft.Storage/storageAccounts/books`;
const spec: WorkloadIdentitySpec['azure'] = {
  roleAssignments: [
    { role: 'Storage Blob Data Reader', scope: BOOKS },
    { role: READER, scope: DATA_RG },
  ],
};

/** A provider over a fake ARM whose shared reads keep nothing unless `reads` says otherwise: each converge reads what ARM has now. */
function setup(opts: { mutex?: KeyedMutex; reads?: SharedReadsOptions } = {}) {
  const arm = new FakeArm();
  const roleIds = new Map<string, string>();
  const shared = shareArmReads(arm, arm, opts.reads ?? { maxAgeMs: 0 });
  const provider = new AksWorkloadIdentityProvider({ ...shared, exchange: new FakeAzureExchange(arm), credentialWrites: opts.mutex ?? new KeyedMutex(), roleIds });
  return { arm, provider, roleIds };
}

const isProviderError = (reason: string, retryable: boolean) => (err: unknown) => err instanceof ProviderError && err.reason === reason && err.retryable === retryable;

describe('AksWorkloadIdentityProvider', () => {
  it('creates a marked identity, one exact federated credential and each role assignment, and annotates', async () => {
    const { arm, provider } = setup();
    const result = await converge(provider, azureContext(spec));
    const [identity] = [...arm.identities.values()];
    assert.ok(identity);
    assert.equal(identity.name, managedIdentityName('c1', 'bookstore', 'catalog'));
    assert.deepEqual(identity.tags, { 'keyless.dev/cluster': 'c1', 'keyless.dev/namespace': 'bookstore', 'keyless.dev/name': 'catalog' });
    assert.deepEqual(
      [...identity.credentials.values()].map(({ issuer, subject, audiences }) => ({ issuer, subject, audiences })),
      [{ issuer: AZURE_ISSUER, subject: 'system:serviceaccount:bookstore:catalog-sa', audiences: ['api://AzureADTokenExchange'] }],
    );
    const assignments = [...arm.assignments.values()].sort((a, b) => a.scope.localeCompare(b.scope));
    assert.deepEqual(assignments, [
      { name: roleAssignmentName(DATA_RG, READER, identity.principalId), scope: DATA_RG, roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${READER}`, principalId: identity.principalId },
      { name: roleAssignmentName(BOOKS, BLOB_READER, identity.principalId), scope: BOOKS, roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${BLOB_READER}`, principalId: identity.principalId },
    ]);
    assert.deepEqual(result.serviceAccountAnnotations, { 'azure.workload.identity/client-id': identity.clientId, 'azure.workload.identity/tenant-id': identity.tenantId });
    assert.match(result.serviceAccountHint ?? '', /azure\.workload\.identity\/use: "true"/);
    assert.deepEqual(result.status, {
      identity: identity.clientId,
      audience: 'api://AzureADTokenExchange',
      azure: { clientId: identity.clientId, principalId: identity.principalId, tenantId: identity.tenantId, identityId: identity.id },
    });
    assert.match(result.messages.trust, new RegExp(`issuer ${AZURE_ISSUER} for subject system:serviceaccount:bookstore:catalog-sa with audience api://AzureADTokenExchange only`));
    assert.deepEqual(result.changes.map((c) => c.action), ['Created', 'TrustCreated', 'RoleAssigned', 'RoleAssigned']);
  });

  it('writes nothing and reports no change when the cloud already matches', async () => {
    const { arm, provider } = setup();
    await converge(provider, azureContext(spec));
    arm.writes.length = 0;
    const again = await converge(provider, azureContext(spec));
    assert.deepEqual(arm.writes, []);
    assert.deepEqual(again.changes, []);
  });

  it('resolves a role name once per account and reuses it for every identity', async () => {
    const { arm, provider } = setup();
    await converge(provider, azureContext(spec, { name: 'one', serviceAccountName: 'one' }));
    await converge(provider, azureContext(spec, { name: 'two', serviceAccountName: 'two' }));
    assert.deepEqual(arm.roleLookups, ['Storage Blob Data Reader']);
  });

  it('finds its own identity again after a crash between the create and the status write', async () => {
    const { arm, provider } = setup();
    const desired = provider.desired(azureContext(spec));
    const stale = await provider.observe(desired);
    await provider.ensure(desired, stale);
    await provider.ensure(desired, stale);
    assert.equal(arm.identities.size, 1);
    assert.equal(arm.assignments.size, 2, 'no duplicate role assignments');
    assert.equal([...arm.identities.values()][0]?.credentials.size, 1);
  });

  it('refuses an identity with the derived name that carries no marker, and leaves it alone on delete', async () => {
    const { arm, provider } = setup();
    const desired = provider.desired(azureContext(spec));
    arm.seedIdentity(desired.identityName, { team: 'payments' });
    await assert.rejects(provider.ensure(desired, await provider.observe(desired)), isProviderError('NotOwned', false));
    assert.deepEqual(arm.writes, []);
    const revoked = await revokeIntended(provider, azureContext(spec));
    assert.equal(revoked.complete, true);
    assert.ok(arm.identities.has(desired.identityName.toLowerCase()), 'the foreign identity survives delete');
  });

  it('adopts an unmarked identity on request, keeping its tags, and then owns exactly the spec on it', async () => {
    const { arm, provider } = setup();
    const desired = provider.desired(azureContext(spec, { adopt: true }));
    const existing = arm.seedIdentity(desired.identityName, { team: 'payments' });
    arm.seedCredential(existing.name, { name: 'legacy', issuer: 'https://old-issuer/', subject: 'system:serviceaccount:old:sa', audiences: ['api://AzureADTokenExchange'] });
    const result = await provider.ensure(desired, await provider.observe(desired));
    const [identity] = [...arm.identities.values()];
    assert.equal(identity?.clientId, existing.clientId, 'the same identity, not a new one');
    assert.deepEqual(identity?.tags, { team: 'payments', 'keyless.dev/cluster': 'c1', 'keyless.dev/namespace': 'bookstore', 'keyless.dev/name': 'catalog' });
    assert.deepEqual(result.changes.map((c) => c.action), ['Adopted', 'CredentialRemoved', 'TrustCreated', 'RoleAssigned', 'RoleAssigned']);
  });

  describe('an identity named in keyless.dev/adopt', () => {
    const named = `/subscriptions/${SUB}/resourceGroups/identities/providers/Microsoft.ManagedIdentity/userAssignedIdentities/catalog-hand-made`;
    const handMade = (arm: FakeArm, subject: string) => {
      const identity = arm.seedIdentity('catalog-hand-made', {});
      arm.seedCredential(identity.name, { name: 'hand-made', issuer: AZURE_ISSUER, subject, audiences: ['api://AzureADTokenExchange'] });
      return identity;
    };

    it('is taken over when a federated credential already trusts this subject, and that credential is kept as ours', async () => {
      const { arm, provider } = setup();
      const existing = handMade(arm, 'system:serviceaccount:bookstore:catalog-sa');
      const ctx = azureContext(spec, { adopt: true, adoptIdentity: named });
      const result = await converge(provider, ctx);
      assert.equal(arm.identities.size, 1, 'no new identity');
      assert.equal(result.status.azure?.clientId, existing.clientId);
      assert.deepEqual(result.changes.map((c) => c.action), ['Adopted', 'RoleAssigned', 'RoleAssigned'], 'no credential deleted or created: pods never lose a trusted credential');
      assert.deepEqual([...(arm.identities.get('catalog-hand-made')?.credentials.keys() ?? [])], ['hand-made']);
      assert.equal(provider.continues(result.record, ctx), true);
      assert.equal(provider.continues(result.record, azureContext(spec)), false, 'without the annotation it is not this identity');
    });

    it('is refused, untouched, when no federated credential trusts this subject', async () => {
      const { arm, provider } = setup();
      handMade(arm, 'system:serviceaccount:bookstore:other-sa');
      const desired = provider.desired(azureContext(spec, { adopt: true, adoptIdentity: named }));
      await assert.rejects(provider.ensure(desired, await provider.observe(desired)), (err: unknown) => isProviderError('NotOwned', false)(err) && /none of its federated credentials trusts subject system:serviceaccount:bookstore:catalog-sa/.test((err as Error).message));
      assert.deepEqual(arm.writes, []);
    });

    it('must be in the CloudAccount\'s resource group', () => {
      const { provider } = setup();
      const elsewhere = named.replace('/identities/', '/elsewhere/');
      assert.match(provider.validate(azureContext(spec, { adopt: true, adoptIdentity: elsewhere })).join(' '), /is neither "true" nor the resource ID of a managed identity in resource group identities/);
      assert.deepEqual(provider.validate(azureContext(spec, { adopt: true, adoptIdentity: named })), []);
    });
  });

  it('never adopts an identity marked for another WorkloadIdentity', async () => {
    const { arm, provider } = setup();
    const desired = provider.desired(azureContext(spec, { adopt: true }));
    arm.seedIdentity(desired.identityName, { 'keyless.dev/cluster': 'c1', 'keyless.dev/namespace': 'other', 'keyless.dev/name': 'catalog' });
    await assert.rejects(provider.ensure(desired, await provider.observe(desired)), (err: unknown) => isProviderError('NotOwned', false)(err) && /belongs to other\/catalog/.test((err as Error).message));
    assert.deepEqual(arm.writes, []);
  });

  describe('role assignment adoption', () => {
    it('adopts an assignment that appeared since observe with our principal, role and scope under another name', async () => {
      const { arm, provider } = setup();
      await converge(provider, azureContext());
      const desired = provider.desired(azureContext(spec));
      const observed = await provider.observe(desired);
      const principalId = observed.identity?.principalId ?? '';
      arm.seedAssignment({ name: randomUUID(), scope: DATA_RG, roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${READER}`, principalId });
      const result = await provider.ensure(desired, observed);
      const forReader = [...arm.assignments.values()].filter((a) => a.scope === DATA_RG && a.principalId === principalId);
      assert.equal(forReader.length, 1, 'no duplicate');
      assert.deepEqual(result.changes.map((c) => c.action), ['RoleAssigned'], 'only the blob reader assignment was created');
    });

    it('refuses an assignment with our deterministic name that names another principal', async () => {
      const { arm, provider } = setup();
      await converge(provider, azureContext());
      const desired = provider.desired(azureContext({ roleAssignments: [{ role: READER, scope: DATA_RG }] }));
      const observed = await provider.observe(desired);
      const name = roleAssignmentName(DATA_RG, READER, observed.identity?.principalId ?? '');
      arm.seedAssignment({ name, scope: DATA_RG, roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${READER}`, principalId: randomUUID() });
      await assert.rejects(provider.ensure(desired, observed), (err: unknown) => isProviderError('NotOwned', false)(err) && err instanceof ProviderError && err.step === 'permissions');
    });

    it('removes assignments of our principal that the spec no longer lists, and never touches another principal\'s', async () => {
      const { arm, provider } = setup();
      const someoneElse = { name: randomUUID(), scope: DATA_RG, roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${READER}`, principalId: randomUUID() };
      arm.seedAssignment(someoneElse);
      await converge(provider, azureContext(spec));
      const result = await converge(provider, azureContext({ roleAssignments: [{ role: 'Storage Blob Data Reader', scope: BOOKS }] }));
      assert.deepEqual(result.changes.map((c) => c.action), ['RoleUnassigned']);
      const left = [...arm.assignments.values()];
      assert.equal(left.length, 2);
      assert.ok(left.some((a) => a.name === someoneElse.name), "the other principal's assignment on the same scope and role survives");

      await revokeIntended(provider, azureContext(spec));
      assert.deepEqual([...arm.assignments.values()].map((a) => a.name), [someoneElse.name], 'and survives delete');
    });
  });

  it('repairs drift on the trust: a foreign credential is removed and an edited subject restored', async () => {
    const { arm, provider } = setup();
    await converge(provider, azureContext(spec));
    const [identity] = [...arm.identities.values()];
    assert.ok(identity);
    const [ours] = [...identity.credentials.values()];
    assert.ok(ours);
    ours.subject = 'system:serviceaccount:bookstore:other-sa';
    arm.seedCredential(identity.name, { name: 'backdoor', issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:evil/repo:ref:refs/heads/main', audiences: ['api://AzureADTokenExchange'] });
    const result = await converge(provider, azureContext(spec));
    assert.deepEqual(result.changes.map((c) => c.action), ['CredentialRemoved', 'TrustUpdated']);
    assert.deepEqual([...identity.credentials.values()].map((c) => c.subject), ['system:serviceaccount:bookstore:catalog-sa']);
  });

  describe('federated credential writes', () => {
    // Two reconciles that both saw drift on one identity (say, two operator generations of the same account):
    // their credential writes must not overlap, or Entra answers 409.
    async function racingRepairs(mutex: KeyedMutex) {
      const { arm, provider } = setup({ mutex });
      await converge(provider, azureContext());
      const [identity] = [...arm.identities.values()];
      assert.ok(identity);
      for (const name of ['extra-1', 'extra-2', 'extra-3']) arm.seedCredential(identity.name, { name, issuer: 'https://elsewhere', subject: name, audiences: ['api://AzureADTokenExchange'] });
      const desired = provider.desired(azureContext());
      const observed = await provider.observe(desired);
      const results = await Promise.allSettled([provider.ensure(desired, observed), provider.ensure(desired, observed)]);
      return { arm, results };
    }

    it('are serialized per identity', async () => {
      const { arm, results } = await racingRepairs(new KeyedMutex());
      assert.equal(arm.maxConcurrentCredentialWrites, 1);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled']);
    });

    it('would collide without the per-identity queue (the fake models the 409)', async () => {
      const noQueue = { run: <T>(_key: string, fn: () => Promise<T>) => fn() } as KeyedMutex;
      const { arm, results } = await racingRepairs(noQueue);
      assert.ok(arm.maxConcurrentCredentialWrites > 1);
      assert.ok(results.some((r) => r.status === 'rejected' && r.reason instanceof CloudError && r.reason.kind === 'conflict'));
    });

    it('surfaces a concurrent-write 409 from another writer as a retryable cloud error', async () => {
      const { arm, provider } = setup();
      arm.failNext('putCredential', new CloudError('conflict', 'ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity', 'putCredential', 'concurrent'));
      await assert.rejects(converge(provider, azureContext()), (err: unknown) => err instanceof CloudError && err.kind === 'conflict');
      await converge(provider, azureContext());
      assert.equal([...arm.identities.values()][0]?.credentials.size, 1, 'the retry converges');
    });

    it('reports the 20-credential limit as a terminal TrustReady condition', async () => {
      const { arm, provider } = setup();
      arm.failNext('putCredential', new CloudError('terminal', CREDENTIAL_LIMIT_CODE, 'putCredential', 'Too many Federated Identity Credentials.'));
      await assert.rejects(converge(provider, azureContext()), (err: unknown) => isProviderError('QuotaExceeded', false)(err) && err instanceof ProviderError && err.step === 'trust' && /20 federated identity credentials/.test(err.message));
    });
  });

  it('retries PrincipalNotFound quietly (a retryable cloud error, no condition) until Entra has replicated the principal', async () => {
    const { arm, provider } = setup();
    arm.replicationPending = true;
    await assert.rejects(converge(provider, azureContext(spec)), (err: unknown) => err instanceof CloudError && err.kind === 'retryable' && err.code === 'PrincipalNotFound');
    arm.unreplicated.clear();
    const result = await converge(provider, azureContext(spec));
    assert.equal(arm.identities.size, 1);
    assert.equal(arm.assignments.size, 2);
    assert.deepEqual(result.changes.map((c) => c.action), ['RoleAssigned', 'RoleAssigned']);
  });

  it('reports a role name that does not exist as InvalidSpec', async () => {
    const { provider } = setup();
    await assert.rejects(converge(provider, azureContext({ roleAssignments: [{ role: 'Storage Blob Data Raeder', scope: BOOKS }] })), (err: unknown) => isProviderError('InvalidSpec', false)(err) && /Storage Blob Data Raeder/.test((err as Error).message));
  });

  it('deletes the credential, then the role assignments, then the identity, and confirms', async () => {
    const { arm, provider } = setup();
    await converge(provider, azureContext(spec));
    arm.writes.length = 0;
    const revoked = await revokeIntended(provider, azureContext(spec));
    assert.equal(revoked.complete, true);
    assert.deepEqual(arm.writes.map((w) => w.split(':')[0]), ['deleteCredential', 'deleteRoleAssignment', 'deleteRoleAssignment', 'deleteIdentity']);
    assert.equal(arm.identities.size, 0);
    assert.equal(arm.assignments.size, 0);
    assert.deepEqual(revoked.changes.map((c) => c.step), ['trust', 'permissions', 'permissions', 'identity']);
    const again = await revokeIntended(provider, azureContext(spec));
    assert.equal(again.complete, true, 'a repeated delete is complete at once');
  });
});

describe('AksWorkloadIdentityProvider record', () => {
  const OTHER_SUB = '00000000-0000-0000-0000-0000000000b9';
  const OTHER_RG = `/subscriptions/${OTHER_SUB}/resourceGroups/other-data`;

  it('records every subscription it may assign in, and keeps looking there after the spec drops one', async () => {
    const { arm, provider } = setup();
    const both = azureContext({ roleAssignments: [{ role: READER, scope: DATA_RG }, { role: READER, scope: OTHER_RG }] });
    const first = await converge(provider, both);
    assert.deepEqual(first.record.azure?.subscriptions, [SUB, OTHER_SUB].sort());
    assert.equal(arm.assignments.size, 2);

    // The spec no longer names the other subscription: only the record says an assignment may be there.
    const dropped = { ...azureContext({ roleAssignments: [{ role: READER, scope: DATA_RG }] }), record: first.record };
    const desired = provider.desired(dropped);
    assert.deepEqual(provider.intent(desired, await provider.observe(desired)).azure?.subscriptions, [SUB, OTHER_SUB].sort());
    const second = await provider.ensure(desired, await provider.observe(desired));
    assert.deepEqual([...arm.assignments.values()].map((a) => a.scope), [DATA_RG]);
    assert.deepEqual(second.record.azure?.subscriptions, [SUB]);
  });

  it('revokes assignments in every recorded subscription, whatever the spec says now', async () => {
    const { arm, provider } = setup();
    const first = await converge(provider, azureContext({ roleAssignments: [{ role: READER, scope: OTHER_RG }] }));
    const revoked = await provider.revoke(first.record, azureContext({}));
    assert.equal(revoked.complete, true);
    assert.equal(arm.assignments.size, 0);
    assert.equal(arm.identities.size, 0);
  });

  it('continues the same identity only: same subscription, resource group and name', async () => {
    const { provider } = setup();
    const ctx = azureContext(spec);
    const own = (await converge(provider, ctx)).record;
    const azure = own.azure;
    assert.ok(azure);
    assert.equal(provider.continues(own, ctx), true);
    assert.equal(provider.continues({ azure: { ...azure, resourceGroup: azure.resourceGroup.toUpperCase() } }, ctx), true, 'ARM names are case-insensitive');
    assert.equal(provider.continues({ azure: { ...azure, resourceGroup: 'moved' } }, ctx), false);
  });
});

describe('AksWorkloadIdentityProvider credentials (the exchange the webhook sets a pod up for)', () => {
  const token = (sub: string, iss = AZURE_ISSUER) => fakeToken({ iss, sub, aud: 'api://AzureADTokenExchange' });

  it('Entra issues a token for the exact subject; another subject, another issuer and an edited credential are refused', async () => {
    const { arm, provider } = setup();
    const ctx = azureContext(spec);
    const { status } = await converge(provider, ctx);
    assert.equal(provider.credentials.audience(ctx), 'api://AzureADTokenExchange');
    assert.equal((await provider.credentials.exchange(ctx, status, token('system:serviceaccount:bookstore:catalog-sa'))).ok, true);
    assert.equal((await provider.credentials.exchange(ctx, status, token('system:serviceaccount:bookstore:other'))).reason, 'TrustRejected');
    assert.equal((await provider.credentials.exchange(ctx, status, token('system:serviceaccount:bookstore:catalog-sa', 'https://elsewhere.example.com/'))).reason, 'IssuerNotTrusted');
    const [identity] = [...arm.identities.values()];
    for (const c of identity?.credentials.values() ?? []) c.subject = 'system:serviceaccount:bookstore:edited';
    assert.equal((await provider.credentials.exchange(ctx, status, token('system:serviceaccount:bookstore:catalog-sa'))).reason, 'TrustRejected');
  });
});

describe('AksWorkloadIdentityProvider, reads shared by the identities of one CloudAccount', () => {
  const MAX_AGE = 60_000;
  /** One account's provider over ports whose shared copies live for MAX_AGE on a clock the test moves. */
  function sharedSetup() {
    const clock = new FakeClock();
    return { clock, ...setup({ reads: { maxAgeMs: MAX_AGE, now: clock.now } }) };
  }
  const names = ['one', 'two', 'three'];
  const ctx = (name: string, azure: WorkloadIdentitySpec['azure'] = spec) => azureContext(azure, { name, serviceAccountName: `${name}-sa` });
  const principalOf = (arm: FakeArm, name: string) => [...arm.identities.values()].find((i) => i.tags['keyless.dev/name'] === name)?.principalId ?? '';

  it('a resync of three converged identities lists the identities once, the assignments once, and reads each one’s credentials', async () => {
    const { arm, clock, provider } = sharedSetup();
    const records = new Map<string, IdentityContext['record']>();
    for (const name of names) records.set(name, (await converge(provider, ctx(name))).record);
    clock.advance(MAX_AGE);
    arm.reads.length = 0;
    arm.writes.length = 0;
    for (const name of names) await converge(provider, { ...ctx(name), record: records.get(name) });
    assert.deepEqual(arm.reads.sort(), ['listIdentities', `listRoleAssignments:/subscriptions/${SUB}`, ...names.map((n) => `listCredentials:${managedIdentityName('c1', 'bookstore', n)}`)].sort());
    assert.deepEqual(arm.writes, []);
  });

  it('concurrent reconciles of different identities share one request for each list', async () => {
    const { arm, clock, provider } = sharedSetup();
    for (const name of names) await converge(provider, ctx(name));
    clock.advance(MAX_AGE);
    arm.reads.length = 0;
    await Promise.all(names.map((name) => provider.observe(provider.desired(ctx(name)))));
    assert.deepEqual(arm.reads.filter((r) => !r.startsWith('listCredentials')).sort(), ['listIdentities', `listRoleAssignments:/subscriptions/${SUB}`]);
  });

  it('sees a role assignment deleted by hand once its copy is older than the max age, and restores it', async () => {
    const { arm, clock, provider } = sharedSetup();
    const created = await converge(provider, ctx('one'));
    const first = await converge(provider, { ...ctx('one'), record: created.record });
    const principalId = principalOf(arm, 'one');
    const name = roleAssignmentName(BOOKS, BLOB_READER, principalId);
    await arm.deleteRoleAssignment(BOOKS, name);
    clock.advance(MAX_AGE - 1);
    assert.deepEqual((await converge(provider, { ...ctx('one'), record: first.record })).changes, [], 'within the max age the copy from before the change is used');
    clock.advance(1);
    const repaired = await converge(provider, { ...ctx('one'), record: first.record });
    assert.deepEqual(repaired.changes.map((c) => c.action), ['RoleAssigned']);
    assert.ok(arm.assignments.has(name));
  });

  it("never undoes Keyless's own write: a reconcile right after it judges from what the write left", async () => {
    const { arm, provider } = sharedSetup();
    const reader = { roleAssignments: [{ role: READER, scope: DATA_RG }] };
    // The clock does not move: every later read is answered from the copies, as within one resync.
    const none = await converge(provider, ctx('one', {}));
    const granted = await converge(provider, { ...ctx('one', reader), record: none.record });
    assert.deepEqual(granted.changes.map((c) => c.action), ['RoleAssigned']);
    const revoked = await converge(provider, { ...ctx('one', {}), record: granted.record });
    assert.deepEqual(revoked.changes.map((c) => c.action), ['RoleUnassigned'], 'the copy knows the assignment Keyless made');
    assert.equal(arm.assignments.size, 0);
    const again = await converge(provider, { ...ctx('one', reader), record: revoked.record });
    assert.deepEqual(again.changes.map((c) => c.action), ['RoleAssigned'], 'the copy knows the delete');
    arm.writes.length = 0;
    assert.deepEqual((await converge(provider, { ...ctx('one', reader), record: again.record })).changes, []);
    assert.deepEqual(arm.writes, []);
  });

  it('notices at once an identity that is listed but was deleted, and creates it again', async () => {
    const { arm, provider } = sharedSetup();
    const first = await converge(provider, ctx('one'));
    const before = principalOf(arm, 'one');
    await arm.deleteIdentity(managedIdentityName('c1', 'bookstore', 'one'));
    const again = await converge(provider, { ...ctx('one'), record: first.record });
    assert.equal(again.changes[0]?.action, 'Created');
    assert.notEqual(principalOf(arm, 'one'), before);
  });

  it('writes nothing to a listed identity that someone replaced by their own, and then reports it as not owned', async () => {
    const { arm, provider } = sharedSetup();
    const first = await converge(provider, ctx('one'));
    const identityName = managedIdentityName('c1', 'bookstore', 'one');
    await arm.deleteIdentity(identityName);
    arm.seedIdentity(identityName, { team: 'payments' });
    arm.writes.length = 0;
    await assert.rejects(converge(provider, { ...ctx('one'), record: first.record }), (err: unknown) => err instanceof CloudError && err.code === 'ChangedSinceListed' && err.kind === 'retryable');
    assert.deepEqual(arm.writes, [], 'no credential or assignment was written to the stranger');
    await assert.rejects(converge(provider, { ...ctx('one'), record: first.record }), isProviderError('NotOwned', false));
    assert.deepEqual(arm.writes, []);
  });

  it('the CloudAccount check lists the identities the providers share', async () => {
    const arm = new FakeArm();
    const clock = new FakeClock();
    const shared = shareArmReads(arm, arm, { maxAgeMs: MAX_AGE, now: clock.now });
    const provider = new AksWorkloadIdentityProvider({ ...shared, exchange: new FakeAzureExchange(arm), credentialWrites: new KeyedMutex(), roleIds: new Map() });
    assert.equal((await checkAzureAccount(shared.msi, azureContext().account)).ok, true);
    await provider.observe(provider.desired(ctx('one')));
    assert.deepEqual(arm.reads, ['listIdentities', `getIdentity:${managedIdentityName('c1', 'bookstore', 'one')}`], 'one list for both; the missing identity is looked up itself');
  });
});
