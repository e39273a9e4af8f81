// GKE Workload Identity, two mechanisms (DESIGN §2):
// - ServiceAccount: a Google service account per WorkloadIdentity, roles/iam.workloadIdentityUser on it for
//   serviceAccount:<pool>[<ns>/<sa>], the grants to serviceAccount:<email>, and the ServiceAccount annotation
//   iam.gke.io/gcp-service-account that GKE's metadata server reads.
// - DirectPrincipal: no Google service account; the grants go to the Kubernetes ServiceAccount's principal://
//   identifier in the workload identity pool; no annotation.
// Every policy edit is a read-modify-write with the etag that touches only our member (policy.ts).
import { MARKER, REASON, SERVICE_ACCOUNT_ANNOTATION } from '../../api/constants.ts';
import type { GcpMechanism } from '../../api/types.ts';
import { CloudError, isCloudError } from '../cloud-error.ts';
import { ProviderError, type Change, type IdentityContext, type Provider, type Provisioned, type Revoked, type Step } from '../types.ts';
import { desiredGke, validateGcpSpec, type GkeDesired, type TargetGrants } from './desired.ts';
import { isServiceAccountQuota } from './errors.ts';
import type { GcpPort, GoogleServiceAccount } from './gcp-port.ts';
import { GrantLedger } from './grant-ledger.ts';
import { carriesMarker, describeMarker, WORKLOAD_IDENTITY_USER } from './naming.ts';
import { editPolicy } from './policy-edit.ts';
import { describeGrant, type IamPolicy, type MemberEdit } from './policy.ts';
import { describeTarget, fullResourceName, targetKey, type PolicyTarget } from './resources.ts';

export interface GkeObserved {
  /** ServiceAccount mode: our service account; DirectPrincipal mode: the one left from ServiceAccount mode. */
  serviceAccount: GoogleServiceAccount | undefined;
  /** The Google service account's own policy; undefined when the account is missing or not ours. */
  trustPolicy: IamPolicy | undefined;
  /** Policies of the resources we grant on, by target key; a missing key means the resource does not exist. */
  policies: Map<string, IamPolicy>;
}

const REJECTION_HINT: Record<Step, string> = {
  identity: 'Check the operator\'s Google identity has roles/iam.serviceAccountAdmin on the project.',
  trust: 'Check the operator\'s Google identity has roles/iam.serviceAccountAdmin on the project.',
  permissions: 'Check spec.gcp.roles (role names, conditions) and that the operator\'s Google identity may set IAM policies there (roles/resourcemanager.projectIamAdmin, or the resource\'s admin role).',
};

/** Runs one step's calls; a request Google refuses becomes that step's CloudRejected condition. */
async function asStep<T>(step: Step, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!isCloudError(err, 'terminal')) throw err;
    if (isServiceAccountQuota(err.code, err.message)) {
      throw new ProviderError(step, REASON.QuotaExceeded, `${err.message} Google allows 100 service accounts per project by default: delete unused ones, request a quota increase, or use spec.gcp.mechanism: DirectPrincipal, which needs no service account.`, false, { cause: err });
    }
    throw new ProviderError(step, REASON.CloudRejected, `Google Cloud rejected ${err.message}. ${REJECTION_HINT[step]}`, false, { cause: err });
  }
}

function notPropagated(what: string, cause?: unknown): CloudError {
  return new CloudError('retryable', 'NOT_PROPAGATED', 'Propagation', `${what} is not visible to IAM yet; retrying`, { cause, quiet: true });
}

export class GkeWorkloadIdentityProvider implements Provider<GkeDesired, GkeObserved> {
  readonly cloud = 'gcp' as const;
  readonly mechanism: GcpMechanism;
  readonly #gcp: GcpPort;
  readonly #ledger: GrantLedger;

  /** One provider per CloudAccount and mechanism; `gcp` carries that account's rate limiter. */
  constructor(mechanism: GcpMechanism, gcp: GcpPort, ledger: GrantLedger = new GrantLedger()) {
    this.mechanism = mechanism;
    this.#gcp = gcp;
    this.#ledger = ledger;
  }

  validate(ctx: IdentityContext): string[] {
    return validateGcpSpec(ctx);
  }

