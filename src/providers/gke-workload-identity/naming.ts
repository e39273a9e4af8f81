// Names and IAM member strings for GKE Workload Identity. All pure: a Google service account id is a function of
// (cluster, namespace, name), so a reconcile that crashed between "create" and "record" finds its own account
// again instead of creating a second one (DESIGN §3).
import { MARKER } from '../../api/constants.ts';
import { identityKey, shortHash } from '../../domain/naming.ts';

/** Service account ids: 6–30 characters, `[a-z]([-a-z0-9]*[a-z0-9])` (IAM CreateServiceAccountRequest.accountId). */
export const GSA_ID_MAX = 30;
export const GSA_ID_PATTERN = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
/** IAM limits on the service account's displayName and description (bytes, UTF-8). */
export const GSA_DISPLAY_NAME_MAX = 100;
export const GSA_DESCRIPTION_MAX = 256;

export const WORKLOAD_IDENTITY_USER = 'roles/iam.workloadIdentityUser';

/**
 * `<namespace>-<name>` squeezed into the id alphabet, cut to fit, and always followed by `-<8 hex>` of the full
 * identity: two clusters sharing a project, or two long names sharing a prefix, never collide.
 */
export function gcpServiceAccountId(cluster: string, namespace: string, name: string): string {
  const suffix = `-${shortHash(identityKey(cluster, namespace, name), 8)}`;
  let head = `${namespace}-${name}`.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-{2,}/g, '-');
  if (!/^[a-z]/.test(head)) head = `k${head}`;
  head = head.slice(0, GSA_ID_MAX - suffix.length).replace(/-+$/, '');
  return `${head}${suffix}`;
}

export function serviceAccountEmail(accountId: string, projectId: string): string {
  return `${accountId}@${projectId}.iam.gserviceaccount.com`;
}

/** The workload identity pool of a project's GKE clusters unless the CloudAccount names another (a fleet's). */
export function workloadPool(projectId: string, pool: string | undefined): string {
  return pool || `${projectId}.svc.id.goog`;
}

/** The IAM member a Google service account is bound as. */
export function gsaMember(email: string): string {
  return `serviceAccount:${email}`;
}

/** What IAM turns our member into once the account is deleted; the `?uid=` suffix varies per incarnation. */
export function deletedGsaMemberPrefix(email: string): string {
  return `deleted:serviceAccount:${email}?uid=`;
}

/** The Kubernetes ServiceAccount as GKE's metadata server presents it when impersonating a Google service account. */
export function kubernetesServiceAccountMember(pool: string, namespace: string, serviceAccountName: string): string {
  return `serviceAccount:${pool}[${namespace}/${serviceAccountName}]`;
}

/** The Kubernetes ServiceAccount as a Workload Identity Federation principal, granted roles directly. */
export function directPrincipal(projectNumber: string, pool: string, namespace: string, serviceAccountName: string): string {
  return `principal://iam.googleapis.com/projects/${projectNumber}/locations/global/workloadIdentityPools/${pool}/subject/ns/${namespace}/sa/${serviceAccountName}`;
}

/**
 * The ownership marker, written into the service account's description (Google service accounts have no labels).
 * When cluster, namespace and name do not fit in the description's 256 bytes, a digest of them stands in.
 */
export function ownershipMarker(cluster: string, namespace: string, name: string): string {
  const full = `${MARKER.cluster}=${cluster} ${MARKER.namespace}=${namespace} ${MARKER.name}=${name}`;
  if (Buffer.byteLength(full) <= GSA_DESCRIPTION_MAX - 40) return full;
  return `keyless.dev/identity=${shortHash(identityKey(cluster, namespace, name), 32)}`;
}

export function gsaDescription(marker: string): string {
  return `Managed by Keyless; do not edit. ${marker}`;
}

/** True when the description carries exactly this marker (as whitespace-separated tokens). */
export function carriesMarker(description: string | undefined, marker: string): boolean {
  if (!description) return false;
  const tokens = new Set(description.split(/\s+/));
  return marker.split(' ').every((t) => tokens.has(t));
}

/** Who a foreign or other-identity marker names, for a NotOwned message. */
export function describeMarker(description: string | undefined): string | undefined {
  if (!description) return undefined;
  const get = (key: string) => new RegExp(`(?:^|\\s)${key.replace(/[./]/g, '\\$&')}=(\\S+)`).exec(description)?.[1];
  const ns = get(MARKER.namespace);
  const name = get(MARKER.name);
  if (ns && name) return `${ns}/${name} (cluster ${get(MARKER.cluster) ?? 'unknown'})`;
  if (get('keyless.dev/identity')) return 'another Keyless WorkloadIdentity';
  return undefined;
}

/** displayName: `namespace/name`, cut to IAM's 100 bytes. */
export function gsaDisplayName(namespace: string, name: string): string {
  let display = `${namespace}/${name}`;
  while (Buffer.byteLength(display) > GSA_DISPLAY_NAME_MAX) display = display.slice(0, -1);
  return display;
}

/**
 * The ownership marker of what Keyless creates for a CloudAccount's own Workload Identity Federation trust (the pool
 * and the provider of spec.gcp.manageWorkloadIdentityProvider), written into their description like a Google service
 * account's: IAM v1's WorkloadIdentityPool and WorkloadIdentityPoolProvider have no labels or tags, only a free-text
 * description of at most 256 characters. When cluster and account do not fit, a digest of them stands in.
 */
export function accountOwnershipMarker(cluster: string, account: string): string {
  const full = `${MARKER.cluster}=${cluster} ${MARKER.cloudAccount}=${account}`;
  if (Buffer.byteLength(gsaDescription(full)) <= GSA_DESCRIPTION_MAX) return full;
  return `keyless.dev/cloud-account-id=${shortHash(`${cluster}/${account}`, 32)}`;
}

/** Whose an account marker in a description is, as a sentence; undefined when it carries none. */
export function describeAccountMarker(description: string | undefined): { cluster: string; account: string } | undefined {
  if (!description) return undefined;
  const get = (key: string) => new RegExp(`(?:^|\\s)${key.replace(/[./]/g, '\\$&')}=(\\S+)`).exec(description)?.[1];
  const cluster = get(MARKER.cluster);
  const account = get(MARKER.cloudAccount);
  return cluster && account ? { cluster, account } : undefined;
}
