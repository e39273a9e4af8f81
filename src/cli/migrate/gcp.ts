// A hand-made GKE Workload Identity (iam.gke.io/gcp-service-account) as a WorkloadIdentity that adopts the Google
// service account. Read-only: the account, its own IAM policy (who may impersonate it), and the grants to it that can
// be found — on the CloudAccount's project and on the buckets, topics, secrets and service accounts listed in it.
// Adoption keeps exactly one Kubernetes ServiceAccount on roles/iam.workloadIdentityUser and exactly the spec's grants
// on the policies the spec names, so the spec carries every grant found; a grant elsewhere stays as it is.
import { SERVICE_ACCOUNT_ANNOTATION } from '../../api/constants.ts';
import type { CloudAccount, GcpRoleGrant } from '../../api/types.ts';
import { orUndefined } from '../../providers/cloud-error.ts';
import type { GcpPort, GoogleServiceAccount } from '../../providers/gke-workload-identity/gcp-port.ts';
import { describeMarker, kubernetesServiceAccountMember, WORKLOAD_IDENTITY_USER, workloadPool } from '../../providers/gke-workload-identity/naming.ts';
import type { IamPolicy } from '../../providers/gke-workload-identity/policy.ts';
import { describeTarget, fullResourceName, type PolicyTarget } from '../../providers/gke-workload-identity/resources.ts';
import type { HandMade } from './candidates.ts';
import { alreadyOwned, type CloudPlan } from './plan.ts';

/** What migrate lists in a project besides what the operator's port reads. */
export interface GcpInventory {
  listServiceAccounts(project: string): Promise<string[]>;
  listBuckets(project: string): Promise<string[]>;
  listTopics(project: string): Promise<string[]>;
  listSecrets(project: string): Promise<string[]>;
}

/** The Google reads migrate makes, and no write: a narrowing of the operator's GcpPort, plus listing. */
export type GcpReader = Pick<GcpPort, 'getServiceAccount' | 'getIamPolicy'> & GcpInventory;

export interface GcpFacts {
  serviceAccount: GoogleServiceAccount;
  /** The service account's own IAM policy: who may impersonate it. */
  policy: IamPolicy;
  /** Grants to the service account, by the policy they were found in. */
  grants: { target: PolicyTarget; role: string; condition?: { title?: string; description?: string; expression: string } }[];
  /** Where was looked, for the report. */
  searched: string[];
}

