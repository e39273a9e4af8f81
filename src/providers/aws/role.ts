// The IAM role behind every AWS mechanism: the trust differs (IRSA's web identity, Pod Identity's service
// principal), everything else — inline policy, managed attachments, session duration, permissions boundary,
// ownership tags, drift repair and the deletion order — is shared here.
import { trustsSubject } from '../aws-irsa/trust.ts';
import { notAdoptable } from '../adoption.ts';
import { isCloudError } from '../cloud-error.ts';
import { describeTaggedOwner, isOwned, notOwned, unmarked } from '../ownership.ts';
import { stepRunner } from '../steps.ts';
import type { Change, Revoked } from '../types.ts';
import type { IamPort, IamRole } from './iam-port.ts';
import { samePolicy, type PolicyDocument } from './policy-document.ts';

/** The single inline policy Keyless writes on its roles. */
export const INLINE_POLICY_NAME = 'keyless';

export interface DesiredRole {
  name: string;
  path: string;
  arn: string;
  description: string;
  trustPolicy: PolicyDocument;
  inlinePolicy: PolicyDocument | undefined;
  managedPolicyArns: string[];
  maxSessionDuration: number;
  permissionsBoundaryArn: string | undefined;
  /** Ownership marker plus the account's extra tags. */
  tags: Record<string, string>;
  /** The subset of tags that proves ownership (DESIGN §3). */
  marker: Record<string, string>;
  /** Take over an unmarked role with this name (see IdentityContext.adopt). */
  adopt: boolean;
  /** Set for a role keyless.dev/adopt names: adopted only if its trust already lets this subject in through this provider. */
  adoptOnlyIfTrusted?: { oidcProviderArn: string; issuer: string; subject: string };
}

export interface ObservedRole {
  role: IamRole | undefined;
  inlinePolicyNames: string[];
  inlinePolicy: unknown;
  managedPolicyArns: string[];
}

/**
 * A request IAM refuses becomes that step's CloudRejected condition. The role itself was found moments before, so a
 * missing entity here is something the spec names (a managed policy ARN, a boundary) that does not exist: retrying
 * cannot help either.
 */
const asStep = stepRunner({
  cloud: 'IAM',
  rejects: (err) => err.kind === 'terminal' || err.kind === 'notFound',
  hints: {
    identity: "Check spec.aws.maxSessionDuration and the CloudAccount's rolePath, roleNamePrefix, permissionsBoundaryArn and tags.",
    trust: "Check the CloudAccount's issuer and OIDC provider.",
    permissions: 'Fix spec.aws.policy or spec.aws.managedPolicyArns.',
  },
});

function assertOwned(role: IamRole, desired: DesiredRole): void {
  if (isOwned(role.tags, desired.marker)) return;
  throw notOwned('identity', `IAM role ${role.arn}`, describeTaggedOwner(role.tags), 'delete or rename that role, use a different WorkloadIdentity name', { adoptable: true });
}

/** Reads the role and its grants. Missing things are states, not errors; nothing is written. */
export async function observeRole(iam: IamPort, desired: DesiredRole): Promise<ObservedRole> {
  const role = await iam.getRole(desired.name);
  if (!role || !isOwned(role.tags, desired.marker)) {
    return { role, inlinePolicyNames: [], inlinePolicy: undefined, managedPolicyArns: [] };
  }
  const [inlinePolicyNames, managedPolicyArns] = await Promise.all([iam.listRolePolicies(desired.name), iam.listAttachedRolePolicies(desired.name)]);
  const inlinePolicy = inlinePolicyNames.includes(INLINE_POLICY_NAME) ? await iam.getRolePolicy(desired.name, INLINE_POLICY_NAME) : undefined;
  return { role, inlinePolicyNames, inlinePolicy, managedPolicyArns };
}

