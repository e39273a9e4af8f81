// CredentialsVerified for GKE: what the metadata server does for a pod of the ServiceAccount — exchange its token
// (audience: the workload identity pool) at Security Token Service for the identity namespace, then, in ServiceAccount
// mode, impersonate the Google service account, which needs roles/iam.workloadIdentityUser for serviceAccount:POOL[NS/SA].
// Off GKE, what a pod's client library does with the credential configuration Keyless wrote: exchange the projected
// token (audience: the provider, https form) with the provider's full name as the STS audience, then impersonate.
import { REASON } from '../../api/constants.ts';
import { isCloudError } from '../cloud-error.ts';
import type { CredentialCheck, IdentityContext, Provisioned, Verdict } from '../types.ts';
import { gcpAccount } from './desired.ts';
import type { GcpExchangePort } from './exchange-port.ts';
import { federatedPrincipal, federationOf, stsAudience, tokenAudience, type FederationProvider } from './federation.ts';
import { kubernetesServiceAccountMember, workloadPool, WORKLOAD_IDENTITY_USER } from './naming.ts';

/** The issuer the token names (the cluster's), which the identity namespace audience names too. */
function issuerOf(token: string): string {
  try {
    return (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: string }).iss ?? '';
  } catch {
    return '';
  }
}

export function gcpCredentialCheck(exchange: GcpExchangePort): CredentialCheck {
  const poolOf = (ctx: IdentityContext) => {
    const account = gcpAccount(ctx);
    return workloadPool(account.projectId, account.workloadPool);
  };
  return {
    audience: (ctx) => {
      const federation = federationOf(gcpAccount(ctx));
      return federation ? tokenAudience(federation) : poolOf(ctx);
    },
    async exchange(ctx: IdentityContext, status: Provisioned['status'], token: string): Promise<Verdict> {
      const federation = federationOf(gcpAccount(ctx));
      if (federation) return federatedExchange(exchange, federation, ctx, status, token);
      const pool = poolOf(ctx);
      const gsa = status.gcp?.serviceAccountEmail;
      const member = kubernetesServiceAccountMember(pool, ctx.namespace, ctx.serviceAccountName);
      const audience = `identitynamespace:${pool}:${issuerOf(token)}`;
      try {
        await exchange.exchange({ audience, token, ...(gsa ? { impersonate: gsa } : {}) });
        return {
          ok: true,
          reason: REASON.Verified,
          message: gsa
            ? `Security Token Service accepted a token of ${ctx.subject} for ${pool}, and ${member} could impersonate ${gsa}; the access token was discarded.`
            : `Security Token Service accepted a token of ${ctx.subject} for ${pool}, acting as ${status.gcp?.member ?? 'the principal'}; the access token was discarded.`,
        };
      } catch (err) {
        return refused(
          err,
          member,
          gsa,
          (message) =>
            `Security Token Service refused a token of ${ctx.subject} for identity namespace ${pool}: ${message}. Check that this cluster's workload identity pool is ${pool} (CloudAccount spec.gcp.workloadPool) and that Workload Identity is enabled on the cluster.`,
        );
      }
    },
  };
}

async function federatedExchange(exchange: GcpExchangePort, federation: FederationProvider, ctx: IdentityContext, status: Provisioned['status'], token: string): Promise<Verdict> {
  const gsa = status.gcp?.serviceAccountEmail;
  const principal = federatedPrincipal(federation, ctx.subject);
  try {
    await exchange.exchange({ audience: stsAudience(federation), token, ...(gsa ? { impersonate: gsa } : {}) });
    return {
      ok: true,
      reason: REASON.Verified,
      message: gsa
        ? `Security Token Service accepted a token of ${ctx.subject} through provider ${federation.name}, and ${principal} could impersonate ${gsa}; the access token was discarded.`
        : `Security Token Service accepted a token of ${ctx.subject} through provider ${federation.name}, acting as ${principal}; the access token was discarded.`,
    };
  } catch (err) {
    return refused(err, principal, gsa, (message) => `Security Token Service refused a token of ${ctx.subject} (issuer ${ctx.issuer}) through provider ${federation.name}: ${message}. Check that the provider is active and trusts this cluster's issuer (oidc.issuerUri ${ctx.issuer}, and keys Google can fetch or jwksJson), accepts the audience ${tokenAudience(federation)}, maps google.subject=assertion.sub, and that its attributeCondition admits this ServiceAccount.`);
  }
}

/**
 * What a refused exchange says: the impersonation refused (the workloadIdentityUser binding is missing), the token
 * refused by STS (`issuerRefused` says what to check), or anything else.
 */
function refused(err: unknown, member: string, gsa: string | undefined, issuerRefused: (message: string) => string): Verdict {
  if (!isCloudError(err) || (err.kind !== 'terminal' && err.kind !== 'notFound')) {
    return { ok: false, reason: REASON.ExchangeFailed, message: `The exchange could not be completed: ${err instanceof Error ? err.message : String(err)}`, transient: true };
  }
  if (err.code === 'PERMISSION_DENIED' || err.code === 'Http403') {
    return {
      ok: false,
      reason: REASON.TrustRejected,
      message: `${member} may not impersonate ${gsa ?? 'the Google service account'}: ${err.message}. Its ${WORKLOAD_IDENTITY_USER} binding is missing; Keyless restores it at its next reconcile unless someone else keeps removing it.`,
    };
  }
  if (err.code === 'invalid_grant' || err.code === 'invalid_target' || err.code === 'invalid_request') {
    return { ok: false, reason: REASON.IssuerNotTrusted, message: issuerRefused(err.message) };
  }
  return { ok: false, reason: REASON.ExchangeFailed, message: `The exchange failed: ${err.message}` };
}
