// The IAM OIDC identity provider Keyless manages for a CloudAccount that asks (spec.aws.manageOidcProvider): created
// for the issuer when the account has none, tagged with the account's marker (keyless.dev/cluster and
// keyless.dev/cloud-account), and deleted once nothing needs it. A provider for the issuer that does not carry that
// marker is someone else's: used as it is, never changed, never deleted.
//
// Crash safety needs no write-ahead record. A provider's ARN follows from the account and the issuer alone, so the
// one the account asks for is found again by its ARN and claimed only by its marker, recorded or not (a crash between
// the create and the status write loses nothing). status.managedTrust lists the providers of ours; what only it can
// tell is which ones the account no longer asks for (the issuer changed, or the opt-in was turned off), to delete.
//
// What "nothing needs it" means. A provider is deleted only when (1) no other CloudAccount of this cluster trusts
// through it (their status.oidcProviderArn), and (2) when the account stops asking for it altogether (the opt-in
// turned off, or the account deleted), no WorkloadIdentity references the account: their roles trust the provider,
// and deleting it would cut off every pod using them at once. When only the issuer changed, the account's roles move
// to the new provider at their next reconcile, so the old one goes at once.
import { ACCOUNT_CONDITION, AUDIENCE, MARKER, REASON } from '../../api/constants.ts';
import type { CloudAccount } from '../../api/types.ts';
import type { ConditionInput } from '../../domain/conditions.ts';
import { isCloudError } from '../cloud-error.ts';
import { accountMarkerTags, isOwned } from '../ownership.ts';
import type { AccountContext, AccountEvent, AccountReleased } from '../types.ts';
import { issuerHostPath, oidcProviderArn, partitionOf } from './arn.ts';
import type { IamOidcProvider, IamPort } from './iam-port.ts';

export interface OidcProviderOutcome {
  /** status.managedTrust.oidcProviderArns: the providers of ours not deleted yet. */
  record: string[];
  /** OIDCProviderManaged, or undefined when the account neither asks for a provider nor keeps one. */
  condition?: ConditionInput;
  events: AccountEvent[];
}

interface Claim {
  state: 'created' | 'owned' | 'foreign';
  provider: IamOidcProvider;
}

/** The CloudAccounts other than this one that trust through `arn`. */
function usersOf(arn: string, others: readonly CloudAccount[]): string[] {
  return others.filter((a) => a.status?.oidcProviderArn === arn).map((a) => a.metadata.name);
}

