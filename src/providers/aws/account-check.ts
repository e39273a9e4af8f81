// The AWS side of a CloudAccount: the issuer (given, or discovered with EKS DescribeCluster) and, for IRSA, the
// IAM OIDC identity provider that must trust it. Says precisely what to create when it is missing.
import { REASON } from '../../api/constants.ts';
import type { CloudAccount } from '../../api/types.ts';
import type { AccountVerdict } from '../types.ts';
import { oidcProviderArn, partitionOf } from './arn.ts';
import type { EksPort } from './eks-port.ts';
import type { IamPort } from './iam-port.ts';

export async function checkAwsAccount(clients: { iam: IamPort; eks: EksPort }, account: CloudAccount): Promise<AccountVerdict> {
  const spec = account.spec.aws;
  if (!spec) throw new Error('not an AWS account');
  const { iam, eks } = clients;
  let issuer = spec.oidcIssuer || undefined;
  if (!issuer && spec.clusterName) {
    issuer = await eks.clusterIssuer(spec.clusterName);
    if (!issuer) {
      return { ok: false, reason: REASON.IssuerNotFound, message: `EKS cluster ${spec.clusterName} in ${spec.region} was not found or has no OIDC issuer. Fix spec.aws.clusterName, or set spec.aws.oidcIssuer to this cluster's service account issuer (kubectl get --raw /.well-known/openid-configuration).` };
    }
  }
  if (!issuer) {
    return { ok: false, reason: REASON.IssuerNotFound, message: 'Set spec.aws.oidcIssuer to this cluster\'s service account issuer (kubectl get --raw /.well-known/openid-configuration), or spec.aws.clusterName to discover it from EKS.' };
  }
  const expected = oidcProviderArn(partitionOf(spec.region), spec.accountId, issuer);
  const providers = await iam.listOpenIDConnectProviders();
  if (!providers.includes(expected)) {
    const create = `aws iam create-open-id-connect-provider --url ${issuer} --client-id-list sts.amazonaws.com`;
    if (spec.mechanism === 'PodIdentity') {
      // Pod Identity trusts the EKS service principal, not the issuer: the account works without the provider.
      return { ok: true, reason: REASON.Ready, issuer, message: `EKS Pod Identity is available on cluster ${spec.clusterName ?? ''} in AWS account ${spec.accountId}. IRSA is not: there is no IAM OIDC identity provider for issuer ${issuer} (create it with: ${create}).` };
    }
    return {
      ok: false,
      reason: REASON.OIDCProviderNotFound,
      issuer,
      message: `AWS account ${spec.accountId} has no IAM OIDC identity provider for issuer ${issuer}, so IRSA roles cannot trust this cluster. Create it: ${create}${spec.clusterName ? ` (or: eksctl utils associate-iam-oidc-provider --cluster ${spec.clusterName} --approve)` : ''}. Expected ARN: ${expected}.`,
    };
  }
  return { ok: true, reason: REASON.Ready, issuer, oidcProviderArn: expected, message: `Issuer ${issuer} is trusted in AWS account ${spec.accountId} through IAM OIDC provider ${expected}.` };
}
