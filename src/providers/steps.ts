// The mapping every provider shares from a failed cloud call to the condition of the step it belongs to: a request
// the cloud refuses becomes that step's CloudRejected condition with the cloud's message and a hint per step;
// anything transient is rethrown for the controller's backoff.
import { REASON } from '../api/constants.ts';
import { isCloudError, type CloudError } from './cloud-error.ts';
import { ProviderError, type Step } from './types.ts';

export type StepRunner = <T>(step: Step, fn: () => Promise<T>) => Promise<T>;

export interface StepMapping {
  /** How a person calls the cloud in a sentence: "IAM", "Google Cloud", "Azure". */
  cloud: string;
  /** What to check per step when the cloud rejects a request. */
  hints: Record<Step, string>;
  /** Which errors are rejections (default: terminal ones). */
  rejects?: (err: CloudError) => boolean;
  /** A more specific condition for some rejections (a quota, say); undefined falls back to CloudRejected. */
  refine?: (step: Step, err: CloudError) => ProviderError | undefined;
}

export function stepRunner(mapping: StepMapping): StepRunner {
  const rejects = mapping.rejects ?? ((err: CloudError) => err.kind === 'terminal');
  return async (step, fn) => {
    try {
      return await fn();
    } catch (err) {
      if (!isCloudError(err) || !rejects(err)) throw err;
      throw mapping.refine?.(step, err) ?? new ProviderError(step, REASON.CloudRejected, `${mapping.cloud} rejected ${err.message}. ${mapping.hints[step]}`, false, { cause: err });
    }
  };
}
