// The workload identity pool and OIDC provider Keyless manages for a GCP CloudAccount that asks
// (spec.gcp.manageWorkloadIdentityProvider): the pool and the provider spec.gcp.workloadIdentityProvider names are
// created when missing, the provider trusting spec.gcp.oidcIssuer with google.subject=assertion.sub, each carrying the
// account's ownership marker in its description (naming.ts accountOwnershipMarker: pools and providers have no labels).
// The GCP counterpart of the AWS IAM OIDC provider (aws/oidc-provider.ts), with the same rules:
//
// - A pool or provider without this account's marker is someone else's: used as it is, never changed or deleted.
//   An unmarked pool without the provider gets Keyless's marked provider inside it: the pool is only a container, and
//   creating a provider in it takes nothing from whoever made it; the pool itself stays theirs and is never deleted.
// - Crash safety needs no write-ahead record: the names come from the spec, and Keyless recognises its own by the
//   marker. status.managedTrust lists what is ours; what only it can tell is what the account no longer asks for
//   (another provider name, or the opt-in turned off), to delete.
// - Deletion is soft in IAM: a deleted pool or provider is kept for 30 days, during which its id cannot be created
//   again ("You cannot reuse the name of a deleted provider until 30 days after deletion",
//   https://cloud.google.com/iam/docs/reference/rpc/google.iam.v1 CreateWorkloadIdentityPoolProvider; the same for
//   pools) but can be undeleted ("as long as it was deleted fewer than 30 days ago",
//   https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools.providers/undelete).
//   So a deleted pool or provider of ours that the account asks for again is undeleted, not re-created; a deleted
//   one of someone else's is reported and left alone.
// - "Nothing needs it": a provider is deleted only when no other CloudAccount of the cluster names it, and, when the
//   account stops asking for it altogether (opt-in off, or account deleted), no WorkloadIdentity uses the account —
//   their pods exchange tokens through it. A pool of ours is deleted after our provider, and only when it holds no
//   provider at all any more; one that holds someone else's provider is left in place and forgotten.
import { ACCOUNT_CONDITION, MARKER, REASON } from '../../api/constants.ts';
import type { CloudAccount, ManagedTrust } from '../../api/types.ts';
import type { ConditionInput } from '../../domain/conditions.ts';
import { isCloudError } from '../cloud-error.ts';
import type { AccountContext, AccountEvent, AccountReleased } from '../types.ts';
import { parseWorkloadIdentityProvider } from './federation.ts';
import type { FederationPort, WorkloadIdentityPool, WorkloadIdentityPoolProvider } from './federation-port.ts';
import { accountOwnershipMarker, carriesMarker, describeAccountMarker, gsaDescription } from './naming.ts';

/** The only mapping Keyless needs: every principal it grants to is named after the token's subject. */
export const MANAGED_ATTRIBUTE_MAPPING: Readonly<Record<string, string>> = { 'google.subject': 'assertion.sub' };
/** IAM's displayName limit is 32 characters. */
const DISPLAY_NAME = 'Keyless';

export type ManagedFederation = Pick<ManagedTrust, 'workloadIdentityPools' | 'workloadIdentityProviders'>;

export interface ManagedProviderOutcome {
  /** status.managedTrust's GCP part: the pools and providers of ours not deleted yet. */
  record: ManagedFederation;
  /** OIDCProviderManaged, or undefined when the account neither asks for a provider nor keeps one. */
  condition?: ConditionInput;
  events: AccountEvent[];
}

export const poolOf = (provider: string): string => provider.replace(/\/providers\/[^/]+$/, '');
const idOf = (name: string): string => name.slice(name.lastIndexOf('/') + 1);
const projectOf = (name: string): string => name.split('/')[1] ?? '';

