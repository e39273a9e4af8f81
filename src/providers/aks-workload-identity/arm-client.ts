// MsiPort and AuthorizationPort over @azure/arm-msi and @azure/arm-authorization. Every HTTP request — each page
// of a list too — goes through `call`, so the account's rate limiter, the deadline, the metrics and the error
// classifier see it, and carries that call's abort signal.
import { getContinuationToken as authorizationContinuation, type AuthorizationManagementClient } from '@azure/arm-authorization';
import { getContinuationToken as msiContinuation, type Identity, type ManagedServiceIdentityClient } from '@azure/arm-msi';
import { orUndefined } from '../cloud-error.ts';
import type { CloudCall } from '../instrument.ts';
import type { AuthorizationPort, FederatedCredential, ManagedIdentity, MsiPort, RoleAssignment } from './arm-port.ts';

/** The SDK's paged lists, as far as they are used here. */
interface Paged<T> {
  byPage(settings: { continuationToken?: string }): AsyncIterableIterator<T[]>;
}

/**
 * Collects every page of an SDK list, one instrumented call per page. Each page is read by a list built inside its
 * call and resumed at the previous page's continuation token, so the request carries that call's abort signal.
 */
async function allPages<T>(
  call: CloudCall,
  operation: string,
  list: (abortSignal: AbortSignal) => Paged<T>,
  continuationOf: (page: T[]) => string | undefined,
): Promise<T[]> {
  const items: T[] = [];
  let continuationToken: string | undefined;
  do {
    const settings = { continuationToken };
    const page = await call(operation, (abortSignal) => list(abortSignal).byPage(settings).next());
    if (page.done) break;
    items.push(...page.value);
    continuationToken = continuationOf(page.value);
  } while (continuationToken);
  return items;
}

export function toIdentity(i: Identity): ManagedIdentity {
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
    getIdentity: (name) => orUndefined(call('UserAssignedIdentities_Get', (abortSignal) => ids.get(resourceGroup, name, { abortSignal })).then(toIdentity)),
    putIdentity: async (name, input) => toIdentity(await call('UserAssignedIdentities_CreateOrUpdate', (abortSignal) => ids.createOrUpdate(resourceGroup, name, input, { abortSignal }))),
    deleteIdentity: async (name) => {
      await call('UserAssignedIdentities_Delete', (abortSignal) => ids.delete(resourceGroup, name, { abortSignal }));
    },
    listIdentities: async () => (await allPages(call, 'UserAssignedIdentities_ListByResourceGroup', (abortSignal) => ids.listByResourceGroup(resourceGroup, { abortSignal }), msiContinuation)).map(toIdentity),
    listCredentials: async (identityName) => {
      const items = await allPages(call, 'FederatedIdentityCredentials_List', (abortSignal) => fics.list(resourceGroup, identityName, { abortSignal }), msiContinuation);
      return items.map((c): FederatedCredential => ({ name: c.name ?? '', issuer: c.issuer ?? '', subject: c.subject ?? '', audiences: [...(c.audiences ?? [])] }));
    },
    putCredential: async (identityName, c) => {
      await call('FederatedIdentityCredentials_CreateOrUpdate', (abortSignal) =>
        fics.createOrUpdate(resourceGroup, identityName, c.name, { issuer: c.issuer, subject: c.subject, audiences: c.audiences }, { abortSignal }),
      );
    },
    deleteCredential: async (identityName, credentialName) => {
      await call('FederatedIdentityCredentials_Delete', (abortSignal) => fics.delete(resourceGroup, identityName, credentialName, { abortSignal }));
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
      const defs = await allPages(call, 'RoleDefinitions_List', (abortSignal) => client.roleDefinitions.list(sdkScope(scope), { filter, abortSignal }), authorizationContinuation);
      return defs.filter((d) => d.roleName?.toLowerCase() === roleName.toLowerCase() && d.name).map((d) => d.name ?? '');
    },
    listRoleAssignments: async (scope, principalId) => {
      const filter = principalId === undefined ? {} : { filter: `principalId eq '${principalId}'` };
      const list = (abortSignal: AbortSignal) => client.roleAssignments.listForScope(sdkScope(scope), { ...filter, abortSignal });
      return (await allPages(call, 'RoleAssignments_ListForScope', list, authorizationContinuation)).map(toAssignment);
    },
    createRoleAssignment: async (scope, name, input) =>
      toAssignment(
        await call('RoleAssignments_Create', (abortSignal) =>
          client.roleAssignments.create(
            sdkScope(scope),
            name,
            { roleDefinitionId: input.roleDefinitionId, principalId: input.principalId, principalType: 'ServicePrincipal' },
            { abortSignal },
          ),
        ),
      ),
    deleteRoleAssignment: async (scope, name) => {
      await call('RoleAssignments_Delete', (abortSignal) => client.roleAssignments.delete(sdkScope(scope), name, { abortSignal }));
    },
  };
}
