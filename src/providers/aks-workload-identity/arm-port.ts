// The narrow slice of Azure Resource Manager that Keyless uses: user-assigned managed identities and their
// federated identity credentials in the CloudAccount's resource group (@azure/arm-msi), role definitions and role
// assignments at any scope (@azure/arm-authorization). Implemented over the SDKs by arm-client.ts and by an
// in-memory fake for unit tests. Methods throw CloudError; reads of a missing object return undefined and deletes
// of a missing object succeed. shared-port.ts adds the reads every identity of a CloudAccount shares.

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
  /** Every identity in the resource group, all pages (each carries what getIdentity does). */
  listIdentities(): Promise<ManagedIdentity[]>;
  listCredentials(identityName: string): Promise<FederatedCredential[]>;
  putCredential(identityName: string, credential: FederatedCredential): Promise<void>;
  deleteCredential(identityName: string, credentialName: string): Promise<void>;
}

/** Scopes are resource IDs with their leading slash; adapters strip it where the SDK wants none. */
export interface AuthorizationPort {
  /** The GUIDs of role definitions with exactly this name visible at `scope` (normally one). */
  findRoleDefinitions(scope: string, roleName: string): Promise<string[]>;
  /** Assignments at, above and below `scope`: of `principalId` only, or of every principal when it is absent. */
  listRoleAssignments(scope: string, principalId?: string): Promise<RoleAssignment[]>;
  createRoleAssignment(scope: string, name: string, input: { roleDefinitionId: string; principalId: string }): Promise<RoleAssignment>;
  deleteRoleAssignment(scope: string, name: string): Promise<void>;
}

/**
 * The reads every identity of one CloudAccount shares (../shared-reads.ts): a copy at most a max age old, or as
 * Keyless's own last write through the same ports left it.
 */
export interface SharedMsiPort extends MsiPort {
  /** The identities of the resource group. */
  sharedIdentities(): Promise<readonly ManagedIdentity[]>;
}

export interface SharedAuthorizationPort extends AuthorizationPort {
  /** Every principal's assignments at, above and below `scope`. */
  sharedRoleAssignments(scope: string): Promise<readonly RoleAssignment[]>;
}
