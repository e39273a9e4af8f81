// The one contract every mechanism implements (DESIGN §5). `validate` and `desired` are pure; `observe` only
// reads (a missing cloud object is a state, not an error); `ensure` and `delete` are safe to repeat.
import type { Reason } from '../api/constants.ts';
import type { CloudAccount, Cloud, WorkloadIdentitySpec, WorkloadIdentityStatus } from '../api/types.ts';

/** Everything a provider may know about one WorkloadIdentity. The subject is derived, never user-typed. */
export interface IdentityContext {
  /** Ownership marker value for this cluster (operator config). */
  cluster: string;
  namespace: string;
  name: string;
  /** The WorkloadIdentity's uid: distinguishes a recreated object from its predecessor (idempotency tokens). */
  uid: string;
  serviceAccountName: string;
  /** `system:serviceaccount:<namespace>:<serviceAccountName>`. */
  subject: string;
  spec: WorkloadIdentitySpec;
  account: CloudAccount;
  /** The issuer the CloudAccount resolved (status.issuer). */
  issuer: string;
  /** The status as last written, for what a provider must remember across restarts (where it granted). */
  status?: WorkloadIdentityStatus;
  /** The ServiceAccount's current annotations; undefined while it does not exist. */
  serviceAccountAnnotations: Record<string, string> | undefined;
  /**
   * Take over an existing object with the derived name that carries no ownership marker at all (the WorkloadIdentity
   * asks with keyless.dev/adopt and its CloudAccount allows adoption). Never an object marked for someone else.
   */
  adopt?: boolean;
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
  /** The annotations the ServiceAccount must carry (empty for mechanisms that need none). */
  serviceAccountAnnotations: Record<string, string>;
  /** What pods additionally need, appended to the ServiceAccountReady message (e.g. a label the webhook reads). */
  serviceAccountHint?: string;
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
  desired(ctx: IdentityContext): Desired;
  observe(desired: Desired): Promise<Observed>;
  ensure(desired: Desired, observed: Observed): Promise<Provisioned>;
  delete(desired: Desired): Promise<Revoked>;
}

/** What a cloud says about an account: whether this cluster's issuer is trusted there, and if not, the fix. */
export interface AccountVerdict {
  ok: boolean;
  reason: Reason;
  message: string;
  issuer?: string;
  oidcProviderArn?: string;
}

/** One check per cloud; a cloud without one is reported as unsupported. Throws CloudError on cloud failures. */
export type AccountCheck = (account: CloudAccount) => Promise<AccountVerdict>;
