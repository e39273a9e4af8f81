// Azure guardrails: which roles a WorkloadIdentity may be assigned, and where. Roles that can grant access or
// manage everything are refused unless the CloudAccount allows privileged roles.
import type { AzureWorkloadIdentitySpec, CloudAccount } from '../../api/types.ts';
import type { Violation } from './types.ts';

/** Built-in names and role definition GUIDs (Azure built-in roles reference). */
export const PRIVILEGED_AZURE_ROLES: Record<string, string> = {
  owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  'user access administrator': '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
  'role based access control administrator': 'f58310d9-a9f6-439a-9e8d-f62e7b41a168',
};

export interface AzureVerdict {
  violations: Violation[];
  permitted: AzureWorkloadIdentitySpec;
}

/** A role as a name or GUID, however it is written: a full role definition id reduces to its GUID. */
function normalizeRole(role: string): string {
  const r = role.trim().toLowerCase();
  return /\/roledefinitions\/([0-9a-f-]{36})$/.exec(r)?.[1] ?? r;
}

const isPrivileged = (role: string) => {
  const r = normalizeRole(role);
  return r in PRIVILEGED_AZURE_ROLES || Object.values(PRIVILEGED_AZURE_ROLES).includes(r);
};

/** `.`, `..` and empty segments would let a URL resolver move the assignment to a broader scope than it reads. */
const plainScope = (scope: string) => scope.startsWith('/') && scope.slice(1).split('/').every((s) => s !== '' && s !== '.' && s !== '..');

export function evaluateAzure(spec: AzureWorkloadIdentitySpec, account: CloudAccount): AzureVerdict {
  const g = account.spec.guardrails?.azure ?? {};
  const violations: Violation[] = [];
  const kept = (spec.roleAssignments ?? []).filter((assignment, i) => {
    const found: Violation[] = [];
    const field = `spec.azure.roleAssignments[${i}]`;
    if (!g.allowPrivilegedRoles && isPrivileged(assignment.role)) {
      found.push({ field: `${field}.role`, entry: assignment.role, rule: 'no privileged roles', hint: 'Owner, Contributor, User Access Administrator and RBAC Administrator are refused; use a data-plane role such as Storage Blob Data Reader' });
    }
    if (!plainScope(assignment.scope)) {
      found.push({ field: `${field}.scope`, entry: assignment.scope, rule: 'plain scope path', hint: 'no empty, "." or ".." segments' });
    }
    if (g.allowedRoles && !g.allowedRoles.some((r) => normalizeRole(r) === normalizeRole(assignment.role))) {
      found.push({ field: `${field}.role`, entry: assignment.role, rule: 'guardrails.azure.allowedRoles', hint: `allowed: ${g.allowedRoles.join(', ')}` });
    }
    const scope = assignment.scope.toLowerCase().replace(/\/+$/, '');
    if (g.allowedScopePrefixes && !g.allowedScopePrefixes.some((p) => scope === p.toLowerCase().replace(/\/+$/, '') || scope.startsWith(`${p.toLowerCase().replace(/\/+$/, '')}/`))) {
      found.push({ field: `${field}.scope`, entry: assignment.scope, rule: 'guardrails.azure.allowedScopePrefixes', hint: `allowed under: ${g.allowedScopePrefixes.join(', ')}` });
    }
    violations.push(...found);
    return found.length === 0;
  });
  return { violations, permitted: { ...spec, roleAssignments: kept } };
}
