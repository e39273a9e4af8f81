// The CloudAccount reconcile: resolve the issuer this cluster's tokens carry, check the cloud trusts it, and say
// precisely what the platform team must create when it does not.
import { API_VERSION, CLOUD_ACCOUNT_FINALIZER, CONDITION, REASON } from '../api/constants.ts';
import type { CloudAccount, CloudAccountStatus, Cloud, WorkloadIdentity } from '../api/types.ts';
import type { Cache } from '../controller/informer.ts';
import { TerminalError } from '../controller/errors.ts';
import { deepEqual, findCondition, mergeConditions } from '../domain/conditions.ts';
import type { KubePort } from '../kube/client.ts';
import type { Logger } from '../observability/logger.ts';
import { CloudError } from '../providers/cloud-error.ts';
import { cloudOf } from '../providers/registry.ts';
import type { AccountCheck, AccountVerdict } from '../providers/types.ts';
import { BY_CLOUD_ACCOUNT } from './indexes.ts';

export interface CloudAccountReconcilerDeps {
  accounts: Cache<CloudAccount>;
  identities: Cache<WorkloadIdentity>;
  checks: Partial<Record<Cloud, AccountCheck>>;
  kube: KubePort;
  logger: Logger;
  /** How long a cloud verdict for an unchanged CloudAccount is reused before the cloud is asked again. */
  verdictTtlMs: number;
  now?: () => Date;
}

export class CloudAccountReconciler {
  readonly #d: CloudAccountReconcilerDeps;
  readonly #now: () => Date;
  /**
   * The last cloud verdict per account. The identities count is refreshed whenever WorkloadIdentities come and go;
   * the cloud is asked again only when the spec changed or the verdict is older than the TTL.
   */
  readonly #verdicts = new Map<string, { uid: string | undefined; generation: number | undefined; at: number; verdict: AccountVerdict }>();

  constructor(deps: CloudAccountReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
  }

  async reconcile(name: string): Promise<void> {
    const account = this.#d.accounts.get(name);
    if (!account) return;
    const users = this.#d.identities.byIndex(BY_CLOUD_ACCOUNT, name);
    const finalizers = account.metadata.finalizers ?? [];
    if (account.metadata.deletionTimestamp) {
      if (!finalizers.includes(CLOUD_ACCOUNT_FINALIZER)) return;
      if (users.length === 0) {
        await this.#d.kube.setCloudAccountFinalizers(account, finalizers.filter((f) => f !== CLOUD_ACCOUNT_FINALIZER));
        return;
      }
      const names = users.slice(0, 10).map((wi) => `${wi.metadata.namespace ?? ''}/${wi.metadata.name}`);
      await this.#writeStatus(account, users.length, {
        ok: false,
        reason: REASON.InUse,
        message: `Deletion waits for the ${users.length} WorkloadIdentities that still use this account (${names.join(', ')}${users.length > names.length ? ', ...' : ''}): their finalizers need it to revoke their cloud objects. Delete them first.`,
        issuer: account.status?.issuer,
        oidcProviderArn: account.status?.oidcProviderArn,
      });
      return;
    }
    if (!finalizers.includes(CLOUD_ACCOUNT_FINALIZER)) {
      await this.#d.kube.setCloudAccountFinalizers(account, [...finalizers, CLOUD_ACCOUNT_FINALIZER]);
    }
    const verdict = await this.#verdict(account);
    await this.#writeStatus(account, users.length, verdict);
    if (!verdict.ok && verdict.reason === REASON.InvalidSpec) throw new TerminalError(verdict.message);
  }

  /** Writes status once, only if it changed, with an Event when Ready moves. */
  async #writeStatus(account: CloudAccount, identities: number, verdict: AccountVerdict): Promise<void> {
    const cloud = cloudOf(account.spec);
    const conditions = mergeConditions(
      account.status?.conditions,
      [{ type: CONDITION.ready, status: verdict.ok ? 'True' : 'False', reason: verdict.reason, message: verdict.message }],
      account.metadata.generation,
      this.#now(),
    );
    const status: CloudAccountStatus = JSON.parse(
      JSON.stringify({ observedGeneration: account.metadata.generation, cloud, issuer: verdict.issuer, oidcProviderArn: verdict.oidcProviderArn, identities, conditions }),
    ) as CloudAccountStatus;
    if (!deepEqual(status, account.status ?? {})) {
      await this.#d.kube.replaceCloudAccountStatus(account, status);
      const before = findCondition(account.status?.conditions, CONDITION.ready);
      if (before?.status !== (verdict.ok ? 'True' : 'False') || before.reason !== verdict.reason) {
        await this.#d.kube
          .recordEvent({ apiVersion: API_VERSION, kind: 'CloudAccount', metadata: account.metadata }, verdict.ok ? 'Normal' : 'Warning', verdict.reason, verdict.message)
          .catch((err: unknown) => this.#d.logger.warn({ err }, 'event not recorded'));
      }
    }
  }

  async #verdict(account: CloudAccount): Promise<AccountVerdict> {
    const name = account.metadata.name;
    const now = this.#now().getTime();
    const cached = this.#verdicts.get(name);
    // Keyed by uid too: a CloudAccount deleted and recreated under the same name starts at generation 1 again.
    if (cached && cached.uid === account.metadata.uid && cached.generation === account.metadata.generation && now - cached.at < this.#d.verdictTtlMs) {
      return cached.verdict;
    }
    const cloud = cloudOf(account.spec);
    let verdict: AccountVerdict;
    try {
      const check = cloud ? this.#d.checks[cloud] : undefined;
      verdict = check ? await check(account) : { ok: false, reason: REASON.InvalidSpec, message: `${cloud ?? 'This cloud'} is not supported by this version of Keyless.` };
    } catch (err) {
      if (!(err instanceof CloudError) || err.kind !== 'terminal') throw err;
      verdict = { ok: false, reason: REASON.CloudRejected, message: `${err.message}. Check the operator's own cloud permissions for this account.` };
    }
    this.#verdicts.set(name, { uid: account.metadata.uid, generation: account.metadata.generation, at: now, verdict });
    return verdict;
  }
}
