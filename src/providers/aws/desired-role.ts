// The pure half of every AWS mechanism: from a WorkloadIdentity and its CloudAccount to the desired IAM role,
// and the checks the API schema cannot make (sizes that depend on the rendered documents).
import { awsRoleName } from '../../domain/naming.ts';
import { parseDurationSeconds } from '../../domain/duration.ts';
import { declaredIdentityProblems } from '../adoption.ts';
import type { IdentityContext } from '../types.ts';
import { parseRoleArn, partitionOf, roleArn } from './arn.ts';
import { policySize, renderInlinePolicy, type PolicyDocument } from './policy-document.ts';
import { markerTags } from '../ownership.ts';
import type { DesiredRole } from './role.ts';

/** IAM quotas (IAM User Guide, "IAM and AWS STS quotas"): trust policy and aggregate inline policy sizes. */
export const TRUST_POLICY_MAX = 2048;
export const INLINE_POLICY_MAX = 10240;
const DEFAULT_SESSION_SECONDS = 3600;
export const ROLE_NAME_PREFIX = 'keyless-';

export function awsAccount(ctx: IdentityContext) {
  const aws = ctx.account.spec.aws;
  if (!aws) throw new Error(`CloudAccount ${ctx.account.metadata.name} has no aws section`);
  return aws;
}

/** The role keyless.dev/adopt names, when it is a role ARN of this CloudAccount's account and partition. */
function declaredRole(ctx: IdentityContext): { name: string; path: string } | undefined {
  const account = awsAccount(ctx);
  const arn = ctx.adoptIdentity === undefined ? undefined : parseRoleArn(ctx.adoptIdentity);
  return arn && arn.accountId === account.accountId && arn.partition === partitionOf(account.region) ? { name: arn.name, path: arn.path } : undefined;
}

/** The role's name and path: the role keyless.dev/adopt names, else the derived name under the account's rolePath. */
export function roleNameOf(ctx: IdentityContext): { name: string; path: string } {
  const account = awsAccount(ctx);
  return declaredRole(ctx) ?? { name: awsRoleName(account.roleNamePrefix ?? ROLE_NAME_PREFIX, ctx.cluster, ctx.namespace, ctx.name), path: account.rolePath ?? '/keyless/' };
}

export function validateAwsSpec(ctx: IdentityContext, trust: PolicyDocument): string[] {
  const account = awsAccount(ctx);
  const problems: string[] = declaredIdentityProblems(
    ctx,
    declaredRole(ctx) !== undefined,
    `an IAM role ARN in account ${account.accountId} (arn:${partitionOf(account.region)}:iam::${account.accountId}:role/NAME)`,
    ctx.record?.aws !== undefined,
  );
  const spec = ctx.spec.aws ?? {};
  const trustSize = policySize(trust);
  if (trustSize > TRUST_POLICY_MAX) {
    problems.push(`the trust policy would be ${trustSize} characters, over IAM's ${TRUST_POLICY_MAX}-character quota; shorten the ServiceAccount or namespace name`);
  }
  const inline = renderInlinePolicy(spec.policy);
  if (inline && policySize(inline) > INLINE_POLICY_MAX) {
    problems.push(`spec.aws.policy renders to ${policySize(inline)} characters, over IAM's ${INLINE_POLICY_MAX}-character inline policy quota; use fewer statements or wildcards in resource ARNs, or a managed policy`);
  }
  if (spec.maxSessionDuration !== undefined) {
    const seconds = parseDurationSeconds(spec.maxSessionDuration);
    if (seconds === undefined || seconds < 3600 || seconds > 43200) {
      problems.push(`spec.aws.maxSessionDuration "${spec.maxSessionDuration}" must be a duration between 1h and 12h`);
    }
  }
  return problems;
}

export function desiredRole(ctx: IdentityContext, trustPolicy: PolicyDocument): DesiredRole {
  const account = awsAccount(ctx);
  const spec = ctx.spec.aws ?? {};
  const partition = partitionOf(account.region);
  const { name, path } = roleNameOf(ctx);
  const marker = markerTags(ctx);
  return {
    name,
    path,
    arn: roleArn(partition, account.accountId, path, name),
    description: `Keyless WorkloadIdentity ${ctx.namespace}/${ctx.name} for ServiceAccount ${ctx.serviceAccountName}`,
    trustPolicy,
    inlinePolicy: renderInlinePolicy(spec.policy),
    managedPolicyArns: [...new Set(spec.managedPolicyArns ?? [])],
    maxSessionDuration: (spec.maxSessionDuration && parseDurationSeconds(spec.maxSessionDuration)) || DEFAULT_SESSION_SECONDS,
    permissionsBoundaryArn: account.permissionsBoundaryArn || undefined,
    // The marker goes last so account tags can never overwrite it.
    tags: { ...(account.tags ?? {}), ...marker },
    marker,
    adopt: ctx.adopt === true,
    // A role named in keyless.dev/adopt must already trust this ServiceAccount through the cluster's OIDC provider.
    ...(declaredRole(ctx) ? { adoptOnlyIfTrusted: { oidcProviderArn: ctx.account.status?.oidcProviderArn ?? '', issuer: ctx.issuer, subject: ctx.subject } } : {}),
  };
}
