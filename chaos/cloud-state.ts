// What the clouds hold, read straight from the emulators (past the fault proxies, so a check never meets a fault):
// every object carrying this run's ownership marker, grouped by the WorkloadIdentity it names, and the checks the
// chaos run makes of it. Nothing here asks the operator anything: its record and logs are not evidence.
import { DescribePodIdentityAssociationCommand, ListPodIdentityAssociationsCommand } from '@aws-sdk/client-eks';
import { GetAccountAuthorizationDetailsCommand, GetRoleCommand, type RoleDetail } from '@aws-sdk/client-iam';
import { AUDIENCE, MARKER } from '../src/api/constants.ts';
import type { WorkloadIdentity } from '../src/api/types.ts';
import { parseIamDocument } from '../src/providers/aws/policy-document.ts';
import { ownershipMarker, carriesMarker } from '../src/providers/gke-workload-identity/naming.ts';
import { BUILT_IN_ROLES } from '../test/emulators/azure/roles.ts';
import type { AwsCloud, AzureCloud, GcpCloud } from '../bench/clouds.ts';
import { AZURE_SCOPE, CLUSTER_NAME, GCP_BUCKET, GCP_PROJECT } from '../bench/clouds.ts';
import { NAMESPACES, awsResource, azureRoles, gcpRoles, key, type Member } from './population.ts';

export interface Clouds {
  aws: AwsCloud;
  gcp: GcpCloud;
  azure: AzureCloud;
  issuer: string;
}

