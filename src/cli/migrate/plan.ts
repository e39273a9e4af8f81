// What `kubectl keyless migrate` decides for one hand-made identity: the WorkloadIdentity spec that adopts it with
// the permissions it grants today, or why it is left alone (blockers), and what changes or stays unmanaged (notes).
import type { CloudAccount, WorkloadIdentitySpec } from '../../api/types.ts';
import { selects } from '../../domain/label-selector.ts';
import type { HandMade } from './candidates.ts';

export interface CloudPlan {
  /** The identity's identifier for keyless.dev/adopt: role ARN, service account email, managed identity resource ID. */
  adopt: string;
  /** The cloud section of the spec (aws, gcp or azure). */
  spec: Pick<WorkloadIdentitySpec, 'aws' | 'gcp' | 'azure'>;
  /** Why adopting it would break or take something away: the identity is not migrated. */
  blockers: string[];
  /** What adoption changes, or what stays as it is without Keyless managing it. */
  notes: string[];
  /** The ServiceAccount carries an annotation Keyless will set to another value: take it over (never absent). */
  takeOverAnnotations: boolean;
}

export interface Plan {
  source: HandMade;
  /** The CloudAccount that would adopt it. */
  account?: string;
  /** What the annotation names, resolved: the role ARN, service account email or managed identity resource ID. */
  resolved?: string;
  cloud?: CloudPlan;
  /** Blockers found before the cloud was read (no CloudAccount, a shared identity, a read that failed). */
  blockers: string[];
  /** The CloudAccount does not allow adoption: said once for the account, not per identity. */
  adoptionNotAllowed?: boolean;
}

/**
 * The CloudAccounts of the identity's cloud that could adopt it, by `matches` (same account, project or resource
 * group) and the namespace's eligibility, or why there is no single one. `only` is --cloud-account.
 */
export function chooseAccount(
  accounts: readonly CloudAccount[],
  source: HandMade,
  namespaceLabels: Record<string, string> | undefined,
  matches: (account: CloudAccount) => boolean,
  what: string,
  only?: string,
): { account: CloudAccount } | { blocker: string } {
  const ofCloud = accounts.filter((a) => a.spec[source.cloud] !== undefined && (only === undefined || a.metadata.name === only));
  const matching = ofCloud.filter(matches);
  if (!matching.length) {
    return { blocker: only === undefined ? `no ${source.cloud} CloudAccount is for ${what}: create one (a platform team task), then run migrate again` : `CloudAccount ${only} is not for ${what}` };
  }
  const eligible = matching.filter((a) => selects(a.spec.namespaceSelector, namespaceLabels));
  if (!eligible.length) return { blocker: `CloudAccount ${matching.map((a) => a.metadata.name).join(', ')} does not admit namespace ${source.namespace} (spec.namespaceSelector)` };
  if (eligible.length > 1) return { blocker: `CloudAccounts ${eligible.map((a) => a.metadata.name).join(', ')} are all for ${what}: choose one with --cloud-account` };
  return { account: eligible[0] as CloudAccount };
}

/** Whether the account lets a WorkloadIdentity take over an identity it did not create (keyless.dev/adopt). */
export function allowsAdoption(account: CloudAccount): boolean {
  return account.spec.guardrails?.allowAdoption === true;
}

/** A short name for the identity in the report: the role ARN, the email, or the managed identity's group/name. */
export function shortIdentity(plan: Plan): string {
  const id = plan.resolved ?? plan.source.identity;
  const azure = /\/resourceGroups\/([^/]+)\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/([^/]+)$/i.exec(id);
  return azure ? `${azure[1] ?? ''}/${azure[2] ?? ''}` : id;
}

/** A duration the CRD accepts, e.g. 7200 → 2h, 5400 → 1h30m. */
export function durationOf(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}` || '0s';
}

/**
 * The blocker for an identity that carries a Keyless ownership marker already: `owner` says whose (a sentence).
 * An identity orphaned by a deleted WorkloadIdentity (deletionPolicy: Orphan) keeps its marker.
 */
export function alreadyOwned(what: string, owner: string): string {
  return `the ${what} carries a Keyless ownership marker: ${owner} If that WorkloadIdentity is gone (deleted with deletionPolicy: Orphan), create it again under the same name, or remove the marker from the ${what}, then migrate`;
}
