// The pure half of the AKS provider: names, ownership marker, the federated credential and the role assignments
// one WorkloadIdentity asks for, and the spec checks the API schema cannot make. No I/O here.
import { AUDIENCE } from '../../api/constants.ts';
import type { AzureCloudAccountSpec } from '../../api/types.ts';
import { boundedName, identityKey } from '../../domain/naming.ts';
import { declaredIdentityProblems } from '../adoption.ts';
import { markerTags } from '../ownership.ts';
import type { IdentityContext } from '../types.ts';
import type { RoleAssignment } from './arm-port.ts';
import { KEYLESS_NAMESPACE, isUuid, uuidv5 } from './uuid.ts';

/** User-assigned managed identity names: 3–128 of `[A-Za-z0-9_-]`, starting alphanumeric. */
export const IDENTITY_NAME_MAX = 128;
/** Federated identity credential names: `^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$` (arm-msi models/parameters.js). */
export const CREDENTIAL_NAME_MAX = 120;
const NAME_PREFIX = 'keyless-';

export interface DesiredCredential {
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
}

export interface DesiredGrant {
  /** As written in the spec: a role name, a role definition GUID or a role definition ID. */
  role: string;
  /** Resource ID with a leading slash and no trailing one, case preserved. */
  scope: string;
}

export interface AksDesired {
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tenantId: string;
  identityName: string;
  /** The tags that prove ownership (DESIGN §3); an identity Keyless creates carries exactly these. */
  marker: Record<string, string>;
  /** Take over an unmarked identity with this name (see IdentityContext.adopt). */
  adopt: boolean;
  /** The identity was named in keyless.dev/adopt: adopted only if a federated credential already trusts this subject. */
  adoptOnlyIfTrusted: boolean;
  credential: DesiredCredential;
  grants: DesiredGrant[];
  /** Subscriptions where the spec wants assignments: the account's and each one a scope names (lowercase). */
  subscriptions: string[];
  /**
   * Where assignments of our principal are looked for: the subscriptions above and every one the record says we
   * assigned roles in, so an assignment the spec (or the guardrails) no longer allows is found and removed.
   */
  listScopes: string[];
}

function readable(namespace: string, name: string): string {
  // Kubernetes names may contain '.', which Azure names may not.
  return `${NAME_PREFIX}${namespace}-${name}`.replace(/[^A-Za-z0-9_-]/g, '-');
}

export function managedIdentityName(cluster: string, namespace: string, name: string): string {
  return boundedName(readable(namespace, name), identityKey(cluster, namespace, name), IDENTITY_NAME_MAX);
}

export function federatedCredentialName(cluster: string, namespace: string, name: string): string {
  return boundedName(readable(namespace, name), identityKey(cluster, namespace, name), CREDENTIAL_NAME_MAX);
}

/** `/subscriptions/S/...` with duplicate and trailing slashes removed; case preserved. */
export function canonicalScope(scope: string): string {
  return `/${scope.split('/').filter(Boolean).join('/')}`;
}

/** For comparisons: ARM resource IDs are case-insensitive. */
export function scopeKey(scope: string): string {
  return canonicalScope(scope).toLowerCase();
}

export function subscriptionOf(scope: string): string | undefined {
  return /^\/subscriptions\/([^/]+)/i.exec(canonicalScope(scope))?.[1]?.toLowerCase();
}

const ROLE_DEFINITION_ID = /\/providers\/Microsoft\.Authorization\/roleDefinitions\/([0-9a-f-]{36})$/i;

/** The role definition GUID a spec role names directly, or undefined when it is a role name to look up. */
export function roleGuidOf(role: string): string | undefined {
  const trimmed = role.trim();
  if (isUuid(trimmed)) return trimmed.toLowerCase();
  const id = ROLE_DEFINITION_ID.exec(trimmed)?.[1];
  return id && isUuid(id) ? id.toLowerCase() : undefined;
}

