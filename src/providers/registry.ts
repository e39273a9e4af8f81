// Chooses the provider for a WorkloadIdentity: its cloud, its mechanism (the spec's, else the CloudAccount's
// default), bound to the clients of its CloudAccount.
import type { CloudAccount, Cloud, WorkloadIdentitySpec } from '../api/types.ts';
import type { Provider } from './types.ts';

export interface ProviderRegistry {
  /** undefined when this build has no provider for that cloud and mechanism. */
  providerFor(account: CloudAccount, cloud: Cloud, mechanism: string): Provider | undefined;
}

/** Builds the provider of one mechanism for one CloudAccount (with that account's clients and rate limiter). */
export type ProviderFactory = (account: CloudAccount) => Provider;

/**
 * A registry over factories keyed `cloud/mechanism` (e.g. `aws/IRSA`), caching one provider per CloudAccount
 * generation so a changed account (another region, say) gets fresh clients.
 */
export function providerRegistry(factories: Record<string, ProviderFactory>): ProviderRegistry {
  const cache = new Map<string, Provider>();
  return {
    providerFor(account, cloud, mechanism) {
      const factory = factories[`${cloud}/${mechanism}`];
      if (!factory) return undefined;
      const key = `${account.metadata.name}/${account.metadata.generation ?? 0}/${cloud}/${mechanism}`;
      let provider = cache.get(key);
      if (!provider) {
        provider = factory(account);
        cache.set(key, provider);
      }
      return provider;
    },
  };
}

export function cloudOf(spec: { aws?: unknown; gcp?: unknown; azure?: unknown }): Cloud | undefined {
  if (spec.aws) return 'aws';
  if (spec.gcp) return 'gcp';
  if (spec.azure) return 'azure';
  return undefined;
}

/** The mechanism in effect: the WorkloadIdentity's choice, else the CloudAccount's default, else the cloud's. */
export function mechanismOf(spec: WorkloadIdentitySpec, account: CloudAccount, cloud: Cloud): string {
  switch (cloud) {
    case 'aws':
      return spec.aws?.mechanism ?? account.spec.aws?.mechanism ?? 'IRSA';
    case 'gcp':
      return spec.gcp?.mechanism ?? account.spec.gcp?.mechanism ?? 'ServiceAccount';
    case 'azure':
      return 'WorkloadIdentity';
  }
}
