// The exchange a pod's Azure SDK performs with its projected token, for CredentialsVerified: a client credentials grant
// at Microsoft Entra with the token as client assertion, through @azure/identity's ClientAssertionCredential (what
// WorkloadIdentityCredential uses). The access token is dropped at once.
import { ClientAssertionCredential } from '@azure/identity';
import { CloudError } from '../cloud-error.ts';
import type { CloudCall } from '../instrument.ts';

export interface AzureExchangePort {
  /** Resolves once Entra issued a token for the identity; throws CloudError with Entra's AADSTS answer otherwise. */
  exchange(input: { tenantId: string; clientId: string; token: string }): Promise<void>;
}

/** The Entra endpoint of the public cloud; another cloud's, or a local emulator's, is configured instead. */
export const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com';

export function createAzureExchangePort(call: CloudCall, authorityHost: string): AzureExchangePort {
  return {
    async exchange({ tenantId, clientId, token }) {
      const credential = new ClientAssertionCredential(tenantId, clientId, () => Promise.resolve(token), {
        authorityHost,
        // Instance discovery asks the public cloud whether the authority is known; any other authority host is one the
        // operator was configured with on purpose.
        disableInstanceDiscovery: authorityHost !== DEFAULT_AUTHORITY_HOST,
      });
      await call('ExchangeToken', async (abortSignal) => {
        try {
          await credential.getToken('https://management.azure.com/.default', { abortSignal });
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          const code = /AADSTS\d+/.exec(message)?.[0];
          // An AADSTS code is Entra's verdict; anything else (no answer, a 5xx) is worth trying again.
          throw new CloudError(code ? 'terminal' : 'retryable', code ?? 'NetworkError', 'ExchangeToken', message, { cause: err });
        }
      });
    },
  };
}
