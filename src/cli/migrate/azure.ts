// A hand-made AKS workload identity (azure.workload.identity/client-id) as a WorkloadIdentity that adopts the
// user-assigned managed identity. Read-only: the identity (found by its client id in the subscriptions of the Azure
// CloudAccounts), its federated credentials and its role assignments, through the operator's own ARM ports. Adoption
// keeps exactly one federated credential, for this cluster's issuer and this ServiceAccount, and exactly the spec's
// role assignments in the subscription; so the spec carries every assignment found, and any other credential keeps
// the identity out of the migration.
import { AUDIENCE, SERVICE_ACCOUNT_ANNOTATION } from '../../api/constants.ts';
import type { AzureRoleAssignment, CloudAccount } from '../../api/types.ts';
import { serviceAccountSubject } from '../../domain/naming.ts';
import type { AuthorizationPort, FederatedCredential, ManagedIdentity, MsiPort, RoleAssignment } from '../../providers/aks-workload-identity/arm-port.ts';
import { assignmentRoleGuid } from '../../providers/aks-workload-identity/desired.ts';
import type { HandMade } from './candidates.ts';
import { alreadyOwned, type CloudPlan } from './plan.ts';
import { describeTaggedOwner, unmarked } from '../../providers/ownership.ts';

/** What migrate lists in a subscription besides what the operator's ports read. */
export interface AzureInventory {
  /** Every user-assigned managed identity of the subscription. */
  listIdentities(subscriptionId: string): Promise<ManagedIdentity[]>;
  /** The role's name (Reader, Storage Blob Data Reader...), or undefined when it cannot be read. */
  roleName(subscriptionId: string, roleGuid: string): Promise<string | undefined>;
}

/** The ARM reads migrate makes for one CloudAccount, and no write: narrowings of the operator's ports. */
export interface AzureReader {
  msi: Pick<MsiPort, 'listCredentials'>;
  authorization: Pick<AuthorizationPort, 'listRoleAssignments'>;
}

export interface AzureFacts {
  identity: ManagedIdentity;
  credentials: FederatedCredential[];
  assignments: RoleAssignment[];
  /** Role names by role definition GUID (lowercase), where they could be read. */
  roleNames: Map<string, string>;
}

/** The subscription and resource group in a managed identity's resource ID. */
export function locationOf(identityId: string): { subscriptionId: string; resourceGroup: string } | undefined {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\//i.exec(identityId);
  return m ? { subscriptionId: m[1] ?? '', resourceGroup: m[2] ?? '' } : undefined;
}

/** Whether `account` places identities where this one is: same subscription and resource group. */
export function azureAccountMatches(account: CloudAccount, identityId: string): boolean {
  const where = locationOf(identityId);
  const azure = account.spec.azure;
  return where !== undefined && azure !== undefined && azure.subscriptionId.toLowerCase() === where.subscriptionId.toLowerCase() && azure.resourceGroup.toLowerCase() === where.resourceGroup.toLowerCase();
}

/** The identity with this client id in any of `subscriptions`. */
export async function findIdentity(inventory: AzureInventory, subscriptions: readonly string[], clientId: string): Promise<ManagedIdentity | undefined> {
  for (const subscription of new Set(subscriptions.map((s) => s.toLowerCase()))) {
    const found = (await inventory.listIdentities(subscription)).find((i) => i.clientId.toLowerCase() === clientId.toLowerCase());
    if (found) return found;
  }
  return undefined;
}

export async function readIdentity(reader: AzureReader, inventory: AzureInventory, identity: ManagedIdentity): Promise<AzureFacts> {
  const subscriptionId = locationOf(identity.id)?.subscriptionId ?? '';
  // One after the other: each may be the first call that loads its SDK, and two loading at once race in Node.
  const credentials = await reader.msi.listCredentials(identity.name);
  const assignments = await reader.authorization.listRoleAssignments(`/subscriptions/${subscriptionId}`, identity.principalId);
  const roleNames = new Map<string, string>();
  for (const guid of new Set(assignments.map(assignmentRoleGuid))) {
    const name = await inventory.roleName(subscriptionId, guid);
    if (name) roleNames.set(guid, name);
  }
  // The filter is checked again, never trusted: only this principal's assignments.
  return { identity, credentials, assignments: assignments.filter((a) => a.principalId.toLowerCase() === identity.principalId.toLowerCase()), roleNames };
}

export function planAzure(source: HandMade, account: CloudAccount, facts: AzureFacts): CloudPlan {
  const { identity } = facts;
  const blockers: string[] = [];
  const notes: string[] = [];
  if (!unmarked(identity.tags)) blockers.push(alreadyOwned('managed identity', describeTaggedOwner(identity.tags)));
  const issuer = account.status?.issuer || account.spec.azure?.oidcIssuer || '';
  const subject = serviceAccountSubject(source.namespace, source.serviceAccount);
  let trusted = false;
  for (const c of facts.credentials) {
    if (c.issuer === issuer && c.subject === subject) {
      trusted = true;
      if (c.audiences.length !== 1 || c.audiences[0] !== AUDIENCE.azure) notes.push(`federated credential ${c.name} accepts the audiences ${c.audiences.join(', ')}; Keyless replaces it with one for ${AUDIENCE.azure} only`);
      else if (facts.credentials.length === 1) notes.push(`federated credential ${c.name} says exactly what Keyless's would: Keyless keeps it`);
      continue;
    }
    blockers.push(`federated credential ${c.name} also trusts subject ${c.subject} from issuer ${c.issuer}: Keyless keeps exactly one credential, for this cluster and ServiceAccount, so adoption would delete it`);
  }
  if (!trusted) blockers.push(`no federated credential of the identity trusts subject ${subject} from issuer ${issuer}: it is not this ServiceAccount's identity for this cluster`);

  const roleAssignments: AzureRoleAssignment[] = [];
  for (const a of facts.assignments) {
    const guid = assignmentRoleGuid(a);
    roleAssignments.push({ role: facts.roleNames.get(guid) ?? guid, scope: a.scope });
  }
  const subscriptionId = locationOf(identity.id)?.subscriptionId ?? '';
  notes.push(`role assignments were looked for in subscription ${subscriptionId}; assignments in other subscriptions stay as they are, unmanaged`);

  const tenant = source.annotations[SERVICE_ACCOUNT_ANNOTATION.azureTenantId];
  const tenantDiffers = tenant !== undefined && tenant !== identity.tenantId;
  if (tenantDiffers) notes.push(`the ServiceAccount's ${SERVICE_ACCOUNT_ANNOTATION.azureTenantId} is ${tenant}; Keyless sets the identity's tenant ${identity.tenantId}`);
  return {
    adopt: identity.id,
    spec: { azure: roleAssignments.length ? { roleAssignments } : {} },
    blockers,
    notes,
    takeOverAnnotations: source.annotations[SERVICE_ACCOUNT_ANNOTATION.azureClientId] !== identity.clientId || tenantDiffers,
  };
}
