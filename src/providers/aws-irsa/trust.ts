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

const listOf = (value: unknown): string[] => (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');

/**
 * Whether a trust policy lets `subject` assume the role through the IAM OIDC provider `oidcProviderArn`: an Allow of
 * sts:AssumeRoleWithWebIdentity for that Federated principal with StringEquals on `<issuer>:sub` naming the subject.
 * The proof that a role made by hand is this ServiceAccount's before Keyless adopts it (providers/adoption.ts).
 */
export function trustsSubject(trust: unknown, oidcProviderArn: string, issuer: string, subject: string): boolean {
  const raw = (trust as { Statement?: unknown } | undefined)?.Statement;
  const statements = (Array.isArray(raw) ? raw : raw ? [raw] : []) as IamStatement[];
  const key = `${issuerHostPath(issuer)}:sub`;
  return statements.some((s) => {
    if (s.Effect !== 'Allow') return false;
    if (!listOf(s.Action).some((a) => a.toLowerCase() === 'sts:assumerolewithwebidentity')) return false;
    const principal = typeof s.Principal === 'object' ? s.Principal : {};
    if (!listOf(principal['Federated']).includes(oidcProviderArn)) return false;
    return listOf(s.Condition?.['StringEquals']?.[key]).includes(subject);
  });
}
