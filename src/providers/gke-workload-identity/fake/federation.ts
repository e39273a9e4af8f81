// An in-memory FederationPort for unit tests: the pools and providers a test declares, as IAM returns them.
import type { FederationPort, WorkloadIdentityPool, WorkloadIdentityPoolProvider } from '../federation-port.ts';

export class FakeFederation implements FederationPort {
  readonly pools = new Map<string, WorkloadIdentityPool>();
  readonly providers = new Map<string, WorkloadIdentityPoolProvider>();

  /** An active pool and provider trusting `issuerUri` with Keyless's mapping; `change` edits the provider. */
  add(providerName: string, issuerUri: string, change: (p: WorkloadIdentityPoolProvider) => WorkloadIdentityPoolProvider = (p) => p): void {
    const poolName = providerName.replace(/\/providers\/[^/]+$/, '');
    this.pools.set(poolName, { name: poolName, state: 'ACTIVE', disabled: false });
    this.providers.set(
      providerName,
      change({ name: providerName, state: 'ACTIVE', disabled: false, attributeMapping: { 'google.subject': 'assertion.sub' }, attributeCondition: undefined, oidc: { issuerUri, allowedAudiences: [], jwksJson: false } }),
    );
  }

  async getWorkloadIdentityPool(name: string): Promise<WorkloadIdentityPool | undefined> {
    return this.pools.get(name);
  }

  async getWorkloadIdentityPoolProvider(name: string): Promise<WorkloadIdentityPoolProvider | undefined> {
    return this.providers.get(name);
  }
}