function list(names: string[]): string {
  return names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`;
}

/** Who made a pool or provider without this account's marker, as a sentence. */
function ownerOf(description: string, ctx: AccountContext): string {
  const marked = describeAccountMarker(description);
  if (!marked) return 'It carries no Keyless ownership marker in its description: it was created outside Keyless.';
  if (marked.cluster !== ctx.cluster) return `It belongs to CloudAccount ${marked.account} of another cluster (${MARKER.cluster}=${marked.cluster}).`;
  if (ctx.others.some((a) => a.metadata.name === marked.account)) return `It belongs to CloudAccount ${marked.account} of this cluster, which manages it.`;
  return `It was created by CloudAccount ${marked.account} of this cluster, which no longer exists.`;
}

interface Claimed<T> {
  /** ours: carries this account's marker; foreign: anyone else's. */
  ours: boolean;
  /** False for a deleted pool or provider of someone else's, which Keyless does not undelete. */
  active: boolean;
  object: T;
}

/** The pool: found, undeleted if ours, or created with the marker. */
async function claimPool(fed: FederationPort, name: string, marker: string, events: AccountEvent[]): Promise<Claimed<WorkloadIdentityPool>> {
  let pool = await fed.getWorkloadIdentityPool(name);
  if (!pool) {
    const description = gsaDescription(marker);
    try {
      await fed.createWorkloadIdentityPool(name, { displayName: DISPLAY_NAME, description });
      events.push({ type: 'Normal', reason: 'WorkloadIdentityPoolCreated', message: `Created workload identity pool ${name}.` });
      return { ours: true, active: true, object: { name, state: 'ACTIVE', disabled: false, description } };
    } catch (err) {
      // Created in between, or deleted fewer than 30 days ago: judge it by its marker like any other.
      if (!isCloudError(err, 'alreadyExists')) throw err;
      pool = await fed.getWorkloadIdentityPool(name);
      if (!pool) throw err;
    }
  }
  const ours = carriesMarker(pool.description, marker);
  if (pool.state !== 'DELETED') return { ours, active: true, object: pool };
  if (!ours) return { ours, active: false, object: pool };
  await fed.undeleteWorkloadIdentityPool(name);
  events.push({ type: 'Normal', reason: 'WorkloadIdentityPoolUndeleted', message: `Undeleted workload identity pool ${name}, which Keyless had created and deleted: IAM keeps a deleted pool's id for 30 days.` });
  return { ours, active: true, object: { ...pool, state: 'ACTIVE' } };
}

/** What an owned provider must say: the issuer, and google.subject mapped from the token's subject. */
function drift(provider: WorkloadIdentityPoolProvider, issuer: string): string[] {
  const changes: string[] = [];
  if (provider.oidc?.issuerUri !== issuer) changes.push(`issuer ${provider.oidc?.issuerUri ?? '(none)'} → ${issuer}`);
  for (const [k, v] of Object.entries(MANAGED_ATTRIBUTE_MAPPING)) if (provider.attributeMapping[k] !== v) changes.push(`${k}=${provider.attributeMapping[k] ?? '(nothing)'} → ${v}`);
  return changes;
}

/** The provider: found, undeleted if ours, created with the marker, and kept trusting `issuer` if ours. */
async function claimProvider(fed: FederationPort, name: string, issuer: string, marker: string, events: AccountEvent[]): Promise<Claimed<WorkloadIdentityPoolProvider>> {
  let provider = await fed.getWorkloadIdentityPoolProvider(name);
  if (!provider) {
    const description = gsaDescription(marker);
    const attributeMapping = { ...MANAGED_ATTRIBUTE_MAPPING };
    try {
      // No allowedAudiences: IAM then accepts a token whose audience is the provider's own full name, with or without
      // the https: prefix (WorkloadIdentityPoolProvider.Oidc.allowedAudiences,
      // https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools.providers#oidc),
      // which is exactly the audience Keyless gives pods (federation.ts tokenAudience).
      await fed.createWorkloadIdentityPoolProvider(name, { displayName: DISPLAY_NAME, description, issuerUri: issuer, attributeMapping });
      events.push({ type: 'Normal', reason: 'WorkloadIdentityProviderCreated', message: `Created workload identity pool provider ${name} for issuer ${issuer} with google.subject=assertion.sub.` });
      return {
        ours: true,
        active: true,
        object: { name, state: 'ACTIVE', disabled: false, description, attributeMapping, attributeCondition: undefined, oidc: { issuerUri: issuer, allowedAudiences: [], jwksJson: false } },
      };
    } catch (err) {
      if (!isCloudError(err, 'alreadyExists')) throw err;
      provider = await fed.getWorkloadIdentityPoolProvider(name);
      if (!provider) throw err;
    }
  }
  const ours = carriesMarker(provider.description, marker);
  if (!ours) return { ours, active: provider.state !== 'DELETED', object: provider };
  if (provider.state === 'DELETED') {
    await fed.undeleteWorkloadIdentityPoolProvider(name);
    events.push({ type: 'Normal', reason: 'WorkloadIdentityProviderUndeleted', message: `Undeleted workload identity pool provider ${name}, which Keyless had created and deleted: IAM keeps a deleted provider's id for 30 days.` });
    provider = { ...provider, state: 'ACTIVE' };
  }
  const changes = drift(provider, issuer);
  if (changes.length) {
    // Ours: the issuer follows spec.gcp.oidcIssuer; other attribute mappings someone added stay.
    const attributeMapping = { ...provider.attributeMapping, ...MANAGED_ATTRIBUTE_MAPPING };
    await fed.updateWorkloadIdentityPoolProvider(name, { issuerUri: issuer, attributeMapping });
    events.push({ type: 'Normal', reason: 'WorkloadIdentityProviderUpdated', message: `Updated workload identity pool provider ${name}: ${changes.join(', ')}.` });
    provider = { ...provider, attributeMapping, oidc: { issuerUri: issuer, allowedAudiences: provider.oidc?.allowedAudiences ?? [], jwksJson: provider.oidc?.jwksJson ?? false } };
  }
  return { ours, active: true, object: provider };
}

