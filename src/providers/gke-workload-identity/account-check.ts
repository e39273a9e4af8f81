// The GCP side of a CloudAccount: the project must be reachable with the operator's Google identity (its IAM
// policy readable: the copy the account's identities share), and the workload identity pool is what this cluster's
// tokens are trusted through. GKE's pool is not an OIDC issuer URL Keyless can verify from outside the cluster, so
// the pool stands in for the issuer. With Workload Identity Federation (a cluster that is not GKE) the pool and the
// provider the account names must exist and be enabled, and the provider must map google.subject=assertion.sub: the
// issuer it trusts becomes the account's issuer. With spec.gcp.manageWorkloadIdentityProvider Keyless first creates
// the pool and the provider when they are missing (managed-provider.ts), then checks them like any other.
import { REASON } from '../../api/constants.ts';
import type { CloudAccount, GcpCloudAccountSpec } from '../../api/types.ts';
import { isCloudError } from '../cloud-error.ts';
import type { AccountContext, AccountVerdict } from '../types.ts';
import { federationProblems, parseWorkloadIdentityProvider, tokenAudience } from './federation.ts';
import type { FederationPort, WorkloadIdentityPoolProvider } from './federation-port.ts';
import { convergeWorkloadIdentityProvider, type ManagedProviderOutcome } from './managed-provider.ts';
import type { GcpSharedReads } from './gcp-port.ts';
import { workloadPool } from './naming.ts';
import type { IamPolicy } from './policy.ts';

/** What the managed pool and provider add to a verdict: the record, their condition and Events. */
function trustOf(outcome: ManagedProviderOutcome): Pick<AccountVerdict, 'managedTrust' | 'conditions' | 'events'> {
  return { managedTrust: outcome.record, conditions: outcome.condition ? [outcome.condition] : [], events: outcome.events };
}

/** Whether the account asks Keyless to manage its pool and provider, or keeps some it made. */
function managesTrust(account: CloudAccount): boolean {
  const trust = account.status?.managedTrust;
  return Boolean(account.spec.gcp?.manageWorkloadIdentityProvider || trust?.workloadIdentityPools?.length || trust?.workloadIdentityProviders?.length);
}

export async function checkGcpAccount(gcp: GcpSharedReads, account: CloudAccount, federation?: FederationPort, ctx?: AccountContext): Promise<AccountVerdict> {
  const spec = account.spec.gcp;
  if (!spec) throw new Error('not a GCP account');
  const problems = federationProblems(spec);
  if (problems.length) return { ok: false, reason: REASON.InvalidSpec, message: `Invalid spec: ${problems.join('; ')}.` };
  const pool = workloadPool(spec.projectId, spec.workloadPool);
  let policy: IamPolicy | undefined;
  try {
    policy = await gcp.sharedIamPolicy({ kind: 'project', project: spec.projectId });
  } catch (err) {
    if (isCloudError(err, 'terminal')) {
      return {
        ok: false,
        reason: REASON.CloudRejected,
        message: `The operator's Google identity cannot read the IAM policy of project ${spec.projectId} (${err.message}). Grant it roles/iam.serviceAccountAdmin and roles/resourcemanager.projectIamAdmin on the project (and the admin role of any bucket, topic or secret it grants on).`,
      };
    }
    throw err;
  }
  if (!policy) {
    return { ok: false, reason: REASON.ResourceNotFound, message: `Google Cloud project ${spec.projectId} was not found. Fix spec.gcp.projectId (gcloud projects describe ${spec.projectId}).` };
  }
  let trust: Pick<AccountVerdict, 'managedTrust' | 'conditions' | 'events'> = {};
  if (managesTrust(account)) {
    if (!federation || !ctx) throw new Error('an account that manages its provider needs the federation port and the account context');
    try {
      trust = trustOf(await convergeWorkloadIdentityProvider(federation, account, ctx));
    } catch (err) {
      if (!isCloudError(err, 'terminal')) throw err;
      return {
        ok: false,
        reason: REASON.CloudRejected,
        message: `The operator's Google identity may not manage the workload identity pool and provider of this account (${err.message}). Grant it roles/iam.workloadIdentityPoolAdmin on project ${spec.projectId}, or set spec.gcp.manageWorkloadIdentityProvider to false and create them yourself.`,
      };
    }
  }
  if (spec.workloadIdentityProvider) {
    if (!federation) throw new Error('a Workload Identity Federation account needs the federation port');
    return { ...(await checkFederation(federation, spec)), ...trust };
  }
  return {
    ...trust,
    ok: true,
    reason: REASON.Ready,
    issuer: pool,
    message: `Project ${spec.projectId} (number ${spec.projectNumber}) is reachable; identities are trusted through workload identity pool ${pool}. The GKE cluster must run with --workload-pool=${pool} and node pools with --workload-metadata=GKE_METADATA.`,
  };
}

/** The mapping Keyless derives every principal from: the ServiceAccount token's subject, unchanged. */
const SUBJECT_MAPPING = 'assertion.sub';

