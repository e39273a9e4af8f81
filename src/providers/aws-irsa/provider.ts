// AWS IRSA: an IAM role trusted by the cluster's OIDC provider for exactly one ServiceAccount, and the
// ServiceAccount annotation the EKS pod identity webhook reads (eks.amazonaws.com/role-arn).
import { AUDIENCE, SERVICE_ACCOUNT_ANNOTATION } from '../../api/constants.ts';
import { partitionOf, oidcProviderArn } from '../aws/arn.ts';
import { awsAccount, desiredRole, validateAwsSpec } from '../aws/desired-role.ts';
import type { IamPort } from '../aws/iam-port.ts';
import { INLINE_POLICY_NAME, deleteRole, ensureRole, observeRole, type DesiredRole, type ObservedRole } from '../aws/role.ts';
import type { IdentityContext, Provider, Provisioned, Revoked } from '../types.ts';
import { irsaTrustPolicy } from './trust.ts';

export interface IrsaDesired {
  role: DesiredRole;
  issuer: string;
  subject: string;
}

function trustFor(ctx: IdentityContext) {
  const account = awsAccount(ctx);
  const providerArn = ctx.account.status?.oidcProviderArn ?? oidcProviderArn(partitionOf(account.region), account.accountId, ctx.issuer);
  return irsaTrustPolicy(providerArn, ctx.issuer, ctx.subject);
}

export class IrsaProvider implements Provider<IrsaDesired, ObservedRole> {
  readonly cloud = 'aws' as const;
  readonly mechanism = 'IRSA';
  readonly #iam: IamPort;

  /** One provider per CloudAccount: `iam` carries that account's rate limiter. */
  constructor(iam: IamPort) {
    this.#iam = iam;
  }

  validate(ctx: IdentityContext): string[] {
    return validateAwsSpec(ctx, trustFor(ctx));
  }

  desired(ctx: IdentityContext): IrsaDesired {
    return { role: desiredRole(ctx, trustFor(ctx)), issuer: ctx.issuer, subject: ctx.subject };
  }

  observe(desired: IrsaDesired): Promise<ObservedRole> {
    return observeRole(this.#iam, desired.role);
  }

  async ensure(desired: IrsaDesired, observed: ObservedRole): Promise<Provisioned> {
    const { role, changes } = await ensureRole(this.#iam, desired.role, observed);
    const grants = [
      ...(desired.role.inlinePolicy ? [`inline policy ${INLINE_POLICY_NAME}`] : []),
      ...desired.role.managedPolicyArns,
    ];
    return {
      status: { identity: role.arn, audience: AUDIENCE.irsa, aws: { roleArn: role.arn, roleName: role.name } },
      serviceAccountAnnotations: { [SERVICE_ACCOUNT_ANNOTATION.awsRoleArn]: role.arn },
      messages: {
        identity: `IAM role ${role.arn} exists`,
        trust: `IAM role ${role.arn} trusts issuer ${desired.issuer} for subject ${desired.subject} with audience ${AUDIENCE.irsa} only`,
        permissions: grants.length ? `IAM role ${role.arn} grants ${grants.join(', ')}` : `IAM role ${role.arn} grants no permissions (the spec lists none)`,
      },
      changes,
    };
  }

  delete(desired: IrsaDesired): Promise<Revoked> {
    return deleteRole(this.#iam, desired.role);
  }
}
