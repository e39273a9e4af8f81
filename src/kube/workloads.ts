// The pods of one ServiceAccount and the Deployments, StatefulSets and DaemonSets that own them: what the
// WorkloadsUpToDate condition reads and what keyless.dev/restart-workloads restarts. Pods are listed on demand with
// a field selector (no pod informer: pods are the largest collection in a cluster).
import { AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Metrics } from '../observability/metrics.ts';

export interface WorkloadRef {
  kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  name: string;
}

/** Annotation on a restarted workload's pod template: which identity change the restart was for. */
export const RESTARTED_FOR = 'keyless.dev/restarted-for';

export interface Workloads {
  podsOf(namespace: string, serviceAccount: string): Promise<V1Pod[]>;
  /** The Deployment, StatefulSet or DaemonSet a pod belongs to, if any. */
  ownerOf(pod: V1Pod): Promise<WorkloadRef | undefined>;
  /** The RESTARTED_FOR stamp on the workload's pod template, if any. */
  restartedFor(namespace: string, workload: WorkloadRef): Promise<string | undefined>;
  /** What `kubectl rollout restart` does, plus the RESTARTED_FOR stamp so the same change never restarts twice. */
  restart(namespace: string, workload: WorkloadRef, stamp: string): Promise<void>;
}

export function createWorkloads(kc: KubeConfig, metrics: Metrics): Workloads {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const read = (namespace: string, w: WorkloadRef) => {
    switch (w.kind) {
      case 'Deployment':
        return apps.readNamespacedDeployment({ namespace, name: w.name });
      case 'StatefulSet':
        return apps.readNamespacedStatefulSet({ namespace, name: w.name });
      case 'DaemonSet':
        return apps.readNamespacedDaemonSet({ namespace, name: w.name });
    }
  };
  return {
    async podsOf(namespace, serviceAccount) {
      return (await core.listNamespacedPod({ namespace, fieldSelector: `spec.serviceAccountName=${serviceAccount}` })).items;
    },
    async ownerOf(pod) {
      const owner = pod.metadata?.ownerReferences?.find((o) => o.controller);
      if (!owner) return undefined;
      if (owner.kind === 'StatefulSet' || owner.kind === 'DaemonSet') return { kind: owner.kind, name: owner.name };
      if (owner.kind !== 'ReplicaSet') return undefined;
      const rs = await apps.readNamespacedReplicaSet({ namespace: pod.metadata?.namespace ?? '', name: owner.name });
      const deployment = rs.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'Deployment');
      return deployment ? { kind: 'Deployment', name: deployment.name } : undefined;
    },
    async restartedFor(namespace, workload) {
      return (await read(namespace, workload)).spec?.template.metadata?.annotations?.[RESTARTED_FOR];
    },
    async restart(namespace, workload, stamp) {
      metrics.k8sWrites.inc({ resource: workload.kind.toLowerCase(), verb: 'restart' });
      const body = { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString(), [RESTARTED_FOR]: stamp } } } } };
      const options = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
      const args = { namespace, name: workload.name, body, fieldManager: 'keyless' };
      if (workload.kind === 'Deployment') await apps.patchNamespacedDeployment(args, options);
      else if (workload.kind === 'StatefulSet') await apps.patchNamespacedStatefulSet(args, options);
      else await apps.patchNamespacedDaemonSet(args, options);
    },
  };
}
