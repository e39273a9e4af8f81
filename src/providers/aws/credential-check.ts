// CredentialsVerified for AWS: the exchange a pod's SDK performs — STS AssumeRoleWithWebIdentity with the IRSA token
// (audience sts.amazonaws.com), or EKS Auth AssumeRoleForPodIdentity with the Pod Identity token (audience
// pods.eks.amazonaws.com, what the Pod Identity Agent does for the pod) — and what the answer means for a person.
import { AUDIENCE, REASON } from '../../api/constants.ts';
import type { AwsMechanism } from '../../api/types.ts';
import { isCloudError } from '../cloud-error.ts';
import { POD_IDENTITY_PRINCIPAL } from '../eks-pod-identity/trust.ts';
import type { CredentialCheck, IdentityContext, Provisioned, Verdict } from '../types.ts';
import { awsAccount } from './desired-role.ts';
import type { ExchangePort } from './exchange-port.ts';

/** The role the answer names: arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION → NAME. */
const assumedRoleName = (arn: string) => /:assumed-role\/([^/]+)\//.exec(arn)?.[1];

export function awsCredentialCheck(mechanism: AwsMechanism, exchange: ExchangePort): CredentialCheck {
  const pod = mechanism === 'PodIdentity';
  return {
    audience: () => (pod ? POD_IDENTITY_PRINCIPAL : AUDIENCE.irsa),
    async exchange(ctx: IdentityContext, status: Provisioned['status'], token: string): Promise<Verdict> {
      const roleArn = status.aws?.roleArn ?? '';
      const clusterName = awsAccount(ctx).clusterName ?? '';
      try {
        const assumed = pod ? await exchange.assumeRoleForPodIdentity(clusterName, token) : await exchange.assumeRoleWithWebIdentity(roleArn, token);
        const wanted = status.aws?.roleName ?? '';
        if (assumedRoleName(assumed)?.toLowerCase() !== wanted.toLowerCase()) {
          return { ok: false, reason: REASON.TrustRejected, message: `The exchange succeeded but gave ${assumed}, not role ${roleArn}: another association or role answers for this ServiceAccount.` };
        }
        return {
          ok: true,
          reason: REASON.Verified,
          message: pod
            ? `EKS Auth AssumeRoleForPodIdentity gave ${assumed} for a token of ServiceAccount ${ctx.namespace}/${ctx.serviceAccountName} (audience ${POD_IDENTITY_PRINCIPAL}) on cluster ${clusterName}; the credentials were discarded.`
            : `STS AssumeRoleWithWebIdentity gave ${assumed} for a token of ${ctx.subject} (issuer ${ctx.issuer}, audience ${AUDIENCE.irsa}); the credentials were discarded.`,
        };
      } catch (err) {
        if (!isCloudError(err) || (err.kind !== 'terminal' && err.kind !== 'notFound')) {
          return { ok: false, reason: REASON.ExchangeFailed, message: `The exchange could not be completed: ${err instanceof Error ? err.message : String(err)}`, transient: true };
        }
        const answer = err.message;
        if (!pod && err.code === 'InvalidIdentityToken' && /openid ?connect provider/i.test(answer)) {
          return {
            ok: false,
            reason: REASON.IssuerNotTrusted,
            message: `STS does not trust issuer ${ctx.issuer}: ${answer}. Create the IAM OIDC provider (aws iam create-open-id-connect-provider --url ${ctx.issuer} --client-id-list ${AUDIENCE.irsa}); the CloudAccount's Ready condition names it too.`,
          };
        }
        if (err.code === 'AccessDenied' || err.code === 'ResourceNotFound' || err.code === 'IDPRejectedClaim') {
          return {
            ok: false,
            reason: REASON.TrustRejected,
            message: pod
              ? `EKS refused a token of ServiceAccount ${ctx.namespace}/${ctx.serviceAccountName} on cluster ${clusterName}: ${answer}. The Pod Identity association or the trust of role ${roleArn} does not allow it; Keyless repairs both at its next reconcile unless someone else changes them.`
              : `STS refused to let ${ctx.subject} (audience ${AUDIENCE.irsa}) assume ${roleArn}: ${answer}. The role's trust policy does not allow that subject and audience; Keyless restores it at its next reconcile (a DriftRepaired Event) unless someone else keeps changing it.`,
          };
        }
        return { ok: false, reason: REASON.ExchangeFailed, message: `The exchange failed: ${answer}` };
      }
    },
  };
}
