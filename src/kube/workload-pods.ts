// WorkloadPods over the Kubernetes API: a field-selected list of one ServiceAccount's pods, made only while a
// mechanism switch is in progress (no pod informer: pods are the largest collection in a cluster).
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { dependsOn, type WorkloadPods } from '../providers/aws/workload-pods.ts';

export function createWorkloadPods(kc: KubeConfig): WorkloadPods {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    async countDependent(namespace, serviceAccount, path) {
      const pods = await core.listNamespacedPod({ namespace, fieldSelector: `spec.serviceAccountName=${serviceAccount}` });
      return pods.items.filter((p) => dependsOn(p, path)).length;
    },
  };
}