const EMAIL = /^[a-z][a-z0-9-]{4,28}[a-z0-9]@([a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$/;

/** The project of a user-managed Google service account's email. */
export function projectOf(email: string): string | undefined {
  return EMAIL.exec(email)?.[1];
}

export function gcpAccountMatches(account: CloudAccount, email: string): boolean {
  return account.spec.gcp !== undefined && account.spec.gcp.projectId === projectOf(email);
}

export async function readServiceAccount(gcp: GcpReader, project: string, email: string): Promise<GcpFacts | undefined> {
  const serviceAccount = await gcp.getServiceAccount(project, email);
  if (!serviceAccount) return undefined;
  const member = `serviceAccount:${email}`;
  const [accounts, buckets, topics, secrets] = await Promise.all([gcp.listServiceAccounts(project), gcp.listBuckets(project), gcp.listTopics(project), gcp.listSecrets(project)]);
  const targets: PolicyTarget[] = [
    { kind: 'project', project },
    ...buckets.map((bucket): PolicyTarget => ({ kind: 'bucket', bucket })),
    ...topics.map((topic): PolicyTarget => ({ kind: 'topic', project, topic })),
    ...secrets.map((secret): PolicyTarget => ({ kind: 'secret', project, secret })),
    ...accounts.filter((a) => a !== email).map((a): PolicyTarget => ({ kind: 'serviceAccount', project, email: a })),
  ];
  const grants: GcpFacts['grants'] = [];
  for (const target of targets) {
    const policy = await orUndefined(gcp.getIamPolicy(target));
    for (const b of policy?.bindings ?? []) {
      if (!b.members.includes(member)) continue;
      grants.push({ target, role: b.role, ...(b.condition?.expression ? { condition: { ...(b.condition.title ? { title: b.condition.title } : {}), ...(b.condition.description ? { description: b.condition.description } : {}), expression: b.condition.expression } } : {}) });
    }
  }
  const policy = (await orUndefined(gcp.getIamPolicy({ kind: 'serviceAccount', project, email }))) ?? {};
  const searched = [`project ${project}`, `${buckets.length} bucket(s)`, `${topics.length} topic(s)`, `${secrets.length} secret(s)`, `${accounts.length - 1} other service account(s)`];
  return { serviceAccount, policy, grants, searched };
}

export function planGcp(source: HandMade, account: CloudAccount, facts: GcpFacts): CloudPlan {
  const gcp = account.spec.gcp;
  const project = gcp?.projectId ?? '';
  const blockers: string[] = [];
  const notes: string[] = [];
  const sa = facts.serviceAccount;
  const owner = describeMarker(sa.description);
  if (owner || sa.description.includes('keyless.dev/')) blockers.push(alreadyOwned('service account', owner ? `it belongs to ${owner}.` : 'its description names a Keyless WorkloadIdentity.'));

  const ksa = kubernetesServiceAccountMember(workloadPool(project, gcp?.workloadPool), source.namespace, source.serviceAccount);
  let trusted = false;
  for (const b of facts.policy.bindings ?? []) {
    if (b.role !== WORKLOAD_IDENTITY_USER) {
      notes.push(`${b.members.join(', ')} keep ${b.role} on the service account: Keyless leaves other roles on it alone`);
      continue;
    }
    if (b.condition?.expression) {
      if (b.members.includes(ksa)) blockers.push(`${ksa} may impersonate the service account only under the condition "${b.condition.expression}"; Keyless's trust has no condition`);
      else blockers.push(`${b.members.join(', ')} may also impersonate the service account (under a condition): adoption would remove them`);
      continue;
    }
    if (b.members.includes(ksa)) trusted = true;
    const others = b.members.filter((m) => m !== ksa);
    if (others.length) blockers.push(`${others.join(', ')} may also impersonate the service account (${WORKLOAD_IDENTITY_USER}): Keyless lets exactly one Kubernetes ServiceAccount in, so adoption would shut them out`);
  }
  if (!trusted) blockers.push(`${ksa} may not impersonate the service account (no unconditional ${WORKLOAD_IDENTITY_USER} binding for it): it is not this ServiceAccount's identity in this workload identity pool`);
  if (sa.disabled) notes.push('the service account is disabled: pods get no tokens until someone enables it (gcloud iam service-accounts enable)');

  const roles: GcpRoleGrant[] = [];
  for (const g of facts.grants) {
    if (g.target.kind === 'serviceAccount') {
      notes.push(`${g.role} on ${describeTarget(g.target)} stays as it is, unmanaged: Keyless grants on projects, buckets, topics and secrets (it goes when the WorkloadIdentity deletes the service account)`);
      continue;
    }
    const condition = g.condition ? { title: g.condition.title ?? 'migrated', ...(g.condition.description ? { description: g.condition.description } : {}), expression: g.condition.expression } : undefined;
    const onProject = g.target.kind === 'project' && g.target.project === project;
    roles.push({ role: g.role, ...(onProject ? {} : { resource: fullResourceName(g.target) }), ...(condition ? { condition } : {}) });
  }
  notes.push(`grants were looked for in ${facts.searched.join(', ')}; grants elsewhere (other projects, folders, other resource types) stay as they are, unmanaged`);

  return {
    adopt: sa.email,
    spec: { gcp: { mechanism: 'ServiceAccount', ...(roles.length ? { roles } : {}) } },
    blockers,
    notes,
    takeOverAnnotations: source.annotations[SERVICE_ACCOUNT_ANNOTATION.gcpServiceAccount] !== sa.email,
  };
}