/** What keeps a provider the account no longer asks for. */
function blockersOf(provider: string, ctx: AccountContext, identitiesCount: boolean): string[] {
  const accounts = ctx.others.filter((a) => a.spec.gcp?.workloadIdentityProvider === provider).map((a) => a.metadata.name);
  return [
    ...(identitiesCount && ctx.identities > 0 ? [`${ctx.identities} WorkloadIdentities still reference this account and their pods exchange tokens through it`] : []),
    ...(accounts.length ? [`CloudAccount(s) ${list(accounts)} name it (their spec.gcp.workloadIdentityProvider)`] : []),
  ];
}

type Released = 'kept' | 'deleted' | 'gone';

/** Deletes a provider if it is ours, not deleted yet, and nothing in `blockers` needs it. One without our marker is forgotten. */
async function releaseProvider(fed: FederationPort, name: string, marker: string, blockers: string[]): Promise<Released> {
  const provider = await fed.getWorkloadIdentityPoolProvider(name);
  if (!provider || provider.state === 'DELETED' || !carriesMarker(provider.description, marker)) return 'gone';
  if (blockers.length) return 'kept';
  await fed.deleteWorkloadIdentityPoolProvider(name);
  return 'deleted';
}

/**
 * Deletes a pool of ours once it holds no provider: kept while one of ours is in it (released first, or waiting),
 * forgotten when it holds someone else's — the pool is theirs to use now, and never ours to pull from under them.
 */
async function releasePool(fed: FederationPort, name: string, marker: string): Promise<Released | 'forgotten'> {
  const pool = await fed.getWorkloadIdentityPool(name);
  if (!pool || pool.state === 'DELETED' || !carriesMarker(pool.description, marker)) return 'gone';
  const inside = await fed.listWorkloadIdentityPoolProviders(name);
  if (inside.some((p) => carriesMarker(p.description, marker))) return 'kept';
  if (inside.length) return 'forgotten';
  await fed.deleteWorkloadIdentityPool(name);
  return 'deleted';
}

function deletedEvent(kind: 'pool' | 'provider', name: string, why: string): AccountEvent {
  return kind === 'pool'
    ? { type: 'Normal', reason: 'WorkloadIdentityPoolDeleted', message: `Deleted workload identity pool ${name}, which Keyless had created for this account: ${why}. IAM keeps it undeletable for 30 days.` }
    : { type: 'Normal', reason: 'WorkloadIdentityProviderDeleted', message: `Deleted workload identity pool provider ${name}, which Keyless had created for this account: ${why}. IAM keeps it undeletable for 30 days.` };
}

function forgottenEvent(name: string): AccountEvent {
  return { type: 'Normal', reason: 'WorkloadIdentityPoolKept', message: `Left workload identity pool ${name}, which Keyless had created, in place: it holds providers Keyless did not create. Keyless no longer tracks it.` };
}

function undeleteCommand(kind: 'pool' | 'provider', name: string): string {
  const project = `--project=${projectOf(name)} --location=global`;
  return kind === 'pool'
    ? `gcloud iam workload-identity-pools undelete ${idOf(name)} ${project}`
    : `gcloud iam workload-identity-pools providers undelete ${idOf(name)} ${project} --workload-identity-pool=${idOf(poolOf(name))}`;
}

