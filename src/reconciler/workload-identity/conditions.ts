// The five WorkloadIdentity conditions, built from what one reconcile learned. Pure: the reconciler gathers, this
// decides, the reconciler writes.
import { CONDITION, REASON, type Reason } from '../../api/constants.ts';
import type { ConditionInput } from '../../domain/conditions.ts';
import type { Step } from '../../providers/types.ts';

export const STEP_CONDITION: Record<Step, string> = {
  identity: CONDITION.identityReady,
  trust: CONDITION.trustReady,
  permissions: CONDITION.permissionsReady,
};

const STEPS: Step[] = ['identity', 'trust', 'permissions'];

export interface Outcome {
  /** Provider step results; absent steps were not attempted. */
  steps: Partial<Record<Step, { ok: boolean; reason: Reason; message: string }>>;
  serviceAccount?: { ok: boolean; reason: Reason; message: string };
  /** WorkloadsUpToDate, when the identity was provisioned; it does not affect Ready. */
  workloads?: { ok: boolean; reason: Reason; message: string };
  /** CredentialsVerified, when the CloudAccount asks for it; it does not affect Ready. */
  credentials?: { status: 'True' | 'False' | 'Unknown'; reason: Reason; message: string };
  /** Set when the reconcile stopped before reaching the cloud (missing account, invalid spec, conflict...). */
  blocked?: { reason: Reason; message: string };
  /** The Ready message when everything is in place. */
  readyMessage: string;
}

export function workloadIdentityConditions(outcome: Outcome): ConditionInput[] {
  const conditions: ConditionInput[] = [];
  const failed: { reason: Reason; message: string }[] = [];
  if (outcome.blocked) failed.push(outcome.blocked);
  for (const step of STEPS) {
    const result = outcome.steps[step];
    if (result) {
      conditions.push({ type: STEP_CONDITION[step], status: result.ok ? 'True' : 'False', reason: result.reason, message: result.message });
      if (!result.ok) failed.push(result);
    } else {
      const why = outcome.blocked?.reason ?? failed[0]?.reason ?? REASON.Pending;
      conditions.push({ type: STEP_CONDITION[step], status: 'Unknown', reason: REASON.Blocked, message: `Not attempted: ${why}` });
    }
  }
  const sa = outcome.serviceAccount;
  if (sa) {
    conditions.push({ type: CONDITION.serviceAccountReady, status: sa.ok ? 'True' : 'False', reason: sa.reason, message: sa.message });
    if (!sa.ok) failed.push(sa);
  } else {
    conditions.push({ type: CONDITION.serviceAccountReady, status: 'Unknown', reason: REASON.Blocked, message: `Not attempted: ${failed[0]?.reason ?? REASON.Pending}` });
  }
  if (outcome.workloads) {
    const w = outcome.workloads;
    conditions.push({ type: CONDITION.workloadsUpToDate, status: w.ok ? 'True' : 'False', reason: w.reason, message: w.message });
  }
  if (outcome.credentials) {
    const c = outcome.credentials;
    conditions.push({ type: CONDITION.credentialsVerified, status: c.status, reason: c.reason, message: c.message });
  }
  const first = failed[0];
  conditions.push(
    first
      ? { type: CONDITION.ready, status: 'False', reason: first.reason, message: first.message }
      : { type: CONDITION.ready, status: 'True', reason: REASON.Ready, message: outcome.readyMessage },
  );
  return conditions;
}
