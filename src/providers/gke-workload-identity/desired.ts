// The pure half of the GKE provider: from a WorkloadIdentity and its CloudAccount to the Google service account
// (ServiceAccount mode), the member that receives the grants, and the grants grouped by the IAM policy they edit.
import type { GcpMechanism } from '../../api/types.ts';
import { identityKey } from '../../domain/naming.ts';
import type { IdentityContext } from '../types.ts';
import {
  deletedGsaMemberPrefix,
  directPrincipal,
  gcpServiceAccountId,
  gsaDescription,
  gsaDisplayName,
  gsaMember,
  kubernetesServiceAccountMember,
  ownershipMarker,
  serviceAccountEmail,
  workloadPool,
} from './naming.ts';
import { grantKey, type Grant } from './policy.ts';
import { policyTarget, SUPPORTED_RESOURCES, targetKey, type PolicyTarget } from './resources.ts';

export interface DesiredGsa {
  accountId: string;
  email: string;
  displayName: string;
  description: string;
  marker: string;
}

export interface TargetGrants {
  target: PolicyTarget;
  key: string;
  grants: Grant[];
}

export interface GkeDesired {
  mode: GcpMechanism;
  /** cluster/namespace/name: which WorkloadIdentity, for the provider's memory of where it granted. */
  identity: string;
  project: string;
  pool: string;
  namespace: string;
  serviceAccountName: string;
  /** ServiceAccount mode only. */
  gsa: DesiredGsa | undefined;
  /** `serviceAccount:<pool>[<ns>/<sa>]`: who may impersonate the Google service account. */
  kubernetesMember: string;
  /** Who receives the grants: the Google service account, or the Kubernetes ServiceAccount's principal. */
  member: string;
  /**
   * Members of ours, other than `member`, to drop wherever we edit: the identity under the other mechanism (after a
   * switch) and the `deleted:` ghosts of our own service account.
   */
  purge: (member: string) => boolean;
  /** DirectPrincipal mode: the service account this identity had in ServiceAccount mode, removed if it exists. */
  formerGsa: { email: string; marker: string } | undefined;
  grants: TargetGrants[];
  /** Where the last written status says this identity held grants (status.gcp.grantedResources). */
  previouslyGranted: PolicyTarget[];
}

export function gcpAccount(ctx: IdentityContext) {
  const gcp = ctx.account.spec.gcp;
  if (!gcp) throw new Error(`CloudAccount ${ctx.account.metadata.name} has no gcp section`);
  return gcp;
}

export function validateGcpSpec(ctx: IdentityContext): string[] {
  const problems: string[] = [];
  const project = gcpAccount(ctx).projectId;
  (ctx.spec.gcp?.roles ?? []).forEach((grant, i) => {
    if (!policyTarget(grant.resource, project)) {
      problems.push(`spec.gcp.roles[${i}].resource "${grant.resource ?? ''}" is not a resource Keyless can grant on; use one of ${SUPPORTED_RESOURCES.join(', ')}, or leave it out for the CloudAccount's project`);
    }
  });
  return problems;
}

export function desiredGke(ctx: IdentityContext, mode: GcpMechanism): GkeDesired {
  const account = gcpAccount(ctx);
  const pool = workloadPool(account.projectId, account.workloadPool);
  const byTarget = new Map<string, TargetGrants>();
  for (const grant of ctx.spec.gcp?.roles ?? []) {
    const target = policyTarget(grant.resource, account.projectId);
    if (!target) continue;
    const key = targetKey(target);
    const entry = byTarget.get(key) ?? { target, key, grants: [] };
    const g: Grant = { role: grant.role, ...(grant.condition ? { condition: { ...grant.condition } } : {}) };
    if (!entry.grants.some((x) => grantKey(x) === grantKey(g))) entry.grants.push(g);
    byTarget.set(key, entry);
  }
  const accountId = gcpServiceAccountId(ctx.cluster, ctx.namespace, ctx.name);
  const marker = ownershipMarker(ctx.cluster, ctx.namespace, ctx.name);
  const email = serviceAccountEmail(accountId, account.projectId);
  const gsa: DesiredGsa | undefined =
    mode === 'ServiceAccount' ? { accountId, email, displayName: gsaDisplayName(ctx.namespace, ctx.name), description: gsaDescription(marker), marker } : undefined;
  const principal = directPrincipal(account.projectNumber, pool, ctx.namespace, ctx.serviceAccountName);
  // Whichever mechanism is not in use, its member is ours to remove: that is what switching mechanism means.
  const former = gsa ? principal : gsaMember(email);
  const ghosts = deletedGsaMemberPrefix(email);
  return {
    mode,
    identity: identityKey(ctx.cluster, ctx.namespace, ctx.name),
    project: account.projectId,
    pool,
    namespace: ctx.namespace,
    serviceAccountName: ctx.serviceAccountName,
    gsa,
    kubernetesMember: kubernetesServiceAccountMember(pool, ctx.namespace, ctx.serviceAccountName),
    member: gsa ? gsaMember(email) : principal,
    purge: (m) => m === former || m.startsWith(ghosts),
    formerGsa: gsa ? undefined : { email, marker },
    grants: [...byTarget.values()],
    previouslyGranted: (ctx.status?.gcp?.grantedResources ?? []).flatMap((name) => {
      const target = policyTarget(name, account.projectId);
      return target ? [target] : [];
    }),
  };
}
