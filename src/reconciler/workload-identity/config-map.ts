// The ConfigMap a mechanism's pods mount (Provisioned.configMap: GCP's external_account credential configuration off
// GKE), written in the WorkloadIdentity's namespace and treated like a cloud object (DESIGN §3): recorded in
// status.provisioned before it is created, marked with the owner's labels and an ownerReference, never written or
// deleted when it carries another owner's marker (a name collision is NotOwned, not a takeover), removed first in
// every revocation, and kept only under deletionPolicy Orphan. What it holds is the provider's business; this file
// only puts it in place, reading the informer cache of Keyless's ConfigMaps so a converged identity costs no request.
import type { V1ConfigMap } from '@kubernetes/client-node';
import { API_VERSION, MARKER, REASON } from '../../api/constants.ts';
import type { ProvisionedRecord, WorkloadIdentity } from '../../api/types.ts';
import { shortHash } from '../../domain/naming.ts';
import type { Provisioned } from '../../providers/types.ts';
import type { Outcome } from './conditions.ts';
import type { WorkloadIdentityReconcilerDeps } from './deps.ts';

/** The label every ConfigMap Keyless writes carries: the operator's informer lists and watches only these. */
export const MANAGED_BY = { key: 'app.kubernetes.io/managed-by', value: 'keyless' } as const;
export const MANAGED_CONFIG_MAPS_SELECTOR = `${MANAGED_BY.key}=${MANAGED_BY.value}`;

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** A label value (63 characters of a restricted alphabet) standing for `value`: itself when it fits, else a cut and a hash. */
export function labelValue(value: string): string {
  if (value.length <= 63 && LABEL_VALUE.test(value)) return value;
  const head = value.replace(/[^-A-Za-z0-9_.]+/g, '-').slice(0, 54).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return `${head}${head ? '-' : ''}${shortHash(value, 8)}`;
}

/** The ownership marker as labels: cluster, namespace and name of the WorkloadIdentity. */
export function markerLabels(cluster: string, wi: WorkloadIdentity): Record<string, string> {
  return {
    [MANAGED_BY.key]: MANAGED_BY.value,
    [MARKER.cluster]: labelValue(cluster),
    [MARKER.namespace]: labelValue(wi.metadata.namespace ?? ''),
    [MARKER.name]: labelValue(wi.metadata.name),
  };
}

function carriesMarker(cm: V1ConfigMap, marker: Record<string, string>): boolean {
  const labels = cm.metadata?.labels ?? {};
  return Object.entries(marker).every(([k, v]) => labels[k] === v);
}

function describeOwner(cm: V1ConfigMap): string {
  const labels = cm.metadata?.labels ?? {};
  const ns = labels[MARKER.namespace];
  const name = labels[MARKER.name];
  return ns && name ? `It belongs to WorkloadIdentity ${ns}/${name} (cluster ${labels[MARKER.cluster] ?? 'unknown'}).` : 'It carries no Keyless ownership labels.';
}

function ownerReference(wi: WorkloadIdentity) {
  return { apiVersion: API_VERSION, kind: 'WorkloadIdentity', name: wi.metadata.name, uid: wi.metadata.uid ?? '', controller: true };
}

const sameData = (a: Record<string, string> | undefined, b: Record<string, string>) =>
  Object.keys(a ?? {}).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a?.[k] === v);

const ownedBy = (cm: V1ConfigMap, wi: WorkloadIdentity) => (cm.metadata?.ownerReferences ?? []).some((r) => r.uid === wi.metadata.uid && r.kind === 'WorkloadIdentity' && r.controller === true);

/** The cache's copy, or the API server's when the cache has none yet (a create it has not seen). */
async function current(d: WorkloadIdentityReconcilerDeps, namespace: string, name: string): Promise<V1ConfigMap | undefined> {
  return d.configMaps?.get(`${namespace}/${name}`) ?? (await d.kube.getConfigMap(namespace, name));
}

/**
 * Puts the ConfigMap `provisioned` asks for in place, and deletes the one `record` names if the provider no longer asks
 * for it. The outcome joins ServiceAccountReady (both are what pods need from Kubernetes); undefined when the mechanism
 * needs no ConfigMap. A conflict with someone else's ConfigMap is a condition, never an overwrite.
 */
