import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  canonicalScope,
  desiredAks,
  federatedCredentialName,
  managedIdentityName,
  roleAssignmentName,
  roleGuidOf,
  validateAzureSpec,
} from './desired.ts';
import { AZURE_ISSUER as issuer, AZURE_SUBSCRIPTION, azureContext } from './fake/context.ts';

const SUB = AZURE_SUBSCRIPTION;
const OTHER_SUB = '00000000-0000-0000-0000-0000000000AB';

describe('AKS naming', () => {
  const IDENTITY = /^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$/;
  const CREDENTIAL = /^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$/;

  it('derives readable names with a hash of cluster, namespace and name', () => {
    const name = managedIdentityName('c1', 'bookstore', 'catalog');
    assert.match(name, /^keyless-bookstore-catalog-[0-9a-f]{8}$/);
    assert.equal(name, managedIdentityName('c1', 'bookstore', 'catalog'), 'deterministic');
    assert.notEqual(name, managedIdentityName('c2', 'bookstore', 'catalog'), 'another cluster sharing the resource group');
    assert.match(federatedCredentialName('c1', 'bookstore', 'catalog'), CREDENTIAL);
  });

  it('fits the Azure limits and character sets for the longest Kubernetes names, with dots replaced', () => {
    const ns = 'n'.repeat(63);
    const long = `a.${'b'.repeat(250)}`;
    const identity = managedIdentityName('c1', ns, long);
    const credential = federatedCredentialName('c1', ns, long);
    assert.ok(identity.length <= 128 && identity.length >= 3, identity);
    assert.ok(credential.length <= 120, credential);
    assert.match(identity, IDENTITY);
    assert.match(credential, CREDENTIAL);
    assert.notEqual(managedIdentityName('c1', ns, long), managedIdentityName('c1', ns, `${long}x`), 'truncated names stay distinct');
    assert.match(managedIdentityName('c1', 'web', 'api.v2'), /^keyless-web-api-v2-[0-9a-f]{8}$/);
  });

  it('names role assignments by UUIDv5 of scope, role and principal, ignoring case and slashes', () => {
    const a = roleAssignmentName(`/subscriptions/${SUB}/resourceGroups/Data`, '2A2B9908-6EA1-4AE2-8E65-A410DF84E7D1', 'AAAAAAAA-0000-0000-0000-000000000000');
    const b = roleAssignmentName(`/subscriptions/${SUB}/resourcegroups/data/`, '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1', 'aaaaaaaa-0000-0000-0000-000000000000');
    assert.equal(a, b);
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(a, roleAssignmentName(`/subscriptions/${SUB}/resourceGroups/data`, '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1', 'bbbbbbbb-0000-0000-0000-000000000000'));
  });

  it('recognises a role GUID or role definition ID, and treats anything else as a name', () => {
    assert.equal(roleGuidOf('2A2B9908-6EA1-4AE2-8E65-A410DF84E7D1'), '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1');
    assert.equal(roleGuidOf(`/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1`), '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1');
    assert.equal(roleGuidOf('Storage Blob Data Reader'), undefined);
    assert.equal(canonicalScope('//subscriptions/x//resourceGroups/rg/'), '/subscriptions/x/resourceGroups/rg');
  });
});

describe('desiredAks', () => {
  it('trusts exactly the CloudAccount issuer, the derived subject and the Azure audience, and marks ownership', () => {
    const d = desiredAks(azureContext({ roleAssignments: [{ role: 'Reader', scope: `/subscriptions/${OTHER_SUB}/resourceGroups/rg/` }] }));
    assert.deepEqual(d.credential, {
      name: federatedCredentialName('c1', 'bookstore', 'catalog'),
      issuer,
      subject: 'system:serviceaccount:bookstore:catalog-sa',
      audiences: ['api://AzureADTokenExchange'],
    });
    assert.deepEqual(d.marker, { 'keyless.dev/cluster': 'c1', 'keyless.dev/namespace': 'bookstore', 'keyless.dev/name': 'catalog' });
    assert.deepEqual(d.grants, [{ role: 'Reader', scope: `/subscriptions/${OTHER_SUB}/resourceGroups/rg` }]);
    assert.deepEqual(d.listScopes, [`/subscriptions/${SUB}`, `/subscriptions/${OTHER_SUB.toLowerCase()}`]);
    assert.equal(d.resourceGroup, 'identities');
    assert.equal(d.location, 'eastus');
  });

  it('does not depend on anything but the context (pure)', () => {
    assert.deepEqual(desiredAks(azureContext()), desiredAks(azureContext()));
  });
});

describe('validateAzureSpec', () => {
  const cases: [string, string, string, RegExp | undefined][] = [
    ['a resource group scope and a role name', `/subscriptions/${SUB}/resourceGroups/rg`, 'Storage Blob Data Reader', undefined],
    ['a resource scope and a role GUID', `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/books`, 'acdd72a7-3385-48ef-bd42-f606fba81ae7', undefined],
    ['an empty segment', `/subscriptions/${SUB}//resourceGroups/rg`, 'Reader', /not an Azure resource ID/],
    ['a trailing slash', `/subscriptions/${SUB}/resourceGroups/rg/`, 'Reader', /not an Azure resource ID/],
    ['a scope inside Microsoft.Authorization', `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleAssignments/x`, 'Reader', /Microsoft\.Authorization/],
    ['a misspelled resourceGroups segment', `/subscriptions/${SUB}/resourcegroup/rg`, 'Reader', /resourceGroups\/<name>/],
    ['a quote in a role name', `/subscriptions/${SUB}`, "Reader' or 1 eq 1", /contains a quote/],
  ];
  for (const [what, scope, role, problem] of cases) {
    it(problem ? `reports ${what}` : `accepts ${what}`, () => {
      const problems = validateAzureSpec(azureContext({ roleAssignments: [{ role, scope }] }));
      if (problem) {
        assert.equal(problems.length, 1);
        assert.match(problems[0] ?? '', problem);
      } else {
        assert.deepEqual(problems, []);
      }
    });
  }
});
