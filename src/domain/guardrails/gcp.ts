// GCP guardrails: which roles a WorkloadIdentity may be granted, and on what. Basic roles, IAM administration and
// service-account impersonation are refused unless the CloudAccount allows privileged roles.
import type { CloudAccount, GcpWorkloadIdentitySpec } from '../../api/types.ts';
import { globMatches, globsIntersect } from '../patterns.ts';
import type { Violation } from './types.ts';

/** Basic roles and roles that administer IAM or mint other identities' credentials. */
export const PRIVILEGED_GCP_ROLES = [
  'roles/owner',
  'roles/editor',
  'roles/viewer',
  'roles/iam.*',
  'roles/resourcemanager.*Admin',
  'roles/resourcemanager.projectIamAdmin',
];

export interface GcpVerdict {
  violations: Violation[];
  permitted: GcpWorkloadIdentitySpec;
}

export function evaluateGcp(spec: GcpWorkloadIdentitySpec, account: CloudAccount): GcpVerdict {
  const g = account.spec.guardrails?.gcp ?? {};
  const project = `//cloudresourcemanager.googleapis.com/projects/${account.spec.gcp?.projectId ?? ''}`;
  const violations: Violation[] = [];
  const kept = (spec.roles ?? []).filter((grant, i) => {
    const found: Violation[] = [];
    const field = `spec.gcp.roles[${i}]`;
    const resource = grant.resource ?? project;
    if (!g.allowPrivilegedRoles && PRIVILEGED_GCP_ROLES.some((p) => globMatches(p, grant.role))) {
      found.push({ field: `${field}.role`, entry: grant.role, rule: 'no privileged roles', hint: 'basic, IAM admin and token creator roles are refused; grant a predefined role for the resource' });
    }
    if ((g.deniedRoles ?? []).some((p) => globMatches(p, grant.role))) {
      found.push({ field: `${field}.role`, entry: grant.role, rule: 'guardrails.gcp.deniedRoles', hint: 'the platform team denies this role' });
    }
    if (g.allowedRoles && !g.allowedRoles.some((p) => globMatches(p, grant.role))) {
      found.push({ field: `${field}.role`, entry: grant.role, rule: 'guardrails.gcp.allowedRoles', hint: `allowed: ${g.allowedRoles.join(', ')}` });
    }
    if ((g.deniedResources ?? []).some((p) => globsIntersect(p, resource))) {
      found.push({ field: `${field}.resource`, entry: resource, rule: 'guardrails.gcp.deniedResources', hint: 'it reaches a denied resource' });
    }
    if (g.allowedResources && !g.allowedResources.some((p) => globMatches(p, resource))) {
      found.push({ field: `${field}.resource`, entry: resource, rule: 'guardrails.gcp.allowedResources', hint: `allowed: ${g.allowedResources.join(', ')}` });
    }
    violations.push(...found);
    return found.length === 0;
  });
  return { violations, permitted: { ...spec, roles: kept } };
}
