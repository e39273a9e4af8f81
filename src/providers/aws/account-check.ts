// The AWS side of a CloudAccount: the issuer (given, or discovered with EKS DescribeCluster) and, for IRSA, the
// IAM OIDC identity provider that must trust it. Says precisely what to create when it is missing — or creates it,
// when the account opts in (spec.aws.manageOidcProvider, oidc-provider.ts).
import { REASON } from '../../api/constants.ts';
import type { CloudAccount } from '../../api/types.ts';
import type { AccountContext, AccountVerdict } from '../types.ts';
import { oidcProviderArn, partitionOf } from './arn.ts';
import type { EksPort } from './eks-port.ts';
import type { IamPort } from './iam-port.ts';
import { convergeOidcProviders, type OidcProviderOutcome } from './oidc-provider.ts';

/** What the managed providers add to a verdict: the record, their condition and Events. */
function trustOf(outcome: OidcProviderOutcome): Pick<AccountVerdict, 'managedTrust' | 'conditions' | 'events'> {
  return { managedTrust: { oidcProviderArns: outcome.record }, conditions: outcome.condition ? [outcome.condition] : [], events: outcome.events };
}

export async function checkAwsAccount(clients: { iam: IamPort; eks: EksPort }, account: CloudAccount, ctx: AccountContext): Promise<AccountVerdict> {
  const spec = account.spec.aws;
  if (!spec) throw new Error('not an AWS account');
  const { iam, eks } = clients;
  let issuer = spec.oidcIssuer || undefined;
  if (!issuer && spec.clusterName) {
    issuer = await eks.clusterIssuer(spec.clusterName);
    if (!issuer) {
      return {
        ok: false,
        reason: REASON.IssuerNotFound,
        message: `EKS cluster ${spec.clusterName} in ${spec.region} was not found or has no OIDC issuer. Fix spec.aws.clusterName, or set spec.aws.oidcIssuer to this cluster's service account issuer (kubectl get --raw /.well-known/openid-configuration).`,
        ...trustOf(await convergeOidcProviders(iam, account, undefined, ctx)),
      };
    }
  }
  if (!issuer) {
    return {
      ok: false,
      reason: REASON.IssuerNotFound,
      message: 'Set spec.aws.oidcIssuer to this cluster\'s service account issuer (kubectl get --raw /.well-known/openid-configuration), or spec.aws.clusterName to discover it from EKS.',
      ...trustOf(await convergeOidcProviders(iam, account, undefined, ctx)),
    };
  }
  const expected = oidcProviderArn(partitionOf(spec.region), spec.accountId, issuer);
  // AWS STS fetches the issuer's discovery document and JWKS for every IRSA token exchange.
  const trust = { issuerFetchedByCloud: true, ...trustOf(await convergeOidcProviders(iam, account, issuer, ctx)) };
  if (spec.manageOidcProvider) {
    // The converge made sure a provider for the issuer exists: ours, or someone else's, used as it is.
    return { ok: true, reason: REASON.Ready, issuer, oidcProviderArn: expected, message: `Issuer ${issuer} is trusted in AWS account ${spec.accountId} through IAM OIDC provider ${expected}.`, ...trust };
  }
  const providers = await iam.listOpenIDConnectProviders();
  if (!providers.includes(expected)) {
    const create = `aws iam create-open-id-connect-provider --url ${issuer} --client-id-list sts.amazonaws.com`;
    if (spec.mechanism === 'PodIdentity') {
      // Pod Identity trusts the EKS service principal, not the issuer: the account works without the provider.
      return { ok: true, reason: REASON.Ready, issuer, ...trust, message: `EKS Pod Identity is available on cluster ${spec.clusterName ?? ''} in AWS account ${spec.accountId}. IRSA is not: there is no IAM OIDC identity provider for issuer ${issuer} (create it with: ${create}).` };
    }
    return {
      ok: false,
      reason: REASON.OIDCProviderNotFound,
      issuer,
      message: `AWS account ${spec.accountId} has no IAM OIDC identity provider for issuer ${issuer}, so IRSA roles cannot trust this cluster. Create it: ${create}${spec.clusterName ? ` (or: eksctl utils associate-iam-oidc-provider --cluster ${spec.clusterName} --approve)` : ''}, or let Keyless create it: spec.aws.manageOidcProvider: true. Expected ARN: ${expected}.`,
      ...trust,
    };
  }
  return { ok: true, reason: REASON.Ready, issuer, oidcProviderArn: expected, message: `Issuer ${issuer} is trusted in AWS account ${spec.accountId} through IAM OIDC provider ${expected}.`, ...trust };
}
