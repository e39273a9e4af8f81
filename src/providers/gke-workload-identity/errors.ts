// Google API error classification. The REST clients (@googleapis/*, google-auth-library) throw GaxiosError with
// the HTTP status and the Google error body `{error: {code, message, status}}`; gRPC-style errors carry a numeric
// gRPC code below 100 (cloud-apis.md §3.3). Both map to one CloudError kind.
import { CloudError, type CloudErrorKind } from '../cloud-error.ts';

const GRPC_STATUS: Record<number, string> = {
  1: 'CANCELLED',
  2: 'UNKNOWN',
  3: 'INVALID_ARGUMENT',
  4: 'DEADLINE_EXCEEDED',
  5: 'NOT_FOUND',
  6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED',
  8: 'RESOURCE_EXHAUSTED',
  9: 'FAILED_PRECONDITION',
  10: 'ABORTED',
  13: 'INTERNAL',
  14: 'UNAVAILABLE',
  16: 'UNAUTHENTICATED',
};

const HTTP_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  412: 'FAILED_PRECONDITION',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

interface GoogleErrorLike {
  code?: unknown;
  status?: unknown;
  message?: unknown;
  response?: { status?: number; data?: unknown };
}

interface Parsed {
  http: number | undefined;
  status: string;
  message: string;
}

function bodyError(data: unknown): { status?: string; message?: string; reason?: string } | undefined {
  let value = data;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  const error = (value as { error?: { status?: unknown; message?: unknown; errors?: { reason?: unknown }[] } } | null)?.error;
  if (!error || typeof error !== 'object') return undefined;
  return {
    ...(typeof error.status === 'string' ? { status: error.status } : {}),
    ...(typeof error.message === 'string' ? { message: error.message } : {}),
    ...(typeof error.errors?.[0]?.reason === 'string' ? { reason: error.errors[0].reason } : {}),
  };
}

function parse(err: unknown): Parsed | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as GoogleErrorLike;
  if (typeof e.code === 'number' && e.code < 100) {
    return { http: undefined, status: GRPC_STATUS[e.code] ?? 'UNKNOWN', message: typeof e.message === 'string' ? e.message : '' };
  }
  const http = e.response?.status ?? (typeof e.status === 'number' ? e.status : undefined);
  if (http === undefined) return undefined;
  const body = bodyError(e.response?.data) ?? (typeof e.message === 'string' ? bodyError(e.message) : undefined);
  // Cloud Storage answers in its own JSON API dialect: no `status`, a `reason` such as conditionNotMet.
  const status = body?.status ?? (body?.reason === 'conditionNotMet' ? 'FAILED_PRECONDITION' : undefined) ?? HTTP_STATUS[http] ?? (http >= 500 ? 'INTERNAL' : 'UNKNOWN');
  return { http, status, message: body?.message ?? (typeof e.message === 'string' ? e.message : '') };
}

/** Right after a service account is created, IAM refuses it as a member until it has propagated. */
export function isPropagationError(status: string, message: string): boolean {
  return status === 'INVALID_ARGUMENT' && /does not exist/i.test(message);
}

/** IAM's per-project service account quota (100 by default); only deleting accounts or a quota raise helps. */
export function isServiceAccountQuota(status: string, message: string): boolean {
  return status === 'RESOURCE_EXHAUSTED' && /maximum number of service accounts/i.test(message);
}

function kindOf(status: string, message: string): CloudErrorKind {
  if (isPropagationError(status, message)) return 'retryable';
  if (isServiceAccountQuota(status, message)) return 'terminal';
  switch (status) {
    case 'NOT_FOUND':
      return 'notFound';
    case 'ALREADY_EXISTS':
      return 'alreadyExists';
    case 'ABORTED':
    case 'FAILED_PRECONDITION':
      // A stale etag: setIamPolicy answers 409 ABORTED, Cloud Storage 412 conditionNotMet.
      return 'conflict';
    case 'RESOURCE_EXHAUSTED':
      return 'throttled';
    case 'INVALID_ARGUMENT':
    case 'PERMISSION_DENIED':
    case 'UNAUTHENTICATED':
    case 'OUT_OF_RANGE':
    case 'UNIMPLEMENTED':
      return 'terminal';
    default:
      return 'retryable';
  }
}

export function classifyGcpError(operation: string, err: unknown): CloudError {
  const parsed = parse(err);
  if (!parsed) {
    const message = err instanceof Error ? err.message : String(err);
    return new CloudError('retryable', 'NetworkError', operation, `${operation}: ${message}`, { cause: err });
  }
  const kind = kindOf(parsed.status, parsed.message);
  const code = kind === 'retryable' && isPropagationError(parsed.status, parsed.message) ? 'NOT_PROPAGATED' : parsed.status;
  return new CloudError(kind, code, operation, `${operation}: ${parsed.message || parsed.status}`, { cause: err });
}
