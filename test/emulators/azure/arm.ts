// The state and rules of the emulated Azure Resource Manager: user-assigned managed identities and their
// federated identity credentials (Microsoft.ManagedIdentity 2024-11-30) and role assignments and definitions
// (Microsoft.Authorization 2022-04-01). It models what bites in production (../../../../shared/reference/cloud-apis.md §4):
// no concurrent federated-credential writes per identity, at most 20 of them, unique issuer+subject, the directory
// replication delay behind PrincipalNotFound, RoleAssignmentExists for a (scope, role, principal) duplicate.
// HTTP, routing, faults and the request log live in server.ts.
import { randomUUID } from 'node:crypto';
import { StatusError } from '../http.ts';
import { BUILT_IN_ROLES } from './roles.ts';

/** An ARM error: answered as `{"error":{"code","message"}}` with this status. */
export class ArmError extends StatusError {}

export interface Reply {
  status: number;
  body?: unknown;
}

export interface EmulatorConfig {
  /** How long after its identity was created a principal is unknown to role assignments (PrincipalNotFound). */
  principalReplicationDelayMs: number;
  /** How long a federated-credential write stays in flight; another write to the same identity meanwhile gets 409. */
  ficWriteLatencyMs: number;
  /** Items per page of every list; later pages are reached through an absolute nextLink. */
  pageSize: number;
}

export const FIC_LIMIT = 20;
const FIC_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{2,119}$/;
const IDENTITY_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface StoredCredential {
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
}

export interface StoredIdentity {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  tenantId: string;
  principalId: string;
  clientId: string;
  createdAt: number;
  credentials: Map<string, StoredCredential>;
}

export interface StoredAssignment {
  name: string;
  /** With a leading slash, as ARM reports it in properties.scope. */
  scope: string;
  roleDefinitionId: string;
  principalId: string;
  principalType: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const lower = (s: string) => s.toLowerCase();
const trimSlash = (scope: string) => `/${scope.split('/').filter(Boolean).join('/')}`;

/** True when `outer` is `inner` or one of its ancestors (compared case-insensitively, by whole segments). */
function contains(outer: string, inner: string): boolean {
  const o = lower(trimSlash(outer));
  const i = lower(trimSlash(inner));
  return o === '/' || i === o || i.startsWith(`${o}/`);
}

function roleGuid(roleDefinitionId: string): string {
  return lower(roleDefinitionId.split('/').filter(Boolean).pop() ?? '');
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function properties(body: unknown): Record<string, unknown> {
  const props = (body as { properties?: unknown } | undefined)?.properties;
  return typeof props === 'object' && props !== null ? (props as Record<string, unknown>) : {};
}

export class ArmState {
  readonly tenantId: string;
  readonly config: EmulatorConfig;
  readonly resourceGroups = new Set<string>();
  readonly identities = new Map<string, StoredIdentity>();
  readonly assignments = new Map<string, StoredAssignment>();
  readonly #ficWritesInFlight = new Set<string>();

  constructor(opts: { tenantId: string; config: EmulatorConfig }) {
    this.tenantId = opts.tenantId;
    this.config = opts.config;
  }

  addResourceGroup(subscriptionId: string, name: string): void {
    this.resourceGroups.add(lower(`${subscriptionId}/${name}`));
  }

  #requireGroup(subscriptionId: string, resourceGroup: string): void {
    if (!this.resourceGroups.has(lower(`${subscriptionId}/${resourceGroup}`))) {
      throw new ArmError(404, 'ResourceGroupNotFound', `Resource group '${resourceGroup}' could not be found.`);
    }
  }

  #identityKey(subscriptionId: string, resourceGroup: string, name: string): string {
    return lower(`${subscriptionId}/${resourceGroup}/${name}`);
  }

