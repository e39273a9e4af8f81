// The IAM role behind every AWS mechanism: the trust differs (IRSA's web identity, Pod Identity's service
// principal), everything else — inline policy, managed attachments, session duration, permissions boundary,
// ownership tags, drift repair and the deletion order — is shared here.
import { MARKER, REASON } from '../../api/constants.ts';
import { isCloudError } from '../cloud-error.ts';
import { ProviderError, type Change, type Revoked, type Step } from '../types.ts';
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
}

export interface ObservedRole {
  role: IamRole | undefined;
  inlinePolicyNames: string[];
  inlinePolicy: unknown;
  managedPolicyArns: string[];
}

export function ownershipMarker(cluster: string, namespace: string, name: string): Record<string, string> {
  return { [MARKER.cluster]: cluster, [MARKER.namespace]: namespace, [MARKER.name]: name };
}

export function isOwned(tags: Record<string, string>, marker: Record<string, string>): boolean {
  return Object.entries(marker).every(([k, v]) => tags[k] === v);
}

const REJECTION_HINT: Record<Step, string> = {
  identity: 'Check spec.aws.maxSessionDuration and the CloudAccount\'s rolePath, roleNamePrefix, permissionsBoundaryArn and tags.',
  trust: 'Check the CloudAccount\'s issuer and OIDC provider.',
  permissions: 'Fix spec.aws.policy or spec.aws.managedPolicyArns.',
};

/** Runs one step's IAM calls; a request IAM refuses becomes that step's CloudRejected condition. */
async function asStep<T>(step: Step, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    // The role itself was found moments ago, so a missing entity here is something the spec names (a managed
    // policy ARN, a boundary) that does not exist: retrying cannot help.
    if (!isCloudError(err, 'terminal') && !isCloudError(err, 'notFound')) throw err;
    throw new ProviderError(step, REASON.CloudRejected, `IAM rejected ${err.message}. ${REJECTION_HINT[step]}`, false, { cause: err });
  }
}

/** A role with none of the marker keys: created outside Keyless, so adoptable on request. */
function unmarked(role: IamRole): boolean {
  return !Object.keys(role.tags).some((k) => k.startsWith('keyless.dev/'));
}

function assertOwned(role: IamRole, desired: DesiredRole): void {
  if (isOwned(role.tags, desired.marker)) return;
  const owner = role.tags[MARKER.namespace] && role.tags[MARKER.name] ? ` It belongs to ${role.tags[MARKER.namespace]}/${role.tags[MARKER.name]} (cluster ${role.tags[MARKER.cluster] ?? 'unknown'}).` : ' It has no Keyless ownership tags.';
  throw new ProviderError(
    'identity',
    REASON.NotOwned,
    `IAM role ${role.arn} already exists and is not owned by this WorkloadIdentity.${owner} Keyless never modifies a role it does not own: delete or rename that role, use a different WorkloadIdentity name, or — for a role created outside Keyless — annotate the WorkloadIdentity keyless.dev/adopt: "true" where the CloudAccount sets guardrails.allowAdoption.`,
    false,
  );
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
  if (desired.adopt && !isOwned(role.tags, desired.marker) && unmarked(role)) {
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
export async function deleteRole(iam: IamPort, desired: DesiredRole): Promise<Revoked> {
  const role = await iam.getRole(desired.name);
  if (!role) return { complete: true, message: `IAM role ${desired.arn} is gone`, changes: [] };
  if (!isOwned(role.tags, desired.marker)) {
    return { complete: true, message: `IAM role ${role.arn} is not owned by this WorkloadIdentity and was left untouched`, changes: [] };
  }
  for (const name of await iam.listRolePolicies(desired.name)) await iam.deleteRolePolicy(desired.name, name);
  for (const arn of await iam.listAttachedRolePolicies(desired.name)) await iam.detachRolePolicy(desired.name, arn);
  for (const profile of await iam.listInstanceProfilesForRole(desired.name)) await iam.removeRoleFromInstanceProfile(profile, desired.name);
  await iam.deleteRole(desired.name);
  const gone = !(await iam.getRole(desired.name));
  return {
    complete: gone,
    message: gone ? `Deleted IAM role ${role.arn}` : `Deleting IAM role ${role.arn}; waiting for IAM to confirm`,
    changes: [{ step: 'identity', action: 'Deleted', message: `Deleted IAM role ${role.arn} with its policies` }],
  };
}
