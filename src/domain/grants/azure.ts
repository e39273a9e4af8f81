// Azure: a data-plane built-in role assigned on a resource of another resource provider grants nothing (Storage Blob
// Data Reader on a key vault). Only the well-known data-plane roles are judged, by name or by their built-in GUID
// (the same in every tenant); a role assigned at a subscription or resource group reaches the resources inside it.
import type { AzureWorkloadIdentitySpec } from '../../api/types.ts';
import type { Ineffective } from './types.ts';

/** Role name prefixes of data-plane built-in roles and the resource provider they act on (Azure built-in roles). */
const ROLE_PROVIDERS: { prefix: string; provider: string }[] = [
  { prefix: 'storage blob data ', provider: 'Microsoft.Storage' },
  { prefix: 'storage queue data ', provider: 'Microsoft.Storage' },
  { prefix: 'storage table data ', provider: 'Microsoft.Storage' },
  { prefix: 'storage file data ', provider: 'Microsoft.Storage' },
  { prefix: 'key vault ', provider: 'Microsoft.KeyVault' },
  { prefix: 'acrpull', provider: 'Microsoft.ContainerRegistry' },
  { prefix: 'acrpush', provider: 'Microsoft.ContainerRegistry' },
  { prefix: 'azure service bus data ', provider: 'Microsoft.ServiceBus' },
  { prefix: 'azure event hubs data ', provider: 'Microsoft.EventHub' },
];

/** Built-in role GUIDs → names, for the roles above that a spec may name by GUID. */
const BUILT_IN: Record<string, string> = {
  '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1': 'Storage Blob Data Reader',
  'ba92f5b4-2d11-453d-a403-e96b0029c9fe': 'Storage Blob Data Contributor',
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88': 'Storage Queue Data Contributor',
  '4633458b-17de-408a-b874-0445c86b69e6': 'Key Vault Secrets User',
  '7f951dda-4ed3-4680-a7ca-43fe172d538d': 'AcrPull',
};

export function ineffectiveAzure(spec: AzureWorkloadIdentitySpec): Ineffective[] {
  const found: Ineffective[] = [];
  for (const [i, assignment] of (spec.roleAssignments ?? []).entries()) {
    const guid = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i.exec(assignment.role.trim())?.[1]?.toLowerCase();
    const name = (guid ? BUILT_IN[guid] : assignment.role) ?? '';
    const role = ROLE_PROVIDERS.find((r) => name.trim().toLowerCase().startsWith(r.prefix));
    const provider = /\/providers\/([^/]+)\//i.exec(assignment.scope)?.[1];
    if (!role || !provider || provider.toLowerCase() === role.provider.toLowerCase()) continue;
    found.push({
      field: `spec.azure.roleAssignments[${i}].role`,
      entry: assignment.role,
      why: `grants nothing at ${assignment.scope}: ${name} acts on ${role.provider} resources, and this scope is a ${provider} resource; assign it on the ${role.provider} resource or its resource group`,
    });
  }
  return found;
}