function list(names: string[]): string {
  return names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`;
}

/** The desired provider: found by its ARN, or created with the marker; someone else's is only read. */
async function claim(iam: IamPort, arn: string, issuer: string, marker: Record<string, string>, extraTags: Record<string, string>): Promise<Claim> {
  let provider = await iam.getOpenIDConnectProvider(arn);
  if (!provider) {
    try {
      const created = await iam.createOpenIDConnectProvider({ url: issuer, clientIds: [AUDIENCE.irsa], tags: { ...extraTags, ...marker } });
      return { state: 'created', provider: { arn: created, url: issuerHostPath(issuer), clientIds: [AUDIENCE.irsa], thumbprints: [], tags: { ...extraTags, ...marker } } };
    } catch (err) {
      // Created in between (another operator, a person): judge that one by its tags like any other.
      if (!isCloudError(err, 'alreadyExists')) throw err;
      provider = await iam.getOpenIDConnectProvider(arn);
      if (!provider) throw err;
    }
  }
  if (!isOwned(provider.tags, marker)) return { state: 'foreign', provider };
  // Ours: the account's extra tags follow spec.aws.tags (added or changed, never removed, as on roles).
  const missing = Object.fromEntries(Object.entries(extraTags).filter(([k, v]) => provider.tags[k] !== v));
  if (Object.keys(missing).length) await iam.tagOpenIDConnectProvider(arn, missing);
  return { state: 'owned', provider: { ...provider, tags: { ...provider.tags, ...missing } } };
}

/** Whose a provider without this account's marker is, as a sentence, with how to hand it over when it is orphaned. */
function ownerOf(provider: IamOidcProvider, ctx: AccountContext, account: string): string {
  const cluster = provider.tags[MARKER.cluster];
  const owner = provider.tags[MARKER.cloudAccount];
  if (cluster === undefined || owner === undefined) return 'It has no Keyless ownership tags: it was created outside Keyless.';
  if (cluster !== ctx.cluster) return `It belongs to CloudAccount ${owner} of another cluster (keyless.dev/cluster=${cluster}).`;
  if (ctx.others.some((a) => a.metadata.name === owner)) return `It belongs to CloudAccount ${owner} of this cluster, which manages it.`;
  return (
    `It was created by CloudAccount ${owner} of this cluster, which no longer exists. To let this account manage it: ` +
    `aws iam tag-open-id-connect-provider --open-id-connect-provider-arn ${provider.arn} --tags Key=${MARKER.cloudAccount},Value=${account}.`
  );
}

function foreignCondition(provider: IamOidcProvider, issuer: string, ctx: AccountContext, account: string): ConditionInput {
  const owner = ownerOf(provider, ctx, account);
  if (!provider.clientIds.includes(AUDIENCE.irsa)) {
    return {
      type: ACCOUNT_CONDITION.oidcProviderManaged,
      status: 'False',
      reason: REASON.AudienceMissing,
      message:
        `IAM OIDC provider ${provider.arn} for issuer ${issuer} already exists, and its client IDs (${provider.clientIds.join(', ') || 'none'}) lack ${AUDIENCE.irsa}: ` +
        `AWS STS refuses every IRSA token (audience ${AUDIENCE.irsa}) for it, so IRSA identities of this account cannot get credentials. ${owner} ` +
        `Keyless never changes a provider it did not create. Add the client ID: aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn ${provider.arn} --client-id ${AUDIENCE.irsa}.`,
    };
  }
  return {
    type: ACCOUNT_CONDITION.oidcProviderManaged,
    status: 'False',
    reason: REASON.ExistingProvider,
    message: `IAM OIDC provider ${provider.arn} for issuer ${issuer} already exists and accepts ${AUDIENCE.irsa}. ${owner} Keyless uses it as it is and never changes or deletes it.`,
  };
}

/**
 * Deletes `arn` if it is ours and nothing in `blockers` needs it. One that no longer carries our marker (a person
 * removed the tag to keep it) is no longer ours to track: it is left alone and forgotten.
 */
async function release(iam: IamPort, arn: string, marker: Record<string, string>, blockers: string[]): Promise<'kept' | 'deleted' | 'gone'> {
  const provider = await iam.getOpenIDConnectProvider(arn);
  if (!provider || !isOwned(provider.tags, marker)) return 'gone';
  if (blockers.length) return 'kept';
  await iam.deleteOpenIDConnectProvider(arn);
  return 'deleted';
}

function deletedEvent(arn: string, why: string): AccountEvent {
  return { type: 'Normal', reason: 'OIDCProviderDeleted', message: `Deleted IAM OIDC provider ${arn}, which Keyless had created for this account: ${why}.` };
}

/** What keeps a provider the account no longer asks for. */
function blockersOf(arn: string, ctx: AccountContext, identitiesCount: boolean): string[] {
  const accounts = usersOf(arn, ctx.others);
  return [
    ...(identitiesCount && ctx.identities > 0 ? [`${ctx.identities} WorkloadIdentities still reference this account and their IAM roles trust it`] : []),
    ...(accounts.length ? [`CloudAccount(s) ${list(accounts)} trust this cluster through it (their status.oidcProviderArn)`] : []),
  ];
}

/**
 * Converges the account's managed IAM OIDC providers: the one for `issuer` when spec.aws.manageOidcProvider asks
 * (created if missing), and the release of recorded ones it no longer asks for. No cloud call when the account neither
 * asks nor keeps any. `issuer` is undefined while the account cannot resolve it: nothing is released then, as what is
 * stale cannot be told.
 */
export async function convergeOidcProviders(iam: IamPort, account: CloudAccount, issuer: string | undefined, ctx: AccountContext): Promise<OidcProviderOutcome> {
  const spec = account.spec.aws;
  if (!spec) throw new Error('not an AWS account');
  const name = account.metadata.name;
  const recorded = account.status?.managedTrust?.oidcProviderArns ?? [];
  const manage = spec.manageOidcProvider === true;
  if (!manage && recorded.length === 0) return { record: [], events: [] };
  if (!issuer) {
    return {
      record: recorded,
      condition: {
        type: ACCOUNT_CONDITION.oidcProviderManaged,
        status: 'Unknown',
        reason: REASON.Pending,
        message: 'Waits for the account to resolve its issuer (see Ready); nothing is created or deleted meanwhile.',
      },
      events: [],
    };
  }
  const marker = accountMarkerTags(ctx.cluster, name);
  const desired = manage ? oidcProviderArn(partitionOf(spec.region), spec.accountId, issuer) : undefined;
  const record: string[] = [];
  const events: AccountEvent[] = [];
  let condition: ConditionInput | undefined;

  if (desired) {
    const claimed = await claim(iam, desired, issuer, marker, spec.tags ?? {});
    if (claimed.state === 'foreign') {
      condition = foreignCondition(claimed.provider, issuer, ctx, name);
    } else if (!claimed.provider.clientIds.includes(AUDIENCE.irsa)) {
      record.push(desired);
      condition = {
        type: ACCOUNT_CONDITION.oidcProviderManaged,
        status: 'False',
        reason: REASON.AudienceMissing,
        message:
          `IAM OIDC provider ${desired}, which Keyless created for issuer ${issuer}, no longer accepts ${AUDIENCE.irsa} (its client IDs: ${claimed.provider.clientIds.join(', ') || 'none'}): ` +
          `AWS STS refuses every IRSA token for it. Keyless does not edit a provider's client IDs; add it back: aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn ${desired} --client-id ${AUDIENCE.irsa}.`,
      };
    } else {
      record.push(desired);
      if (claimed.state === 'created') {
        events.push({ type: 'Normal', reason: 'OIDCProviderCreated', message: `Created IAM OIDC provider ${desired} for issuer ${issuer} with client ID ${AUDIENCE.irsa}.` });
      }
      condition = {
        type: ACCOUNT_CONDITION.oidcProviderManaged,
        status: 'True',
        reason: REASON.Managed,
        message:
          `Keyless manages IAM OIDC provider ${desired} for issuer ${issuer} (client ID ${AUDIENCE.irsa}; tags ${MARKER.cluster}=${ctx.cluster}, ${MARKER.cloudAccount}=${name}). ` +
          'It is deleted when this CloudAccount is deleted, or spec.aws.manageOidcProvider turns false, once no WorkloadIdentity uses the account.',
      };
    }
  }

  const kept: string[] = [];
  for (const arn of recorded.filter((a) => a !== desired)) {
    // The opt-in turned off: the account's identities still trust the provider. The issuer changed: they move on.
    const blockers = blockersOf(arn, ctx, !manage);
    const outcome = await release(iam, arn, marker, blockers);
    if (outcome === 'kept') {
      record.push(arn);
      kept.push(`${arn} is kept while ${blockers.join(', and ')}`);
    } else if (outcome === 'deleted') {
      events.push(deletedEvent(arn, manage ? `the account's issuer is now ${issuer}` : 'spec.aws.manageOidcProvider is false'));
    }
  }
  if (kept.length) {
    const keptMessage = `Keyless deletes the IAM OIDC providers it created and this account no longer asks for once nothing needs them: ${kept.join('; ')}.`;
    condition = condition
      ? { ...condition, message: `${condition.message} ${keptMessage}` }
      : {
          type: ACCOUNT_CONDITION.oidcProviderManaged,
          status: 'True',
          reason: REASON.InUse,
          message: `spec.aws.manageOidcProvider is false. ${keptMessage} To keep one for good, remove its ${MARKER.cloudAccount} tag (aws iam untag-open-id-connect-provider --open-id-connect-provider-arn ARN --tag-keys ${MARKER.cloudAccount}).`,
        };
  }
  return { record, ...(condition ? { condition } : {}), events };
}

