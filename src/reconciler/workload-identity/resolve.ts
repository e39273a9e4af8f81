// Step 1 of a reconcile: from a WorkloadIdentity to its CloudAccount, cloud, mechanism, provider and the context the
// provider works from — or the reason it cannot get there. Reads caches only; no cloud call.
import { CONDITION, REASON, WORKLOAD_IDENTITY_ANNOTATION, type Reason } from '../../api/constants.ts';
import type { CloudAccount, Cloud, ProvisionedRecord, WorkloadIdentity } from '../../api/types.ts';
import { findCondition } from '../../domain/conditions.ts';
import { serviceAccountSubject } from '../../domain/naming.ts';
import { adoption } from '../../providers/adoption.ts';
import { cloudOf, mechanismOf } from '../../providers/registry.ts';
import type { IdentityContext, Provider } from '../../providers/types.ts';
import type { WorkloadIdentityReconcilerDeps } from './deps.ts';

/**
 * Why a reconcile stops before provisioning. `revoke`: the spec or the CloudAccount no longer allows what the record
 * holds, so it is revoked (a cloud switch, a namespace the account no longer admits, an account that is gone);
 * otherwise what exists is kept (a transient state, or a spec mistake that leaves the last good state in place).
 * `terminal`: only a change of the spec, the account or the namespace can help.
 */
export interface Refusal {
  refused: true;
  reason: Reason;
  message: string;
  revoke: boolean;
  terminal: boolean;
  /**
   * What an identity kept through this refusal can still be verified with (CredentialsVerified): a CloudAccount that is
   * not Ready — its issuer no longer trusted, say — leaves pods with whatever the cloud answers now.
   */
  verifiable?: Resolved;
}

export function refusal(reason: Reason, message: string, opts: { revoke: boolean; terminal: boolean }): Refusal {
  return { refused: true, reason, message, ...opts };
}

export interface ResolvedAccount {
  refused: false;
  account: CloudAccount;
  cloud: Cloud;
}

export interface Resolved extends ResolvedAccount {
  mechanism: string;
  provider: Provider;
  /** The provider's context; `ctx.record` is set when the record continues this identity. */
  ctx: IdentityContext;
  /** The record describes the identity this reconcile converges (`Provider.continues`). */
  continuing: boolean;
}

/** The CloudAccount the spec names and the cloud they agree on. */
export function resolveAccount(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity): ResolvedAccount | Refusal {
  const accountName = wi.spec.cloudAccountRef.name;
  const account = d.accounts.get(accountName);
  if (!account) {
    return refusal(REASON.CloudAccountNotFound, `CloudAccount "${accountName}" does not exist. Create it (a platform team task) or fix spec.cloudAccountRef.name.`, { revoke: true, terminal: false });
  }
  const cloud = cloudOf(wi.spec);
  const accountCloud = cloudOf(account.spec);
  if (!cloud || cloud !== accountCloud) {
    return refusal(
      REASON.CloudMismatch,
      `spec.${cloud ?? '<cloud>'} does not match CloudAccount "${accountName}", which is for ${accountCloud ?? 'no cloud'}; use spec.${accountCloud ?? 'aws'} or another CloudAccount.`,
      { revoke: true, terminal: true },
    );
  }
  return { refused: false, account, cloud };
}

/** The mechanism, its provider and the context, once the account has verified this cluster's issuer. */
export function resolveProvider(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity, r: ResolvedAccount, record: ProvisionedRecord | undefined): Resolved | Refusal {
  const { account, cloud } = r;
  const accountName = account.metadata.name;
  const ready = findCondition(account.status?.conditions, CONDITION.ready);
  const issuer = account.status?.issuer;
  const mechanism = mechanismOf(wi.spec, account, cloud);
  const provider = d.providers.providerFor(account, cloud, mechanism);
  const resolved = (trusted: string): Resolved | undefined => {
    if (!provider) return undefined;
    const base = context(d, wi, account, trusted);
    const continuing = record !== undefined && record.cloud === cloud && record.cloudAccount === accountName && provider.continues(record, base);
    return { ...r, mechanism, provider, ctx: continuing ? { ...base, record } : base, continuing };
  };
  if (ready?.status !== 'True' || !issuer) {
    const verifiable = issuer ? resolved(issuer) : undefined;
    return {
      ...refusal(REASON.CloudAccountNotReady, `CloudAccount "${accountName}" is not ready: ${ready?.message ?? 'it has not been reconciled yet'}`, { revoke: false, terminal: false }),
      ...(verifiable?.continuing ? { verifiable } : {}),
    };
  }
  const found = resolved(issuer);
  if (!found) return refusal(REASON.InvalidSpec, `Mechanism ${mechanism} for ${cloud} is not supported by this version of Keyless.`, { revoke: false, terminal: true });
  return found;
}

function context(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity, account: CloudAccount, issuer: string): IdentityContext {
  const namespace = wi.metadata.namespace ?? '';
  return {
    cluster: d.cluster,
    namespace,
    name: wi.metadata.name,
    uid: wi.metadata.uid ?? '',
    serviceAccountName: wi.spec.serviceAccountName,
    subject: serviceAccountSubject(namespace, wi.spec.serviceAccountName),
    spec: wi.spec,
    account,
    issuer,
    serviceAccountAnnotations: d.serviceAccounts.get(`${namespace}/${wi.spec.serviceAccountName}`)?.metadata?.annotations ?? undefined,
    ...adoption(wi.metadata.annotations?.[WORKLOAD_IDENTITY_ANNOTATION.adopt], account.spec.guardrails?.allowAdoption === true),
  };
}
