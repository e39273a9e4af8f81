// MsiPort and AuthorizationPort over @azure/arm-msi and @azure/arm-authorization. Every HTTP request — each page
// of a list too — goes through `call`, so the account's rate limiter, the metrics and the error classifier see it.
import type { AuthorizationManagementClient } from '@azure/arm-authorization';
import type { Identity, ManagedServiceIdentityClient } from '@azure/arm-msi';
import { orUndefined } from '../cloud-error.ts';
import type { CloudCall } from '../instrument.ts';
import type { AuthorizationPort, FederatedCredential, ManagedIdentity, MsiPort, RoleAssignment } from './arm-port.ts';

/** Collects every page of an SDK list, one instrumented call per page. */
async function allPages<T>(call: CloudCall, operation: string, pages: AsyncIterableIterator<T[]>): Promise<T[]> {
  const items: T[] = [];
  for (;;) {
    const page = await call(operation, () => pages.next());
    if (page.done) return items;
    items.push(...page.value);
  }
}

function toIdentity(i: Identity): ManagedIdentity {
  return {
    id: i.id ?? '',
    name: i.name ?? '',
    location: i.location,
    tags: { ...(i.tags ?? {}) },
    clientId: i.clientId ?? '',
    principalId: i.principalId ?? '',
    tenantId: i.tenantId ?? '',
  };
}

/** The SDK's scope and roleAssignmentName are sent unencoded after a literal `/` (cloud-apis.md §4.3). */
const sdkScope = (scope: string) => scope.replace(/^\/+/, '');

export function createMsiPort(client: ManagedServiceIdentityClient, resourceGroup: string, call: CloudCall): MsiPort {
  const ids = client.userAssignedIdentities;
  const fics = client.federatedIdentityCredentials;
  return {
    getIdentity: (name) => orUndefined(call('UserAssignedIdentities_Get', () => ids.get(resourceGroup, name)).then(toIdentity)),
    putIdentity: async (name, input) => toIdentity(await call('UserAssignedIdentities_CreateOrUpdate', () => ids.createOrUpdate(resourceGroup, name, input))),
    deleteIdentity: async (name) => {
      await call('UserAssignedIdentities_Delete', () => ids.delete(resourceGroup, name));
    },
    listIdentitiesFirstPage: async () => {
      const first = await call('UserAssignedIdentities_ListByResourceGroup', () => ids.listByResourceGroup(resourceGroup).byPage().next());
      return first.done ? [] : first.value.map(toIdentity);
    },
    listCredentials: async (identityName) => {
      const items = await allPages(call, 'FederatedIdentityCredentials_List', fics.list(resourceGroup, identityName).byPage());
      return items.map((c): FederatedCredential => ({ name: c.name ?? '', issuer: c.issuer ?? '', subject: c.subject ?? '', audiences: [...(c.audiences ?? [])] }));
    },
    putCredential: async (identityName, c) => {
      await call('FederatedIdentityCredentials_CreateOrUpdate', () => fics.createOrUpdate(resourceGroup, identityName, c.name, { issuer: c.issuer, subject: c.subject, audiences: c.audiences }));
    },
    deleteCredential: async (identityName, credentialName) => {
      await call('FederatedIdentityCredentials_Delete', () => fics.delete(resourceGroup, identityName, credentialName));
    },
  };
}

export function createAuthorizationPort(client: AuthorizationManagementClient, call: CloudCall): AuthorizationPort {
  const toAssignment = (a: { name?: string; scope?: string; roleDefinitionId?: string; principalId?: string }): RoleAssignment => ({
    name: a.name ?? '',
    scope: a.scope ?? '',
    roleDefinitionId: a.roleDefinitionId ?? '',
    principalId: a.principalId ?? '',
  });
  return {
    findRoleDefinitions: async (scope, roleName) => {
      // OData string literals escape a quote by doubling it.
      const filter = `roleName eq '${roleName.replaceAll("'", "''")}'`;
      const defs = await allPages(call, 'RoleDefinitions_List', client.roleDefinitions.list(sdkScope(scope), { filter }).byPage());
      return defs.filter((d) => d.roleName?.toLowerCase() === roleName.toLowerCase() && d.name).map((d) => d.name ?? '');
    },
    listRoleAssignments: async (scope, principalId) => {
      const pages = client.roleAssignments.listForScope(sdkScope(scope), { filter: `principalId eq '${principalId}'` }).byPage();
      return (await allPages(call, 'RoleAssignments_ListForScope', pages)).map(toAssignment);
    },
    createRoleAssignment: async (scope, name, input) =>
      toAssignment(
        await call('RoleAssignments_Create', () =>
          client.roleAssignments.create(sdkScope(scope), name, { roleDefinitionId: input.roleDefinitionId, principalId: input.principalId, principalType: 'ServicePrincipal' }),
        ),
      ),
    deleteRoleAssignment: async (scope, name) => {
      await call('RoleAssignments_Delete', () => client.roleAssignments.delete(sdkScope(scope), name));
    },
  };
}
