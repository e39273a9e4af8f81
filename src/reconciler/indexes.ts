// The secondary indices of the WorkloadIdentity cache (Cache.byIndex): a reconcile looks up its siblings — the
// rivals for its ServiceAccount, its namespace's identities under a quota, a CloudAccount's users — without walking
// every identity in the cluster.
import type { WorkloadIdentity } from '../api/types.ts';
import type { Indexers } from '../controller/informer.ts';

export const BY_SERVICE_ACCOUNT = 'serviceAccount';
export const BY_NAMESPACE = 'namespace';
export const BY_CLOUD_ACCOUNT = 'cloudAccount';

export const serviceAccountKey = (namespace: string | undefined, serviceAccountName: string): string => `${namespace ?? ''}/${serviceAccountName}`;

export const IDENTITY_INDEXERS: Indexers<WorkloadIdentity> = {
  [BY_SERVICE_ACCOUNT]: (wi) => [serviceAccountKey(wi.metadata.namespace, wi.spec.serviceAccountName)],
  [BY_NAMESPACE]: (wi) => [wi.metadata.namespace ?? ''],
  [BY_CLOUD_ACCOUNT]: (wi) => [wi.spec.cloudAccountRef.name],
};
