// Wraps every cloud SDK call: waits for the cloud account's read or write budget, gives the call a deadline, counts
// the call by operation and result code, times it, and converts SDK errors into CloudError through the cloud's
// classifier.
import type { Cloud } from '../api/types.ts';
import { realTimers, type Timers } from '../controller/timers.ts';
import { TokenBucket } from '../controller/token-bucket.ts';
import type { Metrics } from '../observability/metrics.ts';
import { CloudError } from './cloud-error.ts';

export interface CallLimiter {
  take(): Promise<void>;
}

/**
 * The two budgets of one CloudAccount. Clouds limit writes far below reads (IAM's mutating calls, ARM's writes per
 * subscription, Google's setIamPolicy), so one shared bucket either throttles or wastes the write limit on reads:
 * writes are paced to the cloud's write limit, reads get their own, larger budget.
 */
export interface CallBudget {
  read: CallLimiter;
  write: CallLimiter;
}

export interface BudgetRates {
  writesPerSecond: number;
  /** Writes let through at once after a quiet spell; 1 never sends writes faster than the cloud refills. */
  writeBurst: number;
  readsPerSecond: number;
}

export function callBudget(rates: BudgetRates): CallBudget {
  return {
    write: new TokenBucket({ ratePerSec: rates.writesPerSecond, burst: rates.writeBurst }),
    // A read burst of a second's worth lets a reconcile's few reads through at once without exceeding the rate.
    read: new TokenBucket({ ratePerSec: rates.readsPerSecond, burst: Math.max(1, Math.floor(rates.readsPerSecond)) }),
  };
}

// Operations that only read, by the verb in their name: AWS `GetRole`/`ListRolePolicies`/`DescribeCluster`, Google
// `projects.getIamPolicy` (a POST, but a read), ARM `UserAssignedIdentities_Get`/`RoleAssignments_ListForScope`. Token
// exchanges (STS, Google STS, Entra) change nothing in the account. Anything else counts as a write, so an
// operation added later without a read verb is paced conservatively.
const READ_OPERATION = /^(?:\w*[._])?(?:Get|List|Describe|get|list)|^(?:AssumeRole|ExchangeToken|generateAccessToken)/;

export function isReadOperation(operation: string): boolean {
  return READ_OPERATION.test(operation);
}

export type Classify = (operation: string, err: unknown) => CloudError;

/** Runs `fn` as one cloud call; `fn` hands `signal` to the SDK so a call past its deadline is really cancelled. */
export type CloudCall = <T>(operation: string, fn: (signal: AbortSignal) => Promise<T>) => Promise<T>;

export interface CallOptions {
  /** How long a call may take once the rate limiter has let it through (CONVENTIONS habit 5: every call out of the process has a deadline). */
  timeoutMs: number;
  /** Where the calls go (a URL), so a timeout says which endpoint to check. */
  endpoint: string;
  timers?: Timers;
}

export function instrumentedCall(cloud: Cloud, budget: CallBudget, metrics: Metrics, classify: Classify, opts: CallOptions): CloudCall {
  if (!(opts.timeoutMs > 0)) throw new RangeError('cloud call timeoutMs must be > 0');
  const timers = opts.timers ?? realTimers;
  return async <T>(operation: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    // The wait for a token is the budget's business, not the cloud's: the deadline starts after it.
    await (isReadOperation(operation) ? budget.read : budget.write).take();
    const stop = metrics.cloudApiDuration.startTimer({ cloud, operation });
    const abort = new AbortController();
    let timedOut: CloudError | undefined;
    let timer: unknown;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = timers.setTimeout(() => {
        timedOut = new CloudError('retryable', 'Timeout', operation, `${operation} at ${opts.endpoint} did not answer within ${opts.timeoutMs / 1000}s`);
        // Rejected before the abort, so the race settles with the timeout and not with the SDK's abort error.
        reject(timedOut);
        abort.abort(timedOut);
      }, opts.timeoutMs);
    });
    try {
      // A call that ignores the signal keeps running, but nobody waits for it; the race holds its rejection.
      const result = await Promise.race([fn(abort.signal), deadline]);
      metrics.cloudApiCalls.inc({ cloud, operation, code: 'OK' });
      return result;
    } catch (err) {
      const classified = timedOut ?? (err instanceof CloudError ? err : classify(operation, err));
      metrics.cloudApiCalls.inc({ cloud, operation, code: classified.code });
      throw classified;
    } finally {
      timers.clearTimeout(timer);
      stop();
    }
  };
}
