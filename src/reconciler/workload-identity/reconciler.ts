// The WorkloadIdentity reconcile: a key in, current state read from caches and the cloud, converged, status written
// once if it changed (CONVENTIONS habits 1, 2, 6, 7, 9). A short pipeline, each step in its own file:
//
//   resolve (account, cloud, provider) → admit (tenancy, quota, guardrails, conflicts) → revoke what the record holds
//   and the spec no longer allows → provision (record first, then ensure) → bind the ServiceAccount → report
//
// Teardown and "remove what the spec no longer asks for" read the record of what was provisioned (status.provisioned),
// never the spec of the moment. It never branches on watch event types.
import { CONDITION, FINALIZER, REASON, type Reason } from '../../api/constants.ts';
import type { ProvisionedRecord, WorkloadIdentity, WorkloadIdentityStatus } from '../../api/types.ts';
import type { ReconcileOutcome } from '../../controller/controller.ts';
import { TerminalError } from '../../controller/errors.ts';
import { findCondition } from '../../domain/conditions.ts';
import { CloudError } from '../../providers/cloud-error.ts';
import { ProviderError } from '../../providers/types.ts';
import { admit, admitNamespace, listViolations, recordOf, type Admitted } from './admit.ts';
import { bindServiceAccount } from './bind-service-account.ts';
import { orphanConfigMap, publishConfigMap } from './config-map.ts';
import type { Outcome } from './conditions.ts';
import type { WorkloadIdentityReconcilerDeps } from './deps.ts';
import { provision, revokeRecord } from './provision.ts';
import { ObjectGone, Reporter } from './report.ts';
import { resolveAccount, resolveProvider, type Refusal } from './resolve.ts';
import { verificationEnabled, verifyCredentials } from './verify-credentials.ts';
import { workloadsUpToDate } from './workloads-up-to-date.ts';

export type { WorkloadIdentityReconcilerDeps } from './deps.ts';

/** How soon to look again while the cloud confirms a revocation. */
const REVOKE_POLL_MS = 5_000;
/** How soon to look again while a mechanism switch waits for old pods to go. */
const MIGRATION_POLL_MS = 15_000;
/** How soon to verify credentials again after repairing a trust the verification found refused. */
const VERIFY_AFTER_REPAIR_MS = 10_000;

/** Identity fields of an earlier status, kept while the record says the objects exist, so `kubectl get` shows them. */
function keepIdentity(status: WorkloadIdentityStatus | undefined): WorkloadIdentityStatus {
  if (!status) return {};
  const { identity, audience, aws, gcp, azure, cloud, mechanism, subject, issuer } = status;
  return { identity, audience, aws, gcp, azure, cloud, mechanism, subject, issuer };
}