/** Converges the role to `desired`; returns the role and what changed. Safe to repeat. */
export async function ensureRole(iam: IamPort, desired: DesiredRole, observed: ObservedRole): Promise<{ role: IamRole; changes: Change[] }> {
  const changes: Change[] = [];
  let role = observed.role;
  let current = observed;
  if (!role) {
    try {
      // CreateRole carries trust, tags and boundary in one call, so a role never exists without its marker.
      role = await asStep('identity', () => iam.createRole({
        name: desired.name,
        path: desired.path,
        trustPolicy: JSON.stringify(desired.trustPolicy),
        description: desired.description,
        maxSessionDuration: desired.maxSessionDuration,
        ...(desired.permissionsBoundaryArn ? { permissionsBoundaryArn: desired.permissionsBoundaryArn } : {}),
        tags: desired.tags,
      }));
      changes.push({ step: 'identity', action: 'Created', message: `Created IAM role ${role.arn}` });
      current = { role, inlinePolicyNames: [], inlinePolicy: undefined, managedPolicyArns: [] };
    } catch (err) {
      if (!isCloudError(err, 'alreadyExists')) throw err;
      // Someone (or an earlier attempt of ours) created it between observe and create: look again.
      current = await observeRole(iam, desired);
      if (!current.role) throw err;
      role = current.role;
    }
  }
  if (desired.adopt && !isOwned(role.tags, desired.marker) && unmarked(role.tags)) {
    const proof = desired.adoptOnlyIfTrusted;
    if (proof && !trustsSubject(role.trustPolicy, proof.oidcProviderArn, proof.issuer, proof.subject)) {
      throw notAdoptable(
        'identity',
        `IAM role ${role.arn}`,
        `its trust policy does not let ${proof.subject} assume it through ${proof.oidcProviderArn || "the cluster's IAM OIDC provider (the CloudAccount has none)"}`,
        'name the role this ServiceAccount uses today, or remove the annotation to let Keyless create a role of its own',
      );
    }
    // Adoption: the marker goes on first, so from here on the role is ours like any other.
    await asStep('identity', () => iam.tagRole(desired.name, desired.tags));
    role = { ...role, tags: { ...role.tags, ...desired.tags } };
    current = await observeRole(iam, desired);
    changes.push({ step: 'identity', action: 'Adopted', message: `Adopted the existing IAM role ${role.arn} (keyless.dev/adopt) and tagged it as owned` });
  }
  assertOwned(role, desired);

  if (!samePolicy(role.trustPolicy, desired.trustPolicy)) {
    await asStep('trust', () => iam.updateAssumeRolePolicy(desired.name, JSON.stringify(desired.trustPolicy)));
    changes.push({ step: 'trust', action: 'TrustUpdated', message: `Updated the trust policy of IAM role ${role.arn}` });
  }
  if (role.maxSessionDuration !== desired.maxSessionDuration || role.description !== desired.description) {
    await asStep('identity', () => iam.updateRole(desired.name, { maxSessionDuration: desired.maxSessionDuration, description: desired.description }));
    changes.push({ step: 'identity', action: 'RoleUpdated', message: `Set MaxSessionDuration of IAM role ${role.arn} to ${desired.maxSessionDuration}s` });
  }
  if (role.permissionsBoundaryArn !== desired.permissionsBoundaryArn) {
    const boundary = desired.permissionsBoundaryArn;
    await asStep('permissions', () => (boundary ? iam.putRolePermissionsBoundary(desired.name, boundary) : iam.deleteRolePermissionsBoundary(desired.name)));
    changes.push({ step: 'permissions', action: 'BoundaryUpdated', message: `Set the permissions boundary of IAM role ${role.arn} to ${desired.permissionsBoundaryArn ?? 'none'}` });
  }
  const missingTags = Object.fromEntries(Object.entries(desired.tags).filter(([k, v]) => role.tags[k] !== v));
  if (Object.keys(missingTags).length) {
    await asStep('identity', () => iam.tagRole(desired.name, missingTags));
    changes.push({ step: 'identity', action: 'TagsUpdated', message: `Restored tags ${Object.keys(missingTags).join(', ')} on IAM role ${role.arn}` });
  }

  changes.push(...(await asStep('permissions', () => ensureGrants(iam, desired, current, role.arn))));
  return { role, changes };
}

async function ensureGrants(iam: IamPort, desired: DesiredRole, observed: ObservedRole, arn: string): Promise<Change[]> {
  const changes: Change[] = [];
  if (desired.inlinePolicy && !samePolicy(observed.inlinePolicy, desired.inlinePolicy)) {
    await iam.putRolePolicy(desired.name, INLINE_POLICY_NAME, JSON.stringify(desired.inlinePolicy));
    changes.push({ step: 'permissions', action: 'PolicyUpdated', message: `Put inline policy ${INLINE_POLICY_NAME} on IAM role ${arn}` });
  }
  // Our role carries exactly what the spec grants: an inline policy someone else added widens it.
  for (const name of observed.inlinePolicyNames) {
    if (name === INLINE_POLICY_NAME && desired.inlinePolicy) continue;
    await iam.deleteRolePolicy(desired.name, name);
    changes.push({ step: 'permissions', action: 'PolicyRemoved', message: `Removed inline policy ${name} from IAM role ${arn}: it is not in the spec` });
  }
  for (const policyArn of desired.managedPolicyArns) {
    if (observed.managedPolicyArns.includes(policyArn)) continue;
    await iam.attachRolePolicy(desired.name, policyArn);
    changes.push({ step: 'permissions', action: 'PolicyAttached', message: `Attached ${policyArn} to IAM role ${arn}` });
  }
  for (const policyArn of observed.managedPolicyArns) {
    if (desired.managedPolicyArns.includes(policyArn)) continue;
    await iam.detachRolePolicy(desired.name, policyArn);
    changes.push({ step: 'permissions', action: 'PolicyDetached', message: `Detached ${policyArn} from IAM role ${arn}: it is not in the spec` });
  }
  return changes;
}

/**
 * Deletes the role in the order IAM requires (DeleteRole API reference): inline policies, managed attachments,
 * instance profiles, then the role; complete only once GetRole no longer finds it. A role we do not own is
 * left untouched.
 */
export async function deleteRole(iam: IamPort, role: { name: string; arn: string; marker: Record<string, string> }): Promise<Revoked> {
  const found = await iam.getRole(role.name);
  if (!found) return { complete: true, message: `IAM role ${role.arn} is gone`, changes: [] };
  if (!isOwned(found.tags, role.marker)) {
    return { complete: true, message: `IAM role ${found.arn} is not owned by this WorkloadIdentity and was left untouched`, changes: [] };
  }
  for (const name of await iam.listRolePolicies(role.name)) await iam.deleteRolePolicy(role.name, name);
  for (const arn of await iam.listAttachedRolePolicies(role.name)) await iam.detachRolePolicy(role.name, arn);
  for (const profile of await iam.listInstanceProfilesForRole(role.name)) await iam.removeRoleFromInstanceProfile(profile, role.name);
  await iam.deleteRole(role.name);
  const gone = !(await iam.getRole(role.name));
  return {
    complete: gone,
    message: gone ? `Deleted IAM role ${found.arn}` : `Deleting IAM role ${found.arn}; waiting for IAM to confirm`,
    changes: [{ step: 'identity', action: 'Deleted', message: `Deleted IAM role ${found.arn} with its policies` }],
  };
}
