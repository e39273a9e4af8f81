// Wraps every cloud SDK call: waits for the cloud account's rate limiter, counts the call by operation and result
// code, times it, and converts SDK errors into CloudError through the cloud's classifier.
import type { Cloud } from '../api/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import { CloudError } from './cloud-error.ts';

export interface CallLimiter {
  take(): Promise<void>;
}

export type Classify = (operation: string, err: unknown) => CloudError;

export type CloudCall = <T>(operation: string, fn: () => Promise<T>) => Promise<T>;

export function instrumentedCall(cloud: Cloud, limiter: CallLimiter, metrics: Metrics, classify: Classify): CloudCall {
  return async <T>(operation: string, fn: () => Promise<T>): Promise<T> => {
    await limiter.take();
    const stop = metrics.cloudApiDuration.startTimer({ cloud, operation });
    try {
      const result = await fn();
      metrics.cloudApiCalls.inc({ cloud, operation, code: 'OK' });
      return result;
    } catch (err) {
      const classified = err instanceof CloudError ? err : classify(operation, err);
      metrics.cloudApiCalls.inc({ cloud, operation, code: classified.code });
      throw classified;
    } finally {
      stop();
    }
  };
}
