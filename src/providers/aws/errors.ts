// AWS error classification for IAM (awsQuery) and EKS (restJson1). Codes from the IAM and EKS API references;
// the SDK exposes the wire code as `name` (sometimes with an `Exception` suffix) and, for awsQuery, as `Code`.
import { CloudError, type CloudErrorKind } from '../cloud-error.ts';

const kinds: Record<string, CloudErrorKind> = {
  NoSuchEntity: 'notFound',
  ResourceNotFound: 'notFound',
  NotFound: 'notFound',
  EntityAlreadyExists: 'alreadyExists',
  ResourceInUse: 'alreadyExists',
  MalformedPolicyDocument: 'terminal',
  InvalidInput: 'terminal',
  // IAM answers LimitExceeded for size quotas ("Cannot exceed quota for ACLSizePerRole: 2048"); only a smaller
  // spec helps.
  LimitExceeded: 'terminal',
  ResourceLimitExceeded: 'terminal',
  UnmodifiableEntity: 'terminal',
  PolicyNotAttachable: 'terminal',
  InvalidParameter: 'terminal',
  InvalidRequest: 'terminal',
  ValidationError: 'terminal',
  AccessDenied: 'terminal',
  // STS and EKS Auth, for the token exchange of CredentialsVerified: a refused token is a verdict, not a retry.
  InvalidIdentityToken: 'terminal',
  IDPRejectedClaim: 'terminal',
  ExpiredToken: 'terminal',
  InvalidToken: 'terminal',
  RegionDisabled: 'terminal',
  IDPCommunicationError: 'retryable',
  Throttling: 'throttled',
  TooManyRequests: 'throttled',
  RequestLimitExceeded: 'throttled',
  ConcurrentModification: 'retryable',
  DeleteConflict: 'retryable',
  EntityTemporarilyUnmodifiable: 'retryable',
  ServiceFailure: 'retryable',
};

function awsCode(err: unknown): string {
  if (typeof err !== 'object' || err === null) return 'Unknown';
  const e = err as { Code?: unknown; name?: unknown };
  const raw = typeof e.Code === 'string' ? e.Code : typeof e.name === 'string' ? e.name : 'Unknown';
  return raw.replace(/Exception$/, '');
}

export function classifyAwsError(operation: string, err: unknown): CloudError {
  const code = awsCode(err);
  const message = err instanceof Error ? err.message : String(err);
  const hasResponse = typeof err === 'object' && err !== null && '$metadata' in err;
  // Unknown codes and transport failures (no response at all) are worth retrying with backoff.
  const kind: CloudErrorKind = kinds[code] ?? 'retryable';
  return new CloudError(kind, hasResponse ? code : 'NetworkError', operation, `${operation}: ${message}`, { cause: err });
}