  desired(ctx: IdentityContext): GkeDesired {
    return desiredGke(ctx, this.mechanism);
  }

  /**
   * Desired targets plus those we granted on before and the spec no longer names (their grants must go): from the
   * last written status, which survives restarts, and from this process's memory, which covers a status write
   * that had not happened yet.
   */
  #targets(desired: GkeDesired): TargetGrants[] {
    const wanted = new Set(desired.grants.map((g) => g.key));
    const stale = new Map<string, PolicyTarget>();
    for (const target of [...desired.previouslyGranted, ...this.#ledger.stale(desired.identity, desired.grants.map((g) => g.target))]) {
      const key = targetKey(target);
      if (!wanted.has(key)) stale.set(key, target);
    }
    return [...desired.grants, ...[...stale].map(([key, target]) => ({ target, key, grants: [] }))];
  }

  async observe(desired: GkeDesired): Promise<GkeObserved> {
    let serviceAccount: GoogleServiceAccount | undefined;
    let trustPolicy: IamPolicy | undefined;
    if (desired.formerGsa) serviceAccount = await this.#gcp.getServiceAccount(desired.project, desired.formerGsa.email);
    if (desired.gsa) {
      serviceAccount = await this.#gcp.getServiceAccount(desired.project, desired.gsa.email);
      if (serviceAccount && !carriesMarker(serviceAccount.description, desired.gsa.marker)) {
        return { serviceAccount, trustPolicy: undefined, policies: new Map() };
      }
      if (serviceAccount) trustPolicy = await this.#readPolicy({ kind: 'serviceAccount', project: desired.project, email: desired.gsa.email });
    }
    const policies = new Map<string, IamPolicy>();
    for (const { target, key } of this.#targets(desired)) {
      const policy = await this.#readPolicy(target);
      if (policy) policies.set(key, policy);
    }
    return { serviceAccount, trustPolicy, policies };
  }

