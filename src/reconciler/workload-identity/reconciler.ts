// The WorkloadIdentity reconcile: a key in, current state read from caches and the cloud, converged, status
// written once if it changed (CONVENTIONS habits 1, 2, 6, 7). It never branches on watch event types.
import type { V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import { API_VERSION, CONDITION, FINALIZER, REASON, WORKLOAD_IDENTITY_ANNOTATION, serviceAccountFieldManager, type Reason } from '../api/constants.ts';
import type { CloudAccount, Cloud, WorkloadIdentity, WorkloadIdentityStatus } from '../api/types.ts';
import type { Cache } from '../controller/informer.ts';
import type { ReconcileOutcome } from '../controller/controller.ts';
import { TerminalError } from '../controller/errors.ts';
import { deepEqual, findCondition, mergeConditions } from '../domain/conditions.ts';
import { describeViolation, evaluateGuardrails, type ActionCatalogue, type Violation } from '../domain/guardrails/index.ts';
import { selects } from '../domain/label-selector.ts';
import { serviceAccountSubject } from '../domain/naming.ts';
import type { KubePort } from '../kube/client.ts';
import type { WorkloadRef, Workloads } from '../kube/workloads.ts';
import type { Logger } from '../observability/logger.ts';
import { CloudError } from '../providers/cloud-error.ts';
import { cloudOf, mechanismOf, type ProviderRegistry } from '../providers/registry.ts';
import { ProviderError, type Change, type IdentityContext, type Provider, type Provisioned } from '../providers/types.ts';
import { workloadIdentityConditions, type Outcome } from './conditions.ts';
import { annotationsUpToDate, ownedAnnotationKeys } from './service-account.ts';
import { injectsIntoPods, staleReason } from './workloads.ts';

/** How soon to look again while the cloud confirms a deletion. */
const DELETE_POLL_MS = 5_000;
/** How soon to look again while a mechanism switch waits for old pods to go. */
const MIGRATION_POLL_MS = 15_000;

export interface WorkloadIdentityReconcilerDeps {
  cluster: string;
  identities: Cache<WorkloadIdentity>;
  accounts: Cache<CloudAccount>;
  serviceAccounts: Cache<V1ServiceAccount>;
  namespaces: Cache<V1Namespace>;
  workloads: Workloads;
  providers: ProviderRegistry;
  /** The real AWS actions, for the guardrails. */
  catalogue: ActionCatalogue;
  kube: KubePort;
  logger: Logger;
  now?: () => Date;
}

/** A reconcile stopped before the cloud: no cloud call is made and nothing is created. */
class Blocked extends Error {
  readonly reason: Reason;
  readonly terminal: boolean;
  constructor(reason: Reason, message: string, terminal: boolean) {
    super(message);
    this.reason = reason;
    this.terminal = terminal;
  }
}

interface Resolved {
  ctx: IdentityContext;
  provider: Provider;
  cloud: Cloud;
  mechanism: string;
  /** Guardrail violations of an identity that exists already: it is provisioned without the violating grants. */
  violations: Violation[];
}

export class WorkloadIdentityReconciler {
  readonly #d: WorkloadIdentityReconcilerDeps;
  readonly #now: () => Date;

  constructor(deps: WorkloadIdentityReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
  }

  async reconcile(key: string): Promise<ReconcileOutcome | void> {
    const wi = this.#d.identities.get(key);
    if (!wi) return;
    if (wi.metadata.deletionTimestamp) return this.#finalize(wi);

    let resolved: Resolved;
    try {
      resolved = await this.#resolve(wi);
      this.#checkConflict(wi, resolved.cloud);
    } catch (err) {
      if (!(err instanceof Blocked)) throw err;
      await this.#writeStatus(wi, { steps: {}, blocked: { reason: err.reason, message: err.message }, readyMessage: '' }, keepIdentity(wi.status));
      if (err.terminal) throw new TerminalError(err.message);
      return;
    }

    const current = await this.#ensureFinalizer(wi);
    const { ctx, provider } = resolved;
    const base = this.#baseStatus(resolved);
    let provisioned: Provisioned;
    try {
      const desired = provider.desired(ctx);
      provisioned = await provider.ensure(desired, await provider.observe(desired));
    } catch (err) {
      return this.#providerFailure(current, base, err);
    }

    await this.#emitChanges(current, provisioned.changes);
    const serviceAccount = await this.#annotate(current, resolved.cloud, provisioned);
    const status = { ...base, ...provisioned.status };
    const workloads = serviceAccount?.ok ? await this.#workloadsUpToDate(current, resolved, status) : undefined;
    const { subject } = ctx;
    await this.#writeStatus(
      current,
      {
        steps: {
          identity: { ok: true, reason: REASON.UpToDate, message: provisioned.messages.identity },
          trust: { ok: true, reason: REASON.UpToDate, message: provisioned.messages.trust },
          permissions: resolved.violations.length
            ? {
                ok: false,
                reason: REASON.GuardrailViolation,
                message: `The guardrails of CloudAccount "${wi.spec.cloudAccountRef.name}" no longer permit part of this spec, so Keyless removed those grants and keeps the rest: ${listViolations(resolved.violations)}. ${provisioned.messages.permissions}.`,
              }
            : { ok: true, reason: REASON.UpToDate, message: provisioned.messages.permissions },
        },
        serviceAccount,
        ...(workloads ? { workloads } : {}),
        readyMessage: `Pods using ServiceAccount ${ctx.namespace}/${ctx.serviceAccountName} can use ${provisioned.status.identity ?? 'the identity'} (subject ${subject}). ${provisioned.messages.trust}. Pods started before this identity was ready get credentials only after a restart (kubectl rollout restart).`,
      },
      status,
    );
    // Converged as far as the cloud goes, but a migration waits for pods to restart: look again soon.
    if (provisioned.waitingFor) return { requeueAfterMs: MIGRATION_POLL_MS };
  }

  /** Finds the CloudAccount, cloud, mechanism and provider, checks tenancy and guardrails, or says why not. */
  async #resolve(wi: WorkloadIdentity): Promise<Resolved> {
    const accountName = wi.spec.cloudAccountRef.name;
    const account = this.#d.accounts.get(accountName);
    if (!account) {
      throw new Blocked(REASON.CloudAccountNotFound, `CloudAccount "${accountName}" does not exist. Create it (a platform team task) or fix spec.cloudAccountRef.name.`, false);
    }
    const cloud = cloudOf(wi.spec);
    const accountCloud = cloudOf(account.spec);
    if (!cloud || cloud !== accountCloud) {
      throw new Blocked(REASON.CloudMismatch, `spec.${cloud ?? '<cloud>'} does not match CloudAccount "${accountName}", which is for ${accountCloud ?? 'no cloud'}; use spec.${accountCloud ?? 'aws'} or another CloudAccount.`, true);
    }
    const namespace = wi.metadata.namespace ?? '';
    if (!selects(account.spec.namespaceSelector, this.#d.namespaces.get(namespace)?.metadata?.labels)) {
      throw new Blocked(REASON.NamespaceNotAllowed, `CloudAccount "${accountName}" does not admit namespace ${namespace} (its namespaceSelector does not match the namespace's labels). Ask the platform team for access, or use a CloudAccount that admits this namespace.`, true);
    }
    const ready = findCondition(account.status?.conditions, CONDITION.ready);
    const issuer = account.status?.issuer;
    if (ready?.status !== 'True' || !issuer) {
      throw new Blocked(REASON.CloudAccountNotReady, `CloudAccount "${accountName}" is not ready: ${ready?.message ?? 'it has not been reconciled yet'}`, false);
    }
    const mechanism = mechanismOf(wi.spec, account, cloud);
    const provider = this.#d.providers.providerFor(account, cloud, mechanism);
    if (!provider) {
      throw new Blocked(REASON.InvalidSpec, `Mechanism ${mechanism} for ${cloud} is not supported by this version of Keyless.`, true);
    }
    const guardrails = await evaluateGuardrails(wi.spec, account, this.#d.catalogue);
    const violations = [...this.#quotaViolations(wi, account), ...guardrails.violations];
    // Only the operator writes status (users have no access to the status subresource), so an identity the
    // operator reported is one that may exist in the cloud; a finalizer alone could come from a manifest.
    const exists = (wi.metadata.finalizers ?? []).includes(FINALIZER) && wi.status?.identity !== undefined;
    if (violations.length && !exists) {
      // Nothing has been created: create nothing.
      throw new Blocked(REASON.GuardrailViolation, `Refused by the guardrails of CloudAccount "${accountName}", so nothing was created: ${listViolations(violations)}.`, true);
    }
    // An identity that exists keeps only what the guardrails still permit (least privilege is continuous).
    const spec = guardrails.violations.length ? guardrails.permitted : wi.spec;
    const ctx = { ...this.#context(wi, account, issuer), spec };
    const problems = provider.validate(ctx);
    if (problems.length) {
      throw new Blocked(REASON.InvalidSpec, `Invalid spec: ${problems.join('; ')}.`, true);
    }
    return { ctx, provider, cloud, mechanism, violations };
  }

  /** The newest WorkloadIdentities of a namespace beyond the account's per-namespace limit. */
  #quotaViolations(wi: WorkloadIdentity, account: CloudAccount): Violation[] {
    const limit = account.spec.guardrails?.maxIdentitiesPerNamespace;
    if (limit === undefined) return [];
    const peers = this.#d.identities
      .list()
      .filter((o) => o.metadata.namespace === wi.metadata.namespace && o.spec.cloudAccountRef.name === account.metadata.name && !o.metadata.deletionTimestamp);
    const older = peers.filter((o) => o.metadata.name !== wi.metadata.name && olderThan(o, wi)).length;
    return older >= limit
      ? [{ field: 'metadata.namespace', entry: wi.metadata.namespace ?? '', rule: 'guardrails.maxIdentitiesPerNamespace', hint: `this namespace already has ${older} WorkloadIdentities in CloudAccount ${account.metadata.name}; the limit is ${limit}` }]
      : [];
  }

  #context(wi: WorkloadIdentity, account: CloudAccount, issuer: string): IdentityContext {
    const namespace = wi.metadata.namespace ?? '';
    return {
      cluster: this.#d.cluster,
      namespace,
      name: wi.metadata.name,
      uid: wi.metadata.uid ?? '',
      serviceAccountName: wi.spec.serviceAccountName,
      subject: serviceAccountSubject(namespace, wi.spec.serviceAccountName),
      spec: wi.spec,
      account,
      issuer,
      ...(wi.status ? { status: wi.status } : {}),
      serviceAccountAnnotations: this.#d.serviceAccounts.get(`${namespace}/${wi.spec.serviceAccountName}`)?.metadata?.annotations ?? undefined,
      adopt: wi.metadata.annotations?.[WORKLOAD_IDENTITY_ANNOTATION.adopt] === 'true' && account.spec.guardrails?.allowAdoption === true,
    };
  }

  /** Two WorkloadIdentities for one ServiceAccount and one cloud: the older one wins, the newer one waits. */
  #checkConflict(wi: WorkloadIdentity, cloud: Cloud): void {
    const rivals = this.#d.identities
      .list()
      .filter(
        (o) =>
          o.metadata.namespace === wi.metadata.namespace &&
          o.metadata.name !== wi.metadata.name &&
          o.spec.serviceAccountName === wi.spec.serviceAccountName &&
          // A rival being deleted still holds the identity until its revocation is done: taking over earlier would
          // let its finalizer revoke grants the newcomer shares (GKE DirectPrincipal members, for one).
          cloudOf(o.spec) === cloud,
      )
      .filter((o) => olderThan(o, wi));
    const winner = rivals[0];
    if (winner) {
      throw new Blocked(
        REASON.Conflict,
        `WorkloadIdentity ${winner.metadata.namespace}/${winner.metadata.name} already gives ServiceAccount ${wi.spec.serviceAccountName} a ${cloud} identity. A ServiceAccount can carry one identity per cloud: merge the permissions into that WorkloadIdentity or use another ServiceAccount.`,
        true,
      );
    }
  }

  async #ensureFinalizer(wi: WorkloadIdentity): Promise<WorkloadIdentity> {
    const finalizers = wi.metadata.finalizers ?? [];
    if (finalizers.includes(FINALIZER)) return wi;
    return this.#d.kube.setWorkloadIdentityFinalizers(wi, [...finalizers, FINALIZER]);
  }

  #baseStatus(r: Resolved): WorkloadIdentityStatus {
    return { cloud: r.cloud, mechanism: r.mechanism, subject: r.ctx.subject, issuer: r.ctx.issuer };
  }

  async #providerFailure(wi: WorkloadIdentity, base: WorkloadIdentityStatus, err: unknown): Promise<void> {
    const previous = keepIdentity(wi.status);
    if (err instanceof ProviderError || (err instanceof CloudError && err.kind === 'terminal')) {
      const step = err instanceof ProviderError ? err.step : 'identity';
      const reason = err instanceof ProviderError ? err.reason : REASON.CloudRejected;
      const retryable = err instanceof ProviderError ? err.retryable : false;
      const message = err instanceof ProviderError ? err.message : `The cloud rejected the request: ${err.message}. Fix the spec so the cloud accepts it.`;
      await this.#writeStatus(wi, { steps: { [step]: { ok: false, reason, message } }, readyMessage: '' }, { ...previous, ...base });
      if (!retryable) throw new TerminalError(message, { cause: err });
      throw err;
    }
    // Transient (throttling, a 5xx, a network error): back off and retry. An identity that was Ready for its
    // current spec stays Ready — nothing changed in the cloud; a new or changed one says it is being provisioned.
    const readyForThisSpec = findCondition(wi.status?.conditions, CONDITION.ready)?.status === 'True' && wi.status?.observedGeneration === wi.metadata.generation;
    if (!readyForThisSpec) {
      await this.#writeStatus(
        wi,
        { steps: {}, blocked: { reason: REASON.Reconciling, message: `Provisioning; the cloud asked us to retry (${err instanceof CloudError ? err.code : 'error'}). Keyless retries with backoff.` }, readyMessage: '' },
        { ...previous, ...base },
      );
    }
    throw err;
  }

  /**
   * Puts our annotations on the ServiceAccount. serviceAccountName is immutable (CRD), so no other ServiceAccount
   * ever carries this identity's annotations.
   */
  async #annotate(wi: WorkloadIdentity, cloud: Cloud, provisioned: Provisioned): Promise<Outcome['serviceAccount']> {
    const namespace = wi.metadata.namespace ?? '';
    const name = wi.spec.serviceAccountName;
    const desired = provisioned.serviceAccountAnnotations;
    const sa = this.#d.serviceAccounts.get(`${namespace}/${name}`);
    if (!sa) {
      return {
        ok: false,
        reason: REASON.ServiceAccountNotFound,
        message: `ServiceAccount ${namespace}/${name} does not exist yet. The cloud identity is ready; Keyless annotates the ServiceAccount as soon as it is created.`,
      };
    }
    const keys = Object.keys(desired);
    const manager = serviceAccountFieldManager(cloud);
    if (!annotationsUpToDate(sa, desired, manager)) {
      await this.#d.kube.applyServiceAccountAnnotations(sa, desired, manager);
    }
    return {
      ok: true,
      reason: keys.length ? REASON.Annotated : REASON.NotRequired,
      message: [
        keys.length
          ? `ServiceAccount ${namespace}/${name} carries ${keys.map((k) => `${k}=${desired[k]}`).join(', ')}.`
          : `ServiceAccount ${namespace}/${name} needs no annotation for this mechanism.`,
        provisioned.serviceAccountHint,
      ]
        .filter(Boolean)
        .join(' '),
    };
  }

  /**
   * WorkloadsUpToDate: running pods of the ServiceAccount that predate the identity (or its latest change), with the
   * rollout restart to run; with keyless.dev/restart-workloads, Keyless runs it once per identity change.
   */
  async #workloadsUpToDate(wi: WorkloadIdentity, r: Resolved, status: WorkloadIdentityStatus): Promise<Outcome['workloads']> {
    const { namespace, serviceAccountName } = r.ctx;
    if (!injectsIntoPods(r.cloud)) {
      return { ok: true, reason: REASON.NotRequired, message: 'Pods need no restart: GKE serves credentials through the node metadata server.' };
    }
    const pods = await this.#d.workloads.podsOf(namespace, serviceAccountName);
    const stale = pods.flatMap((p) => {
      const why = staleReason(p, r.cloud, r.mechanism, status);
      return why ? [{ pod: p, why }] : [];
    });
    if (stale.length === 0) {
      return { ok: true, reason: REASON.UpToDate, message: `All ${pods.length} running pod(s) of ServiceAccount ${namespace}/${serviceAccountName} use the current identity.` };
    }
    const owners = new Map<string, WorkloadRef>();
    for (const { pod } of stale) {
      const owner = await this.#d.workloads.ownerOf(pod);
      if (owner) owners.set(`${owner.kind.toLowerCase()}/${owner.name}`, owner);
    }
    const listed = stale.slice(0, 5).map(({ pod, why }) => `${pod.metadata?.name ?? ''} ${why}`);
    const more = stale.length > listed.length ? ` and ${stale.length - listed.length} more` : '';
    const command = owners.size ? ` Restart them: kubectl rollout restart -n ${namespace} ${[...owners.keys()].join(' ')}.` : ' Delete them so their controllers recreate them.';
    let restarted = '';
    if (wi.metadata.annotations?.[WORKLOAD_IDENTITY_ANNOTATION.restartWorkloads] === 'true') {
      // One restart per identity change: a pod that still lacks credentials afterwards (no webhook?) is reported,
      // not restarted in a loop.
      const stamp = `${status.identity ?? ''}@${wi.metadata.generation ?? 0}`;
      const done: string[] = [];
      for (const [key, owner] of owners) {
        if ((await this.#d.workloads.restartedFor(namespace, owner)) === stamp) continue;
        await this.#d.workloads.restart(namespace, owner, stamp);
        done.push(key);
      }
      if (done.length) {
        await this.#event(wi, 'Normal', 'WorkloadsRestarted', `Restarted ${done.join(', ')} so their pods pick up ${status.identity ?? 'the identity'} (keyless.dev/restart-workloads)`);
        restarted = ` Keyless restarted ${done.join(', ')} (keyless.dev/restart-workloads); this clears once the new pods run.`;
      }
    }
    return {
      ok: false,
      reason: REASON.PodsNeedRestart,
      message: `${stale.length} running pod(s) of ServiceAccount ${namespace}/${serviceAccountName} do not use the current identity: ${listed.join('; ')}${more}.${command}${restarted}`,
    };
  }

  async #finalize(wi: WorkloadIdentity): Promise<ReconcileOutcome | void> {
    const finalizers = wi.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) return;
    const account = this.#d.accounts.get(wi.spec.cloudAccountRef.name);
    const policy = wi.spec.deletionPolicy ?? account?.spec.deletionPolicy ?? 'Delete';
    const release = () => this.#d.kube.setWorkloadIdentityFinalizers(wi, finalizers.filter((f) => f !== FINALIZER));

    if (policy === 'Orphan') {
      await this.#event(wi, 'Normal', 'Orphaned', `deletionPolicy is Orphan: left ${wi.status?.identity ?? 'the cloud objects'} and the ServiceAccount annotation in place`);
      await release();
      return;
    }
    if (!account) {
      await this.#writeStatus(
        wi,
        { steps: {}, blocked: { reason: REASON.CloudAccountNotFound, message: `Cannot revoke: CloudAccount "${wi.spec.cloudAccountRef.name}" does not exist. Recreate it, or set spec.deletionPolicy: Orphan to leave the cloud objects in place.` }, readyMessage: '' },
        keepIdentity(wi.status),
      );
      throw new TerminalError('cloud account missing during deletion');
    }
    const cloud = cloudOf(wi.spec);
    const mechanism = cloud ? mechanismOf(wi.spec, account, cloud) : '';
    const provider = cloud ? this.#d.providers.providerFor(account, cloud, mechanism) : undefined;
    if (!provider) {
      // Nothing this build could have created.
      await release();
      return;
    }

    // 1. The ServiceAccount annotation goes first, so no new pod is pointed at an identity about to disappear.
    const namespace = wi.metadata.namespace ?? '';
    const sa = this.#d.serviceAccounts.get(`${namespace}/${wi.spec.serviceAccountName}`);
    const manager = serviceAccountFieldManager(provider.cloud);
    if (sa && ownedAnnotationKeys(sa, manager).length) await this.#d.kube.applyServiceAccountAnnotations(sa, {}, manager);

    // 2. Trust, grants and identity, in the provider's order; the finalizer stays until the cloud confirms.
    const ctx = this.#context(wi, account, account.status?.issuer ?? '');
    const revoked = await provider.delete(provider.desired(ctx));
    await this.#emitChanges(wi, revoked.changes);
    if (!revoked.complete) {
      await this.#writeStatus(wi, { steps: {}, blocked: { reason: REASON.Deleting, message: revoked.message }, readyMessage: '' }, keepIdentity(wi.status));
      return { requeueAfterMs: DELETE_POLL_MS };
    }
    await this.#event(wi, 'Normal', 'Revoked', revoked.message);
    await release();
  }

  async #emitChanges(wi: WorkloadIdentity, changes: Change[]): Promise<void> {
    const wasReady = findCondition(wi.status?.conditions, CONDITION.ready)?.status === 'True';
    const specUnchanged = wi.status?.observedGeneration === wi.metadata.generation;
    for (const change of changes) {
      // A write while nothing in the spec changed and the identity was Ready means someone edited the cloud.
      const drift = wasReady && specUnchanged && change.action !== 'Deleted';
      await this.#event(wi, drift ? 'Warning' : 'Normal', drift ? 'DriftRepaired' : change.action, change.message);
    }
  }

  /** Builds conditions and status; writes once, only if something changed; emits an Event when Ready moves. */
  async #writeStatus(wi: WorkloadIdentity, outcome: Outcome, fields: WorkloadIdentityStatus): Promise<void> {
    const conditions = mergeConditions(wi.status?.conditions, workloadIdentityConditions(outcome), wi.metadata.generation, this.#now());
    const status: WorkloadIdentityStatus = { ...fields, observedGeneration: wi.metadata.generation, conditions };
    if (deepEqual(stripUndefined(status), stripUndefined(wi.status ?? {}))) return;
    await this.#d.kube.replaceWorkloadIdentityStatus(wi, stripUndefined(status));

    const before = findCondition(wi.status?.conditions, CONDITION.ready);
    const after = findCondition(conditions, CONDITION.ready);
    if (after && (before?.status !== after.status || before.reason !== after.reason)) {
      await this.#event(wi, after.status === 'True' ? 'Normal' : 'Warning', after.reason, after.message);
    }
  }

  async #event(wi: WorkloadIdentity, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    try {
      await this.#d.kube.recordEvent({ apiVersion: API_VERSION, kind: 'WorkloadIdentity', metadata: wi.metadata }, type, reason, message);
    } catch (err) {
      // Events are best effort: losing one must not fail or repeat a reconcile.
      this.#d.logger.warn({ err, reason }, 'event not recorded');
    }
  }
}

/** Every violation, up to a bound that keeps the condition message readable (and under the API's size limit). */
function listViolations(violations: Violation[]): string {
  const shown = violations.slice(0, 10).map(describeViolation).join('; ');
  return violations.length > 10 ? `${shown}; and ${violations.length - 10} more` : shown;
}

function olderThan(a: WorkloadIdentity, b: WorkloadIdentity): boolean {
  const ta = new Date(a.metadata.creationTimestamp ?? 0).getTime();
  const tb = new Date(b.metadata.creationTimestamp ?? 0).getTime();
  return ta < tb || (ta === tb && a.metadata.name < b.metadata.name);
}

/** Identity fields of an earlier status, kept while a reconcile fails so `kubectl get` still shows them. */
function keepIdentity(status: WorkloadIdentityStatus | undefined): WorkloadIdentityStatus {
  if (!status) return {};
  const { identity, audience, aws, gcp, azure, cloud, mechanism, subject, issuer } = status;
  return { identity, audience, aws, gcp, azure, cloud, mechanism, subject, issuer };
}

function stripUndefined<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
