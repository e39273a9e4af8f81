import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CREDENTIAL_LIMIT_CODE, classifyAzureError } from './errors.ts';

function restError(statusCode: number, code: string, message = 'x'): Error {
  return Object.assign(new Error(message), { name: 'RestError', statusCode, code });
}

describe('classifyAzureError', () => {
  const cases: [string, unknown, string, string][] = [
    ['a missing identity is a state', restError(404, 'ResourceNotFound'), 'notFound', 'ResourceNotFound'],
    ['a missing resource group is not', restError(404, 'ResourceGroupNotFound'), 'terminal', 'ResourceGroupNotFound'],
    ['RoleAssignmentExists', restError(409, 'RoleAssignmentExists'), 'alreadyExists', 'RoleAssignmentExists'],
    ['concurrent credential writes', restError(409, 'ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity', 'Too many Federated Identity Credentials are written concurrently'), 'conflict', 'ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity'],
    ['replication delay after create', restError(400, 'PrincipalNotFound'), 'retryable', 'PrincipalNotFound'],
    ['throttling with or without Retry-After', restError(429, 'TooManyRequests'), 'throttled', 'TooManyRequests'],
    ['the 20-credential limit', restError(400, 'BadRequest', 'Too many Federated Identity Credentials. A maximum of 20 federated identity credentials can be added'), 'terminal', CREDENTIAL_LIMIT_CODE],
    ['a rejected update', restError(400, 'RoleAssignmentUpdateNotPermitted'), 'terminal', 'RoleAssignmentUpdateNotPermitted'],
    ['missing permissions', restError(403, 'AuthorizationFailed'), 'terminal', 'AuthorizationFailed'],
    ['a server fault', restError(503, 'ServiceUnavailable'), 'retryable', 'ServiceUnavailable'],
    ['no response at all', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'retryable', 'NetworkError'],
    ['the operator credential failing', Object.assign(new Error('no token'), { name: 'CredentialUnavailableError' }), 'retryable', 'CredentialUnavailableError'],
  ];
  for (const [what, err, kind, code] of cases) {
    it(`classifies ${what}`, () => {
      const classified = classifyAzureError('Op', err);
      assert.equal(classified.kind, kind);
      assert.equal(classified.code, code);
    });
  }
});
