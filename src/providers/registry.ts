// Chooses the provider for a WorkloadIdentity: its cloud, its mechanism (the spec's, else the CloudAccount's
// default), bound to the clients of its CloudAccount — or, to revoke a record, to the account the record names.
import type { CloudAccount, Cloud, ProvisionedRecord, WorkloadIdentitySpec } from '../api/types.ts';
import type { Provider } from './types.ts';

export interface ProviderRegistry {
  /** undefined when this build has no provider for that cloud and mechanism. */
  providerFor(account: CloudAccount, cloud: Cloud, mechanism: string): Provider | undefined;
}

/** Builds the provider of one mechanism for one CloudAccount (with that account's clients and rate limiter). */
export type ProviderFactory = (account: CloudAccount) => Provider;

/**
 * A registry over factories keyed `cloud/mechanism` (e.g. `aws/IRSA`), caching one provider per CloudAccount and
 * cloud section, so a changed account (another region, say) gets fresh clients and an unchanged one keeps them.
 */
export function providerRegistry(factories: Record<string, ProviderFactory>): ProviderRegistry {
  const cache = new Map<string, Provider>();
  return {
    providerFor(account, cloud, mechanism) {
      const factory = factories[`${cloud}/${mechanism}`];
      if (!factory) return undefined;
      const key = `${account.metadata.name}/${JSON.stringify(account.spec[cloud] ?? {})}/${cloud}/${mechanism}`;
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

/** Whether `account` still points where `record` says the objects are, so its clients reach them. */
function reaches(account: CloudAccount, record: ProvisionedRecord): boolean {
  const { aws, gcp, azure } = account.spec;
  if (record.aws) return aws?.accountId === record.aws.accountId && aws.region === record.aws.region;
  if (record.gcp) return gcp?.projectId === record.gcp.projectId;
  if (record.azure) {
    return azure?.subscriptionId.toLowerCase() === record.azure.subscriptionId.toLowerCase() && azure.resourceGroup.toLowerCase() === record.azure.resourceGroup.toLowerCase();
  }
  return false;
}

/**
 * The CloudAccount to revoke a record through: the live one while it still points where the record says, else one
 * rebuilt from the record's coordinates — the account may have been edited (another region or resource group) or
 * deleted since. The rebuilt one has a name no Kubernetes object can have, so its clients never replace the live
 * account's in the client caches.
 */
export function accountForRecord(record: ProvisionedRecord, live: CloudAccount | undefined): CloudAccount {
  if (live && cloudOf(live.spec) === record.cloud && reaches(live, record)) return live;
  const spec: CloudAccount['spec'] = {};
  if (record.aws) spec.aws = { accountId: record.aws.accountId, region: record.aws.region, ...(record.aws.clusterName ? { clusterName: record.aws.clusterName } : {}) };
  if (record.gcp) {
    const { projectId, projectNumber, workloadPool, workloadIdentityProvider } = record.gcp;
    spec.gcp = { projectId, projectNumber, ...(workloadIdentityProvider ? { workloadIdentityProvider } : { workloadPool }) };
  }
  if (record.azure) {
    spec.azure = { subscriptionId: record.azure.subscriptionId, tenantId: record.azure.tenantId, resourceGroup: record.azure.resourceGroup, location: '', oidcIssuer: '' };
  }
  return { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: `${record.cloudAccount}@recorded` }, spec };
}
