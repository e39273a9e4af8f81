// The narrow slice of Azure Resource Manager that Keyless uses: user-assigned managed identities and their
// federated identity credentials in the CloudAccount's resource group (@azure/arm-msi), role definitions and role
// assignments at any scope (@azure/arm-authorization). Implemented over the SDKs by arm-client.ts and by an
// in-memory fake for unit tests. Methods throw CloudError; reads of a missing object return undefined and deletes
// of a missing object succeed.

export interface ManagedIdentity {
  /** ARM resource ID; ARM spells `resourcegroups` in lowercase here, so compare IDs case-insensitively. */
  id: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  clientId: string;
  principalId: string;
  tenantId: string;
}

export interface FederatedCredential {
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
}

export interface RoleAssignment {
  name: string;
  /** With a leading slash, e.g. /subscriptions/S/resourceGroups/rg. */
  scope: string;
  /** /subscriptions/S/providers/Microsoft.Authorization/roleDefinitions/GUID */
  roleDefinitionId: string;
  principalId: string;
}

/** Managed identities of one resource group in one subscription. */
export interface MsiPort {
  getIdentity(name: string): Promise<ManagedIdentity | undefined>;
  /** Create or update (ARM PUT): the identity with exactly these tags. */
  putIdentity(name: string, input: { location: string; tags: Record<string, string> }): Promise<ManagedIdentity>;
  deleteIdentity(name: string): Promise<void>;
  /** The first page of identities in the resource group: proves the group exists and is readable. */
  listIdentitiesFirstPage(): Promise<ManagedIdentity[]>;
  listCredentials(identityName: string): Promise<FederatedCredential[]>;
  putCredential(identityName: string, credential: FederatedCredential): Promise<void>;
  deleteCredential(identityName: string, credentialName: string): Promise<void>;
}

/** Scopes are resource IDs with their leading slash; adapters strip it where the SDK wants none. */
export interface AuthorizationPort {
  /** The GUIDs of role definitions with exactly this name visible at `scope` (normally one). */
  findRoleDefinitions(scope: string, roleName: string): Promise<string[]>;
  /** Assignments of `principalId` at, above and below `scope`. */
  listRoleAssignments(scope: string, principalId: string): Promise<RoleAssignment[]>;
  createRoleAssignment(scope: string, name: string, input: { roleDefinitionId: string; principalId: string }): Promise<RoleAssignment>;
  deleteRoleAssignment(scope: string, name: string): Promise<void>;
}
