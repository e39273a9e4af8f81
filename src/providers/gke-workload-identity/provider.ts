// GKE Workload Identity, two mechanisms (DESIGN §2):
// - ServiceAccount: a Google service account per WorkloadIdentity, roles/iam.workloadIdentityUser on it for
//   serviceAccount:<pool>[<ns>/<sa>], the grants to serviceAccount:<email>, and the ServiceAccount annotation
//   iam.gke.io/gcp-service-account that GKE's metadata server reads.
// - DirectPrincipal: no Google service account; the grants go to the Kubernetes ServiceAccount's principal://
//   identifier in the workload identity pool; no annotation.
// Off GKE, the CloudAccount names a Workload Identity Federation provider (federation.ts): the same two mechanisms
// with the pool's principal for system:serviceaccount:NS:SA as the trusted member (never a principalSet), no
// annotation (nothing on the node reads it), and an external_account credential configuration for the pods, which
// the reconciler writes into the ConfigMap this provider names in the record before anything is created.
// Every policy edit is a read-modify-write with the etag (policy-edit.ts). The Google service account is ours alone,
// so every grant to it on a policy we edit is part of the identity; the principal:// member is shared by every
// cluster in the pool and by anyone who grants to it by hand, so only the bindings the record says Keyless made are
// ever removed from it.
// What every identity of the CloudAccount reads alike — a resource's policy, the project's service accounts — comes
// from the account's shared reads (shared-port.ts); only the Google service account's own policy is read for this
// identity alone, so a converged identity costs one read of its own per resync in ServiceAccount mode, none in
// DirectPrincipal mode.
import { MARKER, REASON, SERVICE_ACCOUNT_ANNOTATION } from '../../api/constants.ts';
import type { GcpMechanism, GcpRecordedGrant } from '../../api/types.ts';
import { serviceAccountSubject } from '../../domain/naming.ts';
import { CloudError, isCloudError } from '../cloud-error.ts';
import { notAdoptable } from '../adoption.ts';
import { notOwned } from '../ownership.ts';
import { beforeFirstWrite, changedSinceListed } from '../shared-reads.ts';
import { stepRunner } from '../steps.ts';
import { ProviderError, type Change, type CloudRecord, type CredentialCheck, type IdentityContext, type Owner, type PodCredentials, type Provider, type Provisioned, type Revoked } from '../types.ts';
import { gcpCredentialCheck } from './credential-check.ts';
import { desiredGke, gcpAccount, gsaIdOf, validateGcpSpec, type GkeDesired, type TargetGrants } from './desired.ts';
import { federatedPrincipal, federationOf, GOOGLE_EXCHANGE_URLS, type ExchangeUrls } from './federation.ts';
import { isServiceAccountQuota } from './errors.ts';
import type { GcpExchangePort } from './exchange-port.ts';
import type { GoogleServiceAccount, SharedGcpPort } from './gcp-port.ts';
import {
  carriesMarker,
  deletedGsaMemberPrefix,
  describeMarker,
  gcpServiceAccountId,
  gsaMember,
  kubernetesServiceAccountMember,
  ownershipMarker,
  serviceAccountEmail,
  WORKLOAD_IDENTITY_USER,
  workloadPool,
} from './naming.ts';
import { editPolicy } from './policy-edit.ts';
import { describeGrant, editMembers, grantKey, holds, type Grant, type IamPolicy, type MemberEdit, type MemberGrant } from './policy.ts';
import { describeTarget, fullResourceName, policyTarget, targetKey, type PolicyTarget } from './resources.ts';

export interface GkeObserved {
  /** ServiceAccount mode: the account with our name; DirectPrincipal mode: the one the record keeps, if it exists. */
  serviceAccount: GoogleServiceAccount | undefined;
  /** `serviceAccount` is the shared listing's copy: it is read again before anything is written for it. */
  listed: boolean;
  /** The Google service account's own policy; undefined when the account is missing or not ours. */
  trustPolicy: IamPolicy | undefined;
  /** Policies of the resources we grant on or recorded granting on, by target key; missing: the resource is gone. */
  policies: Map<string, IamPolicy>;
}

