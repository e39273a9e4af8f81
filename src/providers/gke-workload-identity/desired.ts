// The pure half of the GKE provider: from a WorkloadIdentity and its CloudAccount to the Google service account
// (ServiceAccount mode), the member that receives the grants, the grants grouped by the IAM policy they edit, and —
// for a cluster trusted through Workload Identity Federation instead of GKE's pool — the credential configuration
// its pods mount (federation.ts).
import type { GcpMechanism, GcpRecordedGrant } from '../../api/types.ts';
import { declaredIdentityProblems } from '../adoption.ts';
import type { IdentityContext } from '../types.ts';
import {
  credentialConfigMapName,
  credentialConfigMapData,
  credentialConfiguration,
  federatedPrincipal,
  federationOf,
  GOOGLE_SUBJECT_MAX_BYTES,
  podMountHint,
  tokenAudience,
  type ExchangeUrls,
  type FederationProvider,
} from './federation.ts';
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

/** What the pods of a federated identity mount: the ConfigMap with the credential configuration, and the token's audience. */
export interface DesiredCredentials {
  configMap: string;
  data: Record<string, string>;
  audience: string;
  hint: string;
}

export interface GkeDesired {
  mode: GcpMechanism;
  project: string;
  projectNumber: string;
  /** GKE's pool (PROJECT.svc.id.goog), or the federation pool's id. */
  pool: string;
  /** Workload Identity Federation for a cluster that is not GKE; undefined on GKE. */
  federation: FederationProvider | undefined;
  /** Federation only. */
  credentials: DesiredCredentials | undefined;
  namespace: string;
  serviceAccountName: string;
  /** ServiceAccount mode only. */
  gsa: DesiredGsa | undefined;
  /** The Google service account this identity has in ServiceAccount mode, whatever the mode now. */
  ownGsa: { email: string; marker: string; member: string };
  /** Who may impersonate the Google service account: `serviceAccount:<pool>[<ns>/<sa>]` on GKE, the federated principal otherwise. */
  kubernetesMember: string;
  /** Who receives the grants: the Google service account, or the Kubernetes ServiceAccount's principal. */
  member: string;
  /** The `deleted:` ghosts IAM leaves of our own service account: ours to drop wherever we edit. */
  ghost: (member: string) => boolean;
  /** DirectPrincipal mode: the service account the record keeps from ServiceAccount mode, deleted once it is unused. */
  formerGsa: { email: string; marker: string } | undefined;
  /** Take over an unmarked Google service account with this email (IdentityContext.adopt). */
  adopt: boolean;
  /** The account was named in keyless.dev/adopt: adopted only if the Kubernetes member may already impersonate it. */
  adoptOnlyIfTrusted: boolean;
  grants: TargetGrants[];
  /** The bindings the record says Keyless made (empty for a new identity). */
  recorded: GcpRecordedGrant[];
}

export function gcpAccount(ctx: IdentityContext) {
  const gcp = ctx.account.spec.gcp;
  if (!gcp) throw new Error(`CloudAccount ${ctx.account.metadata.name} has no gcp section`);
  return gcp;
}

/** The Google service account id keyless.dev/adopt names, when it is an email of a user-managed account of this project. */
function declaredGsa(ctx: IdentityContext): string | undefined {
  const m = ctx.adoptIdentity === undefined ? undefined : /^([a-z][a-z0-9-]{4,28}[a-z0-9])@([a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$/.exec(ctx.adoptIdentity);
  return m && m[2] === gcpAccount(ctx).projectId ? m[1] : undefined;
}

/** The Google service account id: the one keyless.dev/adopt names, else the derived one. */
export function gsaIdOf(ctx: IdentityContext): string {
  return declaredGsa(ctx) ?? gcpServiceAccountId(ctx.cluster, ctx.namespace, ctx.name);
}

export function validateGcpSpec(ctx: IdentityContext, mode: GcpMechanism): string[] {
  const project = gcpAccount(ctx).projectId;
  if (gcpAccount(ctx).workloadIdentityProvider && Buffer.byteLength(ctx.subject) > GOOGLE_SUBJECT_MAX_BYTES) {
    return [
      `the token subject ${ctx.subject} is ${Buffer.byteLength(ctx.subject)} bytes, and Workload Identity Federation refuses a google.subject over ${GOOGLE_SUBJECT_MAX_BYTES}: use a shorter namespace or ServiceAccount name`,
    ];
  }
  const problems = declaredIdentityProblems(ctx, declaredGsa(ctx) !== undefined, `a Google service account email of project ${project} (NAME@${project}.iam.gserviceaccount.com)`, ctx.record?.gcp?.serviceAccountEmail === ctx.adoptIdentity);
  if (ctx.adoptIdentity !== undefined && mode === 'DirectPrincipal') {
    problems.push(`annotation keyless.dev/adopt names a Google service account, which mechanism DirectPrincipal does not use; use mechanism ServiceAccount, or remove the annotation`);
  }
  (ctx.spec.gcp?.roles ?? []).forEach((grant, i) => {
    if (!policyTarget(grant.resource, project)) {
      problems.push(`spec.gcp.roles[${i}].resource "${grant.resource ?? ''}" is not a resource Keyless can grant on; use one of ${SUPPORTED_RESOURCES.join(', ')}, or leave it out for the CloudAccount's project`);
    }
  });
  return problems;
}

export function desiredGke(ctx: IdentityContext, mode: GcpMechanism, urls: ExchangeUrls): GkeDesired {
  const account = gcpAccount(ctx);
  const federation = federationOf(account);
  const pool = federation ? federation.pool : workloadPool(account.projectId, account.workloadPool);
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
  const accountId = gsaIdOf(ctx);
  const marker = ownershipMarker(ctx.cluster, ctx.namespace, ctx.name);
  const email = serviceAccountEmail(accountId, account.projectId);
  const gsa: DesiredGsa | undefined =
    mode === 'ServiceAccount' ? { accountId, email, displayName: gsaDisplayName(ctx.namespace, ctx.name), description: gsaDescription(marker), marker } : undefined;
  const ghosts = deletedGsaMemberPrefix(email);
  const recordedEmail = ctx.record?.gcp?.serviceAccountEmail;
  const principal = federation ? federatedPrincipal(federation, ctx.subject) : directPrincipal(account.projectNumber, pool, ctx.namespace, ctx.serviceAccountName);
  let credentials: DesiredCredentials | undefined;
  if (federation) {
    const configMap = credentialConfigMapName(ctx.cluster, ctx.namespace, ctx.name);
    const audience = tokenAudience(federation);
    credentials = { configMap, data: credentialConfigMapData(credentialConfiguration(federation, urls, gsa?.email)), audience, hint: podMountHint(configMap, audience, account.projectId) };
  }
  return {
    mode,
    project: account.projectId,
    projectNumber: account.projectNumber,
    pool,
    federation,
    credentials,
    namespace: ctx.namespace,
    serviceAccountName: ctx.serviceAccountName,
    gsa,
    ownGsa: { email, marker, member: gsaMember(email) },
    kubernetesMember: federation ? principal : kubernetesServiceAccountMember(pool, ctx.namespace, ctx.serviceAccountName),
    member: gsa ? gsaMember(email) : principal,
    ghost: (m) => m.startsWith(ghosts),
    formerGsa: !gsa && recordedEmail ? { email: recordedEmail, marker } : undefined,
    adopt: ctx.adopt === true,
    adoptOnlyIfTrusted: declaredGsa(ctx) !== undefined,
    grants: [...byTarget.values()],
    recorded: ctx.record?.gcp?.grants ?? [],
  };
}
