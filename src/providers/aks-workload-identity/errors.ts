// Azure Resource Manager error classification. The SDKs throw RestError with `statusCode` and the ARM error
// `code` (cloud-apis.md §4.4); credential failures (DefaultAzureCredential) carry no status at all.
import { CloudError, type CloudErrorKind } from '../cloud-error.ts';

/** Codes whose meaning does not follow from the HTTP status alone. */
const byCode: Record<string, CloudErrorKind> = {
  // The parent resource group is missing: not a "this object does not exist yet" state.
  ResourceGroupNotFound: 'terminal',
  SubscriptionNotFound: 'terminal',
  RoleAssignmentExists: 'alreadyExists',
  ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity: 'conflict',
  // Entra has not replicated a just-created principal yet; it appears within seconds to minutes.
  PrincipalNotFound: 'retryable',
  TooManyRequests: 'throttled',
  // An expired or not-yet-valid token: the credential refreshes on the next call.
  ExpiredAuthenticationToken: 'retryable',
};

/** The code CloudError carries when a managed identity already has the maximum of 20 federated credentials. */
export const CREDENTIAL_LIMIT_CODE = 'FederatedIdentityCredentialLimit';
// [unverified] wording: Entra documents the limit but not its error; match the number and the noun.
const CREDENTIAL_LIMIT = /(maximum|limit|too many)\b.*federated identity credentials|federated identity credentials.*\b(maximum|limit)\b/i;
const CONCURRENT = /concurrent/i;

function byStatus(status: number): CloudErrorKind {
  if (status === 404) return 'notFound';
  if (status === 409 || status === 412) return 'conflict';
  if (status === 429) return 'throttled';
  if (status === 408 || status >= 500) return 'retryable';
  return 'terminal';
}

export function classifyAzureError(operation: string, err: unknown): CloudError {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { statusCode?: unknown; code?: unknown; name?: unknown };
  const message = err instanceof Error ? err.message : String(err);
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status === undefined) {
    // No HTTP answer: a network failure, or the operator's own credential could not get a token.
    const code = typeof e.name === 'string' && /Credential|Authentication/.test(e.name) ? e.name : 'NetworkError';
    return new CloudError('retryable', code, operation, `${operation}: ${message}`, { cause: err });
  }
  let code = typeof e.code === 'string' && e.code ? e.code : `HTTP${status}`;
  if (status === 400 && CREDENTIAL_LIMIT.test(message) && !CONCURRENT.test(message)) code = CREDENTIAL_LIMIT_CODE;
  const kind = byCode[code] ?? (code === CREDENTIAL_LIMIT_CODE ? 'terminal' : byStatus(status));
  // Entra replication after a new identity is an expected wait, not a failure worth an error log.
  return new CloudError(kind, code, operation, `${operation}: ${message}`, { cause: err, ...(code === 'PrincipalNotFound' ? { quiet: true } : {}) });
}
