// How a failed reconcile decides what happens next (CONVENTIONS.md habit 5): a TerminalError waits for a spec
// change, a 409 Conflict is requeued silently, anything else is retried with backoff.

/** Retrying cannot help until the object's spec changes (invalid reference, forbidden by guardrails, ...). */
export class TerminalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

/** The HTTP status of a Kubernetes API failure: client-node's ApiException carries `code`, watch errors `statusCode`. */
function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  if ('code' in err && typeof err.code === 'number') return err.code;
  if ('statusCode' in err && typeof err.statusCode === 'number') return err.statusCode;
  return undefined;
}

/** 409: the object changed since we read it (stale resourceVersion) or already exists. */
export function isConflict(err: unknown): boolean {
  return httpStatus(err) === 409;
}

export function isNotFound(err: unknown): boolean {
  return httpStatus(err) === 404;
}

/** An error that marks itself as an expected wait (`retryQuietly`): retried with backoff, logged at debug. */
export function isQuietRetry(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'retryQuietly' in err && err.retryQuietly === true;
}