/**
 * Before a CloudAccount's finalizer comes off (its WorkloadIdentities are gone): deletes the providers of ours it
 * recorded and the one it asks for (found by its ARN and marker, in case a crash came before the record), unless
 * another CloudAccount still trusts through one; then the deletion waits, and says why.
 */
export async function releaseOidcProviders(iam: IamPort, account: CloudAccount, ctx: AccountContext): Promise<AccountReleased> {
  const spec = account.spec.aws;
  if (!spec) throw new Error('not an AWS account');
  const issuer = spec.oidcIssuer || account.status?.issuer;
  const candidates = new Set(account.status?.managedTrust?.oidcProviderArns ?? []);
  if (spec.manageOidcProvider && issuer) candidates.add(oidcProviderArn(partitionOf(spec.region), spec.accountId, issuer));
  const marker = accountMarkerTags(ctx.cluster, account.metadata.name);
  const events: AccountEvent[] = [];
  const waits: string[] = [];
  for (const arn of candidates) {
    const blockers = blockersOf(arn, ctx, true);
    const outcome = await release(iam, arn, marker, blockers);
    if (outcome === 'kept') waits.push(`IAM OIDC provider ${arn}, which Keyless created for this account, is kept while ${blockers.join(', and ')}`);
    if (outcome === 'deleted') events.push(deletedEvent(arn, 'the CloudAccount is being deleted'));
  }
  if (waits.length === 0) return { complete: true, message: '', events };
  return {
    complete: false,
    message: `Deletion waits: ${waits.join('; ')}. Delete those first, or remove the provider's ${MARKER.cloudAccount} tag to keep it and let this account go (aws iam untag-open-id-connect-provider --open-id-connect-provider-arn ARN --tag-keys ${MARKER.cloudAccount}).`,
    events,
  };
}
