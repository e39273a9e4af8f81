// An in-memory FederationPort for unit tests: the pools and providers a test declares, as IAM returns them, and the
// writes of the managed provider as IAM v1 makes them: an id taken by a deleted pool or provider cannot be created
// again (ALREADY_EXISTS) until it is undeleted, a provider needs an active pool, a deleted object cannot be deleted
// again. `writes` lists each write, for the tests that check nothing foreign was touched.
import { CloudError } from '../../cloud-error.ts';
import type { FederationPort, NewOidcProvider, WorkloadIdentityPool, WorkloadIdentityPoolProvider } from '../federation-port.ts';

const poolOf = (providerName: string) => providerName.replace(/\/providers\/[^/]+$/, '');

export class FakeFederation implements FederationPort {
  readonly pools = new Map<string, WorkloadIdentityPool>();
  readonly providers = new Map<string, WorkloadIdentityPoolProvider>();
  readonly writes: string[] = [];
  /** A CloudError the next write throws (a permission denied, say). */
  failNextWrite: CloudError | undefined;

  /** An active pool and provider trusting `issuerUri` with Keyless's mapping; `change` edits the provider. */
  add(providerName: string, issuerUri: string, change: (p: WorkloadIdentityPoolProvider) => WorkloadIdentityPoolProvider = (p) => p): void {
    this.addPool(poolOf(providerName));
    this.providers.set(
      providerName,
      change({ name: providerName, state: 'ACTIVE', disabled: false, description: '', attributeMapping: { 'google.subject': 'assertion.sub' }, attributeCondition: undefined, oidc: { issuerUri, allowedAudiences: [], jwksJson: false } }),
    );
  }

  /** An active pool, unless one exists. */
  addPool(poolName: string, change: (p: WorkloadIdentityPool) => WorkloadIdentityPool = (p) => p): void {
    if (!this.pools.has(poolName)) this.pools.set(poolName, change({ name: poolName, state: 'ACTIVE', disabled: false, description: '' }));
  }

  async getWorkloadIdentityPool(name: string): Promise<WorkloadIdentityPool | undefined> {
    const p = this.pools.get(name);
    return p && structuredClone(p);
  }

  async getWorkloadIdentityPoolProvider(name: string): Promise<WorkloadIdentityPoolProvider | undefined> {
    const p = this.providers.get(name);
    return p && structuredClone(p);
  }

  async listWorkloadIdentityPoolProviders(pool: string): Promise<WorkloadIdentityPoolProvider[]> {
    return [...this.providers.values()].filter((p) => poolOf(p.name) === pool && p.state === 'ACTIVE').map((p) => structuredClone(p));
  }

  #write(operation: string, name: string): void {
    const failure = this.failNextWrite;
    this.failNextWrite = undefined;
    if (failure) throw failure;
    this.writes.push(`${operation} ${name}`);
  }

  async createWorkloadIdentityPool(name: string, fields: { displayName: string; description: string }): Promise<void> {
    this.#write('createPool', name);
    if (this.pools.has(name)) throw new CloudError('alreadyExists', 'ALREADY_EXISTS', 'CreateWorkloadIdentityPool', 'Requested entity already exists');
    this.pools.set(name, { name, state: 'ACTIVE', disabled: false, description: fields.description });
  }

  async createWorkloadIdentityPoolProvider(name: string, fields: NewOidcProvider): Promise<void> {
    this.#write('createProvider', name);
    if (this.pools.get(poolOf(name))?.state !== 'ACTIVE') throw new CloudError('conflict', 'FAILED_PRECONDITION', 'CreateWorkloadIdentityPoolProvider', 'The pool is deleted.');
    if (this.providers.has(name)) throw new CloudError('alreadyExists', 'ALREADY_EXISTS', 'CreateWorkloadIdentityPoolProvider', 'Requested entity already exists');
    this.providers.set(name, {
      name,
      state: 'ACTIVE',
      disabled: false,
      description: fields.description,
      attributeMapping: { ...fields.attributeMapping },
      attributeCondition: undefined,
      oidc: { issuerUri: fields.issuerUri, allowedAudiences: [], jwksJson: false },
    });
  }

  async updateWorkloadIdentityPoolProvider(name: string, fields: Pick<NewOidcProvider, 'issuerUri' | 'attributeMapping'>): Promise<void> {
    this.#write('updateProvider', name);
    const p = this.#existing(this.providers, name, 'UpdateWorkloadIdentityPoolProvider');
    p.attributeMapping = { ...fields.attributeMapping };
    p.oidc = { issuerUri: fields.issuerUri, allowedAudiences: p.oidc?.allowedAudiences ?? [], jwksJson: p.oidc?.jwksJson ?? false };
  }

  async deleteWorkloadIdentityPool(name: string): Promise<void> {
    this.#write('deletePool', name);
    this.#existing(this.pools, name, 'DeleteWorkloadIdentityPool').state = 'DELETED';
  }

  async deleteWorkloadIdentityPoolProvider(name: string): Promise<void> {
    this.#write('deleteProvider', name);
    this.#existing(this.providers, name, 'DeleteWorkloadIdentityPoolProvider').state = 'DELETED';
  }

  async undeleteWorkloadIdentityPool(name: string): Promise<void> {
    this.#write('undeletePool', name);
    this.#deleted(this.pools, name, 'UndeleteWorkloadIdentityPool').state = 'ACTIVE';
  }

  async undeleteWorkloadIdentityPoolProvider(name: string): Promise<void> {
    this.#write('undeleteProvider', name);
    this.#deleted(this.providers, name, 'UndeleteWorkloadIdentityPoolProvider').state = 'ACTIVE';
  }

  #existing<T extends { state: string }>(map: Map<string, T>, name: string, operation: string): T {
    const found = map.get(name);
    if (!found) throw new CloudError('notFound', 'NOT_FOUND', operation, 'Requested entity was not found.');
    if (found.state === 'DELETED') throw new CloudError('conflict', 'FAILED_PRECONDITION', operation, 'It is deleted.');
    return found;
  }

  #deleted<T extends { state: string }>(map: Map<string, T>, name: string, operation: string): T {
    const found = map.get(name);
    if (!found) throw new CloudError('notFound', 'NOT_FOUND', operation, 'Requested entity was not found.');
    if (found.state !== 'DELETED') throw new CloudError('conflict', 'FAILED_PRECONDITION', operation, 'It is not deleted.');
    return found;
  }
}
