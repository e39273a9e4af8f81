// Which keys to reconcile when a watched object changes. Status-only updates (including our own status writes)
// are filtered out by a fingerprint of what a reconcile reads, so a write does not echo back as a reconcile that
// spends cloud reads for nothing.
import type { V1ConfigMap, V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import { CONDITION, FINALIZER } from '../api/constants.ts';
import type { CloudAccount, WorkloadIdentity } from '../api/types.ts';
import type { ResourceWatch } from '../controller/informer.ts';
import { objectKey } from '../controller/informer.ts';
import { findCondition } from '../domain/conditions.ts';
import { BY_CLOUD_ACCOUNT, BY_NAMESPACE, BY_SERVICE_ACCOUNT, serviceAccountKey } from './indexes.ts';
import { keylessAnnotationKeys } from './service-account.ts';

interface Enqueue {
  enqueue(key: string): void;
}

interface DelayedEnqueue extends Enqueue {
  enqueueAfter(key: string, ms: number): void;
}

/**
 * How long a CloudAccount waits after a WorkloadIdentity comes or goes before it recounts its identities: a burst
 * of creates or deletes is one status write, not one per identity (a delete-all of 10,000 was 7,780 writes).
 */
export const IDENTITY_COUNT_DELAY_MS = 5_000;

/**
 * Calls `handler` only when `fingerprint(obj)` differs from the last one seen for that object — or when
 * `meaningful` says so, for fingerprints that must tell our own writes from anyone else's; `first` tells whether
 * the object is new to us.
 */
function onMeaningfulChange<T extends { metadata?: { name?: string; namespace?: string } }, P = string>(
  fingerprint: (obj: T) => P,
  handler: (obj: T, first: boolean) => void,
  meaningful: (previous: P, next: P) => boolean = (a, b) => a !== b,
): { changed: (obj: T) => void; deleted: (obj: T) => void } {
  const seen = new Map<string, P>();
  const keyOf = (obj: T) => `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
  return {
    changed: (obj) => {
      const print = fingerprint(obj);
      const previous = seen.get(keyOf(obj));
      seen.set(keyOf(obj), print);
      if (previous !== undefined && !meaningful(previous, print)) return;
      handler(obj, previous === undefined);
    },
    deleted: (obj) => {
      seen.delete(keyOf(obj));
      handler(obj, false);
    },
  };
}

// Our own finalizer is left out: adding it (the first write of every new identity) must not echo back as a
// second reconcile that reads the whole identity from the cloud again. A live identity without it is always
// meaningful, so one that lost it gets it back at once.
const identityFingerprint = (wi: WorkloadIdentity) => ({
  print: JSON.stringify([wi.metadata.generation, wi.metadata.deletionTimestamp, (wi.metadata.finalizers ?? []).filter((f) => f !== FINALIZER), wi.metadata.annotations]),
  unguarded: !wi.metadata.deletionTimestamp && !(wi.metadata.finalizers ?? []).includes(FINALIZER),
});
const identityChanged = (a: { print: string }, b: { print: string; unguarded: boolean }) => a.print !== b.print || b.unguarded;

const accountFingerprint = (ca: CloudAccount) =>
  JSON.stringify([ca.metadata.generation, ca.status?.issuer, ca.status?.oidcProviderArn, findCondition(ca.status?.conditions, CONDITION.ready)?.status]);

// Annotations our field manager owns are compared apart: our own apply adding or updating them must not echo back
// as a reconcile (it reads the whole identity from the cloud again), but anyone else's change must get through —
// a key that leaves our ownership (someone overwrote it, so it now shows among the others) or disappears.
const serviceAccountFingerprint = (sa: V1ServiceAccount) => {
  const owned = keylessAnnotationKeys(sa).filter((k) => sa.metadata?.annotations?.[k] !== undefined);
  const others = Object.entries(sa.metadata?.annotations ?? {}).filter(([k]) => !owned.includes(k));
  return { print: JSON.stringify([sa.metadata?.uid, others]), owned };
};
const serviceAccountChanged = (a: { print: string; owned: string[] }, b: { print: string; owned: string[] }) =>
  a.print !== b.print || a.owned.some((k) => !b.owned.includes(k));

export function wireTriggers(opts: {
  identities: ResourceWatch<WorkloadIdentity>;
  accounts: ResourceWatch<CloudAccount>;
  serviceAccounts: ResourceWatch<V1ServiceAccount>;
  namespaces: ResourceWatch<V1Namespace>;
  /** The ConfigMaps Keyless writes for pods (labelled app.kubernetes.io/managed-by=keyless). */
  configMaps?: ResourceWatch<V1ConfigMap>;
  identityController: Enqueue;
  accountController: DelayedEnqueue;
}): void {
  const { identities, accounts, serviceAccounts, namespaces, configMaps, identityController, accountController } = opts;
  const identitiesOf = (index: string, value: string, exceptKey?: string) => {
    for (const wi of identities.byIndex(index, value)) if (objectKey(wi) !== exceptKey) identityController.enqueue(objectKey(wi));
  };
  // The account's status counts its identities. An account being deleted waits for its last identity to go, so it
  // looks at once; any other recount is coalesced.
  const recount = (name: string) => {
    if (accounts.get(name)?.metadata.deletionTimestamp) accountController.enqueue(name);
    else accountController.enqueueAfter(name, IDENTITY_COUNT_DELAY_MS);
  };

  const wi = onMeaningfulChange(
    identityFingerprint,
    (obj: WorkloadIdentity, first) => {
      identityController.enqueue(objectKey(obj));
      if (first) recount(obj.spec.cloudAccountRef.name);
    },
    identityChanged,
  );
  // Who holds a ServiceAccount's identity in a cloud changes when a sibling's spec or record does: a sibling that
  // switched into a cloud makes a holder-less rival lose, one whose revocation finished lets a waiting rival take
  // over (the conflict rule in reconciler/workload-identity/admit.ts). Those siblings look again at once.
  const siblingsOf = (obj: WorkloadIdentity) => identitiesOf(BY_SERVICE_ACCOUNT, serviceAccountKey(obj.metadata.namespace, obj.spec.serviceAccountName), objectKey(obj));
  const claim = onMeaningfulChange((obj: WorkloadIdentity) => JSON.stringify([obj.metadata.generation, obj.status?.provisioned?.cloud ?? null]), (obj: WorkloadIdentity, first) => {
    if (!first) siblingsOf(obj);
  });
  identities.onChange((obj) => {
    wi.changed(obj);
    claim.changed(obj);
  });
  identities.onDelete((obj) => {
    wi.deleted(obj);
    claim.deleted(obj);
    recount(obj.spec.cloudAccountRef.name);
    // A WorkloadIdentity that lost a conflict for this ServiceAccount may now take over.
    identitiesOf(BY_SERVICE_ACCOUNT, serviceAccountKey(obj.metadata.namespace, obj.spec.serviceAccountName));
  });

  // An account that keeps an IAM OIDC provider or workload identity pool provider it created (or waits to delete it)
  // while another account trusts through it looks again when any other account changes its issuer or provider, or goes.
  const waitingOnOthers = (changed: string) => {
    for (const other of accounts.list()) {
      if (other.metadata.name === changed) continue;
      const trust = other.status?.managedTrust;
      if (other.metadata.deletionTimestamp || trust?.oidcProviderArns?.length || trust?.workloadIdentityProviders?.length) accountController.enqueue(objectKey(other));
    }
  };
  const ca = onMeaningfulChange(accountFingerprint, (obj: CloudAccount) => {
    accountController.enqueue(objectKey(obj));
    identitiesOf(BY_CLOUD_ACCOUNT, obj.metadata.name);
    waitingOnOthers(obj.metadata.name);
  });
  accounts.onChange(ca.changed);
  accounts.onDelete(ca.deleted);

  const sa = onMeaningfulChange(
    serviceAccountFingerprint,
    (obj: V1ServiceAccount) => identitiesOf(BY_SERVICE_ACCOUNT, serviceAccountKey(obj.metadata?.namespace, obj.metadata?.name ?? '')),
    serviceAccountChanged,
  );
  serviceAccounts.onChange(sa.changed);
  serviceAccounts.onDelete(sa.deleted);

  // Namespace labels decide which CloudAccounts admit a namespace's WorkloadIdentities.
  const namespace = onMeaningfulChange(
    (obj: V1Namespace) => JSON.stringify(obj.metadata?.labels ?? {}),
    (obj: V1Namespace) => identitiesOf(BY_NAMESPACE, obj.metadata?.name ?? ''),
  );
  namespaces.onChange(namespace.changed);
  namespaces.onDelete(namespace.deleted);

  // A ConfigMap of ours that someone edited or deleted is repaired by its WorkloadIdentity (its controller owner
  // reference); its appearance is our own create, which must not echo back as a reconcile.
  if (configMaps) {
    const ownerKey = (obj: V1ConfigMap) => {
      const owner = (obj.metadata?.ownerReferences ?? []).find((r) => r.controller && r.kind === 'WorkloadIdentity');
      return owner ? `${obj.metadata?.namespace ?? ''}/${owner.name}` : undefined;
    };
    const configMap = onMeaningfulChange(
      (obj: V1ConfigMap) => JSON.stringify([obj.data ?? {}, obj.metadata?.labels ?? {}, obj.metadata?.ownerReferences ?? []]),
      (obj: V1ConfigMap, first) => {
        const key = ownerKey(obj);
        if (key && !first) identityController.enqueue(key);
      },
    );
    configMaps.onChange(configMap.changed);
    configMaps.onDelete(configMap.deleted);
  }
}
