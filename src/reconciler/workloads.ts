// Pods that predate their identity. The IRSA, Pod Identity and Azure webhooks inject credentials only when a pod is
// created, so a pod started before the annotation (or before a change of role or client id) has no credentials, or
// stale ones, until it restarts — the most common support question. Pure: which pods are stale, and why.
import type { V1Pod } from '@kubernetes/client-node';
import type { Cloud, WorkloadIdentityStatus } from '../api/types.ts';

const env = (pod: V1Pod, name: string): string | undefined => {
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    const found = c.env?.find((e) => e.name === name);
    if (found) return found.value ?? '';
  }
  return undefined;
};

/** Why a running pod does not use the identity as it is now, or undefined when it does. */
export function staleReason(pod: V1Pod, cloud: Cloud, mechanism: string, status: WorkloadIdentityStatus): string | undefined {
  if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed' || pod.metadata?.deletionTimestamp) return undefined;
  if (cloud === 'aws' && mechanism === 'IRSA') {
    const role = env(pod, 'AWS_ROLE_ARN');
    if (role === undefined) return 'has no IRSA credentials (started before the ServiceAccount was annotated)';
    return role === status.aws?.roleArn ? undefined : `uses role ${role}`;
  }
  if (cloud === 'aws' && mechanism === 'PodIdentity') {
    return env(pod, 'AWS_CONTAINER_CREDENTIALS_FULL_URI') === undefined ? 'has no Pod Identity credentials (started before the association existed)' : undefined;
  }
  if (cloud === 'azure') {
    if (pod.metadata?.labels?.['azure.workload.identity/use'] !== 'true') return 'lacks the label azure.workload.identity/use: "true"';
    const clientId = env(pod, 'AZURE_CLIENT_ID');
    if (clientId === undefined) return 'has no workload identity credentials (started before the ServiceAccount was annotated)';
    return clientId === status.azure?.clientId ? undefined : `uses client id ${clientId}`;
  }
  // GKE serves credentials from the node's metadata server on every request: nothing is injected into pods.
  return undefined;
}

/** Whether this mechanism injects anything into pods at all. */
export function injectsIntoPods(cloud: Cloud): boolean {
  return cloud !== 'gcp';
}
