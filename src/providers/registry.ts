// Chooses the provider for a WorkloadIdentity: its cloud, its mechanism (the spec's, else the CloudAccount's
// default), bound to the clients of its CloudAccount.
import type { CloudAccount, Cloud, WorkloadIdentitySpec } from '../api/types.ts';
import type { Provider } from './types.ts';

export interface ProviderRegistry {
  /** undefined when this build has no provider for that cloud and mechanism. */
  providerFor(account: CloudAccount, cloud: Cloud, mechanism: string): Provider | undefined;
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