  async #readPolicy(target: PolicyTarget): Promise<IamPolicy | undefined> {
    try {
      return await this.#gcp.getIamPolicy(target);
    } catch (err) {
      if (isCloudError(err, 'notFound')) return undefined;
      throw err;
    }
  }

  async ensure(desired: GkeDesired, observed: GkeObserved): Promise<Provisioned> {
    const changes: Change[] = [];
    let identityMessage: string;
    let trustMessage: string;
    if (desired.gsa) {
      const sa = await this.#ensureServiceAccount(desired, observed, changes);
      identityMessage = `Google service account ${sa.email} (uniqueId ${sa.uniqueId}) exists in project ${desired.project}${sa.disabled ? ' but is DISABLED: enable it (gcloud iam service-accounts enable) or pods get no tokens' : ''}`;
      trustMessage = `Google service account ${sa.email} lets ${desired.kubernetesMember} impersonate it (${WORKLOAD_IDENTITY_USER}); GKE's metadata server gives pods of ServiceAccount ${desired.namespace}/${desired.serviceAccountName} its tokens (workload identity pool ${desired.pool})`;
    } else {
      identityMessage = `No Google service account: pods act as ${desired.member}`;
      trustMessage = `Workload identity pool ${desired.pool} identifies pods of ServiceAccount ${desired.namespace}/${desired.serviceAccountName} as ${desired.member}`;
    }

    const held: string[] = [];
    for (const entry of this.#targets(desired)) {
      const policy = observed.policies.get(entry.key);
      if (!policy && !entry.grants.length) continue; // a dropped resource that no longer exists
      const edit = await this.#editGrants(desired, entry, policy);
      for (const g of edit.added) changes.push({ step: 'permissions', action: 'RoleGranted', message: `Granted ${describeGrant(g)} on ${describeTarget(entry.target)} to ${desired.member}` });
      for (const g of edit.removed) changes.push({ step: 'permissions', action: 'RoleRevoked', message: `Removed ${describeGrant(g)} on ${describeTarget(entry.target)} from ${desired.member}: it is not in the spec` });
      if (edit.purged.length) changes.push({ step: 'permissions', action: 'StaleMembersRemoved', message: `Removed ${edit.purged.join(', ')} from ${describeTarget(entry.target)}: left by this identity's earlier service account or mechanism` });
      if (entry.grants.length) held.push(`${entry.grants.map(describeGrant).join(', ')} on ${describeTarget(entry.target)}`);
    }
    this.#ledger.record(desired.identity, desired.grants.map((g) => g.target));
    if (desired.formerGsa && observed.serviceAccount) {
      changes.push(...(await this.#deleteFormerServiceAccount(desired.project, desired.formerGsa, observed.serviceAccount)));
    }

    return {
      status: {
        identity: desired.gsa ? desired.gsa.email : desired.member,
        audience: desired.pool,
        gcp: {
          ...(desired.gsa ? { serviceAccountEmail: desired.gsa.email } : {}),
          member: desired.member,
          ...(desired.grants.length ? { grantedResources: desired.grants.map((g) => fullResourceName(g.target)) } : {}),
        },
      },
      serviceAccountAnnotations: desired.gsa ? { [SERVICE_ACCOUNT_ANNOTATION.gcpServiceAccount]: desired.gsa.email } : {},
      messages: {
        identity: identityMessage,
        trust: trustMessage,
        permissions: held.length ? `${desired.member} holds ${held.join('; ')}` : `${desired.member} holds no roles (the spec lists none)`,
      },
      changes,
    };
  }

  async #ensureServiceAccount(desired: GkeDesired, observed: GkeObserved, changes: Change[]): Promise<GoogleServiceAccount> {
    const gsa = desired.gsa;
    if (!gsa) throw new Error('no service account in this mode');
    let sa = observed.serviceAccount;
    let trustPolicy = observed.trustPolicy;
    if (!sa) {
      try {
        // displayName and the ownership marker travel with the create: an account never exists unmarked.
        sa = await asStep('identity', () => this.#gcp.createServiceAccount(desired.project, gsa.accountId, { displayName: gsa.displayName, description: gsa.description }));
        changes.push({ step: 'identity', action: 'Created', message: `Created Google service account ${sa.email}` });
        trustPolicy = undefined;
      } catch (err) {
        if (!isCloudError(err, 'alreadyExists')) throw err;
        // Ours from an earlier attempt (or someone else's): IAM reads lag behind the create.
        sa = await this.#gcp.getServiceAccount(desired.project, gsa.email);
        if (!sa) throw notPropagated(`Google service account ${gsa.email}`, err);
      }
    }
    if (!carriesMarker(sa.description, gsa.marker)) {
      const owner = describeMarker(sa.description);
      throw new ProviderError(
        'identity',
        REASON.NotOwned,
        `Google service account ${sa.email} already exists and is not owned by this WorkloadIdentity.${owner ? ` It belongs to ${owner}.` : ` Its description carries no Keyless ownership marker (${MARKER.cluster}, ${MARKER.namespace}, ${MARKER.name}).`} Keyless never modifies a service account it does not own: delete that account, or use a different WorkloadIdentity name.`,
        false,
      );
    }
    if (sa.displayName !== gsa.displayName) {
      await asStep('identity', () => this.#gcp.patchServiceAccount(desired.project, gsa.email, { displayName: gsa.displayName }));
      changes.push({ step: 'identity', action: 'ServiceAccountUpdated', message: `Restored the display name of Google service account ${sa.email} to ${gsa.displayName}` });
    }

    const target: PolicyTarget = { kind: 'serviceAccount', project: desired.project, email: gsa.email };
    // Exactly one Kubernetes ServiceAccount may impersonate our account: another member there widens the trust.
    const trust: MemberEdit = { member: desired.kubernetesMember, grants: [{ role: WORKLOAD_IDENTITY_USER }], exclusiveRoles: [WORKLOAD_IDENTITY_USER] };
    try {
      const edit = await asStep('trust', () => editPolicy(this.#gcp, target, trust, trustPolicy));
      if (edit.added.length) changes.push({ step: 'trust', action: 'TrustGranted', message: `Granted ${WORKLOAD_IDENTITY_USER} on ${sa.email} to ${desired.kubernetesMember}` });
      if (edit.purged.length) changes.push({ step: 'trust', action: 'TrustRestricted', message: `Removed ${edit.purged.join(', ')} from ${WORKLOAD_IDENTITY_USER} on ${sa.email}: only ${desired.kubernetesMember} may impersonate it` });
    } catch (err) {
      if (isCloudError(err, 'notFound')) throw notPropagated(`Google service account ${gsa.email}`, err);
      throw err;
    }
    return sa;
  }

  /** After a switch to DirectPrincipal: the service account of ServiceAccount mode goes, if it is ours. */
  async #deleteFormerServiceAccount(project: string, former: { email: string; marker: string }, sa: GoogleServiceAccount): Promise<Change[]> {
    if (!carriesMarker(sa.description, former.marker)) return [];
    await asStep('identity', () => this.#gcp.deleteServiceAccount(project, former.email));
    return [{ step: 'identity', action: 'Deleted', message: `Deleted Google service account ${former.email}: the identity now uses DirectPrincipal` }];
  }

  async #editGrants(desired: GkeDesired, entry: TargetGrants, observed: IamPolicy | undefined) {
    const edit: MemberEdit = { member: desired.member, grants: entry.grants, purge: desired.purge };
    try {
      return await asStep('permissions', () => editPolicy(this.#gcp, entry.target, edit, observed));
    } catch (err) {
      if (!isCloudError(err, 'notFound')) throw err;
      throw new ProviderError(
        'permissions',
        REASON.ResourceNotFound,
        `${describeTarget(entry.target)} does not exist, or the operator's Google identity cannot see it. Create it, or fix spec.gcp.roles; Keyless retries with backoff.`,
        true,
        { cause: err },
      );
    }
  }

  async delete(desired: GkeDesired): Promise<Revoked> {
    const changes: Change[] = [];
    let sa: GoogleServiceAccount | undefined;
    if (desired.gsa) {
      sa = await this.#gcp.getServiceAccount(desired.project, desired.gsa.email);
      if (sa && !carriesMarker(sa.description, desired.gsa.marker)) {
        return { complete: true, message: `Google service account ${sa.email} is not owned by this WorkloadIdentity and was left untouched, with its grants`, changes };
      }
      if (sa) {
        // 1. Trust first: no new tokens for the workload while the grants go.
        const target: PolicyTarget = { kind: 'serviceAccount', project: desired.project, email: sa.email };
        const policy = await this.#readPolicy(target);
        if (policy) {
          const edit = await editPolicy(this.#gcp, target, { member: desired.kubernetesMember, grants: [] }, policy);
          if (edit.removed.length) changes.push({ step: 'trust', action: 'TrustRevoked', message: `Removed ${WORKLOAD_IDENTITY_USER} on ${sa.email} from ${desired.kubernetesMember}` });
        }
      }
    }
    // 2. Grants: wherever the spec (or our memory of it) says we granted.
    for (const entry of this.#targets(desired)) {
      const policy = await this.#readPolicy(entry.target);
      if (!policy) continue;
      const edit = await editPolicy(this.#gcp, entry.target, { member: desired.member, grants: [], purge: desired.purge }, policy);
      if (edit.removed.length) changes.push({ step: 'permissions', action: 'RoleRevoked', message: `Removed ${edit.removed.map(describeGrant).join(', ')} on ${describeTarget(entry.target)} from ${desired.member}` });
    }
    // 3. The identity (or, in DirectPrincipal mode, the one left from ServiceAccount mode).
    if (desired.formerGsa) {
      const former = await this.#gcp.getServiceAccount(desired.project, desired.formerGsa.email);
      if (former) changes.push(...(await this.#deleteFormerServiceAccount(desired.project, desired.formerGsa, former)));
    }
    if (sa) {
      await this.#gcp.deleteServiceAccount(desired.project, sa.email);
      changes.push({ step: 'identity', action: 'Deleted', message: `Deleted Google service account ${sa.email}` });
      if (await this.#gcp.getServiceAccount(desired.project, sa.email)) {
        return { complete: false, message: `Deleting Google service account ${sa.email}; waiting for IAM to confirm`, changes };
      }
    }
    this.#ledger.forget(desired.identity);
    return {
      complete: true,
      message: sa ? `Deleted Google service account ${sa.email} and its grants` : `Removed every grant of ${desired.member}`,
      changes,
    };
  }
}
