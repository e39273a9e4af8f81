// The listing migrate needs in an Azure subscription — its user-assigned managed identities, to find one by its client
// id, and role names, for a readable spec — over the same SDK clients, credential and call wrapper as the operator's
// ARM ports (src/providers/aks-workload-identity/arm-client.ts). Reads only.
import type { AuthorizationManagementClient } from '@azure/arm-authorization';
import type { ManagedServiceIdentityClient } from '@azure/arm-msi';
import { toIdentity } from '../../providers/aks-workload-identity/arm-client.ts';
import type { ManagedIdentity } from '../../providers/aks-workload-identity/arm-port.ts';
import { orUndefined } from '../../providers/cloud-error.ts';
import type { CloudCall } from '../../providers/instrument.ts';
import type { AzureInventory } from './azure.ts';

export interface AzureSubscriptionClients {
  msi: ManagedServiceIdentityClient;
  authorization: AuthorizationManagementClient;
}

export function createAzureInventory(clientsFor: (subscriptionId: string) => Promise<AzureSubscriptionClients>, call: CloudCall): AzureInventory {
  return {
    async listIdentities(subscriptionId) {
      const { msi } = await clientsFor(subscriptionId);
      return call('UserAssignedIdentities_ListBySubscription', async (abortSignal) => {
        const identities: ManagedIdentity[] = [];
        for await (const identity of msi.userAssignedIdentities.listBySubscription({ abortSignal })) identities.push(toIdentity(identity));
        return identities;
      });
    },
    async roleName(subscriptionId, roleGuid) {
      const { authorization } = await clientsFor(subscriptionId);
      const role = await orUndefined(call('RoleDefinitions_Get', (abortSignal) => authorization.roleDefinitions.get(`subscriptions/${subscriptionId}`, roleGuid, { abortSignal })));
      return role?.roleName;
    },
  };
}
