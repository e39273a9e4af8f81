// `kubectl keyless status`: every WorkloadIdentity in one table — its cloud, mechanism and identity, and the first
// step that is not Ready with its reason and why, read from the conditions the operator writes (DESIGN §4). Pure.
import { CONDITION } from '../api/constants.ts';
import type { Condition, WorkloadIdentity } from '../api/types.ts';
import { findCondition } from '../domain/conditions.ts';
import { cloudOf } from '../providers/registry.ts';
import { firstSentence, table } from './table.ts';

/** The steps in the order a reconcile takes them; Ready sums them up. */
const STEPS = [CONDITION.identityReady, CONDITION.trustReady, CONDITION.permissionsReady, CONDITION.serviceAccountReady] as const;
/** Informational, not part of Ready: reported once everything else is. */
const AFTER_READY = [CONDITION.workloadsUpToDate, CONDITION.credentialsVerified] as const;

export interface StatusRow {
  namespace: string;
  name: string;
  serviceAccount: string;
  cloud: string;
  mechanism: string;
  identity: string;
  ready: string;
  /** The first condition that is not True, or "-" when every one is. */
  step: string;
  reason: string;
  message: string;
}

/** The condition a person should read first: the first failed step, else Ready itself, else an informational one. */
export function firstNotReady(wi: WorkloadIdentity): { step: string; condition: Condition | undefined } {
  const conditions = wi.status?.conditions;
  const ready = findCondition(conditions, CONDITION.ready);
  if (ready?.status !== 'True') {
    // Steps that were not attempted say Unknown/Blocked; the one that stopped the reconcile says False.
    const failed = STEPS.map((type) => findCondition(conditions, type)).find((c) => c?.status === 'False');
    return failed ? { step: failed.type, condition: failed } : { step: CONDITION.ready, condition: ready };
  }
  const later = AFTER_READY.map((type) => findCondition(conditions, type)).find((c) => c !== undefined && c.status !== 'True');
  return later ? { step: later.type, condition: later } : { step: '-', condition: ready };
}

export function statusRow(wi: WorkloadIdentity): StatusRow {
  const ready = findCondition(wi.status?.conditions, CONDITION.ready);
  const { step, condition } = firstNotReady(wi);
  const base = {
    namespace: wi.metadata.namespace ?? '',
    name: wi.metadata.name,
    serviceAccount: wi.spec.serviceAccountName,
    cloud: wi.status?.cloud ?? cloudOf(wi.spec) ?? '-',
    mechanism: wi.status?.mechanism ?? wi.spec.aws?.mechanism ?? wi.spec.gcp?.mechanism ?? '-',
    identity: wi.status?.identity ?? '-',
  };
  if (!condition) {
    return { ...base, ready: 'Unknown', step: '-', reason: 'NotReconciled', message: 'No status yet: is the Keyless operator running? (kubectl get deploy -n keyless-system)' };
  }
  const stale = ready?.observedGeneration !== undefined && wi.metadata.generation !== undefined && ready.observedGeneration < wi.metadata.generation;
  const message = stale ? `(status is for generation ${ready.observedGeneration}, the spec is at ${wi.metadata.generation}) ${condition.message}` : condition.message;
  return { ...base, ready: ready?.status ?? 'Unknown', step, reason: condition.reason, message };
}

export function renderStatus(identities: readonly WorkloadIdentity[], opts: { allNamespaces: boolean; wide: boolean }): string {
  const rows = [...identities]
    .sort((a, b) => (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') || a.metadata.name.localeCompare(b.metadata.name))
    .map(statusRow);
  const headers = ['NAME', 'SERVICEACCOUNT', 'CLOUD', 'MECHANISM', 'IDENTITY', 'READY', 'STEP', 'REASON', 'MESSAGE'];
  const cells = (r: StatusRow) => [r.name, r.serviceAccount, r.cloud, r.mechanism, r.identity, r.ready, r.step, r.reason, opts.wide ? r.message : firstSentence(r.message)];
  return opts.allNamespaces ? table(['NAMESPACE', ...headers], rows.map((r) => [r.namespace, ...cells(r)])) : table(headers, rows.map(cells));
}
