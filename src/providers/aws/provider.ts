// The AWS mechanisms, IRSA and EKS Pod Identity, over one IAM role per WorkloadIdentity. They share the role
// (name, grants, tags, deletion) and differ in the trust statement, the Pod Identity association and the
// ServiceAccount annotation. One provider serves both so that flipping `mechanism` migrates without downtime:
//
//   1. the new path's trust statement is added next to the old one, and the association created (Pod Identity);
//   2. the reconciler switches the ServiceAccount annotation (IRSA has it, Pod Identity has none);
//   3. the old path goes — its trust statement, or the association — only once no running pod depends on it
//      (the webhooks inject credentials at pod creation, so old pods keep the old path until restarted) and, for
//      IRSA, once the annotation is gone (a pod created meanwhile would still get IRSA credentials).
import { createHash } from 'node:crypto';
import { REASON, SERVICE_ACCOUNT_ANNOTATION, AUDIENCE } from '../../api/constants.ts';
import type { AwsMechanism } from '../../api/types.ts';
import { IRSA_SID, irsaTrustStatement } from '../aws-irsa/trust.ts';
import { deleteAssociation, ensureAssociation, observeAssociation, type DesiredAssociation } from '../eks-pod-identity/association.ts';
import { POD_IDENTITY_PRINCIPAL, POD_IDENTITY_SID, podIdentityTrustStatement } from '../eks-pod-identity/trust.ts';
import { markerTags } from '../ownership.ts';
import { ProviderError, type Change, type CloudRecord, type CredentialCheck, type IdentityContext, type Owner, type PodCredentials, type Provider, type Provisioned, type Revoked } from '../types.ts';
import type { AccountSnapshot } from './account-snapshot.ts';
import { awsCredentialCheck } from './credential-check.ts';
import { partitionOf } from './arn.ts';
import { awsAccount, desiredRole, roleNameOf, validateAwsSpec } from './desired-role.ts';
import type { Association, EksPort } from './eks-port.ts';
import type { ExchangePort } from './exchange-port.ts';
import type { IamPort } from './iam-port.ts';
import type { IamStatement, PolicyDocument } from './policy-document.ts';
import { INLINE_POLICY_NAME, deleteRole, ensureRole, observeRole, type DesiredRole, type ObservedRole } from './role.ts';
import { awsPodCredentials, type CredentialPath, type WorkloadPods } from './workload-pods.ts';

export interface AwsDesired {
  mechanism: AwsMechanism;
  /** Each mechanism's trust statement for this exact subject, where this account can render it. */
  statements: Partial<Record<AwsMechanism, IamStatement>>;
  /** Why the chosen mechanism's trust cannot be rendered (IRSA without an OIDC provider); ensure reports it. */
  trustProblem: string | undefined;
  /** The role with only the chosen mechanism's trust statement; a legacy statement may be added in ensure. */
  role: DesiredRole;
  association: DesiredAssociation | undefined;
  /** The record names a cluster: an association of ours may exist there (until confirmed gone). */
  recordedAssociation: boolean;
  accountId: string;
  region: string;
  namespace: string;
  serviceAccount: string;
  issuer: string;
  subject: string;
  /** Whether the IRSA annotation is still on the ServiceAccount (gates removing the IRSA trust). */
  irsaAnnotated: boolean;
}

export interface AwsObserved {
  role: ObservedRole;
  association: Association | undefined;
}

export interface AwsDeps {
  /** With `roles`, that snapshot's write-recording port (`roles.iam`). */
  iam: IamPort;
  eks: EksPort;
  pods: WorkloadPods;
  exchange: ExchangePort;
  /** Where observe reads roles first; without it every observe reads IAM directly. */
  roles?: AccountSnapshot;
}

const POD_IDENTITY_AGENT_HINT = 'Pods get credentials from the EKS Pod Identity Agent add-on (eks-pod-identity-agent), which must run on their nodes.';

function statementsOf(trust: unknown): IamStatement[] {
  const s = (trust as { Statement?: unknown } | undefined)?.Statement;
  return (Array.isArray(s) ? s : s ? [s] : []) as IamStatement[];
}