  #identity(subscriptionId: string, resourceGroup: string, name: string): StoredIdentity {
    this.#requireGroup(subscriptionId, resourceGroup);
    const identity = this.identities.get(this.#identityKey(subscriptionId, resourceGroup, name));
    if (!identity) {
      throw new ArmError(404, 'ResourceNotFound', `The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/${name}' under resource group '${resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
    }
    return identity;
  }

  /** ARM answers MSI resource IDs with a lowercase `resourcegroups`: clients must compare IDs case-insensitively. */
  identityId(i: StoredIdentity): string {
    return `/subscriptions/${i.subscriptionId}/resourcegroups/${i.resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${i.name}`;
  }

  identityJson(i: StoredIdentity): unknown {
    return {
      id: this.identityId(i),
      name: i.name,
      type: 'Microsoft.ManagedIdentity/userAssignedIdentities',
      location: i.location,
      tags: i.tags,
      properties: { tenantId: i.tenantId, principalId: i.principalId, clientId: i.clientId, isolationScope: 'None' },
    };
  }

  credentialJson(i: StoredIdentity, c: StoredCredential): unknown {
    return {
      id: `${this.identityId(i)}/federatedIdentityCredentials/${c.name}`,
      name: c.name,
      type: 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials',
      properties: { issuer: c.issuer, subject: c.subject, audiences: c.audiences },
    };
  }

  assignmentJson(a: StoredAssignment): unknown {
    return {
      id: `${a.scope === '/' ? '' : a.scope}/providers/Microsoft.Authorization/roleAssignments/${a.name}`,
      name: a.name,
      type: 'Microsoft.Authorization/roleAssignments',
      properties: { roleDefinitionId: a.roleDefinitionId, principalId: a.principalId, principalType: a.principalType, scope: a.scope },
    };
  }

  // --- Microsoft.ManagedIdentity/userAssignedIdentities -----------------------------------------------------------

  listIdentities(subscriptionId: string, resourceGroup: string): unknown[] {
    this.#requireGroup(subscriptionId, resourceGroup);
    return [...this.identities.values()]
      .filter((i) => lower(i.subscriptionId) === lower(subscriptionId) && lower(i.resourceGroup) === lower(resourceGroup))
      .map((i) => this.identityJson(i));
  }

  listIdentitiesInSubscription(subscriptionId: string): unknown[] {
    return [...this.identities.values()].filter((i) => lower(i.subscriptionId) === lower(subscriptionId)).map((i) => this.identityJson(i));
  }

  getIdentity(subscriptionId: string, resourceGroup: string, name: string): Reply {
    return { status: 200, body: this.identityJson(this.#identity(subscriptionId, resourceGroup, name)) };
  }

  putIdentity(subscriptionId: string, resourceGroup: string, name: string, body: unknown): Reply {
    this.#requireGroup(subscriptionId, resourceGroup);
    if (!IDENTITY_NAME.test(name)) {
      throw new ArmError(400, 'InvalidResourceName', `Resource name ${name} is invalid. The name can be between 3 and 128 characters long, must start with a letter or number, and may contain letters, numbers, '-' and '_'.`);
    }
    const location = str((body as { location?: unknown } | undefined)?.location);
    if (!location) throw new ArmError(400, 'LocationRequired', 'The location property is required for this definition.');
    const tags = ((body as { tags?: unknown } | undefined)?.tags ?? undefined) as Record<string, string> | undefined;
    const key = this.#identityKey(subscriptionId, resourceGroup, name);
    const existing = this.identities.get(key);
    if (existing) {
      if (lower(existing.location) !== lower(location)) {
        throw new ArmError(400, 'InvalidResourceLocation', `The resource '${name}' already exists in location '${existing.location}' in resource group '${resourceGroup}'. A resource with the same name cannot be created in location '${location}'.`);
      }
      if (tags) existing.tags = { ...tags };
      return { status: 200, body: this.identityJson(existing) };
    }
    const identity: StoredIdentity = {
      subscriptionId,
      resourceGroup,
      name,
      location,
      tags: { ...(tags ?? {}) },
      tenantId: this.tenantId,
      principalId: randomUUID(),
      clientId: randomUUID(),
      createdAt: Date.now(),
      credentials: new Map(),
    };
    this.identities.set(key, identity);
    return { status: 201, body: this.identityJson(identity) };
  }

  patchIdentity(subscriptionId: string, resourceGroup: string, name: string, body: unknown): Reply {
    const identity = this.#identity(subscriptionId, resourceGroup, name);
    const tags = (body as { tags?: unknown } | undefined)?.tags;
    if (tags && typeof tags === 'object') identity.tags = { ...(tags as Record<string, string>) };
    return { status: 200, body: this.identityJson(identity) };
  }

  /** Deleting an identity deletes its federated credentials; its role assignments stay behind, orphaned. */
  deleteIdentity(subscriptionId: string, resourceGroup: string, name: string): Reply {
    this.#requireGroup(subscriptionId, resourceGroup);
    const key = this.#identityKey(subscriptionId, resourceGroup, name);
    if (!this.identities.delete(key)) return { status: 204 };
    return { status: 200 };
  }

  // --- .../federatedIdentityCredentials ---------------------------------------------------------------------------

  listCredentials(subscriptionId: string, resourceGroup: string, name: string): unknown[] {
    const identity = this.#identity(subscriptionId, resourceGroup, name);
    return [...identity.credentials.values()].map((c) => this.credentialJson(identity, c));
  }

  getCredential(subscriptionId: string, resourceGroup: string, name: string, ficName: string): Reply {
    const identity = this.#identity(subscriptionId, resourceGroup, name);
    const credential = identity.credentials.get(lower(ficName));
    if (!credential) throw new ArmError(404, 'NotFound', `Federated Identity Credential '${ficName}' was not found for managed identity '${name}'.`);
    return { status: 200, body: this.credentialJson(identity, credential) };
  }

  async putCredential(subscriptionId: string, resourceGroup: string, name: string, ficName: string, body: unknown): Promise<Reply> {
    const identity = this.#identity(subscriptionId, resourceGroup, name);
    if (!FIC_NAME.test(ficName)) {
      throw new ArmError(400, 'BadRequest', `The federated identity credential name '${ficName}' is invalid: it must be 3 to 120 characters, start with a letter or number, and contain only letters, numbers, '-' and '_'.`);
    }
    const p = properties(body);
    const issuer = str(p['issuer']);
    const subject = str(p['subject']);
    const audiences = Array.isArray(p['audiences']) ? (p['audiences'] as unknown[]).filter((a): a is string => typeof a === 'string') : [];
    if (!issuer || !issuer.startsWith('https://') || issuer.length > 600) throw new ArmError(400, 'BadRequest', 'The issuer must be an https URL of at most 600 characters.');
    if (!subject || subject.length > 600) throw new ArmError(400, 'BadRequest', 'The subject must be 1 to 600 characters.');
    if (audiences.length !== 1 || !audiences[0]) throw new ArmError(400, 'BadRequest', 'Exactly one audience is supported.');
    const existing = identity.credentials.get(lower(ficName));
    for (const other of identity.credentials.values()) {
      if (lower(other.name) !== lower(ficName) && other.issuer === issuer && other.subject === subject) {
        throw new ArmError(400, 'BadRequest', 'Issuer and subject combination already exists for this Managed Identity.');
      }
    }
    // [unverified] code and wording: Entra documents the limit (learn.microsoft.com workload-identity-federation-considerations), not the error.
    if (!existing && identity.credentials.size >= FIC_LIMIT) {
      throw new ArmError(400, 'BadRequest', `Too many Federated Identity Credentials. A maximum of ${FIC_LIMIT} federated identity credentials can be added to a managed identity.`);
    }
    return this.#ficWrite(identity, () => {
      const credential: StoredCredential = { name: existing?.name ?? ficName, issuer, subject, audiences: [...audiences] };
      identity.credentials.set(lower(ficName), credential);
      return { status: existing ? 200 : 201, body: this.credentialJson(identity, credential) };
    });
  }

  async deleteCredential(subscriptionId: string, resourceGroup: string, name: string, ficName: string): Promise<Reply> {
    const identity = this.#identity(subscriptionId, resourceGroup, name);
    return this.#ficWrite(identity, () => ({ status: identity.credentials.delete(lower(ficName)) ? 200 : 204 }));
  }

  /** Entra processes one federated-credential write per identity at a time; another one meanwhile is refused. */
  async #ficWrite(identity: StoredIdentity, commit: () => Reply): Promise<Reply> {
    const key = this.#identityKey(identity.subscriptionId, identity.resourceGroup, identity.name);
    if (this.#ficWritesInFlight.has(key)) {
      throw new ArmError(409, 'ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity', `Too many Federated Identity Credentials are written concurrently for the managed identity '${this.identityId(identity)}'. Concurrent Federated Identity Credentials writes under the same managed identity are not supported.`);
    }
    this.#ficWritesInFlight.add(key);
    try {
      if (this.config.ficWriteLatencyMs > 0) await sleep(this.config.ficWriteLatencyMs);
      return commit();
    } finally {
      this.#ficWritesInFlight.delete(key);
    }
  }

  // --- Microsoft.Authorization ------------------------------------------------------------------------------------

  /** Role definitions as ARM reports them at `scope`: IDs carry the scope's subscription. */
  #roleDefinitionId(scope: string, guid: string): string {
    const sub = /^\/subscriptions\/([^/]+)/i.exec(trimSlash(scope))?.[1];
    return `${sub ? `/subscriptions/${sub}` : ''}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;
  }

  #roleJson(scope: string, role: (typeof BUILT_IN_ROLES)[number]): unknown {
    return {
      id: this.#roleDefinitionId(scope, role.guid),
      name: role.guid,
      type: 'Microsoft.Authorization/roleDefinitions',
      properties: { roleName: role.roleName, type: 'BuiltInRole', description: role.description, assignableScopes: ['/'], permissions: [] },
    };
  }

  listRoleDefinitions(scope: string, filter: string | undefined): unknown[] {
    let roles = BUILT_IN_ROLES;
    if (filter) {
      const byName = /^roleName eq '(.*)'$/i.exec(filter.trim());
      if (!byName) throw new ArmError(400, 'InvalidFilter', `The filter '${filter}' is not supported. Supported filters: roleName eq '{name}'.`);
      roles = roles.filter((r) => lower(r.roleName) === lower(byName[1] ?? ''));
    }
    return roles.map((r) => this.#roleJson(scope, r));
  }

  getRoleDefinition(scope: string, id: string): Reply {
    const role = BUILT_IN_ROLES.find((r) => r.guid === lower(id));
    if (!role) throw new ArmError(404, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${id}' does not exist.`);
    return { status: 200, body: this.#roleJson(scope, role) };
  }

  /** At, above and below `scope`; `principalId eq '…'` narrows to one principal, `atScope()` to at and above. */
  listAssignments(scope: string, filter: string | undefined): unknown[] {
    let matches = (a: StoredAssignment) => contains(a.scope, scope) || contains(scope, a.scope);
    if (filter) {
      const principal = /^principalId eq '([^']*)'$/i.exec(filter.trim());
      if (principal) {
        const id = lower(principal[1] ?? '');
        const around = matches;
        matches = (a) => around(a) && lower(a.principalId) === id;
      } else if (/^atScope\(\)$/i.test(filter.trim())) {
        matches = (a) => contains(a.scope, scope);
      } else {
        throw new ArmError(400, 'InvalidFilter', `The filter '${filter}' is not supported. Supported filters: principalId eq '{id}', atScope().`);
      }
    }
    return [...this.assignments.values()].filter(matches).map((a) => this.assignmentJson(a));
  }

  getAssignment(scope: string, name: string): Reply {
    const a = this.assignments.get(lower(name));
    if (!a || lower(trimSlash(a.scope)) !== lower(trimSlash(scope))) throw new ArmError(404, 'RoleAssignmentNotFound', `The role assignment '${name}' is not found.`);
    return { status: 200, body: this.assignmentJson(a) };
  }

  putAssignment(scope: string, name: string, body: unknown): Reply {
    if (!GUID.test(name)) throw new ArmError(400, 'InvalidRoleAssignmentId', `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`);
    const p = properties(body);
    const roleDefinitionId = str(p['roleDefinitionId']) ?? '';
    const principalId = str(p['principalId']) ?? '';
    const principalType = str(p['principalType']) ?? 'ServicePrincipal';
    if (!BUILT_IN_ROLES.some((r) => r.guid === roleGuid(roleDefinitionId))) {
      throw new ArmError(400, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${roleGuid(roleDefinitionId)}' does not exist.`);
    }
    if (!GUID.test(principalId)) throw new ArmError(400, 'InvalidPrincipalId', `The principal ID '${principalId}' is not valid. Principal ID must be a GUID.`);
    const fullScope = trimSlash(scope);
    const existing = this.assignments.get(lower(name));
    if (existing) {
      const same = lower(trimSlash(existing.scope)) === lower(fullScope) && roleGuid(existing.roleDefinitionId) === roleGuid(roleDefinitionId) && lower(existing.principalId) === lower(principalId);
      if (!same) throw new ArmError(400, 'RoleAssignmentUpdateNotPermitted', 'Tenant ID, application ID, principal ID, and scope are not allowed to be updated.');
      return { status: 200, body: this.assignmentJson(existing) };
    }
    const duplicate = [...this.assignments.values()].find(
      (a) => lower(trimSlash(a.scope)) === lower(fullScope) && roleGuid(a.roleDefinitionId) === roleGuid(roleDefinitionId) && lower(a.principalId) === lower(principalId),
    );
    if (duplicate) throw new ArmError(409, 'RoleAssignmentExists', 'The role assignment already exists.');
    // Real ARM skips the directory lookup when principalType is set, but the docs still advise retrying: the
    // emulator always applies the delay so that the retry path is exercised.
    const young = [...this.identities.values()].find((i) => lower(i.principalId) === lower(principalId) && Date.now() - i.createdAt < this.config.principalReplicationDelayMs);
    if (young) {
      throw new ArmError(400, 'PrincipalNotFound', `Principal ${principalId.replaceAll('-', '')} does not exist in the directory ${this.tenantId}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype`);
    }
    const assignment: StoredAssignment = { name: lower(name), scope: fullScope, roleDefinitionId, principalId, principalType };
    this.assignments.set(lower(name), assignment);
    return { status: 201, body: this.assignmentJson(assignment) };
  }

  deleteAssignment(scope: string, name: string): Reply {
    const a = this.assignments.get(lower(name));
    if (!a || lower(trimSlash(a.scope)) !== lower(trimSlash(scope))) return { status: 204 };
    this.assignments.delete(lower(name));
    return { status: 200, body: this.assignmentJson(a) };
  }
}
