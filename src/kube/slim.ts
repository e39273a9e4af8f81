// What the informer caches keep of each object (ResourceWatch's `transform`): the reconcilers read names, uids,
// labels, annotations, spec and status, and of server-side apply's bookkeeping only Keyless's own entries on
// ServiceAccounts (src/reconciler/service-account.ts). Everything else the API server returns — every other
// field manager's managedFields, kubectl's last-applied-configuration (a second copy of the spec), a
// namespace's spec and status, a ServiceAccount's secret lists — is dropped as each object arrives, before it is
// cached: at 10,000 identities that is most of the operator's heap (docs/benchmarks.md).
import type { KubernetesObject, V1ManagedFieldsEntry } from '@kubernetes/client-node';

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export interface SlimOptions {
  /** managedFields entries to keep (only their manager, operation and fieldsV1); none when absent. */
  keepManagedFields?: (entry: V1ManagedFieldsEntry) => boolean;
  /** Top-level fields besides apiVersion, kind and metadata to drop. */
  drop?: readonly string[];
}

/** A transform that slims objects in place: each is freshly parsed from the wire and owned by the informer. */
export function slimmer<T extends KubernetesObject>(opts: SlimOptions = {}): (obj: T) => T {
  return (obj) => {
    const metadata = obj.metadata;
    if (metadata) {
      const kept = opts.keepManagedFields ? (metadata.managedFields ?? []).filter(opts.keepManagedFields) : [];
      if (kept.length) metadata.managedFields = kept.map((e): V1ManagedFieldsEntry => ({ manager: e.manager, operation: e.operation, fieldsV1: e.fieldsV1 as object }));
      else delete metadata.managedFields;
      if (metadata.annotations?.[LAST_APPLIED] !== undefined) {
        delete metadata.annotations[LAST_APPLIED];
        if (Object.keys(metadata.annotations).length === 0) delete metadata.annotations;
      }
    }
    for (const field of opts.drop ?? []) delete (obj as Record<string, unknown>)[field];
    return obj;
  };
}
