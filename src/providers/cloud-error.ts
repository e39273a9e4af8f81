// Every cloud SDK error is classified once, at the port, into what the reconciler needs to decide a retry
// (CONVENTIONS habit 5): a missing object is a state; a rejected request is terminal until the spec changes;
// throttling and server faults back off and retry.
export type CloudErrorKind = 'notFound' | 'alreadyExists' | 'conflict' | 'terminal' | 'throttled' | 'retryable';

export class CloudError extends Error {
  readonly kind: CloudErrorKind;
  readonly code: string;
  readonly operation: string;
  /**
   * An expected, self-resolving wait (throttling, a write racing another, a new object not replicated yet): retried
   * with backoff like any transient error, but logged quietly rather than as a failure.
   */
  readonly retryQuietly: boolean;
  constructor(kind: CloudErrorKind, code: string, operation: string, message: string, options?: { cause?: unknown; quiet?: boolean }) {
    super(message, options);
    this.name = 'CloudError';
    this.kind = kind;
    this.code = code;
    this.operation = operation;
    this.retryQuietly = options?.quiet ?? (kind === 'throttled' || kind === 'conflict');
  }
}

export function isCloudError(err: unknown, kind?: CloudErrorKind): err is CloudError {
  return err instanceof CloudError && (kind === undefined || err.kind === kind);
}

/** The call's result, or undefined when the cloud says the object does not exist (not-found is a state). */
export async function orUndefined<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (isCloudError(err, 'notFound')) return undefined;
    throw err;
  }
}