function trustDocument(statements: IamStatement[]): PolicyDocument {
  return { Version: '2012-10-17', Statement: statements };
}

export class AwsProvider implements Provider<AwsDesired, AwsObserved> {
  readonly cloud = 'aws' as const;
  readonly mechanism: AwsMechanism;
  readonly pods: PodCredentials;
  readonly credentials: CredentialCheck;
  readonly #d: AwsDeps;

  /** One provider per CloudAccount and mechanism: the ports carry that account's rate limiter. */
  constructor(mechanism: AwsMechanism, deps: AwsDeps) {
    this.mechanism = mechanism;
    this.pods = awsPodCredentials(mechanism);
    this.credentials = awsCredentialCheck(mechanism, deps.exchange);
    // A write that bypassed the snapshot's port would leave the snapshot believed about a role we just changed.
    if (deps.roles && deps.roles.iam !== deps.iam) throw new Error('AwsProvider: iam must be the account snapshot\'s port (roles.iam)');
    this.#d = deps;
  }

  /**
   * The same role in the same account; and where the record names a cluster for the Pod Identity association, the
   * same cluster in the same region (EKS is regional: an association elsewhere is another object).
   */
  continues(record: CloudRecord, ctx: IdentityContext): boolean {
    const r = record.aws;
    const account = awsAccount(ctx);
    if (!r || r.accountId !== account.accountId) return false;
    // IAM role names are unique per account regardless of case.
    if (r.roleName.toLowerCase() !== roleNameOf(ctx).name.toLowerCase()) return false;
    return r.clusterName === undefined || (r.clusterName === account.clusterName && r.region === account.region);
  }

  validate(ctx: IdentityContext): string[] {
    const problems: string[] = [];
    if (this.mechanism === 'PodIdentity' && !awsAccount(ctx).clusterName) {
      problems.push(`mechanism PodIdentity needs the EKS cluster name, but CloudAccount ${ctx.account.metadata.name} has no spec.aws.clusterName`);
    }
    const own = this.#statements(ctx)[this.mechanism];
    return [...problems, ...validateAwsSpec(ctx, trustDocument(own ? [own] : []))];
  }

  desired(ctx: IdentityContext): AwsDesired {
    const statements = this.#statements(ctx);
    const own = statements[this.mechanism];
    const role = desiredRole(ctx, trustDocument(own ? [own] : []));
    const account = awsAccount(ctx);
    return {
      mechanism: this.mechanism,
      statements,
      trustProblem: own
        ? undefined
        : `CloudAccount ${ctx.account.metadata.name} has no IAM OIDC provider for issuer ${ctx.issuer}, which IRSA needs; see the CloudAccount's Ready condition for the command that creates it, or use mechanism PodIdentity.`,
      role,
      association: account.clusterName
        ? {
            clusterName: account.clusterName,
            namespace: ctx.namespace,
            serviceAccount: ctx.serviceAccountName,
            marker: role.marker,
            clientRequestToken: createHash('sha256').update(`${ctx.uid}/${role.arn}`).digest('hex').slice(0, 32),
          }
        : undefined,
      recordedAssociation: ctx.record?.aws?.clusterName !== undefined,
      accountId: account.accountId,
      region: account.region,
      namespace: ctx.namespace,
      serviceAccount: ctx.serviceAccountName,
      issuer: ctx.issuer,
      subject: ctx.subject,
      irsaAnnotated: ctx.serviceAccountAnnotations?.[SERVICE_ACCOUNT_ANNOTATION.awsRoleArn] !== undefined,
    };
  }

