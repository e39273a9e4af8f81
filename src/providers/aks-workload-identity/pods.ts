// What the AKS workload identity webhook injects into a pod, and so when a running pod does not use the identity as
// it is now: the webhook acts only on pods labelled azure.workload.identity/use: "true", and only when the pod is
// created (AZURE_CLIENT_ID from the ServiceAccount's annotation at that moment).
import type { V1Pod } from '@kubernetes/client-node';
import type { PodCredentials } from '../types.ts';

export const USE_LABEL = 'azure.workload.identity/use';

/** The value of environment variable `name` in the pod's first container that sets it (init containers first). */
export function envOf(pod: V1Pod, name: string): string | undefined {
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    const found = c.env?.find((e) => e.name === name);
    if (found) return found.value ?? '';
  }
  return undefined;
}

export const AZURE_POD_CREDENTIALS: PodCredentials = {
  injected: true,
  staleReason(pod, status) {
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed' || pod.metadata?.deletionTimestamp) return undefined;
    if (pod.metadata?.labels?.[USE_LABEL] !== 'true') return `lacks the label ${USE_LABEL}: "true"`;
    const clientId = envOf(pod, 'AZURE_CLIENT_ID');
    if (clientId === undefined) return 'has no workload identity credentials (started before the ServiceAccount was annotated)';
    return clientId === status.azure?.clientId ? undefined : `uses client id ${clientId}`;
  },
};
