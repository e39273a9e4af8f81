// How each cloud's wire format looks to the bench's proxy (cloud-proxy.ts): which operation a request is, whether it
// is a write and which write limit it counts against, how the cloud answers a write beyond that limit, and how it
// names an error. Operation names are the ones the emulators log and the operator counts.
import type http from 'node:http';
import { armOperation } from '../test/emulators/azure/server.ts';
import { gcpOperation } from '../test/emulators/gcp/server.ts';
import { isWrite as isAwsWrite, operationOf as awsOperation } from '../test/support/aws.ts';
import { isWrite as isGcpWrite } from '../test/support/gcp.ts';

export interface RequestKind {
  operation: string;
  /** The write limit the request counts against; undefined for a read, which no limit applies to. */
  bucket: string | undefined;
  /** The service that answers it, for its error format: AWS has two (IAM awsQuery XML, EKS restJson1). */
  service: string;
}

export interface Dialect {
  classify(method: string, url: string, body: string): RequestKind;
  /**
   * The cloud's own answer to a write beyond its limit; the next write passes in `retryAfterSeconds`, which the
   * answer carries as Retry-After where the cloud sends it, or where `retryAfter` asks for it anyway.
   */
  throttle(res: http.ServerResponse, kind: RequestKind, retryAfterSeconds: number, retryAfter?: boolean): void;
  /** The cloud's answer when it fails on its side (HTTP 5xx), as its SDK sees it: retryable. */
  serverError(res: http.ServerResponse, kind: RequestKind): void;
  /**
   * Eventual consistency where the proxy emulates it (AWS IAM; the GCP and ARM emulators have their own): the object
   * a successful request created, the object a point read reads, and the cloud's "no such object" answer.
   */
  consistency?: {
    created(kind: RequestKind, body: string): string | undefined;
    read(kind: RequestKind, body: string): string | undefined;
    notFound(res: http.ServerResponse, kind: RequestKind, key: string): void;
  };
  /** The error code of an error answer from upstream, as the cloud's SDK surfaces it. */
  errorCode(status: number, headers: http.IncomingHttpHeaders, body: string): string;
  /** A write that lost to a concurrent writer (a stale etag, a concurrent write): redone after a fresh read. */
  isConflict(status: number, code: string): boolean;
}

function jsonError(body: string): { code?: unknown; status?: unknown; errors?: { reason?: unknown }[] } | undefined {
  try {
    return (JSON.parse(body) as { error?: { code?: unknown; status?: unknown; errors?: { reason?: unknown }[] } }).error;
  } catch {
    return undefined;
  }
}

/**
 * AWS, per service (IAM and EKS each have their own limit): IAM `400 <Code>Throttling</Code>` in awsQuery XML, EKS
 * `429 ThrottlingException` in restJson1 (shared/reference/cloud-apis.md §1.5 and §5).
 */
export const awsDialect: Dialect = {
  classify(method, url, body) {
    const operation = awsOperation(method, url, body);
    const service = new URLSearchParams(body).has('Action') ? 'iam' : 'eks';
    return { operation, bucket: isAwsWrite(operation) ? service : undefined, service };
  },
  throttle(res, kind, retryAfterSeconds, retryAfter = false) {
    if (retryAfter) res.setHeader('retry-after', String(retryAfterSeconds));
    if (kind.service === 'iam') {
      res.writeHead(400, { 'content-type': 'text/xml' });
      res.end(
        '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>',
      );
    } else {
      res.writeHead(429, { 'content-type': 'application/json', 'x-amzn-errortype': 'ThrottlingException' });
      res.end(JSON.stringify({ message: 'Rate exceeded' }));
    }
  },
  errorCode(status, headers, body) {
    const header = headers['x-amzn-errortype'];
    if (typeof header === 'string' && header) return header.split(':')[0] ?? header;
    return /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? `HTTP${status}`;
  },
  // IAM's common error ServiceFailure (500, "The request processing has failed because of an unknown error")
  // (docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html); EKS's ServerException (500)
  // (docs.aws.amazon.com/eks/latest/APIReference/CommonErrors.html). The SDK retries both.
  serverError(res, kind) {
    if (kind.service === 'iam') {
      res.writeHead(500, { 'content-type': 'text/xml' });
      res.end(awsQueryError('Receiver', 'ServiceFailure', 'The request processing has failed because of an unknown error, exception or failure.'));
    } else {
      res.writeHead(500, { 'content-type': 'application/json', 'x-amzn-errortype': 'ServerException' });
      res.end(JSON.stringify({ message: 'An internal error occurred.' }));
    }
  },
  consistency: {
    created: (kind, body) => (kind.operation === 'CreateRole' ? roleKey(body) : undefined),
    read: (kind, body) => (ROLE_READS.has(kind.operation) ? roleKey(body) : undefined),
    notFound(res, _kind, key) {
      res.writeHead(404, { 'content-type': 'text/xml' });
      res.end(awsQueryError('Sender', 'NoSuchEntity', `The role with name ${key} cannot be found.`));
    },
  },
  isConflict: (_status, code) => code === 'ConcurrentModification',
};

/** IAM's point reads of one role, all by RoleName. */
const ROLE_READS = new Set(['GetRole', 'ListRoleTags', 'GetRolePolicy', 'ListRolePolicies', 'ListAttachedRolePolicies']);

function roleKey(body: string): string | undefined {
  return new URLSearchParams(body).get('RoleName') ?? undefined;
}

function awsQueryError(type: 'Sender' | 'Receiver', code: string, message: string): string {
  return `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>${type}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>`;
}

