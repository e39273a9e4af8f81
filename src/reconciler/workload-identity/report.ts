// Step 5 of a reconcile, and every write to the WorkloadIdentity itself: conditions built from what the reconcile
// learned, status written once and only when it changed, Events on transitions. A WorkloadIdentity deleted while it
// was being reconciled is a state, not an error: its writes raise ObjectGone, which ends the reconcile quietly.
import { API_VERSION, CONDITION, FINALIZER } from '../../api/constants.ts';
import type { ProvisionedRecord, WorkloadIdentity, WorkloadIdentityStatus } from '../../api/types.ts';
import { isNotFound } from '../../controller/errors.ts';
import { deepEqual, findCondition, mergeConditions } from '../../domain/conditions.ts';
import type { Change } from '../../providers/types.ts';
import { workloadIdentityConditions, type Outcome } from './conditions.ts';
import type { WorkloadIdentityReconcilerDeps } from './deps.ts';

/** The WorkloadIdentity no longer exists (404 on a write to it). */
export class ObjectGone extends Error {
  constructor(options?: { cause?: unknown }) {
    super('the WorkloadIdentity no longer exists', options);
    this.name = 'ObjectGone';
  }
}

const keyOf = (wi: WorkloadIdentity) => `${wi.metadata.namespace ?? ''}/${wi.metadata.name}`;

async function onObject<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (isNotFound(err)) throw new ObjectGone({ cause: err });
    throw err;
  }
}

function stripUndefined<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

export class Reporter {
  readonly #d: WorkloadIdentityReconcilerDeps;
  readonly #now: () => Date;
  /**
   * The record this process last wrote, per object. Only the operator writes status, and only the leader runs, so
   * what it wrote last is what the API server holds — while the informer may still show an older status. A reconcile
   * that started from such a stale copy would take our own grants for someone else's (GKE principal bindings) or
   * forget an object it created; reading the record from here closes that window.
   */
  readonly #records = new Map<string, { uid: string | undefined; record: ProvisionedRecord | undefined }>();
  /**
   * Objects whose finalizer this process released: gone for the API server, while the informer may still show them
   * being deleted. A reconcile queued meanwhile (our own annotation removal triggers one) must not revoke again.
   */
  readonly #released = new Map<string, string | undefined>();

  constructor(d: WorkloadIdentityReconcilerDeps) {
    this.#d = d;
    this.#now = d.now ?? (() => new Date());
  }

  /**
   * Builds conditions from `outcome` and writes `fields` with them, once, only if something changed; emits an Event
   * when Ready moves — except a `routine` Normal one (a first provisioning becoming Ready). Returns the object as
   * written, for a later write in the same reconcile.
   */
  async status(wi: WorkloadIdentity, outcome: Outcome, fields: WorkloadIdentityStatus, opts: { routine?: boolean } = {}): Promise<WorkloadIdentity> {
    const conditions = mergeConditions(wi.status?.conditions, workloadIdentityConditions(outcome), wi.metadata.generation, this.#now());
    const written = await this.fields(wi, { ...fields, observedGeneration: wi.metadata.generation, conditions });
    const before = findCondition(wi.status?.conditions, CONDITION.ready);
    const after = findCondition(conditions, CONDITION.ready);
    if (written !== wi && after && (before?.status !== after.status || before.reason !== after.reason) && !(opts.routine && after.status === 'True')) {
      await this.event(wi, after.status === 'True' ? 'Normal' : 'Warning', after.reason, after.message);
    }
    return written;
  }

  /** Writes `status` as it is, if it differs from what the object carries. */
  async fields(wi: WorkloadIdentity, status: WorkloadIdentityStatus): Promise<WorkloadIdentity> {
    const next = stripUndefined(status);
    if (deepEqual(next, stripUndefined(wi.status ?? {}))) return wi;
    await onObject(() => this.#d.kube.replaceWorkloadIdentityStatus(wi, next));
    this.#records.set(keyOf(wi), { uid: wi.metadata.uid, record: next.provisioned });
    return { ...wi, status: next };
  }

  /** The record as this process last wrote it for this object, else as the cache shows it. */
  record(wi: WorkloadIdentity): ProvisionedRecord | undefined {
    const written = this.#records.get(keyOf(wi));
    return written && written.uid === wi.metadata.uid ? written.record : wi.status?.provisioned;
  }

  /** Drops what this process remembers of an object that is gone. */
  forget(key: string): void {
    this.#records.delete(key);
    this.#released.delete(key);
  }

  async finalizers(wi: WorkloadIdentity, finalizers: string[]): Promise<WorkloadIdentity> {
    const written = await onObject(() => this.#d.kube.setWorkloadIdentityFinalizers(wi, finalizers));
    if (wi.metadata.deletionTimestamp && !finalizers.includes(FINALIZER)) this.#released.set(keyOf(wi), wi.metadata.uid);
    return written;
  }

  /** Whether this process already released the finalizer of this very object (same uid). */
  released(wi: WorkloadIdentity): boolean {
    const key = keyOf(wi);
    return this.#released.has(key) && this.#released.get(key) === wi.metadata.uid;
  }

  async event(wi: WorkloadIdentity, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    try {
      await this.#d.kube.recordEvent({ apiVersion: API_VERSION, kind: 'WorkloadIdentity', metadata: wi.metadata }, type, reason, message);
    } catch (err) {
      // Events are best effort: losing one must not fail or repeat a reconcile.
      this.#d.logger.warn({ err, reason }, 'event not recorded');
    }
  }

  /** An Event per cloud change; a write while the spec is unchanged and the identity was Ready repaired drift. */
  async changes(wi: WorkloadIdentity, changes: Change[]): Promise<void> {
    const wasReady = findCondition(wi.status?.conditions, CONDITION.ready)?.status === 'True';
    const specUnchanged = wi.status?.observedGeneration === wi.metadata.generation;
    for (const change of changes) {
      const drift = wasReady && specUnchanged && change.action !== 'Deleted';
      await this.event(wi, drift ? 'Warning' : 'Normal', drift ? 'DriftRepaired' : change.action, change.message);
    }
  }
}
