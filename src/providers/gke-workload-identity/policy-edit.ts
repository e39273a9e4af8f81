// Read-modify-write of one IAM policy with its etag (IAM "Policy.etag": concurrent writers must redo the whole
// cycle; https://cloud.google.com/iam/docs/policies#etag). Within this process the edits of one policy run one at a
// time, so workers granting on the same shared project or bucket never race each other: each write is one write
// against the cloud's limit, not one plus the retries a lost etag costs (docs/benchmarks.md measured 1–1.5 redone
// writes per grant without it). A stale etag from another writer still restarts the cycle from a fresh read, a
// bounded number of times inside one reconcile; beyond that the conflict surfaces as a retryable error.
import { isCloudError } from '../cloud-error.ts';
import { KeyedMutex } from '../keyed-mutex.ts';
import type { GcpPort, SharedGcpPort } from './gcp-port.ts';
import { editMembers, type IamPolicy, type MemberEdit, type PolicyEdit } from './policy.ts';
import { targetKey, type PolicyTarget } from './resources.ts';

/** One queue of policy edits per port (per CloudAccount), keyed by policy. */
const editQueues = new WeakMap<GcpPort, KeyedMutex>();

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
  let queue = editQueues.get(port);
  if (!queue) editQueues.set(port, (queue = new KeyedMutex()));
  const key = targetKey(target);
  // What `observe` read may predate another identity's write to this shared policy (one queued ahead of us, or one
  // that finished since). The account's shared copy is updated by every write through the port, so inside the queue
  // it is at least as new as anything observe saw, and reading it costs no cloud read while it is fresh; a port
  // without shared copies reads again when someone was ahead of us.
  const stale = queue.busy(key);
  return queue.run(key, async () => {
    const latest = isSharedPort(port) && target.kind !== 'serviceAccount' ? await port.sharedIamPolicy(target) : undefined;
    return editOnce(port, target, edits, purge, latest ?? (stale ? undefined : observed));
  });
}

function isSharedPort(port: GcpPort): port is SharedGcpPort {
  return 'sharedIamPolicy' in port;
}

async function editOnce(port: GcpPort, target: PolicyTarget, edits: MemberEdit[], purge: ((member: string) => boolean) | undefined, observed: IamPolicy | undefined): Promise<AppliedEdit> {
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