/** A transient failure in words fit for a condition: our own messages (a deadline) in full, a cloud's by its code. */
function transient(err: unknown): string {
  if (err instanceof CloudError) return err.code === 'Timeout' ? err.message : `the cloud asked us to retry (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

/** ServiceAccountReady covers what pods need from Kubernetes: the annotations, and the ConfigMap a mechanism asks for. */
function withConfigMap(serviceAccount: NonNullable<Outcome['serviceAccount']>, configMap: Outcome['serviceAccount']): NonNullable<Outcome['serviceAccount']> {
  if (!configMap) return serviceAccount;
  if (!configMap.ok) return configMap;
  return serviceAccount.ok ? { ...serviceAccount, message: `${configMap.message} ${serviceAccount.message}` } : serviceAccount;
}

export class WorkloadIdentityReconciler {
  readonly #d: WorkloadIdentityReconcilerDeps;
  readonly #report: Reporter;

  constructor(deps: WorkloadIdentityReconcilerDeps) {
    this.#d = deps;
    this.#report = new Reporter(deps);
  }

  async reconcile(key: string): Promise<ReconcileOutcome | void> {
    const cached = this.#d.identities.get(key);
    if (!cached) {
      this.#report.forget(key);
      return;
    }
    // The record as last written, which the cache may not show yet.
    const record = this.#report.record(cached);
    const wi: WorkloadIdentity = { ...cached, status: { ...cached.status, provisioned: record } };
    try {
      return wi.metadata.deletionTimestamp ? await this.#finalize(wi) : await this.#converge(wi);
    } catch (err) {
      // Deleted while we worked on it (its finalizer already released): nothing left to converge, nothing failed.
      if (err instanceof ObjectGone) {
        this.#report.forget(key);
        return;
      }
      throw err;
    }
  }

  /** The controller's report that a key keeps failing: a Warning Event on the object, for `kubectl describe`. */
  async reportRepeatedFailure(key: string, err: unknown, failures: number): Promise<void> {
    const wi = this.#d.identities.get(key);
    if (!wi) return;
    const cause = err instanceof Error ? err.message : String(err);
    await this.#report.event(wi, 'Warning', 'ReconcileFailing', `The last ${failures} reconciles failed; Keyless keeps retrying with backoff. Latest error: ${cause}`);
  }

  async #converge(original: WorkloadIdentity): Promise<ReconcileOutcome | void> {
    let wi = original;
    let record = recordOf(wi);
    // A first provisioning is routine: its progress is in the conditions, and a Normal Event per step would double
    // the Kubernetes writes of every new identity (docs/benchmarks.md). Failures, drift and revocations still have Events.
    const routine = !record && !wi.status?.identity;
    const plan = await this.#plan(wi, record);

    // What the record holds and this plan does not continue goes first, whether or not the new side can be made.
    if (record && (plan.refused ? plan.revoke : !plan.continuing)) {
      const why = plan.refused
        ? `${plan.message} So Keyless revokes what this WorkloadIdentity had in ${record.cloud}.`
        : `CloudAccount "${record.cloudAccount}" now places this identity elsewhere (another account, role name, resource group or workload identity pool), so Keyless revokes the old one before creating the new one.`;
      const result = await this.#revoke(wi, record, REASON.Revoking, why);
      if (!result) return { requeueAfterMs: REVOKE_POLL_MS };
      // The Event names what went; the condition states the rule, the same on every reconcile after.
      await this.#report.event(wi, 'Normal', 'Revoked', `Keyless revoked what this WorkloadIdentity had in ${record.cloud}: ${result}`);
      record = undefined;
    }
    if (plan.refused) return this.#refuse(wi, plan, record);

    wi = await this.#ensureFinalizer(wi);
    const { ctx, cloud, mechanism, account } = plan;
    const base: WorkloadIdentityStatus = { cloud, mechanism, subject: ctx.subject, issuer: ctx.issuer };
    // An identity that exists is verified as found: what its pods get before this reconcile repairs anything.
    const asFound = verificationEnabled(plan) && plan.continuing && wi.status?.identity ? await verifyCredentials(this.#d, wi, plan, keepIdentity(wi.status), false) : undefined;
    const result = await provision(this.#report, wi, plan, record);
    wi = result.wi;
    if (result.error !== undefined || !result.provisioned) return this.#providerFailure(wi, base, result.record, result.error);
    const provisioned = result.provisioned;

    if (!routine) await this.#report.changes(wi, provisioned.changes);
    const bound = await bindServiceAccount(this.#d, wi, cloud, provisioned);
    const podSide = withConfigMap(bound.outcome, await publishConfigMap(this.#d, wi, provisioned, record));
    const status: WorkloadIdentityStatus = { ...base, ...provisioned.status };
    const workloads = podSide.ok ? await workloadsUpToDate(this.#d, this.#report, wi, plan.provider.pods, status) : undefined;
    const verification = !verificationEnabled(plan)
      ? undefined
      : !asFound
        ? await verifyCredentials(this.#d, wi, plan, provisioned.status, provisioned.changes.length > 0)
        : // Refused as found and repaired just now: say what pods got, and look again once the cloud has the repair.
          asFound.outcome.status !== 'True' && provisioned.changes.length > 0
          ? { outcome: asFound.outcome, againMs: VERIFY_AFTER_REPAIR_MS }
          : asFound;
    const now: ProvisionedRecord = {
      cloud,
      cloudAccount: account.metadata.name,
      mechanism,
      ...(Object.keys(bound.applied).length ? { serviceAccountAnnotations: bound.applied } : {}),
      ...provisioned.record,
    };
    await this.#report.status(
      wi,
      {
        steps: {
          identity: { ok: true, reason: REASON.UpToDate, message: provisioned.messages.identity },
          trust: { ok: true, reason: REASON.UpToDate, message: provisioned.messages.trust },
          permissions: plan.violations.length
            ? {
                ok: false,
                reason: REASON.GuardrailViolation,
                message: `The guardrails of CloudAccount "${account.metadata.name}" no longer permit part of this spec, so Keyless removed those grants and keeps the rest: ${listViolations(plan.violations)}. ${provisioned.messages.permissions}.`,
              }
            : plan.ineffective.length
              ? {
                  ok: false,
                  reason: REASON.GrantsNothing,
                  message: `Part of this spec grants nothing, so calls the workload expects to work will be denied: ${plan.ineffective.slice(0, 10).join('; ')}${plan.ineffective.length > 10 ? `; and ${plan.ineffective.length - 10} more` : ''}. The cloud holds the spec as written; fix it. ${provisioned.messages.permissions}.`,
                }
              : { ok: true, reason: REASON.UpToDate, message: provisioned.messages.permissions },
        },
        serviceAccount: podSide,
        ...(workloads ? { workloads } : {}),
        ...(verification ? { credentials: verification.outcome } : {}),
        readyMessage: `Pods using ServiceAccount ${ctx.namespace}/${ctx.serviceAccountName} can use ${provisioned.status.identity ?? 'the identity'} (subject ${ctx.subject}). ${provisioned.messages.trust}. Pods started before this identity was ready get credentials only after a restart (kubectl rollout restart).`,
      },
      { ...status, provisioned: now },
      { routine },
    );
    if (routine) this.#d.logger.info({ workloadIdentity: `${ctx.namespace}/${wi.metadata.name}`, identity: provisioned.status.identity, changes: provisioned.changes.map((c) => c.message) }, 'provisioned');
    // Converged as far as the cloud goes, but a migration waits for pods to restart, or the cloud has yet to honour a
    // new trust: look again soon.
    const soon = [provisioned.waitingFor ? MIGRATION_POLL_MS : undefined, verification?.againMs].filter((ms): ms is number => ms !== undefined);
    if (soon.length) return { requeueAfterMs: Math.min(...soon) };
  }

  /** resolve → admit, stopping at the first refusal. */
  async #plan(wi: WorkloadIdentity, record: ProvisionedRecord | undefined): Promise<Admitted | Refusal> {
    const resolved = resolveAccount(this.#d, wi);
    if (resolved.refused) return resolved;
    const tenancy = admitNamespace(this.#d, wi, resolved.account);
    if (tenancy) return tenancy;
    const withProvider = resolveProvider(this.#d, wi, resolved, record);
    if (withProvider.refused) return withProvider;
    return admit(this.#d, wi, withProvider);
  }

  /**
   * A reconcile that stops before provisioning: what the record still holds is shown; a refusal that revokes says so
   * (the Revoked Event names what went).
   */
  async #refuse(wi: WorkloadIdentity, plan: Refusal, record: ProvisionedRecord | undefined): Promise<void> {
    const message = plan.revoke ? `${plan.message} While this lasts, Keyless gives this WorkloadIdentity no cloud identity and revokes any it had (the Revoked Event names what went).` : plan.message;
    // Blocked before the cloud: identity fields only while the record says something exists.
    const fields: WorkloadIdentityStatus = record ? { ...keepIdentity(wi.status), provisioned: record } : {};
    // What is kept still works, or not, for the pods: verified as found where that can be done.
    const kept = record && plan.verifiable && verificationEnabled(plan.verifiable) && wi.status?.identity ? await verifyCredentials(this.#d, wi, plan.verifiable, keepIdentity(wi.status), false) : undefined;
    await this.#report.status(wi, { steps: {}, blocked: { reason: plan.reason, message }, readyMessage: '', ...(kept ? { credentials: kept.outcome } : {}) }, fields);
    if (plan.terminal) throw new TerminalError(message);
  }

  async #ensureFinalizer(wi: WorkloadIdentity): Promise<WorkloadIdentity> {
    const finalizers = wi.metadata.finalizers ?? [];
    if (finalizers.includes(FINALIZER)) return wi;
    const updated = await this.#report.finalizers(wi, [...finalizers, FINALIZER]);
    return { ...updated, status: wi.status };
  }

  /**
   * Revokes `record` and says so in status while it is under way: the message when the cloud confirmed everything
   * is gone, undefined while it is still going. A failure is reported against the record, which stays.
   */
  async #revoke(wi: WorkloadIdentity, record: ProvisionedRecord, reason: Reason, why: string): Promise<string | undefined> {
    const blocked = (message: string) =>
      this.#report.status(wi, { steps: {}, blocked: { reason, message }, readyMessage: '' }, { ...keepIdentity(wi.status), provisioned: record });
    let result;
    try {
      result = await revokeRecord(this.#d, wi, record);
    } catch (err) {
      if (err instanceof ObjectGone) throw err;
      await blocked(`${why} Revocation failed: ${err instanceof ProviderError || err instanceof TerminalError ? err.message : transient(err)}. Keyless retries with backoff.`);
      throw err;
    }
    if (result.complete) return result.message;
    await blocked(`${why} ${result.message}.`);
    return undefined;
  }

  async #providerFailure(wi: WorkloadIdentity, base: WorkloadIdentityStatus, record: ProvisionedRecord | undefined, err: unknown): Promise<void> {
    const fields: WorkloadIdentityStatus = record ? { ...keepIdentity(wi.status), ...base, provisioned: record } : base;
    if (err instanceof ProviderError || (err instanceof CloudError && err.kind === 'terminal')) {
      const step = err instanceof ProviderError ? err.step : 'identity';
      const reason = err instanceof ProviderError ? err.reason : REASON.CloudRejected;
      const retryable = err instanceof ProviderError ? err.retryable : false;
      const message = err instanceof ProviderError ? err.message : `The cloud rejected the request: ${err.message}. Fix the spec so the cloud accepts it.`;
      await this.#report.status(wi, { steps: { [step]: { ok: false, reason, message } }, readyMessage: '' }, fields);
      if (!retryable) throw new TerminalError(message, { cause: err });
      throw err;
    }
    // Transient (throttling, a 5xx, a deadline, a network error): back off and retry. An identity that was Ready for
    // its current spec stays Ready — nothing changed in the cloud; a new or changed one says it is being provisioned.
    const readyForThisSpec = findCondition(wi.status?.conditions, CONDITION.ready)?.status === 'True' && wi.status?.observedGeneration === wi.metadata.generation;
    if (!readyForThisSpec) {
      await this.#report.status(wi, { steps: {}, blocked: { reason: REASON.Reconciling, message: `Provisioning; ${transient(err)}. Keyless retries with backoff.` }, readyMessage: '' }, fields);
    }
    throw err;
  }

  async #finalize(wi: WorkloadIdentity): Promise<ReconcileOutcome | void> {
    const finalizers = wi.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER) || this.#report.released(wi)) return;
    const record = recordOf(wi);
    const release = () => this.#report.finalizers(wi, finalizers.filter((f) => f !== FINALIZER));
    // Nothing was ever provisioned (the record is written before any cloud write): nothing to revoke.
    if (!record) {
      await release();
      return;
    }
    const account = this.#d.accounts.get(wi.spec.cloudAccountRef.name);
    if ((wi.spec.deletionPolicy ?? account?.spec.deletionPolicy ?? 'Delete') === 'Orphan') {
      const kept = await orphanConfigMap(this.#d, wi, record);
      await this.#report.event(wi, 'Normal', 'Orphaned', `deletionPolicy is Orphan: left ${wi.status?.identity ?? 'the cloud objects'}${kept ? `, ${kept}` : ''} and the ServiceAccount annotation in place`);
      await release();
      return;
    }
    const revoked = await this.#revoke(wi, record, REASON.Deleting, 'Deleting:');
    if (!revoked) return { requeueAfterMs: REVOKE_POLL_MS };
    // The object is about to vanish: what went is logged rather than written as Events on it (a delete is then two
    // Kubernetes writes, the annotation and the finalizer). A delete that cannot finish still says why in Ready.
    this.#d.logger.info({ workloadIdentity: `${wi.metadata.namespace ?? ''}/${wi.metadata.name}`, revoked }, 'revoked on delete');
    await release();
  }
}
