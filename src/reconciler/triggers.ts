// Which keys to reconcile when a watched object changes. Status-only updates (including our own status writes)
// are filtered out by a fingerprint of what a reconcile reads, so a write does not echo back as a reconcile that
// spends cloud reads for nothing.
import type { V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import { CONDITION } from '../api/constants.ts';
import type { CloudAccount, WorkloadIdentity } from '../api/types.ts';
import type { Cache, ResourceWatch } from '../controller/informer.ts';
import { objectKey } from '../controller/informer.ts';
import { findCondition } from '../domain/conditions.ts';

interface Enqueue {
  enqueue(key: string): void;
}

/**
 * Calls `handler` only when `fingerprint(obj)` differs from the last one seen for that object; `first` tells
 * whether the object is new to us.
 */
function onMeaningfulChange<T extends { metadata?: { name?: string; namespace?: string } }>(
  fingerprint: (obj: T) => string,
  handler: (obj: T, first: boolean) => void,
): { changed: (obj: T) => void; deleted: (obj: T) => void } {
  const seen = new Map<string, string>();
  const keyOf = (obj: T) => `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
  return {
    changed: (obj) => {
      const print = fingerprint(obj);
      const previous = seen.get(keyOf(obj));
      if (previous === print) return;
      seen.set(keyOf(obj), print);
      handler(obj, previous === undefined);
    },
    deleted: (obj) => {
      seen.delete(keyOf(obj));
      handler(obj, false);
    },
  };
}

const identityFingerprint = (wi: WorkloadIdentity) =>
  JSON.stringify([wi.metadata.generation, wi.metadata.deletionTimestamp, wi.metadata.finalizers, wi.metadata.annotations]);

const accountFingerprint = (ca: CloudAccount) =>
  JSON.stringify([ca.metadata.generation, ca.status?.issuer, ca.status?.oidcProviderArn, findCondition(ca.status?.conditions, CONDITION.ready)?.status]);

const serviceAccountFingerprint = (sa: V1ServiceAccount) => JSON.stringify([sa.metadata?.uid, sa.metadata?.annotations, sa.metadata?.managedFields?.length]);

export function wireTriggers(opts: {
  identities: ResourceWatch<WorkloadIdentity>;
  accounts: ResourceWatch<CloudAccount>;
  serviceAccounts: ResourceWatch<V1ServiceAccount>;
  namespaces: ResourceWatch<V1Namespace>;
  identityController: Enqueue;
  accountController: Enqueue;
}): void {
  const { identities, accounts, serviceAccounts, namespaces, identityController, accountController } = opts;
  const identitiesOf = (cache: Cache<WorkloadIdentity>, match: (wi: WorkloadIdentity) => boolean) => {
    for (const wi of cache.list()) if (match(wi)) identityController.enqueue(objectKey(wi));
  };

  const wi = onMeaningfulChange(identityFingerprint, (obj: WorkloadIdentity, first) => {
    identityController.enqueue(objectKey(obj));
    // The account's status counts its identities.
    if (first) accountController.enqueue(obj.spec.cloudAccountRef.name);
  });
  identities.onChange(wi.changed);
  identities.onDelete((obj) => {
    wi.deleted(obj);
    accountController.enqueue(obj.spec.cloudAccountRef.name);
    // A WorkloadIdentity that lost a conflict for this ServiceAccount may now take over.
    identitiesOf(identities, (o) => o.metadata.namespace === obj.metadata.namespace && o.spec.serviceAccountName === obj.spec.serviceAccountName);
  });

  const ca = onMeaningfulChange(accountFingerprint, (obj: CloudAccount) => {
    accountController.enqueue(objectKey(obj));
    identitiesOf(identities, (o) => o.spec.cloudAccountRef.name === obj.metadata.name);
  });
  accounts.onChange(ca.changed);
  accounts.onDelete(ca.deleted);

  const sa = onMeaningfulChange(serviceAccountFingerprint, (obj: V1ServiceAccount) =>
    identitiesOf(identities, (o) => o.metadata.namespace === obj.metadata?.namespace && o.spec.serviceAccountName === obj.metadata?.name),
  );
  serviceAccounts.onChange(sa.changed);
  serviceAccounts.onDelete(sa.deleted);

  // Namespace labels decide which CloudAccounts admit a namespace's WorkloadIdentities.
  const namespace = onMeaningfulChange(
    (obj: V1Namespace) => JSON.stringify(obj.metadata?.labels ?? {}),
    (obj: V1Namespace) => identitiesOf(identities, (o) => o.metadata.namespace === obj.metadata?.name),
  );
  namespaces.onChange(namespace.changed);
  namespaces.onDelete(namespace.deleted);
}
