// WorkloadPods over the Kubernetes API, for an IRSA <-> Pod Identity switch: which of a ServiceAccount's pods still
// depend on the old credential path.
import { dependsOn, type WorkloadPods } from '../providers/aws/workload-pods.ts';
import type { Workloads } from './workloads.ts';

export function createWorkloadPods(workloads: Workloads): WorkloadPods {
  return {
    async countDependent(namespace, serviceAccount, path, roleArn) {
      return (await workloads.podsOf(namespace, serviceAccount)).filter((p) => dependsOn(p, path, roleArn)).length;
    },
  };
}
