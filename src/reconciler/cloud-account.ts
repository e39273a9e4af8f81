// The CloudAccount reconcile: resolve the issuer this cluster's tokens carry, check the cloud trusts it, and say
// precisely what the platform team must create when it does not — or create it, where the account opts in
// (spec.aws.manageOidcProvider, spec.gcp.manageWorkloadIdentityProvider). It also checks, as a warning beside Ready, that the cloud can fetch the issuer's
// discovery document and keys (IssuerReachable).
import { ACCOUNT_CONDITION, API_VERSION, CLOUD_ACCOUNT_FINALIZER, CONDITION, REASON } from '../api/constants.ts';
import type { CloudAccount, CloudAccountStatus, Cloud, ManagedTrust, WorkloadIdentity } from '../api/types.ts';
import type { Cache } from '../controller/informer.ts';
import { TerminalError } from '../controller/errors.ts';
import { deepEqual, findCondition, mergeConditions, type ConditionInput } from '../domain/conditions.ts';
import type { KubePort } from '../kube/client.ts';
import type { Logger } from '../observability/logger.ts';
import { CloudError, isCloudError } from '../providers/cloud-error.ts';
import { checkIssuerReachable, issuerNotChecked, type AnonymousGet } from '../providers/issuer/reachability.ts';
import { cloudOf } from '../providers/registry.ts';
import type { AccountCheck, AccountContext, AccountEvent, AccountRelease, AccountVerdict } from '../providers/types.ts';
import { BY_CLOUD_ACCOUNT } from './indexes.ts';

export interface CloudAccountReconcilerDeps {
  accounts: Cache<CloudAccount>;
  identities: Cache<WorkloadIdentity>;
  checks: Partial<Record<Cloud, AccountCheck>>;
  /** What deletes the objects Keyless created for an account's own trust before its finalizer comes off. */
  releases?: Partial<Record<Cloud, AccountRelease>>;
  /** Fetches an issuer's discovery document and JWKS anonymously, as the cloud does (IssuerReachable). */
  issuerGet: AnonymousGet;
  /** The ownership marker value for this cluster. */
  cluster: string;
  kube: KubePort;
  logger: Logger;
  /** How long a cloud verdict for an unchanged CloudAccount is reused before the cloud is asked again. */
  verdictTtlMs: number;
  now?: () => Date;
}

/** A verdict and the IssuerReachable condition that goes with it. */
interface Checked {
  verdict: AccountVerdict;
  issuerReachable: ConditionInput;
}

/** The conditions a CloudAccount reports next to Ready that a verdict may leave as they are. */
const CLOUD_CONDITIONS: readonly string[] = [ACCOUNT_CONDITION.oidcProviderManaged];

/** The lists of what Keyless created that hold something, or undefined when none does. */
function nonEmpty(trust: ManagedTrust | undefined): ManagedTrust | undefined {
  const kept = Object.entries(trust ?? {}).filter(([, names]) => Array.isArray(names) && names.length > 0);
  return kept.length ? Object.fromEntries(kept) : undefined;
}

export class CloudAccountReconciler {
  readonly #d: CloudAccountReconcilerDeps;
  readonly #now: () => Date;
  /**
   * The last cloud verdict per account. The identities count is refreshed whenever WorkloadIdentities come and go;
   * the cloud is asked again only when the spec or what the check depends on changed (whether identities use the
   * account, what the other accounts trust through), or the verdict is older than the TTL.
   */
  readonly #verdicts = new Map<string, { uid: string | undefined; generation: number | undefined; context: string; at: number; checked: Checked }>();

  constructor(deps: CloudAccountReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
  }