export function roleDefinitionId(scope: string, guid: string): string {
  return `/subscriptions/${subscriptionOf(scope) ?? ''}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;
}

/** Deterministic, so a repeated PUT is idempotent: UUIDv5 over (scope, role, principal), all case-folded. */
export function roleAssignmentName(scope: string, roleGuid: string, principalId: string): string {
  return uuidv5(KEYLESS_NAMESPACE, `${scopeKey(scope)}|${roleGuid.toLowerCase()}|${principalId.toLowerCase()}`);
}

export function assignmentRoleGuid(a: RoleAssignment): string {
  return (a.roleDefinitionId.split('/').filter(Boolean).pop() ?? '').toLowerCase();
}

/** Whether an existing assignment gives exactly this principal this role at this scope. */
export function grants(a: RoleAssignment, scope: string, roleGuid: string, principalId: string): boolean {
  return scopeKey(a.scope) === scopeKey(scope) && assignmentRoleGuid(a) === roleGuid.toLowerCase() && a.principalId.toLowerCase() === principalId.toLowerCase();
}

export function sameCredential(a: { issuer: string; subject: string; audiences: string[] }, b: DesiredCredential): boolean {
  return a.issuer === b.issuer && a.subject === b.subject && a.audiences.length === b.audiences.length && a.audiences.every((x, i) => x === b.audiences[i]);
}

const IDENTITY_ID = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/([A-Za-z0-9][A-Za-z0-9_-]{2,127})$/i;

/** The identity keyless.dev/adopt names, when it is a managed identity in this CloudAccount's resource group. */
function declaredIdentity(ctx: IdentityContext): string | undefined {
  const account = azureAccount(ctx);
  const m = ctx.adoptIdentity === undefined ? undefined : IDENTITY_ID.exec(ctx.adoptIdentity.trim());
  if (!m || !sameName(m[1] ?? '', account.subscriptionId) || !sameName(m[2] ?? '', account.resourceGroup)) return undefined;
  return m[3];
}

const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** The managed identity's name: the one keyless.dev/adopt names, else the derived one. */
export function identityNameOf(ctx: IdentityContext): string {
  return declaredIdentity(ctx) ?? managedIdentityName(ctx.cluster, ctx.namespace, ctx.name);
}

export function azureAccount(ctx: IdentityContext): AzureCloudAccountSpec {
  const account = ctx.account.spec.azure;
  if (!account) throw new Error(`CloudAccount ${ctx.account.metadata.name} has no spec.azure`);
  return account;
}

export function desiredAks(ctx: IdentityContext): AksDesired {
  const account = azureAccount(ctx);
  const grantList = (ctx.spec.azure?.roleAssignments ?? []).map((g) => ({ role: g.role.trim(), scope: canonicalScope(g.scope) }));
  const subscriptions = [...new Set([account.subscriptionId.toLowerCase(), ...grantList.map((g) => subscriptionOf(g.scope) ?? '').filter(Boolean)])].sort();
  const listed = new Set([...subscriptions, ...(ctx.record?.azure?.subscriptions ?? []).map((sub) => sub.toLowerCase())]);
  return {
    subscriptionId: account.subscriptionId,
    resourceGroup: account.resourceGroup,
    location: account.location,
    tenantId: account.tenantId,
    identityName: identityNameOf(ctx),
    marker: markerTags(ctx),
    adopt: ctx.adopt === true,
    adoptOnlyIfTrusted: declaredIdentity(ctx) !== undefined,
    credential: {
      name: federatedCredentialName(ctx.cluster, ctx.namespace, ctx.name),
      issuer: ctx.issuer,
      subject: ctx.subject,
      audiences: [AUDIENCE.azure],
    },
    grants: grantList,
    subscriptions,
    listScopes: [...listed].sort().map((sub) => `/subscriptions/${sub}`),
  };
}

// No whitespace, and never "." or ".." (a URL resolver would turn them into a broader scope).
const SEGMENT = /^(?!\.\.?$)[^/\s]+$/;

/** What the CRD cannot check; each problem is a sentence a person can act on. */
export function validateAzureSpec(ctx: IdentityContext): string[] {
  const problems: string[] = [];
  if (!ctx.account.spec.azure) return [`CloudAccount ${ctx.account.metadata.name} has no spec.azure`];
  const { subscriptionId, resourceGroup } = azureAccount(ctx);
  problems.push(
    ...declaredIdentityProblems(
      ctx,
      declaredIdentity(ctx) !== undefined,
      `the resource ID of a managed identity in resource group ${resourceGroup} of subscription ${subscriptionId} (/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/NAME)`,
      ctx.record?.azure !== undefined,
    ),
  );
  if (ctx.subject.length > 600) problems.push(`the subject ${ctx.subject} is longer than the 600 characters a federated credential allows; use a shorter namespace or ServiceAccount name`);
  for (const [i, g] of (ctx.spec.azure?.roleAssignments ?? []).entries()) {
    const where = `spec.azure.roleAssignments[${i}]`;
    const segments = g.scope.split('/').slice(1);
    if (g.scope.includes('//') || g.scope.endsWith('/') || !segments.every((s) => SEGMENT.test(s))) {
      problems.push(`${where}.scope "${g.scope}" is not an Azure resource ID (no empty segments, spaces or trailing slash)`);
    } else if (/\/providers\/Microsoft\.Authorization\//i.test(g.scope)) {
      problems.push(`${where}.scope "${g.scope}" points into Microsoft.Authorization; assign roles at a subscription, resource group or resource`);
    } else if (segments.length > 2 && segments[2]?.toLowerCase() !== 'resourcegroups' && segments[2]?.toLowerCase() !== 'providers') {
      problems.push(`${where}.scope "${g.scope}" is not an Azure resource ID: after /subscriptions/<id> comes resourceGroups/<name> or providers/<namespace>`);
    }
    if (!roleGuidOf(g.role) && /['"]/.test(g.role)) {
      problems.push(`${where}.role "${g.role}" contains a quote; use the role's exact name (az role definition list --query "[].roleName") or its GUID`);
    }
  }
  return problems;
}