/** The condition for the provider the account asks for, given what was claimed. */
function conditionFor(name: string, issuer: string, marker: string, pool: Claimed<WorkloadIdentityPool>, provider: Claimed<WorkloadIdentityPoolProvider> | undefined, ctx: AccountContext): ConditionInput {
  const poolName = poolOf(name);
  if (!pool.active) {
    return {
      type: ACCOUNT_CONDITION.oidcProviderManaged,
      status: 'False',
      reason: REASON.OIDCProviderNotFound,
      message: `Workload identity pool ${poolName} is deleted, and Keyless did not create it, so it neither undeletes it nor creates a provider in it. ${ownerOf(pool.object.description, ctx)} Undelete it (${undeleteCommand('pool', poolName)}) or name a provider in another pool.`,
    };
  }
  if (!provider) throw new Error('an active pool was claimed without its provider');
  if (!provider.ours) {
    const owner = ownerOf(provider.object.description, ctx);
    if (!provider.active) {
      return {
        type: ACCOUNT_CONDITION.oidcProviderManaged,
        status: 'False',
        reason: REASON.OIDCProviderNotFound,
        message: `Workload identity pool provider ${name} is deleted, and Keyless did not create it, so it does not undelete it; its id cannot be created again for 30 days. ${owner} Undelete it (${undeleteCommand('provider', name)}) or name another provider.`,
      };
    }
    const trusted = provider.object.oidc?.issuerUri;
    const other = trusted === issuer ? '' : ` It trusts issuer ${trusted ?? '(none: not an OIDC provider)'}, not spec.gcp.oidcIssuer ${issuer}: this cluster's tokens are exchanged through it only if that is this cluster's issuer.`;
    return {
      type: ACCOUNT_CONDITION.oidcProviderManaged,
      status: 'False',
      reason: REASON.ExistingProvider,
      message: `Workload identity pool provider ${name} already exists. ${owner} Keyless uses it as it is and never changes or deletes it.${other}`,
    };
  }
  const poolSays = pool.ours ? 'which Keyless created too and deletes with it once the pool holds no other provider' : `which Keyless did not create and never changes or deletes (${ownerOf(pool.object.description, ctx)})`;
  return {
    type: ACCOUNT_CONDITION.oidcProviderManaged,
    status: 'True',
    reason: REASON.Managed,
    message:
      `Keyless manages workload identity pool provider ${name} for issuer ${issuer} (google.subject=assertion.sub, no allowed audiences: pods present the provider's own name; description marker ${marker}) in pool ${poolName}, ${poolSays}. ` +
      'It is deleted when this CloudAccount is deleted, or spec.gcp.manageWorkloadIdentityProvider turns false, once no WorkloadIdentity uses the account.',
  };
}

/** The account asks Keyless to manage its provider, with everything that needs. */
function managed(account: CloudAccount): { provider: string; issuer: string } | undefined {
  const spec = account.spec.gcp;
  const parsed = parseWorkloadIdentityProvider(spec?.workloadIdentityProvider);
  if (!spec?.manageWorkloadIdentityProvider || !parsed || !spec.oidcIssuer) return undefined;
  return { provider: parsed.name, issuer: spec.oidcIssuer };
}

/**
 * Converges the account's managed pool and provider: the ones spec.gcp.workloadIdentityProvider names when
 * spec.gcp.manageWorkloadIdentityProvider asks (created, or undeleted, if missing), and the release of recorded ones it
 * no longer asks for. No cloud call when the account neither asks nor keeps any.
 */