interface Statement {
  Effect?: string;
  Principal?: { Federated?: string; Service?: string } | string;
  Action?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface RoleView {
  name: string;
  arn: string;
  namespace: string;
  trust: Statement[];
  /** Every Resource of every inline policy statement. */
  resources: string[];
}

export interface AssociationView {
  id: string;
  namespace: string;
  serviceAccount: string;
}

export interface GsaView {
  email: string;
  namespace: string;
  /** The GSA's own policy: role → members. */
  policy: { role: string; members: string[]; condition: boolean }[];
}

/** A member of ours in a shared policy (the project's or the bucket's). */
export interface SharedGrant {
  policy: string;
  role: string;
  member: string;
  condition: boolean;
}

export interface AzureIdentityView {
  name: string;
  namespace: string;
  principalId: string;
  credentials: { issuer: string; subject: string; audiences: string[] }[];
}

export interface AzureAssignmentView {
  principalId: string;
  role: string;
  scope: string;
}

export interface Inventory {
  roles: Map<string, RoleView[]>;
  /** By `namespace/serviceAccount`: what an association binds. */
  associations: Map<string, AssociationView[]>;
  gsas: Map<string, GsaView[]>;
  shared: SharedGrant[];
  azureIdentities: Map<string, AzureIdentityView[]>;
  /** Assignments whose principal is one of ours, now or before (an assignment outlives its principal). */
  azureAssignments: AzureAssignmentView[];
}

const push = <V>(map: Map<string, V[]>, k: string, v: V) => {
  const list = map.get(k);
  if (list) list.push(v);
  else map.set(k, [v]);
};

const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Whose a member of a shared policy is: ours when it names a chaos namespace's ServiceAccount or one of our GSAs. */
function ourMember(member: string, gsaEmails: Set<string>): boolean {
  if (NAMESPACES.some((ns) => member.includes(`/ns/${ns}/`) || member.includes(`[${ns}/`))) return true;
  const email = /^(?:deleted:)?serviceAccount:([^?]+)/.exec(member)?.[1];
  return email !== undefined && gsaEmails.has(email);
}

/**
 * Reads the clouds. `known` carries what earlier reads saw (our GSA emails, our Azure principals), since a deleted
 * object's grants can outlive it and still be ours.
 */
export async function takeInventory(clouds: Clouds, known: { gsaEmails: Set<string>; principals: Set<string> }): Promise<Inventory> {
  const inv: Inventory = { roles: new Map(), associations: new Map(), gsas: new Map(), shared: [], azureIdentities: new Map(), azureAssignments: [] };

  // AWS: one paged call returns every role with its trust, inline policies and tags.
  let marker: string | undefined;
  do {
    const page = await clouds.aws.direct.iam.send(new GetAccountAuthorizationDetailsCommand({ Filter: ['Role'], Marker: marker }));
    for (const role of page.RoleDetailList ?? []) addRole(inv, role);
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  let nextToken: string | undefined;
  do {
    const page = await clouds.aws.direct.eks.send(new ListPodIdentityAssociationsCommand({ clusterName: CLUSTER_NAME, nextToken }));
    for (const a of page.associations ?? []) {
      if (!NAMESPACES.includes(a.namespace ?? '')) continue;
      push(inv.associations, `${a.namespace}/${a.serviceAccount}`, { id: a.associationId ?? '', namespace: a.namespace ?? '', serviceAccount: a.serviceAccount ?? '' });
    }
    nextToken = page.nextToken;
  } while (nextToken);

  // Google: the emulator's state, in this process.
  const state = clouds.gcp.emulator.state;
  for (const sa of state.serviceAccounts.values()) {
    const ns = new RegExp(`(?:^|\\s)${MARKER.namespace}=(\\S+)`).exec(sa.description)?.[1];
    const name = new RegExp(`(?:^|\\s)${MARKER.name}=(\\S+)`).exec(sa.description)?.[1];
    if (!ns || !name || !carriesMarker(sa.description, ownershipMarker(CLUSTER_NAME, ns, name))) continue;
    known.gsaEmails.add(sa.email);
    const policy = state.policies.get(`serviceAccount/${sa.email}`);
    push(inv.gsas, `${ns}/${name}`, { email: sa.email, namespace: ns, policy: (policy?.bindings ?? []).map((b) => ({ role: b.role, members: [...b.members], condition: b.condition !== undefined })) });
  }
  for (const policyKey of [`project/${GCP_PROJECT.id}`, `bucket/${GCP_BUCKET}`]) {
    for (const b of state.policies.get(policyKey)?.bindings ?? []) {
      for (const member of b.members) if (ourMember(member, known.gsaEmails)) inv.shared.push({ policy: policyKey, role: b.role, member, condition: b.condition !== undefined });
    }
  }

  // Azure: the emulator's state, in this process.
  const arm = clouds.azure.test.emulator.state;
  for (const identity of arm.identities.values()) {
    if (identity.tags[MARKER.cluster] !== CLUSTER_NAME) continue;
    const ns = identity.tags[MARKER.namespace] ?? '';
    known.principals.add(identity.principalId.toLowerCase());
    push(inv.azureIdentities, `${ns}/${identity.tags[MARKER.name] ?? ''}`, {
      name: identity.name,
      namespace: ns,
      principalId: identity.principalId.toLowerCase(),
      credentials: [...identity.credentials.values()].map((c) => ({ issuer: c.issuer, subject: c.subject, audiences: [...c.audiences] })),
    });
  }
  for (const a of arm.assignments.values()) {
    if (!known.principals.has(a.principalId.toLowerCase())) continue;
    const guid = a.roleDefinitionId.split('/').pop() ?? '';
    inv.azureAssignments.push({ principalId: a.principalId.toLowerCase(), role: BUILT_IN_ROLES.find((r) => r.guid === guid)?.roleName ?? guid, scope: a.scope.toLowerCase() });
  }
  return inv;
}

function addRole(inv: Inventory, role: RoleDetail): void {
  const tags = Object.fromEntries((role.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
  if (tags[MARKER.cluster] !== CLUSTER_NAME) return;
  const ns = tags[MARKER.namespace] ?? '';
  const trust = (parseIamDocument(role.AssumeRolePolicyDocument ?? '{}') as { Statement?: Statement[] }).Statement ?? [];
  const resources = (role.RolePolicyList ?? []).flatMap((p) => ((parseIamDocument(p.PolicyDocument ?? '{}') as { Statement?: { Resource?: string | string[] }[] }).Statement ?? []).flatMap((s) => list(s.Resource)));
  push(inv.roles, `${ns}/${tags[MARKER.name] ?? ''}`, { name: role.RoleName ?? '', arn: role.Arn ?? '', namespace: ns, trust, resources });
}

// ---------------------------------------------------------------------------------------------------------------
// Checks over one inventory. Each returns sentences naming what is wrong; empty means it holds.

const subjectOf = (ns: string, sa: string) => `system:serviceaccount:${ns}:${sa}`;
const SUBJECT = /^system:serviceaccount:([a-z0-9-]+):([a-z0-9.-]+)$/;

/** Trust broader than one exact ServiceAccount of the object's own namespace, anywhere. */
export function broaderTrust(inv: Inventory, clouds: Clouds): string[] {
  const problems: string[] = [];
  const host = clouds.issuer.replace(/^https:\/\//, '');
  for (const roles of inv.roles.values()) {
    for (const role of roles) {
      for (const s of role.trust) {
        const principal = typeof s.Principal === 'object' ? s.Principal : {};
        const conditionKeys = Object.keys(s.Condition ?? {});
        const equals = s.Condition?.['StringEquals'] ?? {};
        if (principal.Federated !== undefined) {
          const sub = list(equals[`${host}:sub`]);
          const aud = list(equals[`${host}:aud`]);
          const m = sub.length === 1 ? SUBJECT.exec(sub[0] ?? '') : null;
          if (principal.Federated !== clouds.aws.providerArn || conditionKeys.join() !== 'StringEquals' || !m || m[1] !== role.namespace || aud.join() !== AUDIENCE.irsa) {
            problems.push(`role ${role.name} trusts ${JSON.stringify(s)}`);
          }
        } else if (principal.Service === 'pods.eks.amazonaws.com') {
          if (conditionKeys.join() !== 'StringEquals' || equals['aws:RequestTag/kubernetes-namespace'] !== role.namespace || typeof equals['aws:RequestTag/kubernetes-service-account'] !== 'string' || typeof equals['aws:RequestTag/eks-cluster-arn'] !== 'string') {
            problems.push(`role ${role.name} trusts ${JSON.stringify(s)}`);
          }
        } else {
          problems.push(`role ${role.name} trusts an unexpected principal: ${JSON.stringify(s)}`);
        }
      }
    }
  }
  const pool = `${GCP_PROJECT.id}.svc.id.goog`;
  for (const gsas of inv.gsas.values()) {
    for (const gsa of gsas) {
      for (const b of gsa.policy) {
        const exact = b.members.every((mem) => new RegExp(`^serviceAccount:${pool.replace(/\./g, '\\.')}\\[${gsa.namespace}/[a-z0-9.-]+\\]$`).test(mem));
        if (b.role !== 'roles/iam.workloadIdentityUser' || b.condition || !exact) problems.push(`Google service account ${gsa.email} grants ${b.role} to ${b.members.join(', ')}`);
      }
    }
  }
  for (const g of inv.shared) if (g.member.startsWith('principalSet:')) problems.push(`${g.policy} grants ${g.role} to a principal set: ${g.member}`);
  for (const identities of inv.azureIdentities.values()) {
    for (const identity of identities) {
      for (const c of identity.credentials) {
        const m = SUBJECT.exec(c.subject);
        if (c.issuer !== clouds.issuer || !m || m[1] !== identity.namespace || c.audiences.join() !== AUDIENCE.azure) {
          problems.push(`managed identity ${identity.name} trusts ${JSON.stringify(c)}`);
        }
      }
    }
  }
  return problems;
}

/** Two cloud objects for one identity, or one grant twice. */
export function duplicates(inv: Inventory): string[] {
  const problems: string[] = [];
  for (const [k, roles] of inv.roles) if (roles.length > 1) problems.push(`${k}: ${roles.length} IAM roles (${roles.map((r) => r.name).join(', ')})`);
  for (const [k, as] of inv.associations) if (as.length > 1) problems.push(`${k}: ${as.length} Pod Identity associations`);
  for (const [k, gsas] of inv.gsas) if (gsas.length > 1) problems.push(`${k}: ${gsas.length} Google service accounts`);
  const grants = new Map<string, number>();
  for (const g of inv.shared) grants.set(`${g.policy} ${g.role} ${g.member} ${g.condition}`, (grants.get(`${g.policy} ${g.role} ${g.member} ${g.condition}`) ?? 0) + 1);
  for (const [g, count] of grants) if (count > 1) problems.push(`${g}: granted ${count} times`);
  for (const [k, ids] of inv.azureIdentities) {
    if (ids.length > 1) problems.push(`${k}: ${ids.length} managed identities`);
    for (const id of ids) if (id.credentials.length > 1) problems.push(`${k}: ${id.credentials.length} federated credentials on ${id.name}`);
  }
  const assignments = new Map<string, number>();
  for (const a of inv.azureAssignments) assignments.set(`${a.principalId} ${a.role} ${a.scope}`, (assignments.get(`${a.principalId} ${a.role} ${a.scope}`) ?? 0) + 1);
  for (const [a, count] of assignments) if (count > 1) problems.push(`role assignment ${a}: ${count} times`);
  return problems;
}

/**
 * After convergence: the clouds hold exactly what the model asks for — each live identity's objects in its
 * current cloud only, its grants as its current spec says, trust for its current ServiceAccount — and nothing of
 * identities that are gone.
 */
export function mismatches(inv: Inventory, live: Member[], clouds: Clouds): string[] {
  const problems: string[] = [];
  const expect = (ok: boolean, what: string) => {
    if (!ok) problems.push(what);
  };
  const liveKeys = new Set(live.map(key));
  const host = clouds.issuer.replace(/^https:\/\//, '');
  const expectedShared = new Set<string>();
  const expectedPrincipals = new Set<string>();
  for (const m of live) {
    const k = key(m);
    if (m.switched) {
      // Refused with CloudMismatch: it may hold nothing anywhere.
      const held = (inv.roles.get(k)?.length ?? 0) + (inv.gsas.get(k)?.length ?? 0) + (inv.azureIdentities.get(k)?.length ?? 0) + (inv.associations.get(`${m.namespace}/${m.serviceAccount}`)?.length ?? 0);
      expect(held === 0, `${k}: switched cloud (CloudMismatch) but still holds ${held} cloud objects`);
      continue;
    }
    const roles = inv.roles.get(k) ?? [];
    const gsas = inv.gsas.get(k) ?? [];
    const azure = inv.azureIdentities.get(k) ?? [];
    const aws = m.kind === 'irsa' || m.kind === 'pod';
    expect(aws ? roles.length === 1 : roles.length === 0, `${k} (${m.kind}): ${roles.length} IAM roles`);
    expect(m.kind === 'gkeSa' ? gsas.length === 1 : gsas.length === 0, `${k} (${m.kind}): ${gsas.length} Google service accounts`);
    expect(m.kind === 'aks' ? azure.length === 1 : azure.length === 0, `${k} (${m.kind}): ${azure.length} managed identities`);
    const role = roles[0];
    if (aws && role) {
      expect(role.resources.join() === awsResource(m), `${k}: role ${role.name} grants ${role.resources.join(', ')}, the spec asks for ${awsResource(m)}`);
      const trusted = role.trust.map((s) => (m.kind === 'irsa' ? list(s.Condition?.['StringEquals']?.[`${host}:sub`]) : list(s.Condition?.['StringEquals']?.['aws:RequestTag/kubernetes-service-account'])).join());
      const want = m.kind === 'irsa' ? subjectOf(m.namespace, m.serviceAccount) : m.serviceAccount;
      expect(trusted.join() === want, `${k}: role ${role.name} trusts ${trusted.join(', ')}, the spec names ${want}`);
    }
    const associations = inv.associations.get(`${m.namespace}/${m.serviceAccount}`) ?? [];
    expect(m.kind === 'pod' ? associations.length === 1 : associations.length === 0, `${k} (${m.kind}): ${associations.length} Pod Identity associations`);
    if (m.kind === 'gkeSa' && gsas[0]) {
      const members = gsas[0].policy.flatMap((b) => b.members);
      const want = `serviceAccount:${GCP_PROJECT.id}.svc.id.goog[${m.namespace}/${m.serviceAccount}]`;
      expect(members.join() === want, `${k}: ${gsas[0].email} trusts ${members.join(', ')}, the spec names ${want}`);
      for (const r of gcpRoles(m)) expectedShared.add(`${r.resource ? `bucket/${GCP_BUCKET}` : `project/${GCP_PROJECT.id}`} ${r.role} serviceAccount:${gsas[0].email}`);
    }
    if (m.kind === 'gkeDp') {
      const principal = `principal://iam.googleapis.com/projects/${GCP_PROJECT.number}/locations/global/workloadIdentityPools/${GCP_PROJECT.id}.svc.id.goog/subject/ns/${m.namespace}/sa/${m.serviceAccount}`;
      for (const r of gcpRoles(m)) expectedShared.add(`${r.resource ? `bucket/${GCP_BUCKET}` : `project/${GCP_PROJECT.id}`} ${r.role} ${principal}`);
    }
    const identity = azure[0];
    if (m.kind === 'aks' && identity) {
      expectedPrincipals.add(identity.principalId);
      const subjects = identity.credentials.map((c) => c.subject).join();
      expect(subjects === subjectOf(m.namespace, m.serviceAccount), `${k}: ${identity.name} trusts ${subjects}, the spec names ${subjectOf(m.namespace, m.serviceAccount)}`);
      const got = inv.azureAssignments.filter((a) => a.principalId === identity.principalId).map((a) => `${a.role}@${a.scope}`).sort();
      const want = azureRoles(m).map((r) => `${r.role}@${r.scope.toLowerCase()}`).sort();
      expect(got.join() === want.join(), `${k}: ${identity.name} is assigned ${got.join(', ') || 'nothing'}, the spec asks for ${want.join(', ')}`);
    }
  }
  for (const g of inv.shared) {
    const id = `${g.policy} ${g.role} ${g.member}`;
    expect(expectedShared.has(id) && !g.condition, `${id}: granted, but no live identity asks for it`);
  }
  const got = new Set(inv.shared.map((g) => `${g.policy} ${g.role} ${g.member}`));
  for (const want of expectedShared) expect(got.has(want), `${want}: asked for, not granted`);
  for (const a of inv.azureAssignments) expect(expectedPrincipals.has(a.principalId), `role assignment ${a.role} at ${a.scope} for ${a.principalId}: its identity is gone`);
  const stray = (map: Map<string, unknown[]>, what: string) => {
    for (const [k, v] of map) if (v.length && !liveKeys.has(k)) problems.push(`${k}: ${what} left, the WorkloadIdentity is gone`);
  };
  stray(inv.roles, 'IAM role');
  stray(inv.gsas, 'Google service account');
  stray(inv.azureIdentities, 'managed identity');
  const liveServiceAccounts = new Set(live.filter((m) => m.kind === 'pod').map((m) => `${m.namespace}/${m.serviceAccount}`));
  for (const [k, v] of inv.associations) if (v.length && !liveServiceAccounts.has(k)) problems.push(`${k}: Pod Identity association left`);
  return problems;
}

/** Objects of this run left anywhere: after delete-all, each count must be 0. */
export function ownedCounts(inv: Inventory): Record<string, number> {
  const count = (map: Map<string, unknown[]>) => [...map.values()].reduce((s, v) => s + v.length, 0);
  return {
    roles: count(inv.roles),
    associations: count(inv.associations),
    googleServiceAccounts: count(inv.gsas),
    googleGrants: inv.shared.length,
    managedIdentities: count(inv.azureIdentities),
    roleAssignments: inv.azureAssignments.length,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// At the moment the API server let a WorkloadIdentity go (its last finalizer removed), what of it the cloud still has.

/** What the last version of a deleted WorkloadIdentity recorded, still in the cloud; empty means it was all revoked. */
export async function remainsOf(clouds: Clouds, last: WorkloadIdentity): Promise<string[]> {
  const record = last.status?.provisioned;
  if (!record || last.spec.deletionPolicy === 'Orphan') return [];
  const remains: string[] = [];
  if (record.aws) {
    const exists = await clouds.aws.direct.iam.send(new GetRoleCommand({ RoleName: record.aws.roleName })).then(
      () => true,
      (err: unknown) => ((err as { name?: string }).name === 'NoSuchEntityException' ? false : Promise.reject(err as Error)),
    );
    if (exists) remains.push(`IAM role ${record.aws.roleName}`);
    const associationId = last.status?.aws?.associationId;
    if (record.aws.clusterName && associationId) {
      const association = await clouds.aws.direct.eks.send(new DescribePodIdentityAssociationCommand({ clusterName: record.aws.clusterName, associationId })).then(
        () => true,
        (err: unknown) => ((err as { name?: string }).name === 'ResourceNotFoundException' ? false : Promise.reject(err as Error)),
      );
      if (association) remains.push(`Pod Identity association ${associationId}`);
    }
  }
  if (record.gcp) {
    const state = clouds.gcp.emulator.state;
    const email = record.gcp.serviceAccountEmail;
    if (email && state.serviceAccounts.has(email)) remains.push(`Google service account ${email}`);
    for (const grant of record.gcp.grants ?? []) {
      for (const [policyKey, policy] of state.policies) {
        if (policy.bindings.some((b) => b.role === grant.role && b.members.includes(grant.member))) remains.push(`${grant.role} for ${grant.member} in ${policyKey}`);
      }
    }
  }
  if (record.azure) {
    const arm = clouds.azure.test.emulator.state;
    const identity = [...arm.identities.values()].find((i) => i.name === record.azure?.identityName && i.resourceGroup.toLowerCase() === record.azure.resourceGroup.toLowerCase());
    if (identity) remains.push(`managed identity ${identity.name}`);
    const principal = last.status?.azure?.principalId?.toLowerCase();
    if (principal) for (const a of arm.assignments.values()) if (a.principalId.toLowerCase() === principal) remains.push(`role assignment ${a.name}`);
  }
  return remains;
}

/** The shared Azure scope every AKS identity is assigned at, lower-cased as ARM compares it. */
export const SHARED_AZURE_SCOPE = AZURE_SCOPE.toLowerCase();
