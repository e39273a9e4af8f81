// The CloudAccount reconcile: resolve the issuer this cluster's tokens carry, check the cloud trusts it, and say
// precisely what the platform team must create when it does not.
import { API_VERSION, CONDITION, REASON, type Reason } from '../api/constants.ts';
import type { CloudAccount, CloudAccountStatus, WorkloadIdentity } from '../api/types.ts';
import type { Cache } from '../controller/informer.ts';
import { TerminalError } from '../controller/errors.ts';
import { deepEqual, findCondition, mergeConditions } from '../domain/conditions.ts';
import type { KubePort } from '../kube/client.ts';
import type { Logger } from '../observability/logger.ts';
import { oidcProviderArn, partitionOf } from '../providers/aws/arn.ts';
import type { EksPort } from '../providers/aws/eks-port.ts';
import type { IamPort } from '../providers/aws/iam-port.ts';
import { CloudError } from '../providers/cloud-error.ts';
import { cloudOf } from '../providers/registry.ts';

export interface CloudAccountReconcilerDeps {
  accounts: Cache<CloudAccount>;
  identities: Cache<WorkloadIdentity>;
  aws: (account: CloudAccount) => { iam: IamPort; eks: EksPort };
  kube: KubePort;
  logger: Logger;
  /** How long a cloud verdict for an unchanged CloudAccount is reused before the cloud is asked again. */
  verdictTtlMs: number;
  now?: () => Date;
}

interface Verdict {
  ok: boolean;
  reason: Reason;
  message: string;
  issuer?: string;
  oidcProviderArn?: string;
}

export class CloudAccountReconciler {
  readonly #d: CloudAccountReconcilerDeps;
  readonly #now: () => Date;
  /**
   * The last cloud verdict per account. The identities count is refreshed whenever WorkloadIdentities come and go;
   * the cloud is asked again only when the spec changed or the verdict is older than the TTL.
   */
  readonly #verdicts = new Map<string, { generation: number | undefined; at: number; verdict: Verdict }>();

  constructor(deps: CloudAccountReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
  }

  async reconcile(name: string): Promise<void> {
    const account = this.#d.accounts.get(name);
    if (!account) return;
    const cloud = cloudOf(account.spec);
    const verdict = await this.#verdict(account);

    const identities = this.#d.identities.list().filter((wi) => wi.spec.cloudAccountRef.name === name).length;
    const conditions = mergeConditions(
      account.status?.conditions,
      [{ type: CONDITION.ready, status: verdict.ok ? 'True' : 'False', reason: verdict.reason, message: verdict.message }],
      account.metadata.generation,
      this.#now(),
    );
    const status: CloudAccountStatus = JSON.parse(
      JSON.stringify({ observedGeneration: account.metadata.generation, cloud, issuer: verdict.issuer, oidcProviderArn: verdict.oidcProviderArn, identities, conditions }),
    ) as CloudAccountStatus;
    if (!deepEqual(status, account.status ?? {})) {
      await this.#d.kube.replaceCloudAccountStatus(account, status);
      const before = findCondition(account.status?.conditions, CONDITION.ready);
      if (before?.status !== (verdict.ok ? 'True' : 'False') || before.reason !== verdict.reason) {
        await this.#d.kube
          .recordEvent({ apiVersion: API_VERSION, kind: 'CloudAccount', metadata: account.metadata }, verdict.ok ? 'Normal' : 'Warning', verdict.reason, verdict.message)
          .catch((err: unknown) => this.#d.logger.warn({ err }, 'event not recorded'));
      }
    }
    if (!verdict.ok && verdict.reason === REASON.InvalidSpec) throw new TerminalError(verdict.message);
  }

  async #verdict(account: CloudAccount): Promise<Verdict> {
    const name = account.metadata.name;
    const now = this.#now().getTime();
    const cached = this.#verdicts.get(name);
    if (cached && cached.generation === account.metadata.generation && now - cached.at < this.#d.verdictTtlMs) {
      return cached.verdict;
    }
    const cloud = cloudOf(account.spec);
    let verdict: Verdict;
    try {
      verdict = cloud === 'aws' ? await this.#aws(account) : { ok: false, reason: REASON.InvalidSpec, message: `${cloud ?? 'This cloud'} is not supported by this version of Keyless.` };
    } catch (err) {
      if (!(err instanceof CloudError) || err.kind !== 'terminal') throw err;
      verdict = { ok: false, reason: REASON.CloudRejected, message: `${err.message}. Check the operator's own cloud permissions for this account.` };
    }
    this.#verdicts.set(name, { generation: account.metadata.generation, at: now, verdict });
    return verdict;
  }

  async #aws(account: CloudAccount): Promise<Verdict> {
    const spec = account.spec.aws;
    if (!spec) throw new Error('not an AWS account');
    const { iam, eks } = this.#d.aws(account);
    let issuer = spec.oidcIssuer || undefined;
    if (!issuer && spec.clusterName) {
      issuer = await eks.clusterIssuer(spec.clusterName);
      if (!issuer) {
        return { ok: false, reason: REASON.IssuerNotFound, message: `EKS cluster ${spec.clusterName} in ${spec.region} was not found or has no OIDC issuer. Fix spec.aws.clusterName, or set spec.aws.oidcIssuer to this cluster's service account issuer (kubectl get --raw /.well-known/openid-configuration).` };
      }
    }
    if (!issuer) {
      return { ok: false, reason: REASON.IssuerNotFound, message: 'Set spec.aws.oidcIssuer to this cluster\'s service account issuer (kubectl get --raw /.well-known/openid-configuration), or spec.aws.clusterName to discover it from EKS.' };
    }
    const expected = oidcProviderArn(partitionOf(spec.region), spec.accountId, issuer);
    const providers = await iam.listOpenIDConnectProviders();
    if (!providers.includes(expected)) {
      return {
        ok: false,
        reason: REASON.OIDCProviderNotFound,
        issuer,
        message: `AWS account ${spec.accountId} has no IAM OIDC identity provider for issuer ${issuer}, so IRSA roles cannot trust this cluster. Create it: aws iam create-open-id-connect-provider --url ${issuer} --client-id-list sts.amazonaws.com${spec.clusterName ? ` (or: eksctl utils associate-iam-oidc-provider --cluster ${spec.clusterName} --approve)` : ''}. Expected ARN: ${expected}.`,
      };
    }
    return { ok: true, reason: REASON.Ready, issuer, oidcProviderArn: expected, message: `Issuer ${issuer} is trusted in AWS account ${spec.accountId} through IAM OIDC provider ${expected}.` };
  }
}
