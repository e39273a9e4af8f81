// The IRSA trust statement: the cluster's IAM OIDC provider may assume the role with a web identity token only for
// the exact subject and the STS audience — StringEquals on both, never StringLike, never a wildcard
// (https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html).
import { AUDIENCE } from '../../api/constants.ts';
import { issuerHostPath } from '../aws/arn.ts';
import type { IamStatement } from '../aws/policy-document.ts';

/** Statement id that marks the IRSA statement in a trust policy Keyless wrote. */
export const IRSA_SID = 'KeylessIRSA';

export function irsaTrustStatement(oidcProviderArn: string, issuer: string, subject: string): IamStatement {
  const key = issuerHostPath(issuer);
  return {
    Sid: IRSA_SID,
    Effect: 'Allow',
    Principal: { Federated: oidcProviderArn },
    Action: 'sts:AssumeRoleWithWebIdentity',
    Condition: { StringEquals: { [`${key}:sub`]: subject, [`${key}:aud`]: AUDIENCE.irsa } },
  };
}
