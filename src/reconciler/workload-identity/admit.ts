// Step 2 of a reconcile: whether the CloudAccount admits this identity — tenancy (namespaceSelector), the
// per-namespace quota, the guardrails, one identity per ServiceAccount and cloud, and the provider's own spec checks.
// Eligibility is continuous: an identity that exists and is no longer admitted is revoked, not merely reported
// (docs/guardrails.md); guardrails that tighten remove only the grants they no longer permit.
import { REASON } from '../../api/constants.ts';
import type { CloudAccount, Cloud, ProvisionedRecord, WorkloadIdentity } from '../../api/types.ts';
import { describeIneffective, ineffectiveGrants } from '../../domain/grants/index.ts';
import { describeViolation, evaluateGuardrails, type Violation } from '../../domain/guardrails/index.ts';
import { selects } from '../../domain/label-selector.ts';
import { cloudOf } from '../../providers/registry.ts';
import { BY_NAMESPACE, BY_SERVICE_ACCOUNT, serviceAccountKey } from '../indexes.ts';
import type { WorkloadIdentityReconcilerDeps } from './deps.ts';
import { refusal, type Refusal, type Resolved } from './resolve.ts';

export interface Admitted extends Resolved {
  /** Guardrail violations of an identity that exists already: it is provisioned without the violating grants. */
  violations: Violation[];
  /** Entries of the (permitted) spec that grant nothing, each a sentence naming what they would need. */
  ineffective: string[];
}

/** The CloudAccount's namespaceSelector, checked before anything else about the account. */
export function admitNamespace(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity, account: CloudAccount): Refusal | undefined {
  const namespace = wi.metadata.namespace ?? '';
  if (selects(account.spec.namespaceSelector, d.namespaces.get(namespace)?.metadata?.labels)) return undefined;
  return refusal(
    REASON.NamespaceNotAllowed,
    `CloudAccount "${account.metadata.name}" does not admit namespace ${namespace} (its namespaceSelector does not match the namespace's labels). To use it, the namespace needs labels the CloudAccount's namespaceSelector selects (a platform team decision); or use a CloudAccount that admits this namespace.`,
    { revoke: true, terminal: true },
  );
}

export async function admit(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity, r: Resolved): Promise<Admitted | Refusal> {
  const { account } = r;
  const accountName = account.metadata.name;
  // A record that names another identity is revoked whatever else is decided here.
  const supersedes = !r.continuing && recordOf(wi) !== undefined;

  const quota = quotaViolations(d, wi, account);
  if (quota.length) {
    return refusal(REASON.GuardrailViolation, `Refused by the guardrails of CloudAccount "${accountName}": ${listViolations(quota)}.`, { revoke: true, terminal: true });
  }
  const guardrails = await evaluateGuardrails(wi.spec, account, d.catalogue);
  if (guardrails.violations.length && !r.continuing) {
    // Nothing has been created: create nothing.
    return refusal(REASON.GuardrailViolation, `Refused by the guardrails of CloudAccount "${accountName}", so nothing was created: ${listViolations(guardrails.violations)}.`, {
      revoke: supersedes,
      terminal: true,
    });
  }
  const winner = conflictWinner(d, wi, r.cloud);
  if (winner) {
    return refusal(
      REASON.Conflict,
      `WorkloadIdentity ${winner.metadata.namespace}/${winner.metadata.name} already gives ServiceAccount ${wi.spec.serviceAccountName} a ${r.cloud} identity. A ServiceAccount can carry one identity per cloud: merge the permissions into that WorkloadIdentity or use another ServiceAccount.`,
      { revoke: true, terminal: true },
    );
  }
  // An identity that exists keeps only what the guardrails still permit (least privilege is continuous).
  const ctx = guardrails.violations.length ? { ...r.ctx, spec: guardrails.permitted } : r.ctx;
  const problems = r.provider.validate(ctx);
  if (problems.length) return refusal(REASON.InvalidSpec, `Invalid spec: ${problems.join('; ')}.`, { revoke: supersedes, terminal: true });
  const ineffective = (await ineffectiveGrants(ctx.spec, d.catalogue)).map(describeIneffective);
  return { ...r, ctx, violations: guardrails.violations, ineffective };
}

/** The newest WorkloadIdentities of a namespace beyond the account's per-namespace limit. */
function quotaViolations(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity, account: CloudAccount): Violation[] {
  const limit = account.spec.guardrails?.maxIdentitiesPerNamespace;
  if (limit === undefined) return [];
  const peers = d.identities
    .byIndex(BY_NAMESPACE, wi.metadata.namespace ?? '')
    .filter((o) => o.spec.cloudAccountRef.name === account.metadata.name && !o.metadata.deletionTimestamp);
  const older = peers.filter((o) => o.metadata.name !== wi.metadata.name && olderThan(o, wi)).length;
  return older >= limit
    ? [{ field: 'metadata.namespace', entry: wi.metadata.namespace ?? '', rule: 'guardrails.maxIdentitiesPerNamespace', hint: `this namespace already has ${older} WorkloadIdentities in CloudAccount ${account.metadata.name}; the limit is ${limit}` }]
    : [];
}

/** Whether `o` holds `cloud` for its ServiceAccount: its record says objects may exist there. */
export function holds(o: WorkloadIdentity, cloud: Cloud): boolean {
  return recordOf(o)?.cloud === cloud;
}

export function recordOf(o: WorkloadIdentity): ProvisionedRecord | undefined {
  return o.status?.provisioned;
}

/**
 * Two WorkloadIdentities for one ServiceAccount and one cloud: the one that holds the identity keeps it (its record
 * says objects exist), else the older one wins; the other waits with a Conflict and never writes the winner's
 * annotations or grants. A rival being deleted, or one whose spec left the cloud but whose revocation is not done,
 * still holds until its record is cleared: taking over earlier would let its revocation remove what the newcomer
 * shares (a GKE principal's bindings, a ServiceAccount annotation).
 */
export function conflictWinner(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity, cloud: Cloud): WorkloadIdentity | undefined {
  const rivals = d.identities
    .byIndex(BY_SERVICE_ACCOUNT, serviceAccountKey(wi.metadata.namespace, wi.spec.serviceAccountName))
    .filter((o) => o.metadata.name !== wi.metadata.name && (cloudOf(o.spec) === cloud || holds(o, cloud)));
  const claim = (o: WorkloadIdentity) => (holds(o, cloud) ? 0 : 1);
  const [first] = [wi, ...rivals].sort((a, b) => claim(a) - claim(b) || (olderThan(a, b) ? -1 : olderThan(b, a) ? 1 : 0));
  return first === wi ? undefined : first;
}

/** Every violation, up to a bound that keeps the condition message readable (and under the API's size limit). */
export function listViolations(violations: Violation[]): string {
  const shown = violations.slice(0, 10).map(describeViolation).join('; ');
  return violations.length > 10 ? `${shown}; and ${violations.length - 10} more` : shown;
}

export function olderThan(a: WorkloadIdentity, b: WorkloadIdentity): boolean {
  const ta = new Date(a.metadata.creationTimestamp ?? 0).getTime();
  const tb = new Date(b.metadata.creationTimestamp ?? 0).getTime();
  return ta < tb || (ta === tb && a.metadata.name < b.metadata.name);
}