  async observe(desired: AwsDesired): Promise<AwsObserved> {
    const role = (await this.#d.roles?.observe(desired.role)) ?? (await observeRole(this.#d.iam, desired.role));
    // The association is looked up only where it matters: Pod Identity, or a role whose trust still has it.
    const podTrust = statementsOf(role.role?.trustPolicy).some((s) => s.Sid === POD_IDENTITY_SID);
    const association = desired.association && (desired.mechanism === 'PodIdentity' || podTrust) ? await observeAssociation(this.#d.eks, desired.association) : undefined;
    return { role, association };
  }

  /**
   * The role is known before anything is created; the cluster only where a Pod Identity association of ours may
   * exist (Pod Identity, or an IRSA identity whose old association is not confirmed gone), so renaming the cluster
   * of an IRSA account leaves its roles alone.
   */
  intent(desired: AwsDesired, observed: AwsObserved): CloudRecord {
    const association = desired.mechanism === 'PodIdentity' || observed.association !== undefined || desired.recordedAssociation;
    return this.#record(desired, observed.role.role?.arn ?? desired.role.arn, association);
  }

  #record(desired: AwsDesired, roleArn: string, association: boolean): CloudRecord {
    return {
      aws: {
        accountId: desired.accountId,
        region: desired.region,
        roleName: desired.role.name,
        roleArn,
        ...(association && desired.association ? { clusterName: desired.association.clusterName } : {}),
      },
    };
  }

  async ensure(desired: AwsDesired, observed: AwsObserved): Promise<Provisioned> {
    if (desired.trustProblem) throw new ProviderError('trust', REASON.OIDCProviderNotFound, desired.trustProblem, false);
    const legacy = await this.#legacy(desired, observed);
    const changes: Change[] = [];
    const own = statementsOf(desired.role.trustPolicy);
    // Step 1: the new path joins the old one.
    const bridged = { ...desired.role, trustPolicy: trustDocument([...own, ...(legacy.statement ? [legacy.statement] : [])]) };
    const ensured = await ensureRole(this.#d.iam, bridged, observed.role);
    changes.push(...ensured.changes);
    const role = ensured.role;

    let association = observed.association;
    if (desired.mechanism === 'PodIdentity' && desired.association) {
      const result = await ensureAssociation(this.#d.eks, desired.association, observed.association, role.arn);
      association = result.association;
      changes.push(...result.changes);
    }

    // Step 3: the old path goes once nothing depends on it.
    let waitingFor: string | undefined;
    let associationLeft = desired.mechanism === 'PodIdentity' || (legacy.association && desired.association !== undefined);
    if (legacy.statement || legacy.association) {
      if (legacy.blockers.length) {
        waitingFor = legacy.blockers.join('; ');
      } else {
        if (legacy.statement) {
          await this.#d.iam.updateAssumeRolePolicy(desired.role.name, JSON.stringify(desired.role.trustPolicy));
          changes.push({ step: 'trust', action: 'LegacyTrustRemoved', message: `Removed the ${legacy.path} trust statement from IAM role ${role.arn} after the switch to ${desired.mechanism}` });
        }
        if (legacy.association && desired.association) {
          const removed = await deleteAssociation(this.#d.eks, desired.association);
          changes.push(...removed.changes);
          if (!removed.complete) waitingFor = 'EKS to confirm the old Pod Identity association is deleted';
          else associationLeft = false;
        }
      }
    }

    const grants = [...(desired.role.inlinePolicy ? [`inline policy ${INLINE_POLICY_NAME}`] : []), ...desired.role.managedPolicyArns];
    const pod = desired.mechanism === 'PodIdentity';
    const trustMessage = pod
      ? `IAM role ${role.arn} trusts ${POD_IDENTITY_PRINCIPAL} only for namespace ${desired.namespace}, ServiceAccount ${desired.serviceAccount} on cluster ${desired.association?.clusterName ?? ''} (session tags), through Pod Identity association ${association?.associationId ?? ''}`
      : `IAM role ${role.arn} trusts issuer ${desired.issuer} for subject ${desired.subject} with audience ${AUDIENCE.irsa} only`;
    return {
      status: {
        identity: role.arn,
        ...(pod ? {} : { audience: AUDIENCE.irsa }),
        aws: { roleArn: role.arn, roleName: role.name, ...(association && pod ? { associationId: association.associationId } : {}) },
      },
      record: this.#record(desired, role.arn, associationLeft),
      serviceAccountAnnotations: pod ? {} : { [SERVICE_ACCOUNT_ANNOTATION.awsRoleArn]: role.arn },
      ...(pod ? { serviceAccountHint: POD_IDENTITY_AGENT_HINT } : {}),
      messages: {
        identity: `IAM role ${role.arn} exists`,
        trust: waitingFor ? `${trustMessage}. Migrating to ${desired.mechanism}: still waiting for ${waitingFor}.` : trustMessage,
        permissions: grants.length ? `IAM role ${role.arn} grants ${grants.join(', ')}` : `IAM role ${role.arn} grants no permissions (the spec lists none)`,
      },
      changes,
      ...(waitingFor ? { waitingFor } : {}),
    };
  }

  /** The association (confirmed gone: EKS deletes are eventually consistent), then the role. */
  async revoke(record: CloudRecord, owner: Owner): Promise<Revoked> {
    const r = record.aws;
    if (!r) return { complete: true, message: 'No AWS objects were recorded', changes: [] };
    const marker = markerTags(owner);
    let changes: Change[] = [];
    if (r.clusterName) {
      const association = await deleteAssociation(this.#d.eks, { clusterName: r.clusterName, namespace: owner.namespace, serviceAccount: owner.serviceAccountName, marker });
      changes = association.changes;
      if (!association.complete) return { complete: false, message: 'Waiting for EKS to confirm the Pod Identity association is deleted', changes };
    }
    const role = await deleteRole(this.#d.iam, { name: r.roleName, arn: r.roleArn, marker });
    return { ...role, changes: [...changes, ...role.changes] };
  }

  /**
   * Both mechanisms' trust statements for this exact subject, where the account allows: IRSA needs the OIDC
   * provider, Pod Identity the cluster name. During a switch the old path's statement is re-rendered from here,
   * never copied from the role, so a statement someone widened is never carried over.
   */
  #statements(ctx: IdentityContext): Partial<Record<AwsMechanism, IamStatement>> {
    const account = awsAccount(ctx);
    const providerArn = ctx.account.status?.oidcProviderArn;
    const clusterArn = account.clusterName ? `arn:${partitionOf(account.region)}:eks:${account.region}:${account.accountId}:cluster/${account.clusterName}` : undefined;
    return {
      ...(providerArn ? { IRSA: irsaTrustStatement(providerArn, ctx.issuer, ctx.subject) } : {}),
      ...(clusterArn ? { PodIdentity: podIdentityTrustStatement(clusterArn, ctx.namespace, ctx.serviceAccountName) } : {}),
    };
  }

  /** What is left of the other mechanism and what still depends on it. */
  async #legacy(desired: AwsDesired, observed: AwsObserved): Promise<{ path: CredentialPath; statement?: IamStatement; association: boolean; blockers: string[] }> {
    const path: CredentialPath = desired.mechanism === 'IRSA' ? 'PodIdentity' : 'IRSA';
    const sid = path === 'IRSA' ? IRSA_SID : POD_IDENTITY_SID;
    const present = statementsOf(observed.role.role?.trustPolicy).some((s) => s.Sid === sid);
    // Kept only as we would render it now, for this exact subject; an old path we cannot render is not kept.
    const statement = present ? desired.statements[path] : undefined;
    const association = path === 'PodIdentity' && observed.association !== undefined;
    if (!statement && !association) return { path, association, blockers: [] };
    const blockers: string[] = [];
    const pods = await this.#d.pods.countDependent(desired.namespace, desired.serviceAccount, path, desired.role.arn);
    if (pods > 0) {
      blockers.push(`${pods} running pod(s) of ServiceAccount ${desired.namespace}/${desired.serviceAccount} started before the switch still use ${path}; restart them (kubectl rollout restart) to move them to ${desired.mechanism}`);
    }
    if (path === 'IRSA' && desired.irsaAnnotated) blockers.push('the ServiceAccount annotation to be removed');
    return { path, ...(statement ? { statement } : {}), association, blockers };
  }
}
