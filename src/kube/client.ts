// The narrow slice of the Kubernetes API the reconcilers write through. Reads come from informer caches; every
// write is counted in keyless_kubernetes_writes_total so tests and benchmarks can prove steady state costs none.
import type { AuthenticationV1TokenRequest, CoreV1Event, V1ConfigMap, V1ServiceAccount } from '@kubernetes/client-node';
import { CLOUD_ACCOUNT_PLURAL, FIELD_MANAGER, GROUP, VERSION, WORKLOAD_IDENTITY_PLURAL } from '../api/constants.ts';
import type { CloudAccount, CloudAccountStatus, WorkloadIdentity, WorkloadIdentityStatus } from '../api/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import { PATCH, type KubeApi } from './api.ts';

/**
 * A server-side apply refused because another field manager owns a field with another value (kubectl annotate,
 * Helm, client-side apply): no retry fixes it, so it is a condition naming the managers, not a requeue.
 */
export class FieldConflictError extends Error {
  readonly conflicts: { manager: string; field: string }[];
  constructor(conflicts: { manager: string; field: string }[], options?: { cause?: unknown }) {
    super(`field conflict: ${conflicts.map((c) => `${c.field} owned by ${c.manager}`).join(', ')}`, options);
    this.name = 'FieldConflictError';
    this.conflicts = conflicts;
  }
}

