import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { TerminalError, isConflict, isNotFound, isQuietRetry } from './errors.ts';

describe('error classification', () => {
  const apiError = (code: number) => new ApiException(code, `HTTP ${code}`, {}, {});

  it('recognises a 409 from client-node as a conflict and nothing else', () => {
    assert.equal(isConflict(apiError(409)), true);
    assert.equal(isConflict(apiError(404)), false);
    assert.equal(isConflict(Object.assign(new Error('watch'), { statusCode: 409 })), true);
  });

  it('recognises a 404 as not found', () => {
    assert.equal(isNotFound(apiError(404)), true);
    assert.equal(isNotFound(apiError(500)), false);
  });

  it('does not mistake a Node system error code or a non-error for an HTTP status', () => {
    assert.equal(isConflict(Object.assign(new Error('reset'), { code: 'ECONNRESET' })), false);
    assert.equal(isNotFound(undefined), false);
    assert.equal(isNotFound('404'), false);
  });

  it('keeps the message and cause of a TerminalError', () => {
    const cause = new Error('AccessDenied');
    const err = new TerminalError('role is not ours', { cause });
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'TerminalError');
    assert.equal(err.message, 'role is not ours');
    assert.equal(err.cause, cause);
  });
});

describe('isQuietRetry', () => {
  it('recognises errors that mark themselves as an expected wait', () => {
    assert.equal(isQuietRetry(Object.assign(new Error('x'), { retryQuietly: true })), true);
    assert.equal(isQuietRetry(Object.assign(new Error('x'), { retryQuietly: false })), false);
    assert.equal(isQuietRetry(new Error('x')), false);
    assert.equal(isQuietRetry(undefined), false);
  });
});
