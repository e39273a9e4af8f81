// What the plugin reads from the cluster, over the operator's own REST client (src/kube/api.ts): Keyless objects,
// ServiceAccounts, namespaces, pods and the workloads that own them, webhook registrations. Nothing here writes; the
// one request that looks like a write is a server-side dry run, which the API server validates and never stores.
import type { V1DaemonSet, V1Deployment, V1MutatingWebhookConfiguration, V1Namespace, V1Pod, V1ServiceAccount, V1StatefulSet } from '@kubernetes/client-node';
import { CLOUD_ACCOUNT_PLURAL, GROUP, VERSION, WORKLOAD_IDENTITY_PLURAL } from '../api/constants.ts';
import type { CloudAccount, WorkloadIdentity } from '../api/types.ts';
import { KubeApiError, type KubeApi } from '../kube/api.ts';

export type WorkloadKind = 'pod' | 'deployment' | 'statefulset' | 'daemonset';

export interface ClusterReader {
  workloadIdentities(namespace: string | undefined): Promise<WorkloadIdentity[]>;
  cloudAccounts(): Promise<CloudAccount[]>;
  serviceAccounts(namespace: string | undefined): Promise<V1ServiceAccount[]>;
  serviceAccount(namespace: string, name: string): Promise<V1ServiceAccount | undefined>;
  namespace(name: string): Promise<V1Namespace | undefined>;
  /**
   * A workload's ServiceAccount and pods: the pod itself, or the running pods its selector matches. Undefined when the
   * workload does not exist.
   */
  workload(namespace: string, kind: WorkloadKind, name: string): Promise<{ serviceAccountName: string; pods: V1Pod[] } | undefined>;
  /** The names of the registered mutating webhooks (webhooks[].name); undefined when RBAC does not allow the read. */
  mutatingWebhooks(): Promise<string[] | undefined>;
  /** Validates a WorkloadIdentity against the API server (schema, CEL) without storing it: the refusal, if any. */
  dryRunCreate(wi: WorkloadIdentity): Promise<string | undefined>;
}

const keyless = (plural: string, namespace?: string) => `/apis/${GROUP}/${VERSION}/${namespace === undefined ? '' : `namespaces/${encodeURIComponent(namespace)}/`}${plural}`;
const core = (plural: string, namespace?: string) => `/api/v1/${namespace === undefined ? '' : `namespaces/${encodeURIComponent(namespace)}/`}${plural}`;
const apps = (plural: string, namespace: string, name: string) => `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(name)}`;

async function orUndefined<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if (err instanceof KubeApiError && err.code === 404) return undefined;
    throw err;
  }
}

/** Every item of a list, a page at a time. */
async function listAll<T>(api: KubeApi, path: string, query: Record<string, string> = {}): Promise<T[]> {
  const items: T[] = [];
  let token: string | undefined;
  do {
    const page: { items: T[]; metadata?: { continue?: string } } = await api.request('GET', path, { query: { ...query, limit: 500, ...(token ? { continue: token } : {}) } });
    items.push(...page.items);
    token = page.metadata?.continue || undefined;
  } while (token);
  return items;
}

function selectorOf(owner: { spec?: { selector?: { matchLabels?: Record<string, string> | undefined; matchExpressions?: { key: string; operator: string; values?: string[] }[] } } }): string {
  const selector = owner.spec?.selector;
  const labels = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  const expressions = (selector?.matchExpressions ?? []).map((e) => {
    if (e.operator === 'Exists') return e.key;
    if (e.operator === 'DoesNotExist') return `!${e.key}`;
    return `${e.key} ${e.operator.toLowerCase()} (${(e.values ?? []).join(',')})`;
  });
  return [...labels, ...expressions].join(',');
}

export function clusterReader(api: KubeApi): ClusterReader {
  return {
    workloadIdentities: (namespace) => listAll<WorkloadIdentity>(api, keyless(WORKLOAD_IDENTITY_PLURAL, namespace)),
    cloudAccounts: () => listAll<CloudAccount>(api, keyless(CLOUD_ACCOUNT_PLURAL)),
    serviceAccounts: (namespace) => listAll<V1ServiceAccount>(api, core('serviceaccounts', namespace)),
    serviceAccount: (namespace, name) => orUndefined(api.request<V1ServiceAccount>('GET', `${core('serviceaccounts', namespace)}/${encodeURIComponent(name)}`)),
    namespace: (name) => orUndefined(api.request<V1Namespace>('GET', `/api/v1/namespaces/${encodeURIComponent(name)}`)),
    async workload(namespace, kind, name) {
      if (kind === 'pod') {
        const pod = await orUndefined(api.request<V1Pod>('GET', `${core('pods', namespace)}/${encodeURIComponent(name)}`));
        return pod ? { serviceAccountName: pod.spec?.serviceAccountName || 'default', pods: [pod] } : undefined;
      }
      const plural = { deployment: 'deployments', statefulset: 'statefulsets', daemonset: 'daemonsets' }[kind];
      const owner = await orUndefined(api.request<V1Deployment | V1StatefulSet | V1DaemonSet>('GET', apps(plural, namespace, name)));
      if (!owner) return undefined;
      const pods = await listAll<V1Pod>(api, core('pods', namespace), { labelSelector: selectorOf(owner) });
      const running = pods.filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed');
      return { serviceAccountName: owner.spec?.template.spec?.serviceAccountName || 'default', pods: running.sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '')) };
    },
    async mutatingWebhooks() {
      try {
        const configs = await listAll<V1MutatingWebhookConfiguration>(api, '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations');
        return configs.flatMap((c) => (c.webhooks ?? []).map((w) => w.name));
      } catch (err) {
        if (err instanceof KubeApiError && err.code === 403) return undefined;
        throw err;
      }
    },
    async dryRunCreate(wi) {
      try {
        await api.request('POST', keyless(WORKLOAD_IDENTITY_PLURAL, wi.metadata.namespace ?? ''), { query: { dryRun: 'All' }, body: wi });
        return undefined;
      } catch (err) {
        if (err instanceof KubeApiError && err.code !== 403) return (err.body as { message?: string } | undefined)?.message ?? err.message;
        throw err;
      }
    },
  };
}
