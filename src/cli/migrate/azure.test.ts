import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { CloudAccount } from '../../api/types.ts';
import { FakeArm } from '../../providers/aks-workload-identity/fake/arm.ts';
import { azureAccountMatches, findIdentity, planAzure, readIdentity, type AzureInventory } from './azure.ts';
import type { HandMade } from './candidates.ts';

const ISSUER = 'https://eastus.oic.prod-aks.azure.com/tenant/cluster/';
const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';

function setup(credentials: { name: string; issuer?: string; subject: string; audiences?: string[] }[]) {
  const arm = new FakeArm();
  const identity = arm.seedIdentity('billing', { team: 'billing' });
  for (const c of credentials) arm.seedCredential('billing', { name: c.name, issuer: c.issuer ?? ISSUER, subject: c.subject, audiences: c.audiences ?? ['api://AzureADTokenExchange'] });
  const scope = `/subscriptions/${arm.subscriptionId}/resourceGroups/data`;
  arm.seedAssignment({ name: randomUUID(), scope, roleDefinitionId: `/subscriptions/${arm.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${READER}`, principalId: identity.principalId });
  const inventory: AzureInventory = {
    listIdentities: async () => arm.listIdentities(),
    roleName: (_sub, guid) => Promise.resolve(arm.roles.find((r) => r.guid === guid)?.roleName),
  };
  const account: CloudAccount = {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name: 'prod-azure' },
    spec: { azure: { subscriptionId: arm.subscriptionId, tenantId: arm.tenantId, resourceGroup: 'identities', location: 'eastus', oidcIssuer: ISSUER }, guardrails: { allowAdoption: true } },
  };
  const source: HandMade = { cloud: 'azure', namespace: 'shop', serviceAccount: 'billing-sa', identity: identity.clientId, annotations: { 'azure.workload.identity/client-id': identity.clientId }, sharedWith: [] };
  return { arm, identity, inventory, account, source, scope };
}

describe('migrate: AKS', () => {
  it('finds the identity by client id and carries its role assignments, by role name', async () => {
    const { arm, identity, inventory, account, source, scope } = setup([{ name: 'aks', subject: 'system:serviceaccount:shop:billing-sa' }]);
    const found = await findIdentity(inventory, [arm.subscriptionId], identity.clientId.toUpperCase());
    assert.equal(found?.id, identity.id);
    assert.ok(azureAccountMatches(account, identity.id));
    const plan = planAzure(source, account, await readIdentity({ msi: arm, authorization: arm }, inventory, identity));
    assert.deepEqual(plan.blockers, []);
    assert.equal(plan.adopt, identity.id);
    assert.deepEqual(plan.spec.azure, { roleAssignments: [{ role: 'Reader', scope }] });
    assert.ok(plan.notes.some((n) => /federated credential aks says exactly what Keyless's would: Keyless keeps it/.test(n)));
    assert.equal(plan.takeOverAnnotations, false);
    assert.deepEqual(arm.writes, []);
  });

  it('leaves alone an identity another cluster trusts too', async () => {
    const { arm, identity, inventory, account, source } = setup([
      { name: 'aks', subject: 'system:serviceaccount:shop:billing-sa' },
      { name: 'dr', issuer: 'https://dr.example/', subject: 'system:serviceaccount:shop:billing-sa' },
    ]);
    const plan = planAzure(source, account, await readIdentity({ msi: arm, authorization: arm }, inventory, identity));
    assert.match(plan.blockers.join(' '), /federated credential dr also trusts subject system:serviceaccount:shop:billing-sa from issuer https:\/\/dr\.example\//);
  });

  it('leaves alone an identity this ServiceAccount does not use', async () => {
    const { arm, identity, inventory, account, source } = setup([{ name: 'aks', subject: 'system:serviceaccount:shop:other' }]);
    const plan = planAzure(source, account, await readIdentity({ msi: arm, authorization: arm }, inventory, identity));
    assert.match(plan.blockers.join(' '), /no federated credential of the identity trusts subject system:serviceaccount:shop:billing-sa/);
  });

  it('takes the annotations over when the tenant annotation says another tenant', async () => {
    const { arm, identity, inventory, account, source } = setup([{ name: 'aks', subject: 'system:serviceaccount:shop:billing-sa' }]);
    const plan = planAzure({ ...source, annotations: { ...source.annotations, 'azure.workload.identity/tenant-id': 'another' } }, account, await readIdentity({ msi: arm, authorization: arm }, inventory, identity));
    assert.equal(plan.takeOverAnnotations, true);
  });
});