/** The Google API a request goes to, for the quota message (Google names the service whose quota ran out). */
function googleService(operation: string): string {
  if (operation.startsWith('projects.')) return 'cloudresourcemanager.googleapis.com';
  if (operation.startsWith('buckets.')) return 'storage.googleapis.com';
  if (operation.startsWith('topics.')) return 'pubsub.googleapis.com';
  if (operation.startsWith('secrets.')) return 'secretmanager.googleapis.com';
  return 'iam.googleapis.com';
}

/**
 * Google Cloud, one write limit for the project (IAM's 600 writes per project per minute, Resource Manager's 10/s:
 * cloud-apis.md §3.5). Writes are every POST, PUT, PATCH and DELETE but getIamPolicy (a POST that reads). Beyond the
 * limit Google answers `429` with the canonical error JSON whose status is RESOURCE_EXHAUSTED, e.g.
 * `{"error":{"code":429,"message":"Insufficient tokens for quota ...","status":"RESOURCE_EXHAUSTED"}}`
 * (developers.google.com/actions-center/verticals/reservations/e2e/integration-steps/real-time-updates-ready/common-issues),
 * with the quota named in the message ("Quota exceeded for quota metric ... of service ..."). No Retry-After: Google
 * asks for truncated exponential backoff instead (cloud.google.com/iam/docs/retry-strategy).
 */
export const gcpDialect: Dialect = {
  classify(method, url) {
    const path = decodeURIComponent(new URL(url, 'http://x').pathname);
    const operation = gcpOperation(method, path) ?? `${method} ${path}`;
    return { operation, bucket: isGcpWrite({ method, operation }) ? 'gcp' : undefined, service: googleService(operation) };
  },
  throttle(res, kind, retryAfterSeconds, retryAfter = false) {
    if (retryAfter) res.setHeader('retry-after', String(retryAfterSeconds));
    const message = `Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute' of service '${kind.service}'.`;
    res.writeHead(429, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify({ error: { code: 429, message, status: 'RESOURCE_EXHAUSTED' } }));
  },
  // 503 UNAVAILABLE, "retry using exponential backoff" (cloud.google.com/apis/design/errors#handling_errors).
  serverError(res) {
    res.writeHead(503, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify({ error: { code: 503, message: 'The service is currently unavailable.', status: 'UNAVAILABLE' } }));
  },
  errorCode(status, _headers, body) {
    const error = jsonError(body);
    // Cloud Storage's dialect names the error in errors[].reason instead of a canonical status.
    const code = typeof error?.status === 'string' ? error.status : error?.errors?.[0]?.reason;
    return typeof code === 'string' ? code : `HTTP${status}`;
  },
  // setIamPolicy answers a stale etag 409 ABORTED; Cloud Storage 412 conditionNotMet.
  isConflict: (status, code) => code === 'ABORTED' || status === 412,
};

/** ARM's own lists that are POSTs (listKeys, listCredentials, ...) read; every other POST acts. */
const LIST_POST = /^list/i;

/**
 * Azure Resource Manager, one write limit for the subscription (ARM's token bucket: writes 200, refilled 10/s per
 * subscription and principal; cloud-apis.md §5). Writes are every PUT, PATCH and DELETE and every POST but list-like
 * ones, on ARM paths; Entra's token endpoint on the same host is not ARM. Beyond the limit ARM answers `429` with a
 * Retry-After header, the seconds to wait (learn.microsoft.com/azure/azure-resource-manager/management/
 * request-limits-and-throttling, "Error code"), and the common ARM error body `{"error":{"code","message"}}`
 * (learn.microsoft.com/dotnet/api/microsoft.azure.management.resources.models.errorresponse) with code TooManyRequests
 * (cloud-apis.md §4.4). The SDK retries a 429 that carries Retry-After after that many seconds.
 */
export const armDialect: Dialect = {
  classify(method, url) {
    const pathname = new URL(url, 'https://x').pathname;
    const operation = armOperation(method, url) ?? `${method} ${pathname}`;
    const arm = /^\/(subscriptions|providers)\//i.test(pathname);
    const write = method === 'PUT' || method === 'PATCH' || method === 'DELETE' || (method === 'POST' && !LIST_POST.test(pathname.split('/').pop() ?? ''));
    return { operation, bucket: arm && write ? 'arm' : undefined, service: arm ? 'arm' : 'entra' };
  },
  throttle(res, _kind, retryAfterSeconds, retryAfter = true) {
    const message = `Number of write requests for subscription exceeded the limit for time interval '00:00:01'. Please try again after '${retryAfterSeconds}' seconds.`;
    res.writeHead(429, { 'content-type': 'application/json; charset=utf-8', ...(retryAfter ? { 'retry-after': String(retryAfterSeconds) } : {}) });
    res.end(JSON.stringify({ error: { code: 'TooManyRequests', message } }));
  },
  // ARM's InternalServerError (500), retried by the SDK's pipeline
  // (learn.microsoft.com/azure/azure-resource-manager/troubleshooting/common-deployment-errors).
  serverError(res) {
    res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ error: { code: 'InternalServerError', message: 'Encountered internal server error. Please try again.' } }));
  },
  errorCode(status, _headers, body) {
    const code = jsonError(body)?.code;
    return typeof code === 'string' ? code : `HTTP${status}`;
  },
  // Federated credentials of one identity take one write at a time (409 ConcurrentFederatedIdentityCredentials...);
  // RoleAssignmentExists (also 409) is an assignment already there, not a lost race.
  isConflict: (status, code) => (status === 409 || status === 412) && code !== 'RoleAssignmentExists',
};