  async reconcile(name: string): Promise<void> {
    const account = this.#d.accounts.get(name);
    if (!account) return;
    const users = this.#d.identities.byIndex(BY_CLOUD_ACCOUNT, name);
    const ctx = this.#context(account, users.length);
    const finalizers = account.metadata.finalizers ?? [];
    if (account.metadata.deletionTimestamp) {
      if (!finalizers.includes(CLOUD_ACCOUNT_FINALIZER)) return;
      if (users.length === 0) {
        if (!(await this.#release(account, ctx))) return;
        await this.#d.kube.setCloudAccountFinalizers(account, finalizers.filter((f) => f !== CLOUD_ACCOUNT_FINALIZER));
        return;
      }
      const names = users.slice(0, 10).map((wi) => `${wi.metadata.namespace ?? ''}/${wi.metadata.name}`);
      await this.#writeKept(account, users.length, {
        ok: false,
        reason: REASON.InUse,
        message: `Deletion waits for the ${users.length} WorkloadIdentities that still use this account (${names.join(', ')}${users.length > names.length ? ', ...' : ''}): their finalizers need it to revoke their cloud objects. Delete them first.`,
      });
      return;
    }
    if (!finalizers.includes(CLOUD_ACCOUNT_FINALIZER)) {
      await this.#d.kube.setCloudAccountFinalizers(account, [...finalizers, CLOUD_ACCOUNT_FINALIZER]);
    }
    const { checked, fresh } = await this.#verdict(account, ctx);
    if (fresh) await this.#events(account, checked.verdict.events ?? []);
    const extra = checked.verdict.conditions ?? this.#previous(account, CLOUD_CONDITIONS);
    await this.#writeStatus(account, users.length, checked.verdict, [checked.issuerReachable, ...extra]);
    if (!checked.verdict.ok && checked.verdict.reason === REASON.InvalidSpec) throw new TerminalError(checked.verdict.message);
  }

  #context(account: CloudAccount, identities: number): AccountContext {
    const others = this.#d.accounts.list().filter((a) => a.metadata.name !== account.metadata.name);
    return { cluster: this.#d.cluster, identities, others };
  }