/** Nothing is injected into pods: GKE's metadata server serves their tokens on every request. */
const GKE_POD_CREDENTIALS: PodCredentials = { injected: false, staleReason: () => undefined, notInjected: 'Pods need no restart: GKE serves credentials through the node metadata server.' };

/** Off GKE the pod spec names the ConfigMap and the token itself (no webhook); its client library reads them when it starts. */
const FEDERATED_POD_CREDENTIALS: PodCredentials = {
  injected: false,
  staleReason: () => undefined,
  notInjected:
    'Nothing is injected into pods: their spec mounts the credential configuration ConfigMap and the projected token (see ServiceAccountReady). Their Google client library reads the configuration when it starts, so restart them after a mechanism switch changes it.',
};

const asStep = stepRunner({
  cloud: 'Google Cloud',
  hints: {
    identity: "Check the operator's Google identity has roles/iam.serviceAccountAdmin on the project.",
    trust: "Check the operator's Google identity has roles/iam.serviceAccountAdmin on the project.",
    permissions: "Check spec.gcp.roles (role names, conditions) and that the operator's Google identity may set IAM policies there (roles/resourcemanager.projectIamAdmin, or the resource's admin role).",
  },
  refine: (step, err) =>
    isServiceAccountQuota(err.code, err.message)
      ? new ProviderError(step, REASON.QuotaExceeded, `${err.message} Google allows 100 service accounts per project by default: delete unused ones, request a quota increase, or use spec.gcp.mechanism: DirectPrincipal, which needs no service account.`, false, { cause: err })
      : undefined,
});

function notPropagated(what: string, cause?: unknown): CloudError {
  return new CloudError('retryable', 'NOT_PROPAGATED', 'Propagation', `${what} is not visible to IAM yet; retrying`, { cause, quiet: true });
}

function toGrant(g: GcpRecordedGrant): Grant {
  return { role: g.role, ...(g.condition ? { condition: { ...g.condition } } : {}) };
}

function recorded(member: string, target: PolicyTarget, grant: Grant): GcpRecordedGrant {
  return { member, resource: fullResourceName(target), role: grant.role, ...(grant.condition ? { condition: { ...grant.condition } } : {}) };
}

const recordKey = (g: GcpRecordedGrant) => `${g.member}\u0000${g.resource}\u0000${grantKey(g)}`;

function dedupe(grants: GcpRecordedGrant[]): GcpRecordedGrant[] {
  return [...new Map(grants.map((g) => [recordKey(g), g])).values()];
}

/** The recorded bindings grouped by the policy they are in. */
function recordedByTarget(desired: GkeDesired): Map<string, { target: PolicyTarget; grants: GcpRecordedGrant[] }> {
  const groups = new Map<string, { target: PolicyTarget; grants: GcpRecordedGrant[] }>();
  for (const g of desired.recorded) {
    const target = policyTarget(g.resource, desired.project);
    if (!target) continue;
    const key = targetKey(target);
    const group = groups.get(key) ?? { target, grants: [] };
    group.grants.push(g);
    groups.set(key, group);
  }
  return groups;
}

function changesOf(edit: { added: MemberGrant[]; removed: MemberGrant[]; purged: string[] }, target: PolicyTarget, why: string): Change[] {
  const where = describeTarget(target);
  return [
    ...edit.added.map((a) => ({ step: 'permissions' as const, action: 'RoleGranted', message: `Granted ${describeGrant(a.grant)} on ${where} to ${a.member}` })),
    ...edit.removed.map((r) => ({ step: 'permissions' as const, action: 'RoleRevoked', message: `Removed ${describeGrant(r.grant)} on ${where} from ${r.member}: ${why}` })),
    ...(edit.purged.length ? [{ step: 'permissions' as const, action: 'StaleMembersRemoved', message: `Removed ${edit.purged.join(', ')} from ${where}: left by this identity's deleted service account` }] : []),
  ];
}

