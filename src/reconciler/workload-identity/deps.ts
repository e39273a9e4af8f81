// What the WorkloadIdentity reconcile steps are given: caches to read, ports to write through, the providers.
import type { V1ConfigMap, V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import type { CloudAccount, WorkloadIdentity } from '../../api/types.ts';
import type { Cache } from '../../controller/informer.ts';
import type { ActionCatalogue } from '../../domain/guardrails/index.ts';
import type { KubePort } from '../../kube/client.ts';
import type { Workloads } from '../../kube/workloads.ts';
import type { Logger } from '../../observability/logger.ts';
import type { ProviderRegistry } from '../../providers/registry.ts';

export interface WorkloadIdentityReconcilerDeps {
  cluster: string;
  identities: Cache<WorkloadIdentity>;
  accounts: Cache<CloudAccount>;
  serviceAccounts: Cache<V1ServiceAccount>;
  /** The ConfigMaps Keyless wrote (labelled app.kubernetes.io/managed-by=keyless); without it each is read from the API. */
  configMaps?: Cache<V1ConfigMap>;
  namespaces: Cache<V1Namespace>;
  workloads: Workloads;
  providers: ProviderRegistry;
  /** The real AWS actions, for the guardrails. */
  catalogue: ActionCatalogue;
  kube: KubePort;
  logger: Logger;
  now?: () => Date;
  /** CredentialsVerified: how long after a change a refusal is reported as pending. */
  verificationGraceMs?: number;
}
