// An in-memory MsiPort and AuthorizationPort for unit tests: ARM's observable rules — create-or-update identities,
// 409 on overlapping federated-credential writes to one identity, the 20-credential limit, RoleAssignmentExists and
// RoleAssignmentUpdateNotPermitted, PrincipalNotFound before replication — without a network. The end-to-end tests
// use the HTTPS emulator in test/emulators/azure instead.
import { randomUUID } from 'node:crypto';
import { CloudError } from '../../cloud-error.ts';
import type { AuthorizationPort, FederatedCredential, ManagedIdentity, MsiPort, RoleAssignment } from '../arm-port.ts';
import { CREDENTIAL_LIMIT_CODE } from '../errors.ts';

interface StoredIdentity extends ManagedIdentity {
  credentials: Map<string, FederatedCredential>;
}

const lower = (s: string) => s.toLowerCase();
const canonical = (scope: string) => `/${scope.split('/').filter(Boolean).join('/')}`;
const guidOf = (id: string) => lower(id.split('/').pop() ?? '');
const sameScope = (a: string, b: string) => lower(canonical(a)) === lower(canonical(b));
/** `outer` is `inner` or one of its ancestors. */
const covers = (outer: string, inner: string) => {
  const o = lower(canonical(outer));
  const i = lower(canonical(inner));
  return o === '/' || i === o || i.startsWith(`${o}/`);
};
const yieldOnce = () => new Promise((resolve) => setImmediate(resolve));

export class FakeArm implements MsiPort, AuthorizationPort {
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  readonly tenantId = randomUUID();
  readonly identities = new Map<string, StoredIdentity>();
  readonly assignments = new Map<string, RoleAssignment>();
  readonly roles: { guid: string; roleName: string }[] = [
    { guid: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1', roleName: 'Storage Blob Data Reader' },
    { guid: 'acdd72a7-3385-48ef-bd42-f606fba81ae7', roleName: 'Reader' },
  ];
  /** Every mutating call, in order, as `Operation:target`. */
  readonly writes: string[] = [];
  /** Every read of identities, credentials and role assignments, in order, as `operation:target`. */
  readonly reads: string[] = [];
  /** Every role-definition lookup, by name. */
  readonly roleLookups: string[] = [];
  /** Principals Entra has not replicated yet: role assignments to them fail with PrincipalNotFound. */
  readonly unreplicated = new Set<string>();
  /** While true, identities created now join `unreplicated`. */
  replicationPending = false;
  /** The most federated-credential writes ever in flight at once for one identity. */
  maxConcurrentCredentialWrites = 0;
  readonly #inFlight = new Map<string, number>();
  readonly #failures = new Map<string, CloudError[]>();

  constructor(subscriptionId = '00000000-0000-0000-0000-000000000001', resourceGroup = 'identities') {
    this.subscriptionId = subscriptionId;
    this.resourceGroup = resourceGroup;
  }

  /** The next call of `operation` (a port method name) throws `err` instead. */
  failNext(operation: string, err: CloudError): void {
    this.#failures.set(operation, [...(this.#failures.get(operation) ?? []), err]);
  }

  #maybeFail(operation: string): void {
    const queued = this.#failures.get(operation);
    const err = queued?.shift();
    if (err) throw err;
  }