  /**
   * Deletes what Keyless created for the account's own trust. True once nothing is left; false while something still
   * needs it, which the Ready condition then says.
   */
  async #release(account: CloudAccount, ctx: AccountContext): Promise<boolean> {
    const cloud = cloudOf(account.spec);
    const release = cloud ? this.#d.releases?.[cloud] : undefined;
    if (!release) return true;
    let released;
    try {
      released = await release(account, ctx);
    } catch (err) {
      if (!(err instanceof CloudError)) throw err;
      // Said on the object, then retried with backoff: the finalizer stays until the cloud confirms.
      const fix = isCloudError(err, 'terminal') ? ' Check the operator\'s own cloud permissions for this account.' : ' Keyless retries.';
      await this.#writeKept(account, 0, { ok: false, reason: REASON.Deleting, message: `Deleting what Keyless created for this account failed: ${err.message}.${fix}` });
      throw err;
    }
    await this.#events(account, released.events);
    if (released.complete) return true;
    await this.#writeKept(account, 0, { ok: false, reason: REASON.InUse, message: released.message });
    return false;
  }

  /** A deleting account's status: a new Ready, everything else as it was. */
  async #writeKept(account: CloudAccount, identities: number, ready: Pick<AccountVerdict, 'ok' | 'reason' | 'message'>): Promise<void> {
    const verdict: AccountVerdict = { ...ready, ...(account.status?.issuer ? { issuer: account.status.issuer } : {}), ...(account.status?.oidcProviderArn ? { oidcProviderArn: account.status.oidcProviderArn } : {}) };
    await this.#writeStatus(account, identities, verdict, this.#previous(account, [ACCOUNT_CONDITION.issuerReachable, ...CLOUD_CONDITIONS]));
  }

  /** The account's current conditions of these types, to write again unchanged. */
  #previous(account: CloudAccount, types: readonly string[]): ConditionInput[] {
    return (account.status?.conditions ?? []).filter((c) => types.includes(c.type)).map(({ type, status, reason, message }) => ({ type, status, reason, message }));
  }

  async #events(account: CloudAccount, events: AccountEvent[]): Promise<void> {
    for (const e of events) {
      this.#d.logger.info({ account: account.metadata.name, reason: e.reason, message: e.message }, 'cloud account trust changed');
      await this.#event(account, e.type, e.reason, e.message);
    }
  }

  async #event(account: CloudAccount, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    await this.#d.kube
      .recordEvent({ apiVersion: API_VERSION, kind: 'CloudAccount', metadata: account.metadata }, type, reason, message)
      .catch((err: unknown) => this.#d.logger.warn({ err }, 'event not recorded'));
  }

  /**
   * Writes status once, only if it changed, with an Event when Ready moves, and when another condition moves — but
   * not for one that appears in good health: a new account with a reachable issuer records no more than before.
   */
  async #writeStatus(account: CloudAccount, identities: number, verdict: AccountVerdict, others: ConditionInput[]): Promise<void> {
    const cloud = cloudOf(account.spec);
    const ready: ConditionInput = { type: CONDITION.ready, status: verdict.ok ? 'True' : 'False', reason: verdict.reason, message: verdict.message };
    const conditions = mergeConditions(account.status?.conditions, [ready, ...others], account.metadata.generation, this.#now());
    const managedTrust = nonEmpty(verdict.managedTrust ?? account.status?.managedTrust);
    const status: CloudAccountStatus = JSON.parse(
      JSON.stringify({ observedGeneration: account.metadata.generation, cloud, issuer: verdict.issuer, oidcProviderArn: verdict.oidcProviderArn, managedTrust, identities, conditions }),
    ) as CloudAccountStatus;
    if (deepEqual(status, account.status ?? {})) return;
    await this.#d.kube.replaceCloudAccountStatus(account, status);
    const before = findCondition(account.status?.conditions, CONDITION.ready);
    if (before?.status !== ready.status || before.reason !== ready.reason) {
      await this.#event(account, verdict.ok ? 'Normal' : 'Warning', ready.reason, ready.message);
    }
    for (const c of others) {
      const previous = findCondition(account.status?.conditions, c.type);
      if (previous ? previous.status === c.status && previous.reason === c.reason : c.status !== 'False') continue;
      await this.#event(account, c.status === 'False' ? 'Warning' : 'Normal', c.reason, c.message);
    }
  }

  /** The cached verdict while still good, else a fresh one; `fresh` says which. */
  async #verdict(account: CloudAccount, ctx: AccountContext): Promise<{ checked: Checked; fresh: boolean }> {
    const name = account.metadata.name;
    const now = this.#now().getTime();
    const cached = this.#verdicts.get(name);
    // What a check depends on besides the spec: whether identities use the account (a managed provider the account
    // stopped asking for waits for none to be left), and what the other accounts trust through.
    const context = JSON.stringify([ctx.identities > 0, ctx.others.map((a) => [a.metadata.name, a.status?.oidcProviderArn ?? '', a.spec.gcp?.workloadIdentityProvider ?? '']).sort()]);
    // Keyed by uid too: a CloudAccount deleted and recreated under the same name starts at generation 1 again.
    if (
      cached &&
      cached.uid === account.metadata.uid &&
      cached.generation === account.metadata.generation &&
      cached.context === context &&
      now - cached.at < this.#d.verdictTtlMs
    ) {
      return { checked: cached.checked, fresh: false };
    }
    const cloud = cloudOf(account.spec);
    let verdict: AccountVerdict;
    try {
      const check = cloud ? this.#d.checks[cloud] : undefined;
      verdict = check ? await check(account, ctx) : { ok: false, reason: REASON.InvalidSpec, message: `${cloud ?? 'This cloud'} is not supported by this version of Keyless.` };
    } catch (err) {
      if (!(err instanceof CloudError) || err.kind !== 'terminal') throw err;
      verdict = { ok: false, reason: REASON.CloudRejected, message: `${err.message}. Check the operator's own cloud permissions for this account.` };
    }
    const issuerReachable = verdict.issuer && verdict.issuerFetchedByCloud && cloud ? await checkIssuerReachable(this.#d.issuerGet, verdict.issuer, cloud) : issuerNotChecked(verdict.issuer);
    const checked = { verdict, issuerReachable };
    this.#verdicts.set(name, { uid: account.metadata.uid, generation: account.metadata.generation, context, at: now, checked });
    return { checked, fresh: true };
  }
}