export class GkeWorkloadIdentityProvider implements Provider<GkeDesired, GkeObserved> {
  readonly cloud = 'gcp' as const;
  readonly mechanism: GcpMechanism;
  readonly pods: PodCredentials;
  readonly credentials: CredentialCheck;
  readonly #gcp: SharedGcpPort;
  readonly #urls: ExchangeUrls;

  /**
   * One provider per CloudAccount and mechanism; the ports carry that account's rate limiter and shared reads.
   * `federated`: the account names a Workload Identity Federation provider; `urls`: where its pods exchange tokens.
   */
  constructor(mechanism: GcpMechanism, gcp: SharedGcpPort, exchange: GcpExchangePort, opts: { urls?: ExchangeUrls; federated?: boolean } = {}) {
    this.mechanism = mechanism;
    this.#gcp = gcp;
    this.#urls = opts.urls ?? GOOGLE_EXCHANGE_URLS;
    this.pods = opts.federated ? FEDERATED_POD_CREDENTIALS : GKE_POD_CREDENTIALS;
    this.credentials = gcpCredentialCheck(exchange);
  }

  validate(ctx: IdentityContext): string[] {
    return validateGcpSpec(ctx, this.mechanism);
  }

  /**
   * The same project and workload identity pool: the members a record names are then the ones we would use. In
   * ServiceAccount mode also the same Google service account, which keyless.dev/adopt may name.
   */
  continues(record: CloudRecord, ctx: IdentityContext): boolean {
    const r = record.gcp;
    const account = gcpAccount(ctx);
    const federation = federationOf(account);
    const pool = federation ? federation.pool : workloadPool(account.projectId, account.workloadPool);
    // Another provider of the same pool names the same principals: the record carries over, only the pods' configuration changes.
    if (r === undefined || r.projectId !== account.projectId || r.workloadPool !== pool || (r.workloadIdentityProvider !== undefined) !== (federation !== undefined)) return false;
    return this.mechanism !== 'ServiceAccount' || r.serviceAccountEmail === undefined || r.serviceAccountEmail === serviceAccountEmail(gsaIdOf(ctx), account.projectId);
  }

  desired(ctx: IdentityContext): GkeDesired {
    return desiredGke(ctx, this.mechanism, this.#urls);
  }

  /** Desired targets plus those the record names and the spec no longer does (their grants must go). */
  #targets(desired: GkeDesired): TargetGrants[] {
    const entries = new Map(desired.grants.map((g) => [g.key, g]));
    for (const [key, { target }] of recordedByTarget(desired)) {
      if (!entries.has(key)) entries.set(key, { target, key, grants: [] });
    }
    return [...entries.values()];
  }

  async observe(desired: GkeDesired): Promise<GkeObserved> {
    let serviceAccount: GoogleServiceAccount | undefined;
    let listed = false;
    let trustPolicy: IamPolicy | undefined;
    // Only while switching mode: the account is about to be deleted, so it is read itself.
    if (desired.formerGsa) serviceAccount = await this.#gcp.getServiceAccount(desired.project, desired.formerGsa.email);
    if (desired.gsa) {
      const email = desired.gsa.email;
      serviceAccount = (await this.#gcp.sharedServiceAccounts(desired.project)).find((sa) => sa.email === email);
      listed = serviceAccount !== undefined;
      // Not listed: the listing may lag a create; ask for the account itself before calling it missing.
      if (!serviceAccount) serviceAccount = await this.#gcp.getServiceAccount(desired.project, email);
      if (serviceAccount && !carriesMarker(serviceAccount.description, desired.gsa.marker)) {
        return { serviceAccount, listed, trustPolicy: undefined, policies: new Map() };
      }
      if (serviceAccount) {
        trustPolicy = await this.#readPolicy({ kind: 'serviceAccount', project: desired.project, email });
        if (!trustPolicy && listed) {
          // Listed, but its policy is gone: the listing may predate a deletion.
          serviceAccount = await this.#gcp.getServiceAccount(desired.project, email);
          listed = false;
        }
      }
    }
    const policies = new Map<string, IamPolicy>();
    for (const { target, key } of this.#targets(desired)) {
      const policy = await this.#gcp.sharedIamPolicy(target);
      if (policy) policies.set(key, policy);
    }
    return { serviceAccount, listed, trustPolicy, policies };
  }

  async #readPolicy(target: PolicyTarget): Promise<IamPolicy | undefined> {
    try {
      return await this.#gcp.getIamPolicy(target);
    } catch (err) {
      if (isCloudError(err, 'notFound')) return undefined;
      throw err;
    }
  }