/** The FieldManagerConflict causes of a 409 Status, or undefined for any other error (an optimistic 409 has none). */
export function fieldConflicts(err: unknown): { manager: string; field: string }[] | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err) || err.code !== 409 || !('body' in err)) return undefined;
  let body: unknown = err.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  const causes = (body as { details?: { causes?: { reason?: string; message?: string; field?: string }[] } } | undefined)?.details?.causes ?? [];
  const conflicts = causes
    .filter((c) => c.reason === 'FieldManagerConflict')
    // "conflict with \"kubectl-annotate\" using v1"
    .map((c) => ({ manager: /"([^"]+)"/.exec(c.message ?? '')?.[1] ?? c.message ?? 'another manager', field: c.field ?? '' }));
  return conflicts.length ? conflicts : undefined;
}

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export interface KubePort {
  replaceWorkloadIdentityStatus(wi: WorkloadIdentity, status: WorkloadIdentityStatus): Promise<void>;
  /** Sets the finalizer list, failing with 409 if the object changed since `wi` was read. */
  setWorkloadIdentityFinalizers(wi: WorkloadIdentity, finalizers: string[]): Promise<WorkloadIdentity>;
  replaceCloudAccountStatus(account: CloudAccount, status: CloudAccountStatus): Promise<void>;
  /** Sets a CloudAccount's finalizer list, failing with 409 if it changed since `account` was read. */
  setCloudAccountFinalizers(account: CloudAccount, finalizers: string[]): Promise<void>;
  /**
   * Server-side applies exactly `annotations` on a ServiceAccount under `fieldManager` (one per cloud): keys we set before and
   * leave out now are removed, keys other managers own are untouched. The uid precondition keeps an apply from
   * ever creating a ServiceAccount that was deleted meanwhile. Throws FieldConflictError when another manager owns
   * one of the keys with another value, unless `force` takes it over.
   */
  applyServiceAccountAnnotations(sa: V1ServiceAccount, annotations: Record<string, string>, fieldManager: string, opts?: { force?: boolean }): Promise<void>;
  recordEvent(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
  /** A ConfigMap as the API server has it now (the cache may lag a create); undefined when there is none. */
  getConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  /** Creates a ConfigMap; 409 when one of that name exists already. */
  createConfigMap(configMap: V1ConfigMap): Promise<void>;
  /** Replaces a ConfigMap, failing with 409 if it changed since it was read (its resourceVersion). */
  replaceConfigMap(configMap: V1ConfigMap): Promise<void>;
  /** Deletes exactly this ConfigMap (uid precondition); resolves when it is gone already. */
  deleteConfigMap(namespace: string, name: string, uid: string): Promise<void>;
  /**
   * A token for a ServiceAccount, minted as a projected volume would mint it (TokenRequest, serviceaccounts/token):
   * for CredentialsVerified only. Needs the optional RBAC of config/verification.
   */
  requestServiceAccountToken(namespace: string, name: string, audience: string, expirationSeconds: number): Promise<string>;
}

export function createKubePort(api: KubeApi, metrics: Metrics, reportingInstance: string): KubePort {
  const counted = (resource: string, verb: string) => metrics.k8sWrites.inc({ resource, verb });
  const identityPath = (wi: WorkloadIdentity) =>
    `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(wi.metadata.namespace ?? '')}/${WORKLOAD_IDENTITY_PLURAL}/${encodeURIComponent(wi.metadata.name)}`;
  const accountPath = (account: CloudAccount) => `/apis/${GROUP}/${VERSION}/${CLOUD_ACCOUNT_PLURAL}/${encodeURIComponent(account.metadata.name)}`;
  const core = (namespace: string, resource: string, name?: string) =>
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/${resource}${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
  const query = { fieldManager: FIELD_MANAGER };

  return {
    async replaceWorkloadIdentityStatus(wi, status) {
      counted(WORKLOAD_IDENTITY_PLURAL, 'patch-status');
      await api.request('PATCH', `${identityPath(wi)}/status`, { query, contentType: PATCH.json, body: [{ op: 'add', path: '/status', value: status }] });
    },

    async setWorkloadIdentityFinalizers(wi, finalizers) {
      counted(WORKLOAD_IDENTITY_PLURAL, 'patch-finalizers');
      return api.request<WorkloadIdentity>('PATCH', identityPath(wi), {
        query,
        contentType: PATCH.merge,
        body: { metadata: { finalizers, resourceVersion: wi.metadata.resourceVersion } },
      });
    },

    async replaceCloudAccountStatus(account, status) {
      counted(CLOUD_ACCOUNT_PLURAL, 'patch-status');
      await api.request('PATCH', `${accountPath(account)}/status`, { query, contentType: PATCH.json, body: [{ op: 'add', path: '/status', value: status }] });
    },

    async setCloudAccountFinalizers(account, finalizers) {
      counted(CLOUD_ACCOUNT_PLURAL, 'patch-finalizers');
      await api.request('PATCH', accountPath(account), {
        query,
        contentType: PATCH.merge,
        body: { metadata: { finalizers, resourceVersion: account.metadata.resourceVersion } },
      });
    },

    async applyServiceAccountAnnotations(sa, annotations, fieldManager, opts) {
      counted('serviceaccounts', 'apply');
      const name = sa.metadata?.name ?? '';
      const namespace = sa.metadata?.namespace ?? '';
      try {
        await api.request('PATCH', core(namespace, 'serviceaccounts', name), {
          query: { fieldManager, ...(opts?.force ? { force: true } : {}) },
          contentType: PATCH.apply,
          body: {
            apiVersion: 'v1',
            kind: 'ServiceAccount',
            metadata: { name, namespace, uid: sa.metadata?.uid, ...(Object.keys(annotations).length ? { annotations } : {}) },
          },
        });
      } catch (err) {
        const conflicts = fieldConflicts(err);
        if (conflicts) throw new FieldConflictError(conflicts, { cause: err });
        throw err;
      }
    },

    async getConfigMap(namespace, name) {
      try {
        return await api.request<V1ConfigMap>('GET', core(namespace, 'configmaps', name));
      } catch (err) {
        if ((err as { code?: unknown }).code === 404) return undefined;
        throw err;
      }
    },

    async createConfigMap(configMap) {
      counted('configmaps', 'create');
      await api.request('POST', core(configMap.metadata?.namespace ?? '', 'configmaps'), { query, body: { apiVersion: 'v1', kind: 'ConfigMap', ...configMap } });
    },

    async replaceConfigMap(configMap) {
      counted('configmaps', 'update');
      await api.request('PUT', core(configMap.metadata?.namespace ?? '', 'configmaps', configMap.metadata?.name ?? ''), { query, body: { apiVersion: 'v1', kind: 'ConfigMap', ...configMap } });
    },

    async deleteConfigMap(namespace, name, uid) {
      counted('configmaps', 'delete');
      try {
        await api.request('DELETE', core(namespace, 'configmaps', name), { body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid } } });
      } catch (err) {
        // Gone already; a 409 on the uid precondition means another object now has the name, which is not ours to delete.
        const code = (err as { code?: unknown }).code;
        if (code === 404 || code === 409) return;
        throw err;
      }
    },

    async requestServiceAccountToken(namespace, name, audience, expirationSeconds) {
      // Nothing is stored: a TokenRequest creates no object. Counted all the same, as a call that changes nothing.
      counted('serviceaccounts/token', 'create');
      const body: AuthenticationV1TokenRequest = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [audience], expirationSeconds } };
      const answer = await api.request<AuthenticationV1TokenRequest>('POST', `${core(namespace, 'serviceaccounts', name)}/token`, { body });
      return answer.status?.token ?? '';
    },

    async recordEvent(target, type, reason, message) {
      counted('events', 'create');
      const now = new Date().toISOString();
      const namespace = target.metadata.namespace ?? 'default';
      const event: Omit<CoreV1Event, 'firstTimestamp' | 'lastTimestamp'> & { firstTimestamp: string; lastTimestamp: string } = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${target.metadata.name}.`, namespace },
        involvedObject: {
          apiVersion: target.apiVersion,
          kind: target.kind,
          name: target.metadata.name,
          namespace: target.metadata.namespace,
          uid: target.metadata.uid,
          resourceVersion: target.metadata.resourceVersion,
        },
        type,
        reason,
        // The API limits event messages to 1 KiB.
        message: message.length > 1024 ? `${message.slice(0, 1021)}...` : message,
        source: { component: 'keyless' },
        reportingComponent: 'keyless.dev/operator',
        reportingInstance,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      };
      await api.request('POST', core(namespace, 'events'), { body: event });
    },
  };
}