export async function convergeWorkloadIdentityProvider(fed: FederationPort, account: CloudAccount, ctx: AccountContext): Promise<ManagedProviderOutcome> {
  if (!account.spec.gcp) throw new Error('not a GCP account');
  const recorded = account.status?.managedTrust ?? {};
  const recordedPools = recorded.workloadIdentityPools ?? [];
  const recordedProviders = recorded.workloadIdentityProviders ?? [];
  const desired = managed(account);
  if (!desired && recordedPools.length === 0 && recordedProviders.length === 0) return { record: {}, events: [] };
  const marker = accountOwnershipMarker(ctx.cluster, account.metadata.name);
  const pools: string[] = [];
  const providers: string[] = [];
  const events: AccountEvent[] = [];
  let condition: ConditionInput | undefined;

  if (desired) {
    const pool = await claimPool(fed, poolOf(desired.provider), marker, events);
    if (pool.ours) pools.push(pool.object.name);
    const provider = pool.active ? await claimProvider(fed, desired.provider, desired.issuer, marker, events) : undefined;
    if (provider?.ours) providers.push(desired.provider);
    condition = conditionFor(desired.provider, desired.issuer, marker, pool, provider, ctx);
  }

  const kept: string[] = [];
  const why = desired ? `the account now names ${desired.provider}` : 'spec.gcp.manageWorkloadIdentityProvider is false';
  for (const name of recordedProviders.filter((p) => p !== desired?.provider)) {
    // The opt-in turned off: the account's identities still exchange through the provider. Another name: they move on.
    const blockers = blockersOf(name, ctx, !desired);
    const outcome = await releaseProvider(fed, name, marker, blockers);
    if (outcome === 'kept') {
      providers.push(name);
      kept.push(`provider ${name} is kept while ${blockers.join(', and ')}`);
    } else if (outcome === 'deleted') {
      events.push(deletedEvent('provider', name, why));
    }
  }
  for (const name of recordedPools.filter((p) => !pools.includes(p))) {
    const outcome = await releasePool(fed, name, marker);
    if (outcome === 'kept') {
      pools.push(name);
      kept.push(`pool ${name} is kept while it holds a provider Keyless keeps`);
    } else if (outcome === 'deleted') {
      events.push(deletedEvent('pool', name, why));
    } else if (outcome === 'forgotten') {
      events.push(forgottenEvent(name));
    }
  }
  if (kept.length) {
    const keptMessage = `Keyless deletes the workload identity pools and providers it created and this account no longer asks for once nothing needs them: ${kept.join('; ')}.`;
    condition = condition
      ? { ...condition, message: `${condition.message} ${keptMessage}` }
      : {
          type: ACCOUNT_CONDITION.oidcProviderManaged,
          status: 'True',
          reason: REASON.InUse,
          message: `spec.gcp.manageWorkloadIdentityProvider is false. ${keptMessage} To keep one for good, remove the ownership marker (${marker}) from its description: Keyless then forgets it.`,
        };
  }
  return { record: { workloadIdentityPools: pools, workloadIdentityProviders: providers }, ...(condition ? { condition } : {}), events };
}

/**
 * Before a CloudAccount's finalizer comes off (its WorkloadIdentities are gone): deletes the providers of ours it
 * recorded and the one it asks for (found by its name and marker, in case a crash came before the record), unless
 * another CloudAccount still names one; then the pools of ours that hold no provider any more.
 */
export async function releaseWorkloadIdentityProviders(fed: FederationPort, account: CloudAccount, ctx: AccountContext): Promise<AccountReleased> {
  if (!account.spec.gcp) throw new Error('not a GCP account');
  const desired = managed(account);
  const providers = new Set(account.status?.managedTrust?.workloadIdentityProviders ?? []);
  const pools = new Set(account.status?.managedTrust?.workloadIdentityPools ?? []);
  if (desired) {
    providers.add(desired.provider);
    pools.add(poolOf(desired.provider));
  }
  if (providers.size === 0 && pools.size === 0) return { complete: true, message: '', events: [] };
  const marker = accountOwnershipMarker(ctx.cluster, account.metadata.name);
  const events: AccountEvent[] = [];
  const waits: string[] = [];
  for (const name of providers) {
    const blockers = blockersOf(name, ctx, true);
    const outcome = await releaseProvider(fed, name, marker, blockers);
    if (outcome === 'kept') waits.push(`workload identity pool provider ${name}, which Keyless created for this account, is kept while ${blockers.join(', and ')}`);
    if (outcome === 'deleted') events.push(deletedEvent('provider', name, 'the CloudAccount is being deleted'));
  }
  for (const name of pools) {
    const outcome = await releasePool(fed, name, marker);
    if (outcome === 'kept') waits.push(`workload identity pool ${name}, which Keyless created for this account, still holds a provider Keyless keeps`);
    if (outcome === 'deleted') events.push(deletedEvent('pool', name, 'the CloudAccount is being deleted'));
    if (outcome === 'forgotten') events.push(forgottenEvent(name));
  }
  if (waits.length === 0) return { complete: true, message: '', events };
  return {
    complete: false,
    message: `Deletion waits: ${waits.join('; ')}. Delete those first, or remove the ownership marker (${marker}) from the provider's description to keep it and let this account go.`,
    events,
  };
}
