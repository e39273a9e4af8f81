// Ownership of cloud objects (DESIGN §3), shared by every provider: an object is ours only when it carries the
// marker of this exact WorkloadIdentity; an object with no Keyless marker at all may be adopted on request; anything
// else is reported as NotOwned and never modified.
import { MARKER, REASON } from '../api/constants.ts';
import { ProviderError, type Owner, type Step } from './types.ts';

/** The marker a tagged cloud object (IAM role, Pod Identity association, managed identity) carries. */
export function markerTags(owner: Pick<Owner, 'cluster' | 'namespace' | 'name'>): Record<string, string> {
  return { [MARKER.cluster]: owner.cluster, [MARKER.namespace]: owner.namespace, [MARKER.name]: owner.name };
}

/**
 * The marker of what Keyless creates for a CloudAccount itself (the opt-in IAM OIDC provider): the cluster and the
 * account, which is cluster-scoped.
 */
export function accountMarkerTags(cluster: string, account: string): Record<string, string> {
  return { [MARKER.cluster]: cluster, [MARKER.cloudAccount]: account };
}

/** True when `tags` carry every key of `marker` with its value. */
export function isOwned(tags: Record<string, string>, marker: Record<string, string>): boolean {
  return Object.entries(marker).every(([k, v]) => tags[k] === v);
}

/** Tags with none of the marker keys: created outside Keyless, so adoptable on request. */
export function unmarked(tags: Record<string, string>): boolean {
  return !Object.keys(tags).some((k) => k.startsWith('keyless.dev/'));
}

/** Whom a foreign object's tags name, as a sentence for a NotOwned message. */
export function describeTaggedOwner(tags: Record<string, string>): string {
  const ns = tags[MARKER.namespace];
  const name = tags[MARKER.name];
  return ns && name ? `It belongs to ${ns}/${name} (cluster ${tags[MARKER.cluster] ?? 'unknown'}).` : 'It has no Keyless ownership tags.';
}

const ADOPT_HINT = 'or — for one created outside Keyless — annotate the WorkloadIdentity keyless.dev/adopt: "true" where the CloudAccount sets guardrails.allowAdoption';

/**
 * The NotOwned condition for an object with our deterministic name that is someone else's: `what` names it
 * ("IAM role arn:..."), `owner` says whose it is, `fix` what to do besides.
 */
export function notOwned(step: Step, what: string, owner: string, fix: string, opts: { adoptable?: boolean } = {}): ProviderError {
  return new ProviderError(
    step,
    REASON.NotOwned,
    `${what} already exists and is not owned by this WorkloadIdentity. ${owner} Keyless never modifies an object it does not own: ${fix}${opts.adoptable ? `, ${ADOPT_HINT}` : ''}.`,
    false,
  );
}
