// The narrow slice of the Kubernetes API the reconcilers write through. Reads come from informer caches; every
// write is counted in keyless_kubernetes_writes_total so tests and benchmarks can prove steady state costs none.
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import { CLOUD_ACCOUNT_PLURAL, FIELD_MANAGER, GROUP, VERSION, WORKLOAD_IDENTITY_PLURAL } from '../api/constants.ts';
import type { CloudAccount, CloudAccountStatus, WorkloadIdentity, WorkloadIdentityStatus } from '../api/types.ts';
import type { Metrics } from '../observability/metrics.ts';

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
   * ever creating a ServiceAccount that was deleted meanwhile.
   */
  applyServiceAccountAnnotations(sa: V1ServiceAccount, annotations: Record<string, string>, fieldManager: string): Promise<void>;
  recordEvent(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

export function createKubePort(kc: KubeConfig, metrics: Metrics, reportingInstance: string): KubePort {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const apply = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
  const counted = (resource: string, verb: string) => metrics.k8sWrites.inc({ resource, verb });

  return {
    async replaceWorkloadIdentityStatus(wi, status) {
      counted(WORKLOAD_IDENTITY_PLURAL, 'patch-status');
      await custom.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          plural: WORKLOAD_IDENTITY_PLURAL,
          namespace: wi.metadata.namespace ?? '',
          name: wi.metadata.name,
          fieldManager: FIELD_MANAGER,
          body: [{ op: 'add', path: '/status', value: status }],
        },
        jsonPatch,
      );
    },

    async setWorkloadIdentityFinalizers(wi, finalizers) {
      counted(WORKLOAD_IDENTITY_PLURAL, 'patch-finalizers');
      return (await custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          plural: WORKLOAD_IDENTITY_PLURAL,
          namespace: wi.metadata.namespace ?? '',
          name: wi.metadata.name,
          fieldManager: FIELD_MANAGER,
          body: { metadata: { finalizers, resourceVersion: wi.metadata.resourceVersion } },
        },
        mergePatch,
      )) as WorkloadIdentity;
    },

    async replaceCloudAccountStatus(account, status) {
      counted(CLOUD_ACCOUNT_PLURAL, 'patch-status');
      await custom.patchClusterCustomObjectStatus(
        { group: GROUP, version: VERSION, plural: CLOUD_ACCOUNT_PLURAL, name: account.metadata.name, fieldManager: FIELD_MANAGER, body: [{ op: 'add', path: '/status', value: status }] },
        jsonPatch,
      );
    },

    async setCloudAccountFinalizers(account, finalizers) {
      counted(CLOUD_ACCOUNT_PLURAL, 'patch-finalizers');
      await custom.patchClusterCustomObject(
        {
          group: GROUP,
          version: VERSION,
          plural: CLOUD_ACCOUNT_PLURAL,
          name: account.metadata.name,
          fieldManager: FIELD_MANAGER,
          body: { metadata: { finalizers, resourceVersion: account.metadata.resourceVersion } },
        },
        mergePatch,
      );
    },

    async applyServiceAccountAnnotations(sa, annotations, fieldManager) {
      counted('serviceaccounts', 'apply');
      const name = sa.metadata?.name ?? '';
      const namespace = sa.metadata?.namespace ?? '';
      await core.patchNamespacedServiceAccount(
        {
          name,
          namespace,
          fieldManager,
          body: {
            apiVersion: 'v1',
            kind: 'ServiceAccount',
            metadata: { name, namespace, uid: sa.metadata?.uid, ...(Object.keys(annotations).length ? { annotations } : {}) },
          },
        },
        apply,
      );
    },

    async recordEvent(target, type, reason, message) {
      counted('events', 'create');
      const now = new Date();
      const namespace = target.metadata.namespace ?? 'default';
      await core.createNamespacedEvent({
        namespace,
        body: {
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
        },
      });
    },
  };
}
