// The one contract every mechanism implements (DESIGN §5). `validate`, `desired`, `continues` and `intent` are pure;
// `observe` only reads (a missing cloud object is a state, not an error); `ensure` and `revoke` are safe to repeat.
// What a provider may have created is described by a ProvisionedRecord that the reconciler keeps in status: `intent`
// says what to record before `ensure` writes anything, `ensure` returns the exact record afterwards, and `revoke`
// tears down from the record alone — never from the spec of the moment.
import type { V1Pod } from '@kubernetes/client-node';
import type { Reason } from '../api/constants.ts';
import type { CloudAccount, Cloud, ManagedTrust, ProvisionedRecord, WorkloadIdentitySpec, WorkloadIdentityStatus } from '../api/types.ts';
import type { ConditionInput } from '../domain/conditions.ts';

/** The WorkloadIdentity a cloud object belongs to: the ownership marker and the ServiceAccount it trusts. */
export interface Owner {
  /** Ownership marker value for this cluster (operator config). */
  cluster: string;
  namespace: string;
  name: string;
  serviceAccountName: string;
}

/** The provider's part of a record: its cloud objects, and the ConfigMap its pods mount, if any. */
export type CloudRecord = Pick<ProvisionedRecord, 'aws' | 'gcp' | 'azure' | 'configMap'>;

/** Everything a provider may know about one WorkloadIdentity. The subject is derived, never user-typed. */
export interface IdentityContext extends Owner {
  /** The WorkloadIdentity's uid: distinguishes a recreated object from its predecessor (idempotency tokens). */
  uid: string;
  /** `system:serviceaccount:<namespace>:<serviceAccountName>`. */
  subject: string;
  spec: WorkloadIdentitySpec;
  account: CloudAccount;
  /** The issuer the CloudAccount resolved (status.issuer). */
  issuer: string;
  /**
   * The record of what was provisioned, when it describes the same cloud identity (`Provider.continues`): what is
   * in it and no longer desired is removed by `ensure`. A record of another identity is revoked before the context
   * is built, so it never appears here.
   */
  record?: CloudRecord | undefined;
  /** The ServiceAccount's current annotations; undefined while it does not exist. */
  serviceAccountAnnotations: Record<string, string> | undefined;
  /**
   * Take over an existing object with the derived name that carries no ownership marker at all (the WorkloadIdentity
   * asks with keyless.dev/adopt and its CloudAccount allows adoption). Never an object marked for someone else.
   */
  adopt?: boolean;
  /**
   * The existing identity keyless.dev/adopt names instead of "true" (an IAM role ARN, a Google service account email,
   * a managed identity resource ID), whether or not adoption is allowed: while the annotation names it, it is this
   * WorkloadIdentity's identity instead of the one with the derived name (providers/adoption.ts).
   */
  adoptIdentity?: string;
}

/** The condition a step maps to: IdentityReady, TrustReady or PermissionsReady. */
export type Step = 'identity' | 'trust' | 'permissions';

/**
 * What one `ensure` or `delete` changed, for Events. Whether a change repaired drift (someone edited the cloud
 * behind our back) or applied a spec change is the reconciler's call: it knows the generation.
 */
export interface Change {
  step: Step;
  action: string;
  message: string;
}

export interface Provisioned {
  /** Status fields the provider owns (identity, aws/gcp/azure blocks, audience). */
  status: Pick<WorkloadIdentityStatus, 'identity' | 'audience' | 'aws' | 'gcp' | 'azure'>;
  /** Exactly what exists now and is ours: the record after this converge. */
  record: CloudRecord;
  /** The annotations the ServiceAccount must carry (empty for mechanisms that need none). */
  serviceAccountAnnotations: Record<string, string>;
  /** What pods additionally need, appended to the ServiceAccountReady message (e.g. a label the webhook reads). */
  serviceAccountHint?: string;
  /**
   * A ConfigMap the pods mount (a credential configuration file), which the reconciler writes in the WorkloadIdentity's
   * namespace, owned by it; `record.configMap` names it, and `intent` must have named it before `ensure` runs.
   */
  configMap?: { name: string; data: Record<string, string> };
  /** Set while converged but waiting on something outside the cloud (pods to restart): look again soon. */
  waitingFor?: string;
  /** A success message per step, naming the exact objects so a person can find them in the cloud. */
  messages: Record<Step, string>;
  changes: Change[];
}

export interface Revoked {
  /** True once the cloud confirms every owned object is gone. */
  complete: boolean;
  message: string;
  changes: Change[];
}

/**
 * A failure a provider understood: which step, a stable reason, and a message that says what to fix. `retryable`
 * false means only a spec (or CloudAccount) change can help.
 */
export class ProviderError extends Error {
  readonly step: Step;
  readonly reason: Reason;
  readonly retryable: boolean;
  constructor(step: Step, reason: Reason, message: string, retryable: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProviderError';
    this.step = step;
    this.reason = reason;
    this.retryable = retryable;
  }
}