export async function publishConfigMap(
  d: WorkloadIdentityReconcilerDeps,
  wi: WorkloadIdentity,
  provisioned: Provisioned,
  record: ProvisionedRecord | undefined,
): Promise<NonNullable<Outcome['serviceAccount']> | undefined> {
  const namespace = wi.metadata.namespace ?? '';
  const wanted = provisioned.configMap;
  const former = record?.configMap?.name;
  if (former && former !== wanted?.name) await withdrawConfigMap(d, wi, { configMap: { name: former } });
  if (!wanted) return undefined;
  const marker = markerLabels(d.cluster, wi);
  const existing = await current(d, namespace, wanted.name);
  if (existing && !carriesMarker(existing, marker)) {
    return {
      ok: false,
      reason: REASON.NotOwned,
      message: `ConfigMap ${namespace}/${wanted.name} already exists and is not owned by this WorkloadIdentity. ${describeOwner(existing)} Keyless never modifies an object it does not own: delete or rename that ConfigMap, or use a different WorkloadIdentity name. Pods get no Google credentials until then.`,
    };
  }
  const labels = { ...(existing?.metadata?.labels ?? {}), ...marker };
  // The namespace controller deletes the ConfigMap with everything else, and refuses new objects: nothing to repair.
  if (!existing && d.namespaces.get(namespace)?.metadata?.deletionTimestamp) {
    return { ok: false, reason: REASON.Deleting, message: `Namespace ${namespace} is being deleted, so Keyless writes no ConfigMap ${wanted.name} into it.` };
  }
  if (!existing) {
    await d.kube.createConfigMap({ metadata: { name: wanted.name, namespace, labels, ownerReferences: [ownerReference(wi)] }, data: wanted.data });
  } else if (!sameData(existing.data, wanted.data) || !ownedBy(existing, wi)) {
    // Ours (the marker), perhaps from a WorkloadIdentity of the same name that was deleted and recreated: it is this one's now.
    await d.kube.replaceConfigMap({ ...existing, metadata: { ...existing.metadata, labels, ownerReferences: [ownerReference(wi)] }, data: wanted.data });
  }
  return { ok: true, reason: REASON.UpToDate, message: `ConfigMap ${namespace}/${wanted.name} holds ${Object.keys(wanted.data).join(', ')}.` };
}

/**
 * Deletes the ConfigMap `record` names while it carries this WorkloadIdentity's marker (first in every revocation, with
 * the ServiceAccount annotations: no pod started now is pointed at an identity about to go). What it removed, for messages.
 */
export async function withdrawConfigMap(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity, record: Pick<ProvisionedRecord, 'configMap'>): Promise<string | undefined> {
  const name = record.configMap?.name;
  if (!name) return undefined;
  const namespace = wi.metadata.namespace ?? '';
  const existing = await current(d, namespace, name);
  if (!existing?.metadata?.uid || !carriesMarker(existing, markerLabels(d.cluster, wi))) return undefined;
  await d.kube.deleteConfigMap(namespace, name, existing.metadata.uid);
  return `deleted ConfigMap ${namespace}/${name}`;
}

/**
 * deletionPolicy Orphan: the ConfigMap stays with the cloud identity it configures, so its ownerReference goes (the
 * garbage collector would delete it with the WorkloadIdentity otherwise). What it kept, for the Event.
 */
export async function orphanConfigMap(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity, record: ProvisionedRecord): Promise<string | undefined> {
  const name = record.configMap?.name;
  if (!name) return undefined;
  const namespace = wi.metadata.namespace ?? '';
  const existing = await current(d, namespace, name);
  if (!existing || !carriesMarker(existing, markerLabels(d.cluster, wi))) return undefined;
  const refs = existing.metadata?.ownerReferences ?? [];
  const kept = refs.filter((r) => r.uid !== wi.metadata.uid);
  if (kept.length !== refs.length) await d.kube.replaceConfigMap({ ...existing, metadata: { ...existing.metadata, ownerReferences: kept } });
  return `ConfigMap ${namespace}/${name}`;
}