  /** The service account where one exists or will, and every binding we may add: those the member lacks now. */
  intent(desired: GkeDesired, observed: GkeObserved): CloudRecord {
    const foreign = desired.gsa !== undefined && observed.serviceAccount !== undefined && !carriesMarker(observed.serviceAccount.description, desired.gsa.marker);
    const grants = [...desired.recorded];
    if (!foreign) {
      for (const entry of desired.grants) {
        const policy = observed.policies.get(entry.key);
        for (const g of entry.grants) {
          // A binding the principal already holds was made by someone else: it is not ours to record (or remove).
          if (desired.member === desired.ownGsa.member || !holds(policy, desired.member, g)) grants.push(recorded(desired.member, entry.target, g));
        }
      }
    }
    const email = (!foreign && desired.gsa?.email) || desired.formerGsa?.email;
    return this.#record(desired, email, dedupe(grants));
  }

  #record(desired: GkeDesired, serviceAccountEmail: string | undefined, grants: GcpRecordedGrant[]): CloudRecord {
    return {
      gcp: {
        projectId: desired.project,
        projectNumber: desired.projectNumber,
        workloadPool: desired.pool,
        ...(desired.federation ? { workloadIdentityProvider: desired.federation.name } : {}),
        ...(serviceAccountEmail ? { serviceAccountEmail } : {}),
        ...(grants.length ? { grants } : {}),
      },
      // The pods' credential configuration: recorded before the reconciler creates it, like any cloud object.
      ...(desired.credentials ? { configMap: { name: desired.credentials.configMap } } : {}),
    };
  }

  /** Which grants of `member` an edit may remove: all for our own service account, else only those recorded. */
  #removable(desired: GkeDesired, member: string, recordedHere: GcpRecordedGrant[], ownGsaIsOurs: boolean): MemberEdit['removable'] {
    if (member === desired.ownGsa.member && ownGsaIsOurs) return 'all';
    return recordedHere.filter((g) => g.member === member).map(toGrant);
  }

  async ensure(desired: GkeDesired, observed: GkeObserved): Promise<Provisioned> {
    const changes: Change[] = [];
    let identityMessage: string;
    let trustMessage: string;
    // Before the first write for a listed service account (its trust, a grant to it), IAM confirms it is still ours.
    const confirm = beforeFirstWrite(async () => {
      const listed = observed.serviceAccount;
      if (!observed.listed || !listed || !desired.gsa) return;
      const current = await this.#gcp.getServiceAccount(desired.project, listed.email);
      if (current?.uniqueId === listed.uniqueId && carriesMarker(current.description, desired.gsa.marker)) return;
      throw changedSinceListed('GetServiceAccount', `Google service account ${listed.email}`);
    });
    const ksa = `ServiceAccount ${desired.namespace}/${desired.serviceAccountName}`;
    const federated = desired.federation && desired.credentials ? `through Workload Identity Federation provider ${desired.federation.name} with the credential configuration in ConfigMap ${desired.namespace}/${desired.credentials.configMap}` : undefined;
    if (desired.gsa) {
      const sa = await this.#ensureServiceAccount(desired, observed, changes, confirm);
      identityMessage = `Google service account ${sa.email} (uniqueId ${sa.uniqueId}) exists in project ${desired.project}${sa.disabled ? ' but is DISABLED: enable it (gcloud iam service-accounts enable) or pods get no tokens' : ''}`;
      trustMessage = federated
        ? `Google service account ${sa.email} lets ${desired.kubernetesMember} impersonate it (${WORKLOAD_IDENTITY_USER}); pods of ${ksa} get its tokens ${federated}`
        : `Google service account ${sa.email} lets ${desired.kubernetesMember} impersonate it (${WORKLOAD_IDENTITY_USER}); GKE's metadata server gives pods of ${ksa} its tokens (workload identity pool ${desired.pool})`;
    } else {
      identityMessage = `No Google service account: pods act as ${desired.member}`;
      trustMessage = federated ? `Pods of ${ksa} act as ${desired.member} ${federated}` : `Workload identity pool ${desired.pool} identifies pods of ${ksa} as ${desired.member}`;
    }
    // In DirectPrincipal mode the former account's grants are removed only while it is still ours (or gone).
    const former = observed.serviceAccount;
    const ownGsaIsOurs = desired.gsa !== undefined || !former || carriesMarker(former.description, desired.ownGsa.marker);

    const held: string[] = [];
    const grants: GcpRecordedGrant[] = [];
    const byTarget = recordedByTarget(desired);
    for (const entry of this.#targets(desired)) {
      const policy = observed.policies.get(entry.key);
      if (!policy && !entry.grants.length) continue; // a recorded resource that no longer exists: its bindings went with it
      const here = byTarget.get(entry.key)?.grants ?? [];
      const members = new Set([desired.member, ...here.map((g) => g.member)]);
      const edits = [...members].map((member) => ({
        member,
        grants: member === desired.member ? entry.grants : [],
        removable: this.#removable(desired, member, here, ownGsaIsOurs),
      }));
      if (!policy || editMembers(policy, edits, desired.ghost).changed) await confirm();
      const edit = await this.#editGrants(entry, edits, desired.ghost, policy);
      changes.push(...changesOf(edit, entry.target, 'it is not in the spec'));
      const added = new Set(edit.added.map((a) => grantKey(a.grant)));
      const mine = new Set(here.filter((g) => g.member === desired.member).map(grantKey));
      for (const g of entry.grants) {
        if (desired.member === desired.ownGsa.member || added.has(grantKey(g)) || mine.has(grantKey(g))) grants.push(recorded(desired.member, entry.target, g));
      }
      if (entry.grants.length) held.push(`${entry.grants.map(describeGrant).join(', ')} on ${describeTarget(entry.target)}`);
    }

    let recordedEmail = desired.gsa?.email;
    if (desired.formerGsa && former) {
      if (carriesMarker(former.description, desired.formerGsa.marker)) {
        changes.push(...(await this.#deleteServiceAccount(desired.project, former.email, 'the identity now uses DirectPrincipal')));
        // Kept in the record until IAM confirms it is gone.
        if (await this.#gcp.getServiceAccount(desired.project, former.email)) recordedEmail = former.email;
      }
    }

    const credentials = desired.credentials;
    return {
      status: {
        identity: desired.gsa ? desired.gsa.email : desired.member,
        audience: credentials ? credentials.audience : desired.pool,
        gcp: { ...(desired.gsa ? { serviceAccountEmail: desired.gsa.email } : {}), member: desired.member, ...(credentials ? { credentialConfigMap: credentials.configMap } : {}) },
      },
      record: this.#record(desired, recordedEmail, dedupe(grants)),
      // Off GKE nothing reads the annotation: the credential configuration names the Google service account.
      serviceAccountAnnotations: desired.gsa && !desired.federation ? { [SERVICE_ACCOUNT_ANNOTATION.gcpServiceAccount]: desired.gsa.email } : {},
      ...(credentials ? { configMap: { name: credentials.configMap, data: credentials.data }, serviceAccountHint: credentials.hint } : {}),
      messages: {
        identity: identityMessage,
        trust: trustMessage,
        permissions: held.length ? `${desired.member} holds ${held.join('; ')}` : `${desired.member} holds no roles (the spec lists none)`,
      },
      changes,
    };
  }

  async #ensureServiceAccount(desired: GkeDesired, observed: GkeObserved, changes: Change[], confirm: () => Promise<void>): Promise<GoogleServiceAccount> {
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
      const unmarked = !owner && !sa.description.includes('keyless.dev/');
      if (!desired.adopt || !unmarked) {
        throw notOwned(
          'identity',
          `Google service account ${sa.email}`,
          owner ? `It belongs to ${owner}.` : `Its description carries no Keyless ownership marker (${MARKER.cluster}, ${MARKER.namespace}, ${MARKER.name}).`,
          'delete that account, or use a different WorkloadIdentity name',
          { adoptable: unmarked },
        );
      }
      ({ sa, trustPolicy } = await this.#adopt(desired, gsa, sa, changes));
    }
    if (sa.displayName !== gsa.displayName) {
      await confirm();
      await asStep('identity', () => this.#gcp.patchServiceAccount(desired.project, gsa.email, { displayName: gsa.displayName }));
      changes.push({ step: 'identity', action: 'ServiceAccountUpdated', message: `Restored the display name of Google service account ${sa.email} to ${gsa.displayName}` });
    }

    const target: PolicyTarget = { kind: 'serviceAccount', project: desired.project, email: gsa.email };
    // Exactly one Kubernetes ServiceAccount may impersonate our account: another member there widens the trust.
    const trust: MemberEdit = { member: desired.kubernetesMember, grants: [{ role: WORKLOAD_IDENTITY_USER }], removable: 'all', exclusiveRoles: [WORKLOAD_IDENTITY_USER] };
    if (!trustPolicy || editMembers(trustPolicy, [trust]).changed) await confirm();
    try {
      const edit = await asStep('trust', () => editPolicy(this.#gcp, target, [trust], undefined, trustPolicy));
      if (edit.added.length) changes.push({ step: 'trust', action: 'TrustGranted', message: `Granted ${WORKLOAD_IDENTITY_USER} on ${sa.email} to ${desired.kubernetesMember}` });
      if (edit.purged.length) changes.push({ step: 'trust', action: 'TrustRestricted', message: `Removed ${edit.purged.join(', ')} from ${WORKLOAD_IDENTITY_USER} on ${sa.email}: only ${desired.kubernetesMember} may impersonate it` });
    } catch (err) {
      if (isCloudError(err, 'notFound')) throw notPropagated(`Google service account ${gsa.email}`, err);
      throw err;
    }
    return sa;
  }

  /**
   * Puts the marker into the description of a service account created outside Keyless (keyless.dev/adopt): from here
   * on it is ours like any other, so the grants to it on the policies we edit are exactly the spec's. One named in the
   * annotation must already let the Kubernetes ServiceAccount impersonate it.
   */
  async #adopt(desired: GkeDesired, gsa: NonNullable<GkeDesired['gsa']>, sa: GoogleServiceAccount, changes: Change[]): Promise<{ sa: GoogleServiceAccount; trustPolicy: IamPolicy | undefined }> {
    const target: PolicyTarget = { kind: 'serviceAccount', project: desired.project, email: sa.email };
    const trustPolicy = await this.#readPolicy(target);
    if (desired.adoptOnlyIfTrusted && !holds(trustPolicy, desired.kubernetesMember, { role: WORKLOAD_IDENTITY_USER })) {
      throw notAdoptable(
        'identity',
        `Google service account ${sa.email}`,
        `does not let ${desired.kubernetesMember} impersonate it (${WORKLOAD_IDENTITY_USER}, without a condition)`,
        'name the Google service account this ServiceAccount uses today, or remove the annotation to let Keyless create one of its own',
      );
    }
    await asStep('identity', () => this.#gcp.patchServiceAccount(desired.project, sa.email, { displayName: gsa.displayName, description: gsa.description }));
    changes.push({ step: 'identity', action: 'Adopted', message: `Adopted the existing Google service account ${sa.email} (keyless.dev/adopt) and marked it as owned` });
    return { sa: { ...sa, displayName: gsa.displayName, description: gsa.description }, trustPolicy };
  }

  async #deleteServiceAccount(project: string, email: string, why: string): Promise<Change[]> {
    await asStep('identity', () => this.#gcp.deleteServiceAccount(project, email));
    return [{ step: 'identity', action: 'Deleted', message: `Deleted Google service account ${email}: ${why}` }];
  }

  async #editGrants(entry: TargetGrants, edits: MemberEdit[], ghost: (member: string) => boolean, observed: IamPolicy | undefined) {
    try {
      return await asStep('permissions', () => editPolicy(this.#gcp, entry.target, edits, ghost, observed));
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

  /**
   * From the record alone: the trust on our service account first (no new tokens while the grants go), then every
   * recorded binding (all grants of our own service account there), then the service account itself, confirmed gone.
   * A service account that is not ours is left untouched with its grants.
   */
  async revoke(record: CloudRecord, owner: Owner): Promise<Revoked> {
    const r = record.gcp;
    if (!r) return { complete: true, message: 'No Google Cloud objects were recorded', changes: [] };
    const changes: Change[] = [];
    // The recorded account is this identity's own, whether Keyless created it or adopted it by name.
    const ownEmail = r.serviceAccountEmail ?? serviceAccountEmail(gcpServiceAccountId(owner.cluster, owner.namespace, owner.name), r.projectId);
    const marker = ownershipMarker(owner.cluster, owner.namespace, owner.name);
    const email = r.serviceAccountEmail;
    const sa = email ? await this.#gcp.getServiceAccount(r.projectId, email) : undefined;
    const ours = sa !== undefined && carriesMarker(sa.description, marker);
    if (sa && ours) {
      const target: PolicyTarget = { kind: 'serviceAccount', project: r.projectId, email: sa.email };
      const policy = await this.#readPolicy(target);
      if (policy) {
        const kubernetesMember = r.workloadIdentityProvider
          ? federatedPrincipal({ projectNumber: r.projectNumber, pool: r.workloadPool }, serviceAccountSubject(owner.namespace, owner.serviceAccountName))
          : kubernetesServiceAccountMember(r.workloadPool, owner.namespace, owner.serviceAccountName);
        const edit = await editPolicy(this.#gcp, target, [{ member: kubernetesMember, grants: [], removable: 'all' }], undefined, policy);
        if (edit.removed.length) changes.push({ step: 'trust', action: 'TrustRevoked', message: `Removed ${WORKLOAD_IDENTITY_USER} on ${sa.email} from ${kubernetesMember}` });
      }
    }

    const byResource = new Map<string, GcpRecordedGrant[]>();
    for (const g of r.grants ?? []) byResource.set(g.resource, [...(byResource.get(g.resource) ?? []), g]);
    const ghosts = email ? deletedGsaMemberPrefix(email) : undefined;
    for (const [resource, grants] of byResource) {
      const target = policyTarget(resource, r.projectId);
      if (!target) continue;
      const policy = await this.#readPolicy(target);
      if (!policy) continue;
      const members = new Set(grants.map((g) => g.member));
      const edits: MemberEdit[] = [...members].map((member) => ({
        member,
        grants: [],
        // All of our own account's grants; for any other member (the shared principal), exactly what we recorded.
        removable: member === gsaMember(ownEmail) && (ours || !sa) ? 'all' : grants.filter((g) => g.member === member).map(toGrant),
      }));
      const edit = await editPolicy(this.#gcp, target, edits, (m) => ghosts !== undefined && m.startsWith(ghosts), policy);
      changes.push(...changesOf(edit, target, 'the identity is revoked'));
    }

    if (sa && ours) {
      changes.push(...(await this.#deleteServiceAccount(r.projectId, sa.email, 'the identity is revoked')));
      if (await this.#gcp.getServiceAccount(r.projectId, sa.email)) {
        return { complete: false, message: `Deleting Google service account ${sa.email}; waiting for IAM to confirm`, changes };
      }
    }
    return {
      complete: true,
      message: sa && ours ? `Deleted Google service account ${sa.email} and its grants` : `Removed the ${(r.grants ?? []).length} role binding(s) Keyless made`,
      changes,
    };
  }
}
