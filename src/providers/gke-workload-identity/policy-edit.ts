// Read-modify-write of one IAM policy with its etag (IAM "Policy.etag": concurrent writers must redo the whole
// cycle). A stale etag restarts the cycle from a fresh read, a bounded number of times inside one reconcile;
// beyond that the conflict surfaces as a retryable error and the controller backs off.
import { isCloudError } from '../cloud-error.ts';
import type { GcpPort } from './gcp-port.ts';
import { editMembers, type IamPolicy, type MemberEdit, type PolicyEdit } from './policy.ts';
import type { PolicyTarget } from './resources.ts';

/** Attempts per edit: enough for 20 writers racing on one project policy, few enough to stay well inside a reconcile. */
export const MAX_POLICY_ATTEMPTS = 8;

export interface AppliedEdit extends PolicyEdit {
  /** Read-modify-write cycles used (1 when the first write went through or nothing needed writing). */
  attempts: number;
}

/**
 * Sets the edited members' grants on `target` (see editMembers). `observed` (the policy `observe` read) saves the
 * first read; when it is stale the write fails on its etag and the cycle restarts from a fresh read.
 */
export async function editPolicy(port: GcpPort, target: PolicyTarget, edits: MemberEdit[], purge?: (member: string) => boolean, observed?: IamPolicy): Promise<AppliedEdit> {
  let policy = observed ?? (await port.getIamPolicy(target));
  for (let attempt = 1; ; attempt++) {
    const result = editMembers(policy, edits, purge);
    if (!result.changed) return { ...result, attempts: attempt };
    try {
      await port.setIamPolicy(target, result.policy);
      return { ...result, attempts: attempt };
    } catch (err) {
      if (!isCloudError(err, 'conflict') || attempt >= MAX_POLICY_ATTEMPTS) throw err;
      policy = await port.getIamPolicy(target);
    }
  }
}
