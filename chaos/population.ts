// The chaos run's population and its model: which WorkloadIdentities exist, what each asks for now, and the edits
// that change that while faults and kills happen. The model is what the checks compare the clouds against after
// convergence, so it is updated only once the API server has accepted an edit.
import { AWS_ACCOUNT, AZURE_ROLES, GCP_ROLES } from '../bench/clouds.ts';

export const GCP_ACCOUNT_NAME = 'bench-gcp';
export const AZURE_ACCOUNT_NAME = 'bench-azure';

export type Kind = 'irsa' | 'pod' | 'gkeSa' | 'gkeDp' | 'aks';

/** Each mechanism's share of the population and its namespace (one namespace per mechanism it started as). */
export const SHARES: Record<Kind, { share: number; namespace: string }> = {
  irsa: { share: 0.3, namespace: 'chaos-irsa' },
  pod: { share: 0.15, namespace: 'chaos-pod' },
  gkeSa: { share: 0.2, namespace: 'chaos-gke-sa' },
  gkeDp: { share: 0.15, namespace: 'chaos-gke-dp' },
  aks: { share: 0.2, namespace: 'chaos-aks' },
};
export const NAMESPACES = Object.values(SHARES).map((s) => s.namespace);
export const KINDS = Object.keys(SHARES) as Kind[];

export interface Member {
  namespace: string;
  name: string;
  serviceAccount: string;
  kind: Kind;
  /** Bumped by every grants edit: which grants the spec asks for (spec()). */
  version: number;
  /** Index in the population, for per-identity resources. */
  index: number;
  /**
   * Switched cloud: the spec names another cloud than its CloudAccount's (cloudAccountRef is immutable, so a
   * switch is an edit of the cloud section). Expected: CloudMismatch, and nothing left in any cloud.
   */
  switched?: boolean;
}

export const key = (m: Pick<Member, 'namespace' | 'name'>) => `${m.namespace}/${m.name}`;

/** The spec a member asks for now. Grants alternate with `version`: shared scopes, so policies are contended. */
export function spec(m: Member): Record<string, unknown> {
  if (m.switched) {
    // The account stays, the cloud section is another cloud's: IRSA asks for GKE, GKE for AKS, AKS for IRSA.
    const { cloudAccountRef } = spec({ ...m, switched: false });
    const other: Partial<Record<Kind, Kind>> = { irsa: 'gkeDp', gkeSa: 'aks', gkeDp: 'aks', aks: 'irsa' };
    return { ...spec({ ...m, kind: other[m.kind] ?? 'irsa', switched: false }), cloudAccountRef };
  }
  const base = { serviceAccountName: m.serviceAccount };
  switch (m.kind) {
    case 'irsa':
    case 'pod':
      return {
        ...base,
        cloudAccountRef: { name: m.kind === 'irsa' ? AWS_ACCOUNT.irsa : AWS_ACCOUNT.pod },
        aws: { mechanism: m.kind === 'irsa' ? 'IRSA' : 'PodIdentity', policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: [awsResource(m)] }] },
      };
    case 'gkeSa':
    case 'gkeDp':
      return { ...base, cloudAccountRef: { name: GCP_ACCOUNT_NAME }, gcp: { mechanism: m.kind === 'gkeSa' ? 'ServiceAccount' : 'DirectPrincipal', roles: gcpRoles(m) } };
    case 'aks':
      return { ...base, cloudAccountRef: { name: AZURE_ACCOUNT_NAME }, azure: { roleAssignments: azureRoles(m) } };
  }
}

export function awsResource(m: Member): string {
  return `arn:aws:s3:::chaos-bucket/${m.index}/v${m.version}/*`;
}

export function gcpRoles(m: Member): typeof GCP_ROLES {
  return m.version % 2 === 0 ? GCP_ROLES : GCP_ROLES.slice(0, 1);
}

export function azureRoles(m: Member): typeof AZURE_ROLES {
  return m.version % 2 === 0 ? AZURE_ROLES : AZURE_ROLES.slice(0, 1);
}

/** The initial population: `n` members spread over the mechanisms by their shares. */
export function initialPopulation(n: number): Member[] {
  const members: Member[] = [];
  let index = 0;
  KINDS.forEach((kind, k) => {
    // The last kind takes what rounding left, so the total is exactly n; every kind gets one at least.
    const later = KINDS.length - 1 - k;
    const count = later === 0 ? n - index : Math.min(Math.max(1, Math.round(n * SHARES[kind].share)), n - index - later);
    for (let i = 0; i < count; i++, index++) {
      members.push({ namespace: SHARES[kind].namespace, name: `wi-${index}`, serviceAccount: `sa-${index}`, kind, version: 0, index });
    }
  });
  return members;
}

export type EditKind = 'grants' | 'mode' | 'cloud';

/**
 * One edit of `m` as a new member (the model after it): grants change most often; GKE identities switch mode; some
 * identities switch cloud (IRSA → GKE, GKE → AKS, AKS → IRSA, under the same CloudAccount: refused, and the old
 * cloud's trust must go). serviceAccountName and cloudAccountRef are immutable (the API refuses an edit), so no
 * edit changes them. Pod Identity is left to the CloudAccount-delete phase.
 */
export function edit(m: Member, random: () => number): { kind: EditKind; next: Member } {
  const roll = random();
  if (roll < 0.15 && m.kind !== 'pod') return { kind: 'cloud', next: { ...m, switched: true } };
  if (roll < 0.3 && (m.kind === 'gkeSa' || m.kind === 'gkeDp')) return { kind: 'mode', next: { ...m, kind: m.kind === 'gkeSa' ? 'gkeDp' : 'gkeSa' } };
  return { kind: 'grants', next: { ...m, version: m.version + 1 } };
}