async function checkFederation(federation: FederationPort, spec: GcpCloudAccountSpec): Promise<AccountVerdict> {
  const parsed = parseWorkloadIdentityProvider(spec.workloadIdentityProvider);
  if (!parsed) throw new Error('federationProblems admitted an unparsable provider');
  const name = parsed.name;
  const poolName = name.replace(/\/providers\/[^/]+$/, '');
  const create = `gcloud iam workload-identity-pools providers create-oidc ${parsed.provider} --project=${spec.projectId} --location=global --workload-identity-pool=${parsed.pool} --issuer-uri=<this cluster's issuer> --attribute-mapping=google.subject=${SUBJECT_MAPPING}`;
  let provider: WorkloadIdentityPoolProvider | undefined;
  try {
    const pool = await federation.getWorkloadIdentityPool(poolName);
    if (!pool || pool.state !== 'ACTIVE') {
      return {
        ok: false,
        reason: REASON.OIDCProviderNotFound,
        message: `Workload identity pool ${poolName} ${pool ? `is ${pool.state} (undelete it: gcloud iam workload-identity-pools undelete ${parsed.pool} --project=${spec.projectId} --location=global)` : `does not exist: create it (gcloud iam workload-identity-pools create ${parsed.pool} --project=${spec.projectId} --location=global) and its provider (${create})`}.`,
      };
    }
    if (pool.disabled) return { ok: false, reason: REASON.IssuerNotTrusted, message: `Workload identity pool ${poolName} is disabled, so no token of this cluster can be exchanged: enable it (gcloud iam workload-identity-pools update ${parsed.pool} --project=${spec.projectId} --location=global --no-disabled).` };
    provider = await federation.getWorkloadIdentityPoolProvider(name);
  } catch (err) {
    if (isCloudError(err, 'terminal')) {
      return {
        ok: false,
        reason: REASON.CloudRejected,
        message: `The operator's Google identity cannot read workload identity pool provider ${name} (${err.message}). Grant it roles/iam.workloadIdentityPoolViewer on project ${spec.projectId}.`,
      };
    }
    throw err;
  }
  if (!provider || provider.state !== 'ACTIVE') {
    return {
      ok: false,
      reason: REASON.OIDCProviderNotFound,
      message: `Workload identity pool provider ${name} ${provider ? `is ${provider.state}` : 'does not exist'}: create it for this cluster's issuer (${create}).`,
    };
  }
  if (!provider.oidc) return { ok: false, reason: REASON.IssuerNotTrusted, message: `Workload identity pool provider ${name} is not an OIDC provider: Kubernetes ServiceAccount tokens need one (${create}).` };
  if (provider.disabled) return { ok: false, reason: REASON.IssuerNotTrusted, message: `Workload identity pool provider ${name} is disabled, so no token of this cluster can be exchanged: enable it (gcloud iam workload-identity-pools providers update-oidc ${parsed.provider} --project=${spec.projectId} --location=global --workload-identity-pool=${parsed.pool} --no-disabled).` };
  const subject = provider.attributeMapping['google.subject'];
  if (subject !== SUBJECT_MAPPING) {
    return {
      ok: false,
      reason: REASON.IssuerNotTrusted,
      message: `Workload identity pool provider ${name} maps google.subject=${subject ?? '(nothing)'}, but Keyless grants to principals named after the token's subject: set --attribute-mapping=google.subject=${SUBJECT_MAPPING} (other attribute mappings may stay).`,
    };
  }
  const audience = tokenAudience(parsed);
  const audiences = provider.oidc.allowedAudiences;
  if (audiences.length && !audiences.includes(audience)) {
    return {
      ok: false,
      reason: REASON.IssuerNotTrusted,
      message: `Workload identity pool provider ${name} accepts only the audiences ${audiences.join(', ')}; pods present ${audience}: add it (--allowed-audiences), or clear the list to accept the provider's own name.`,
    };
  }
  const condition = provider.attributeCondition ? ` Its attributeCondition (${provider.attributeCondition}) must admit each ServiceAccount that gets an identity.` : '';
  return {
    ok: true,
    reason: REASON.Ready,
    issuer: provider.oidc.issuerUri,
    // Google's STS fetches the issuer's keys itself unless they were uploaded to the provider (jwksJson):
    // only then is it worth checking that the cloud can reach them (IssuerReachable).
    issuerFetchedByCloud: !provider.oidc.jwksJson,
    message: `Project ${spec.projectId} (number ${spec.projectNumber}) is reachable; identities are trusted through Workload Identity Federation provider ${name}, which trusts issuer ${provider.oidc.issuerUri} (keys from ${provider.oidc.jwksJson ? 'its uploaded jwksJson' : "the issuer's published JWKS"}) for tokens with audience ${audience}.${condition} Pods mount the credential configuration Keyless writes next to each WorkloadIdentity.`,
  };
}
