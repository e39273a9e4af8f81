// The IRSA trust policy: the cluster's IAM OIDC provider may assume the role with a web identity token only for
// the exact subject and the STS audience — StringEquals on both, never StringLike, never a wildcard
// (https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html).
import { AUDIENCE } from '../../api/constants.ts';
import { issuerHostPath } from '../aws/arn.ts';
import type { PolicyDocument } from '../aws/policy-document.ts';

export function irsaTrustPolicy(oidcProviderArn: string, issuer: string, subject: string): PolicyDocument {
  const key = issuerHostPath(issuer);
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'KeylessIRSA',
        Effect: 'Allow',
        Principal: { Federated: oidcProviderArn },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: { StringEquals: { [`${key}:sub`]: subject, [`${key}:aud`]: AUDIENCE.irsa } },
      },
    ],
  };
}