  #copy(i: StoredIdentity): ManagedIdentity {
    return { id: i.id, name: i.name, location: i.location, tags: { ...i.tags }, clientId: i.clientId, principalId: i.principalId, tenantId: i.tenantId };
  }

  #identity(name: string, operation: string): StoredIdentity {
    const identity = this.identities.get(lower(name));
    if (!identity) throw new CloudError('notFound', 'ResourceNotFound', operation, `The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/${name}' was not found.`);
    return identity;
  }

  /** Test helper: an identity created outside Keyless (or by Keyless for another object). */
  seedIdentity(name: string, tags: Record<string, string>): ManagedIdentity {
    const identity: StoredIdentity = {
      id: `/subscriptions/${this.subscriptionId}/resourcegroups/${this.resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`,
      name,
      location: 'eastus',
      tags: { ...tags },
      clientId: randomUUID(),
      principalId: randomUUID(),
      tenantId: this.tenantId,
      credentials: new Map(),
    };
    this.identities.set(lower(name), identity);
    return this.#copy(identity);
  }

  /** Test helper: an assignment someone else made. */
  seedAssignment(a: RoleAssignment): void {
    this.assignments.set(lower(a.name), { ...a, scope: canonical(a.scope) });
  }

  async getIdentity(name: string): Promise<ManagedIdentity | undefined> {
    this.#maybeFail('getIdentity');
    this.reads.push(`getIdentity:${name}`);
    const identity = this.identities.get(lower(name));
    return identity ? this.#copy(identity) : undefined;
  }

  async putIdentity(name: string, input: { location: string; tags: Record<string, string> }): Promise<ManagedIdentity> {
    this.#maybeFail('putIdentity');
    this.writes.push(`putIdentity:${name}`);
    const existing = this.identities.get(lower(name));
    if (existing) {
      existing.tags = { ...input.tags };
      return this.#copy(existing);
    }
    const created = this.seedIdentity(name, input.tags);
    if (this.replicationPending) this.unreplicated.add(created.principalId);
    return created;
  }

  async deleteIdentity(name: string): Promise<void> {
    this.#maybeFail('deleteIdentity');
    this.writes.push(`deleteIdentity:${name}`);
    this.identities.delete(lower(name));
  }

  async listIdentities(): Promise<ManagedIdentity[]> {
    this.#maybeFail('listIdentities');
    this.reads.push('listIdentities');
    return [...this.identities.values()].map((i) => this.#copy(i));
  }

  async listCredentials(identityName: string): Promise<FederatedCredential[]> {
    this.#maybeFail('listCredentials');
    this.reads.push(`listCredentials:${identityName}`);
    return [...this.#identity(identityName, 'listCredentials').credentials.values()].map((c) => ({ ...c, audiences: [...c.audiences] }));
  }

  /** Test helper: a credential someone else put on an identity. */
  seedCredential(identityName: string, credential: FederatedCredential): void {
    this.#identity(identityName, 'seed').credentials.set(lower(credential.name), { ...credential });
  }

  async #credentialWrite(identityName: string, operation: string, commit: (identity: StoredIdentity) => void): Promise<void> {
    const identity = this.#identity(identityName, operation);
    const key = lower(identity.id);
    const inFlight = (this.#inFlight.get(key) ?? 0) + 1;
    this.#inFlight.set(key, inFlight);
    this.maxConcurrentCredentialWrites = Math.max(this.maxConcurrentCredentialWrites, inFlight);
    try {
      // ARM takes a while per write; a second write that arrives meanwhile is refused.
      await yieldOnce();
      if (inFlight > 1) {
        throw new CloudError('conflict', 'ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity', operation, 'Too many Federated Identity Credentials are written concurrently for the managed identity.');
      }
      this.#maybeFail(operation);
      commit(identity);
    } finally {
      this.#inFlight.set(key, (this.#inFlight.get(key) ?? 1) - 1);
    }
  }

  putCredential(identityName: string, credential: FederatedCredential): Promise<void> {
    return this.#credentialWrite(identityName, 'putCredential', (identity) => {
      const existing = identity.credentials.get(lower(credential.name));
      if (!existing && identity.credentials.size >= 20) {
        throw new CloudError('terminal', CREDENTIAL_LIMIT_CODE, 'putCredential', 'Too many Federated Identity Credentials.');
      }
      this.writes.push(`putCredential:${identityName}/${credential.name}`);
      identity.credentials.set(lower(credential.name), { ...credential, audiences: [...credential.audiences] });
    });
  }

  deleteCredential(identityName: string, credentialName: string): Promise<void> {
    return this.#credentialWrite(identityName, 'deleteCredential', (identity) => {
      this.writes.push(`deleteCredential:${identityName}/${credentialName}`);
      identity.credentials.delete(lower(credentialName));
    });
  }

  async findRoleDefinitions(_scope: string, roleName: string): Promise<string[]> {
    this.#maybeFail('findRoleDefinitions');
    this.roleLookups.push(roleName);
    return this.roles.filter((r) => lower(r.roleName) === lower(roleName)).map((r) => r.guid);
  }

  async listRoleAssignments(scope: string, principalId?: string): Promise<RoleAssignment[]> {
    this.#maybeFail('listRoleAssignments');
    this.reads.push(`listRoleAssignments:${lower(canonical(scope))}${principalId === undefined ? '' : `?principal=${principalId}`}`);
    return [...this.assignments.values()]
      .filter((a) => (covers(a.scope, scope) || covers(scope, a.scope)) && (principalId === undefined || lower(a.principalId) === lower(principalId)))
      .map((a) => ({ ...a }));
  }

  async createRoleAssignment(scope: string, name: string, input: { roleDefinitionId: string; principalId: string }): Promise<RoleAssignment> {
    this.#maybeFail('createRoleAssignment');
    const wanted: RoleAssignment = { name: lower(name), scope: canonical(scope), roleDefinitionId: input.roleDefinitionId, principalId: input.principalId };
    const same = (a: RoleAssignment) => sameScope(a.scope, scope) && guidOf(a.roleDefinitionId) === guidOf(input.roleDefinitionId) && lower(a.principalId) === lower(input.principalId);
    const existing = this.assignments.get(lower(name));
    if (existing) {
      if (!same(existing)) throw new CloudError('terminal', 'RoleAssignmentUpdateNotPermitted', 'createRoleAssignment', 'Tenant ID, application ID, principal ID, and scope are not allowed to be updated.');
      return { ...existing };
    }
    if ([...this.assignments.values()].some(same)) throw new CloudError('alreadyExists', 'RoleAssignmentExists', 'createRoleAssignment', 'The role assignment already exists.');
    if (this.unreplicated.has(input.principalId)) throw new CloudError('retryable', 'PrincipalNotFound', 'createRoleAssignment', `Principal ${input.principalId} does not exist in the directory.`);
    this.writes.push(`createRoleAssignment:${canonical(scope)}/${name}`);
    this.assignments.set(lower(name), wanted);
    return { ...wanted };
  }

  async deleteRoleAssignment(scope: string, name: string): Promise<void> {
    this.#maybeFail('deleteRoleAssignment');
    const existing = this.assignments.get(lower(name));
    if (existing && sameScope(existing.scope, scope)) {
      this.writes.push(`deleteRoleAssignment:${canonical(scope)}/${name}`);
      this.assignments.delete(lower(name));
    }
  }
}
