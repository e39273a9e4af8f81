// The exchange GKE's metadata server performs for a pod, for CredentialsVerified, through google-auth-library's own
// external-account client: the ServiceAccount token goes to Security Token Service
// (https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token), and in ServiceAccount mode the federated
// token then impersonates the Google service account (IAM Credentials generateAccessToken). The access token is
// dropped at once.
import { IdentityPoolClient } from 'google-auth-library';
import { CloudError } from '../cloud-error.ts';
import type { CloudCall } from '../instrument.ts';
import { GOOGLE_EXCHANGE_URLS } from './federation.ts';

/** Where the exchange goes: Security Token Service and IAM Credentials. */
export const DEFAULT_EXCHANGE_URLS = GOOGLE_EXCHANGE_URLS;

export interface GcpExchangePort {
  /** Resolves once Google answered with an access token; throws CloudError with Google's error otherwise. */
  exchange(input: { audience: string; token: string; impersonate?: string }): Promise<void>;
}

/** Google's answer to a refused exchange: STS's OAuth error, or a Google API error from generateAccessToken. */
function refusal(err: unknown): CloudError | undefined {
  const response = (err as { response?: { status?: number; data?: unknown } } | undefined)?.response;
  if (!response?.status || response.status >= 500 || response.status === 429) return undefined;
  const data = (typeof response.data === 'string' ? safeJson(response.data) : response.data) as
    | { error?: string | { status?: string; message?: string }; error_description?: string }
    | undefined;
  const code = typeof data?.error === 'string' ? data.error : (data?.error?.status ?? `Http${response.status}`);
  const message = data?.error_description ?? (typeof data?.error === 'object' ? data.error.message : undefined) ?? (err instanceof Error ? err.message : String(err));
  return new CloudError(response.status === 404 ? 'notFound' : 'terminal', code, 'ExchangeToken', message, { cause: err });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function createGcpExchangePort(call: CloudCall, urls: typeof DEFAULT_EXCHANGE_URLS): GcpExchangePort {
  return {
    async exchange({ audience, token, impersonate }) {
      const client = new IdentityPoolClient({
        type: 'external_account',
        audience,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_url: new URL('v1/token', urls.sts).href,
        subject_token_supplier: { getSubjectToken: () => Promise.resolve(token) },
        ...(impersonate ? { service_account_impersonation_url: new URL(`v1/projects/-/serviceAccounts/${impersonate}:generateAccessToken`, urls.iamcredentials).href } : {}),
      });
      await call('ExchangeToken', async () => {
        try {
          await client.getAccessToken();
        } catch (err) {
          throw refusal(err) ?? err;
        }
      });
    },
  };
}
