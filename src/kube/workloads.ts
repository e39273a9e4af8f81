// The pods of one ServiceAccount and the Deployments, StatefulSets and DaemonSets that own them: what the
// WorkloadsUpToDate condition reads and what keyless.dev/restart-workloads restarts. Pods are listed on demand with
// a field selector (no pod informer: pods are the largest collection in a cluster).
import type { V1Pod, V1PodList, V1ReplicaSet } from '@kubernetes/client-node';
import type { Metrics } from '../observability/metrics.ts';
import { PATCH, type KubeApi } from './api.ts';

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

const PLURAL: Record<WorkloadRef['kind'], string> = { Deployment: 'deployments', StatefulSet: 'statefulsets', DaemonSet: 'daemonsets' };

interface PodTemplateOwner {
  spec?: { template: { metadata?: { annotations?: Record<string, string> } } };
}

export function createWorkloads(api: KubeApi, metrics: Metrics): Workloads {
  const apps = (namespace: string, plural: string, name: string) => `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(name)}`;
  return {
    async podsOf(namespace, serviceAccount) {
      const list = await api.request<V1PodList>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, { query: { fieldSelector: `spec.serviceAccountName=${serviceAccount}` } });
      return list.items;
    },
    async ownerOf(pod) {
      const owner = pod.metadata?.ownerReferences?.find((o) => o.controller);
      if (!owner) return undefined;
      if (owner.kind === 'StatefulSet' || owner.kind === 'DaemonSet') return { kind: owner.kind, name: owner.name };
      if (owner.kind !== 'ReplicaSet') return undefined;
      const rs = await api.request<V1ReplicaSet>('GET', apps(pod.metadata?.namespace ?? '', 'replicasets', owner.name));
      const deployment = rs.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'Deployment');
      return deployment ? { kind: 'Deployment', name: deployment.name } : undefined;
    },
    async restartedFor(namespace, workload) {
      const owner = await api.request<PodTemplateOwner>('GET', apps(namespace, PLURAL[workload.kind], workload.name));
      return owner.spec?.template.metadata?.annotations?.[RESTARTED_FOR];
    },
    async restart(namespace, workload, stamp) {
      metrics.k8sWrites.inc({ resource: workload.kind.toLowerCase(), verb: 'restart' });
      const body = { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString(), [RESTARTED_FOR]: stamp } } } } };
      await api.request('PATCH', apps(namespace, PLURAL[workload.kind], workload.name), { query: { fieldManager: 'keyless' }, contentType: PATCH.strategicMerge, body });
    },
  };
}
