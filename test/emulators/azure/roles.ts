// A few real Azure built-in role definitions (names and GUIDs as `az role definition list` prints them), enough
// for the tests, the samples and the docs. Role definition GUIDs of built-in roles are the same in every tenant.
export interface BuiltInRole {
  guid: string;
  roleName: string;
  description: string;
}

export const BUILT_IN_ROLES: readonly BuiltInRole[] = [
  { guid: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635', roleName: 'Owner', description: 'Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.' },
  { guid: 'b24988ac-6180-42a0-ab88-20f7382dd24c', roleName: 'Contributor', description: 'Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.' },
  { guid: 'acdd72a7-3385-48ef-bd42-f606fba81ae7', roleName: 'Reader', description: 'View all resources, but does not allow you to make any changes.' },
  { guid: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1', roleName: 'Storage Blob Data Reader', description: 'Read and list Azure Storage containers and blobs.' },
  { guid: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe', roleName: 'Storage Blob Data Contributor', description: 'Read, write, and delete Azure Storage containers and blobs.' },
  { guid: '974c5e8b-45b9-4653-ba55-5f855dd0fb88', roleName: 'Storage Queue Data Contributor', description: 'Read, write, and delete Azure Storage queues and queue messages.' },
  { guid: '4633458b-17de-408a-b874-0445c86b69e6', roleName: 'Key Vault Secrets User', description: 'Read secret contents.' },
  { guid: '7f951dda-4ed3-4680-a7ca-43fe172d538d', roleName: 'AcrPull', description: 'acr pull' },
  { guid: 'f1a07417-d97a-45cb-824c-7a7467783830', roleName: 'Managed Identity Operator', description: 'Read and Assign User Assigned Identity' },
];
