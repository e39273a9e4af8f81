// CredentialsVerified (opt-in per CloudAccount, spec.verification.enabled): mint a short-lived token for the
// ServiceAccount with the mechanism's audience, perform the real exchange as a pod would, and say what the cloud
// answered. The credentials never leave the provider; the token is used once.
//
// An identity that exists is checked as found, before the reconcile repairs anything: that is what its pods get right
// now, so a trust edited behind Keyless's back shows as refused — and, repaired by the same reconcile, is checked again
// moments later. A new identity is checked once created; clouds take a while to honour a new trust, so a refusal then
// is reported as pending and looked at again soon, quietly.
import { CONDITION, REASON } from '../../api/constants.ts';
import type { WorkloadIdentity } from '../../api/types.ts';
import { isNotFound } from '../../controller/errors.ts';
import { findCondition } from '../../domain/conditions.ts';
import type { Provisioned } from '../../providers/types.ts';
import type { Resolved } from './resolve.ts';
import type { Outcome } from './conditions.ts';
import type { WorkloadIdentityReconcilerDeps } from './deps.ts';

/** The shortest lifetime a TokenRequest accepts; the admission policy in config/verification allows no more. */
export const TOKEN_SECONDS = 600;
/** How long after a change a refusal counts as the cloud not having caught up yet (KEYLESS_VERIFY_GRACE_SECONDS). */
export const PROPAGATION_GRACE_MS = 120_000;
/** How soon to look again while pending. */
export const PENDING_POLL_MS = 10_000;

/** Parts of a cloud's message that differ on every call, so a condition would never settle. */
function sanitize(message: string): string {
  return message
    .replace(/\b(Trace|Correlation|Request) ?ID:? ?[\w-]+/gi, '')
    .replace(/\bTimestamp: ?[\d-]+ [\d:.]+Z?/gi, '')
    .replace(/\s{2,}/g, ' ')
    .trim();
}

export interface Verification {
  outcome: NonNullable<Outcome['credentials']>;
  /** Look again after this long (pending). */
  againMs?: number;
}

export function verificationEnabled(plan: Pick<Resolved, 'account'>): boolean {
  return plan.account.spec.verification?.enabled === true;
}

/**
 * The exchange for the identity `status` describes. `changed`: this reconcile just created or changed it, so a
 * refusal may only mean the cloud has not caught up.
 */
export async function verifyCredentials(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity, plan: Pick<Resolved, 'account' | 'ctx' | 'provider'>, status: Provisioned['status'], changed: boolean): Promise<Verification> {
  const { ctx, provider } = plan;
  const now = (d.now ?? (() => new Date()))().getTime();
  const grace = d.verificationGraceMs ?? PROPAGATION_GRACE_MS;
  const since = (type: string) => {
    const at = findCondition(wi.status?.conditions, type)?.lastTransitionTime;
    return at ? now - new Date(at).getTime() : Infinity;
  };
  // A change in this reconcile, or an identity or trust that came into being moments ago.
  const fresh = changed || since(CONDITION.identityReady) < grace || since(CONDITION.trustReady) < grace;
  const pending = (message: string): Verification => ({ outcome: { status: 'Unknown', reason: REASON.VerificationPending, message }, againMs: PENDING_POLL_MS });

  let token: string;
  try {
    token = await d.kube.requestServiceAccountToken(ctx.namespace, ctx.serviceAccountName, provider.credentials.audience(ctx), TOKEN_SECONDS);
  } catch (err) {
    if (isNotFound(err)) return pending(`ServiceAccount ${ctx.namespace}/${ctx.serviceAccountName} does not exist yet; Keyless verifies once it does.`);
    const code = (err as { code?: unknown }).code;
    if (code === 403 || code === 422) {
      return {
        outcome: {
          status: 'False',
          reason: REASON.ExchangeFailed,
          message: `Keyless may not request a token for ServiceAccount ${ctx.namespace}/${ctx.serviceAccountName} (HTTP ${String(code)}): install the optional RBAC and admission policy (kubectl apply -k config/verification), or turn verification off in CloudAccount "${plan.account.metadata.name}".`,
        },
      };
    }
    throw err;
  }
  const verdict = await provider.credentials.exchange(ctx, status, token);
  const message = sanitize(verdict.message);
  if (verdict.ok) return { outcome: { status: 'True', reason: REASON.Verified, message } };
  if (verdict.transient) return pending(`${message}; Keyless tries again shortly.`);
  if (fresh) return pending(`The identity changed moments ago and the cloud may not honour it yet: ${message}`);
  return { outcome: { status: 'False', reason: verdict.reason, message } };
}
