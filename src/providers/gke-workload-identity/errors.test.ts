import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyGcpError } from './errors.ts';

/** What gaxios throws: HTTP status on the error and the Google JSON error in response.data. */
function gaxiosError(status: number, error: object): Error {
  return Object.assign(new Error('request failed'), { status, response: { status, data: { error } } });
}

describe('classifyGcpError', () => {
  const cases: [string, unknown, string, string][] = [
    ['404 NOT_FOUND', gaxiosError(404, { code: 404, status: 'NOT_FOUND', message: 'Unknown service account' }), 'notFound', 'NOT_FOUND'],
    ['409 ALREADY_EXISTS', gaxiosError(409, { code: 409, status: 'ALREADY_EXISTS', message: 'exists' }), 'alreadyExists', 'ALREADY_EXISTS'],
    ['409 ABORTED (stale etag)', gaxiosError(409, { code: 409, status: 'ABORTED', message: 'There were concurrent policy changes.' }), 'conflict', 'ABORTED'],
    ['Cloud Storage 412 conditionNotMet (stale etag)', gaxiosError(412, { code: 412, message: 'Precondition Failed', errors: [{ reason: 'conditionNotMet' }] }), 'conflict', 'FAILED_PRECONDITION'],
    ['400 "does not exist" right after creating an account', gaxiosError(400, { code: 400, status: 'INVALID_ARGUMENT', message: 'Service account a@p.iam.gserviceaccount.com does not exist.' }), 'retryable', 'NOT_PROPAGATED'],
    ['400 INVALID_ARGUMENT otherwise', gaxiosError(400, { code: 400, status: 'INVALID_ARGUMENT', message: 'Role roles/nope is not supported for this resource.' }), 'terminal', 'INVALID_ARGUMENT'],
    ['429 service account quota', gaxiosError(429, { code: 429, status: 'RESOURCE_EXHAUSTED', message: 'Maximum number of service accounts on project reached.' }), 'terminal', 'RESOURCE_EXHAUSTED'],
    ['429 rate limit', gaxiosError(429, { code: 429, status: 'RESOURCE_EXHAUSTED', message: 'Quota exceeded for quota metric' }), 'throttled', 'RESOURCE_EXHAUSTED'],
    ['403 PERMISSION_DENIED', gaxiosError(403, { code: 403, status: 'PERMISSION_DENIED', message: 'denied' }), 'terminal', 'PERMISSION_DENIED'],
    ['503 UNAVAILABLE', gaxiosError(503, { code: 503, status: 'UNAVAILABLE', message: 'try later' }), 'retryable', 'UNAVAILABLE'],
    ['gax REST: the JSON body in the message', Object.assign(new Error(JSON.stringify({ error: { code: 409, status: 'ABORTED', message: 'etag' } })), { status: 409 }), 'conflict', 'ABORTED'],
    ['gRPC code 10 ABORTED', Object.assign(new Error('10 ABORTED: etag'), { code: 10 }), 'conflict', 'ABORTED'],
    ['no response at all', new Error('connect ECONNREFUSED 127.0.0.1:1'), 'retryable', 'NetworkError'],
  ];
  for (const [what, err, kind, code] of cases) {
    it(`${what} → ${kind} ${code}`, () => {
      const classified = classifyGcpError('op', err);
      assert.equal(classified.kind, kind);
      assert.equal(classified.code, code);
    });
  }
});
