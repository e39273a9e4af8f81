// CredentialsVerified for AKS: the exchange the workload identity webhook sets a pod up for — its token (audience
// api://AzureADTokenExchange) as client assertion for the managed identity's client ID — and what Entra's answer
// means (AADSTS codes: https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
import { AUDIENCE, REASON } from '../../api/constants.ts';
import { isCloudError } from '../cloud-error.ts';
import type { CredentialCheck, IdentityContext, Provisioned, Verdict } from '../types.ts';
import { azureAccount, federatedCredentialName } from './desired.ts';
import type { AzureExchangePort } from './exchange-port.ts';

/** No federated credential of the identity names the assertion's issuer. */
const ISSUER_CODES = new Set(['AADSTS700211']);
/**
 * The issuer is known but the audience (700212) or the subject (700213) matches no federated credential — 70021 is
 * the older, undivided answer — or the identity is gone (700016).
 */
const TRUST_CODES = new Set(['AADSTS70021', 'AADSTS700212', 'AADSTS700213', 'AADSTS700016']);

export function azureCredentialCheck(exchange: AzureExchangePort): CredentialCheck {
  return {
    audience: () => AUDIENCE.azure,
    async exchange(ctx: IdentityContext, status: Provisioned['status'], token: string): Promise<Verdict> {
      const clientId = status.azure?.clientId ?? '';
      const tenantId = status.azure?.tenantId || azureAccount(ctx).tenantId;
      const credential = federatedCredentialName(ctx.cluster, ctx.namespace, ctx.name);
      try {
        await exchange.exchange({ tenantId, clientId, token });
        return { ok: true, reason: REASON.Verified, message: `Microsoft Entra issued a token for managed identity ${clientId} to ${ctx.subject} (issuer ${ctx.issuer}, audience ${AUDIENCE.azure}); it was discarded.` };
      } catch (err) {
        if (!isCloudError(err, 'terminal')) {
          return { ok: false, reason: REASON.ExchangeFailed, message: `The exchange could not be completed: ${err instanceof Error ? err.message : String(err)}`, transient: true };
        }
        if (ISSUER_CODES.has(err.code)) {
          return { ok: false, reason: REASON.IssuerNotTrusted, message: `Entra does not trust issuer ${ctx.issuer} for managed identity ${clientId}: ${err.message}. Check the CloudAccount's oidcIssuer against the cluster's (az aks show --query oidcIssuerProfile.issuerUrl).` };
        }
        if (TRUST_CODES.has(err.code)) {
          return {
            ok: false,
            reason: REASON.TrustRejected,
            message: `Entra refused ${ctx.subject} (audience ${AUDIENCE.azure}) for managed identity ${clientId}: ${err.message}. Federated credential ${credential} does not match them; Keyless restores it at its next reconcile unless someone else keeps changing it.`,
          };
        }
        return { ok: false, reason: REASON.ExchangeFailed, message: `The exchange failed: ${err.message}` };
      }
    },
  };
}
