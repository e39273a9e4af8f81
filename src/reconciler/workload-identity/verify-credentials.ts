// CredentialsVerified (opt-in per CloudAccount, spec.verification.enabled): once the identity is provisioned — and
// again after each change and at each resync — mint a short-lived token for the ServiceAccount with the mechanism's
// audience, perform the real exchange as a pod would, and say what the cloud answered. The credentials never leave the
// provider; the token is used once. Clouds take a while to honour a new or repaired trust, so a refusal right after a
// change is reported as pending and looked at again soon, quietly.
import { CONDITION, REASON } from '../../api/constants.ts';
import type { WorkloadIdentity } from '../../api/types.ts';
import { isNotFound } from '../../controller/errors.ts';
import { findCondition } from '../../domain/conditions.ts';
import type { Provisioned } from '../../providers/types.ts';
import type { Admitted } from './admit.ts';
import type { Outcome } from './conditions.ts';
import type { WorkloadIdentityReconcilerDeps } from './deps.ts';

/** The shortest lifetime a TokenRequest accepts; the admission policy in config/verification allows no more. */
export const TOKEN_SECONDS = 600;
/** How long after a change a refusal counts as the cloud not having caught up yet. */
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

export async function verifyCredentials(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity, plan: Admitted, provisioned: Provisioned): Promise<Verification | undefined> {
  if (plan.account.spec.verification?.enabled !== true) return undefined;
  const { ctx, provider } = plan;
  const now = (d.now ?? (() => new Date()))().getTime();
  const since = (type: string) => {
    const at = findCondition(wi.status?.conditions, type)?.lastTransitionTime;
    return at ? now - new Date(at).getTime() : Infinity;
  };
  // A change in this reconcile, or an identity or trust that came into being moments ago.
  const fresh = provisioned.changes.length > 0 || since(CONDITION.identityReady) < PROPAGATION_GRACE_MS || since(CONDITION.trustReady) < PROPAGATION_GRACE_MS;
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
  const verdict = await provider.credentials.exchange(ctx, provisioned.status, token);
  const message = sanitize(verdict.message);
  if (verdict.ok) return { outcome: { status: 'True', reason: REASON.Verified, message } };
  if (verdict.transient) return pending(`${message}; Keyless tries again shortly.`);
  if (fresh) return pending(`The identity changed moments ago and the cloud may not honour it yet: ${message}`);
  return { outcome: { status: 'False', reason: verdict.reason, message } };
}