export interface Provider<Desired = unknown, Observed = unknown> {
  readonly cloud: Cloud;
  readonly mechanism: string;
  /** Problems with the spec that the API schema cannot catch; each a sentence a person can act on. */
  validate(ctx: IdentityContext): string[];
  /**
   * Whether `record` names the same cloud identity this context converges (same account, same role, service
   * account or managed identity, same place): `ensure` then takes over from it. False means the record names
   * another identity, which is revoked first (break before make).
   */
  continues(record: CloudRecord, ctx: IdentityContext): boolean;
  desired(ctx: IdentityContext): Desired;
  observe(desired: Desired): Promise<Observed>;
  /**
   * Everything `ensure` may create or grant given what `observe` saw, merged with `ctx.record`: written to the
   * record before `ensure` runs, so a crash between a cloud write and the status write never loses track of it.
   */
  intent(desired: Desired, observed: Observed): CloudRecord;
  ensure(desired: Desired, observed: Observed): Promise<Provisioned>;
  /**
   * Removes everything `record` names that carries this owner's marker — trust, grants, then the identity — and
   * nothing else. Complete only once the cloud confirms.
   */
  revoke(record: CloudRecord, owner: Owner): Promise<Revoked>;
  /** What this mechanism means for running pods. */
  readonly pods: PodCredentials;
  /** The token exchange a pod performs, for CredentialsVerified. */
  readonly credentials: CredentialCheck;
}

/** What a token exchange showed. `transient`: it could not be completed (throttling, network); look again soon. */
export interface Verdict {
  ok: boolean;
  reason: Reason;
  message: string;
  transient?: boolean;
}

/**
 * The exchange a pod's cloud SDK performs with its projected ServiceAccount token. The reconciler mints the token (a
 * TokenRequest with `audience`), the provider exchanges it exactly as the pod would and drops the credentials at
 * once: they are never returned, stored or logged.
 */
export interface CredentialCheck {
  /** The audience the mechanism's projected token carries. */
  audience(ctx: IdentityContext): string;
  exchange(ctx: IdentityContext, status: Provisioned['status'], token: string): Promise<Verdict>;
}

/**
 * Which credentials a running pod carries, as the mechanism's webhook injected them when the pod was created: the
 * reconciler uses it for WorkloadsUpToDate and the restart of stale workloads, the AWS provider to know when an old
 * credential path has no users left.
 */
export interface PodCredentials {
  /** False when nothing is injected into pods (GKE's metadata server): pods never need a restart. */
  readonly injected: boolean;
  /** Why pods need no restart when nothing is injected, for WorkloadsUpToDate. */
  readonly notInjected?: string;
  /** Why a running pod does not use the identity as `status` describes it now, or undefined when it does. */
  staleReason(pod: V1Pod, status: WorkloadIdentityStatus): string | undefined;
}

/** An Event on the CloudAccount for something a check or a release changed in the cloud. */
export interface AccountEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** What a cloud says about an account: whether this cluster's issuer is trusted there, and if not, the fix. */
export interface AccountVerdict {
  ok: boolean;
  reason: Reason;
  message: string;
  issuer?: string;
  oidcProviderArn?: string;
  /**
   * The cloud fetches `issuer`'s discovery document and JWKS itself to verify tokens (AWS STS for IRSA, Microsoft
   * Entra ID), so Keyless checks they can be fetched anonymously (IssuerReachable). False or absent: the cloud does
   * not (GKE's workload identity pool), and there is nothing to check.
   */
  issuerFetchedByCloud?: boolean;
  /** status.managedTrust after this check; absent leaves it as it is. */
  managedTrust?: ManagedTrust;
  /** Conditions besides Ready that this cloud reports (OIDCProviderManaged); absent leaves them as they are. */
  conditions?: ConditionInput[];
  /** What the check changed in the cloud, for Events. */
  events?: AccountEvent[];
}

/** What a CloudAccount check or release may need to know beyond the account itself. */
export interface AccountContext {
  /** The ownership marker value for this cluster. */
  cluster: string;
  /** How many WorkloadIdentities reference the account. */
  identities: number;
  /** The cluster's other CloudAccounts: what they trust through is not this account's alone to delete. */
  others: readonly CloudAccount[];
}

/**
 * One check per cloud; a cloud without one is reported as unsupported. Throws CloudError on cloud failures. Where the
 * account opts in (spec.aws.manageOidcProvider), it also creates what the trust needs and releases what it no
 * longer asks for.
 */
export type AccountCheck = (account: CloudAccount, ctx: AccountContext) => Promise<AccountVerdict>;

/** Whether what Keyless created for an account's own trust is gone; `message` says what it waits for when not. */
export interface AccountReleased {
  complete: boolean;
  message: string;
  events: AccountEvent[];
}

/**
 * Deletes what Keyless created for a CloudAccount's own trust (status.managedTrust, and what carries its marker)
 * before the account's finalizer comes off, once nothing needs it any more. Throws CloudError on cloud failures.
 */
export type AccountRelease = (account: CloudAccount, ctx: AccountContext) => Promise<AccountReleased>;
