// Step 1 of `kubectl keyless migrate`: the identities made by hand — ServiceAccounts annotated for a cloud that no
// WorkloadIdentity of theirs manages — and which of them share one cloud identity. Pure.
import type { V1ServiceAccount } from '@kubernetes/client-node';
import { SERVICE_ACCOUNT_ANNOTATION } from '../../api/constants.ts';
import type { Cloud, WorkloadIdentity } from '../../api/types.ts';
import { cloudOf } from '../../providers/registry.ts';

/** One ServiceAccount's hand-made identity on one cloud. */
export interface HandMade {
  cloud: Cloud;
  namespace: string;
  serviceAccount: string;
  /** The annotation's value: a role ARN, a Google service account email, a managed identity's client id. */
  identity: string;
  /** All the ServiceAccount's annotations (the tenant id, the token audience...). */
  annotations: Record<string, string>;
  /** Other ServiceAccounts annotated with the same identity, as namespace/name. */
  sharedWith: string[];
}

const ANNOTATION: Record<Cloud, string> = {
  aws: SERVICE_ACCOUNT_ANNOTATION.awsRoleArn,
  gcp: SERVICE_ACCOUNT_ANNOTATION.gcpServiceAccount,
  azure: SERVICE_ACCOUNT_ANNOTATION.azureClientId,
};

export function annotationOf(cloud: Cloud): string {
  return ANNOTATION[cloud];
}

/**
 * The hand-made identities among `serviceAccounts` (listed in namespace/name order) and the ServiceAccounts Keyless
 * already manages for that cloud. `allServiceAccounts` are every ServiceAccount of the cluster that could share an
 * identity with them (a role shared across namespaces is shared all the same).
 */
export function handMadeIdentities(
  serviceAccounts: readonly V1ServiceAccount[],
  identities: readonly WorkloadIdentity[],
  allServiceAccounts: readonly V1ServiceAccount[] = serviceAccounts,
): { handMade: HandMade[]; managed: string[] } {
  const managedBy = new Set(identities.map((wi) => `${wi.metadata.namespace ?? ''}/${wi.spec.serviceAccountName}/${cloudOf(wi.spec) ?? ''}`));
  const users = new Map<string, string[]>();
  for (const sa of allServiceAccounts) {
    for (const cloud of Object.keys(ANNOTATION) as Cloud[]) {
      const value = sa.metadata?.annotations?.[ANNOTATION[cloud]]?.trim();
      if (!value) continue;
      const key = `${cloud}/${value.toLowerCase()}`;
      users.set(key, [...(users.get(key) ?? []), `${sa.metadata?.namespace ?? ''}/${sa.metadata?.name ?? ''}`]);
    }
  }
  const handMade: HandMade[] = [];
  const managed: string[] = [];
  const sorted = [...serviceAccounts].sort((a, b) => `${a.metadata?.namespace ?? ''}/${a.metadata?.name ?? ''}`.localeCompare(`${b.metadata?.namespace ?? ''}/${b.metadata?.name ?? ''}`));
  for (const sa of sorted) {
    const namespace = sa.metadata?.namespace ?? '';
    const name = sa.metadata?.name ?? '';
    for (const cloud of Object.keys(ANNOTATION) as Cloud[]) {
      const value = sa.metadata?.annotations?.[ANNOTATION[cloud]]?.trim();
      if (!value) continue;
      if (managedBy.has(`${namespace}/${name}/${cloud}`)) {
        managed.push(`${namespace}/${name} (${cloud})`);
        continue;
      }
      const sharedWith = (users.get(`${cloud}/${value.toLowerCase()}`) ?? []).filter((u) => u !== `${namespace}/${name}`);
      handMade.push({ cloud, namespace, serviceAccount: name, identity: value, annotations: { ...(sa.metadata?.annotations ?? {}) }, sharedWith });
    }
  }
  return { handMade, managed };
}
