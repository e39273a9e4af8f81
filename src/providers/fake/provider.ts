// A provider over an in-memory cloud, for the reconciler's unit tests: one identity per WorkloadIdentity with its
// grants and an owner, in a place the CloudAccount names (account, project or subscription). It keeps the contract's
// rules (observe reads, ensure converges and refuses what is not ours, revoke works from the record alone and may
// lag) and lets a test fail any step. The providers' own tests cover the real mechanisms over their port fakes.
import { SERVICE_ACCOUNT_ANNOTATION, REASON } from '../../api/constants.ts';
import type { CloudAccount, Cloud } from '../../api/types.ts';
import { ProviderError, type CloudRecord, type CredentialCheck, type IdentityContext, type Owner, type Provider, type Provisioned, type Revoked, type Verdict } from '../types.ts';
import { claimsOf } from './token.ts';

export interface FakeIdentity {
  owner: string;
  grants: string[];
}

type Operation = 'observe' | 'ensure' | 'revoke';

export class FakeCloud {
  /** `cloud:place:name` → identity. */
  readonly identities = new Map<string, FakeIdentity>();
  readonly calls: string[] = [];
  /** The next call of each operation listed throws its error (each entry once). */
  readonly failures: { operation: Operation; error: Error }[] = [];
  /** How many more revocations answer "not confirmed yet" before one completes. */
  revokeLag = 0;
  /** What the next token exchanges answer (each entry once), then Verified. */
  readonly verdicts: Verdict[] = [];
  /** Every token exchanged, with the audience it carried. */
  readonly exchanged: { audience: string; token: string }[] = [];

  fail(operation: Operation): void {
    const i = this.failures.findIndex((f) => f.operation === operation);
    const failure = i >= 0 ? this.failures.splice(i, 1)[0] : undefined;
    if (failure) throw failure.error;
  }
}

export interface FakeDesired {
  key: string;
  record: CloudRecord;
  owner: string;
  grants: string[];
  annotations: Record<string, string>;
}

/** Where a CloudAccount puts identities, as the fake sees it. */
export function placeOf(account: CloudAccount): string {
  const { aws, gcp, azure } = account.spec;
  return aws?.accountId ?? gcp?.projectId ?? `${azure?.subscriptionId ?? ''}/${azure?.resourceGroup ?? ''}`;
}

function recordFor(cloud: Cloud, place: string, name: string): CloudRecord {
  switch (cloud) {
    case 'aws':
      return { aws: { accountId: place, region: 'us-east-1', roleName: name, roleArn: `arn:aws:iam::${place}:role/${name}` } };
    case 'gcp':
      return { gcp: { projectId: place, projectNumber: '1', workloadPool: `${place}.svc.id.goog`, serviceAccountEmail: `${name}@${place}.iam.gserviceaccount.com` } };
    case 'azure': {
      const [subscriptionId = '', resourceGroup = ''] = place.split('/');
      return { azure: { subscriptionId, tenantId: 't', resourceGroup, identityName: name } };
    }
  }
}

function keyOf(cloud: Cloud, record: CloudRecord): string | undefined {
  if (record.aws) return `${cloud}:${record.aws.accountId}:${record.aws.roleName}`;
  if (record.gcp) return `${cloud}:${record.gcp.projectId}:${record.gcp.serviceAccountEmail?.split('@')[0] ?? ''}`;
  if (record.azure) return `${cloud}:${record.azure.subscriptionId}/${record.azure.resourceGroup}:${record.azure.identityName}`;
  return undefined;
}

export class FakeProvider implements Provider<FakeDesired, FakeIdentity | undefined> {
  readonly cloud: Cloud;
  readonly mechanism: string;
  readonly pods;
  readonly credentials: CredentialCheck;
  readonly #world: FakeCloud;
  readonly #place: string;

  constructor(cloud: Cloud, mechanism: string, world: FakeCloud, place: string) {
    this.cloud = cloud;
    this.mechanism = mechanism;
    this.#world = world;
    this.#place = place;
    this.pods = { injected: cloud !== 'gcp', staleReason: () => undefined };
    this.credentials = {
      audience: () => `${cloud}-audience`,
      exchange: (_ctx, _status, token) => {
        world.exchanged.push({ audience: claimsOf(token).aud, token });
        return Promise.resolve(world.verdicts.shift() ?? { ok: true, reason: REASON.Verified, message: 'exchanged' });
      },
    };
  }

  validate(ctx: IdentityContext): string[] {
    return ctx.spec.aws?.policy?.some((s) => s.actions.includes('invalid:Action')) ? ['spec.aws.policy names invalid:Action'] : [];
  }

  continues(record: CloudRecord, ctx: IdentityContext): boolean {
    return keyOf(this.cloud, record) === this.desired(ctx).key;
  }

  desired(ctx: IdentityContext): FakeDesired {
    const name = `${ctx.namespace}-${ctx.name}`;
    const record = recordFor(this.cloud, this.#place, name);
    const grants = [...(ctx.spec.aws?.policy?.flatMap((s) => s.actions) ?? []), ...(ctx.spec.gcp?.roles?.map((r) => r.role) ?? []), ...(ctx.spec.azure?.roleAssignments?.map((r) => r.role) ?? [])];
    const annotations: Record<string, string> =
      this.cloud === 'aws' && this.mechanism === 'IRSA'
        ? { [SERVICE_ACCOUNT_ANNOTATION.awsRoleArn]: record.aws?.roleArn ?? '' }
        : this.cloud === 'gcp' && this.mechanism === 'ServiceAccount'
          ? { [SERVICE_ACCOUNT_ANNOTATION.gcpServiceAccount]: record.gcp?.serviceAccountEmail ?? '' }
          : this.cloud === 'azure'
            ? { [SERVICE_ACCOUNT_ANNOTATION.azureClientId]: `client-${name}` }
            : {};
    return { key: keyOf(this.cloud, record) ?? '', record, owner: `${ctx.cluster}/${ctx.namespace}/${ctx.name}`, grants, annotations };
  }

  async observe(desired: FakeDesired): Promise<FakeIdentity | undefined> {
    this.#world.calls.push(`observe:${desired.key}`);
    this.#world.fail('observe');
    const found = this.#world.identities.get(desired.key);
    return found && structuredClone(found);
  }

  intent(desired: FakeDesired): CloudRecord {
    return desired.record;
  }

  async ensure(desired: FakeDesired, observed: FakeIdentity | undefined): Promise<Provisioned> {
    this.#world.calls.push(`ensure:${desired.key}`);
    if (observed && observed.owner !== desired.owner) {
      throw new ProviderError('identity', REASON.NotOwned, `identity ${desired.key} belongs to ${observed.owner}`, false);
    }
    this.#world.fail('ensure');
    this.#world.identities.set(desired.key, { owner: desired.owner, grants: [...desired.grants] });
    const changed = JSON.stringify(observed?.grants) !== JSON.stringify(desired.grants);
    return {
      status: { identity: desired.key },
      record: desired.record,
      serviceAccountAnnotations: desired.annotations,
      messages: { identity: `identity ${desired.key}`, trust: `trust of ${desired.key}`, permissions: `grants ${desired.grants.join(', ')}` },
      changes: changed ? [{ step: observed ? 'permissions' : 'identity', action: observed ? 'PolicyUpdated' : 'Created', message: `converged ${desired.key}` }] : [],
    };
  }

  async revoke(record: CloudRecord, owner: Owner): Promise<Revoked> {
    const key = keyOf(this.cloud, record) ?? '';
    this.#world.calls.push(`revoke:${key}`);
    this.#world.fail('revoke');
    if (this.#world.revokeLag > 0) {
      this.#world.revokeLag -= 1;
      return { complete: false, message: `waiting for the cloud to confirm ${key} is gone`, changes: [] };
    }
    const found = this.#world.identities.get(key);
    if (found && found.owner === `${owner.cluster}/${owner.namespace}/${owner.name}`) {
      this.#world.identities.delete(key);
      return { complete: true, message: `deleted ${key}`, changes: [{ step: 'identity', action: 'Deleted', message: `deleted ${key}` }] };
    }
    return { complete: true, message: `${key} is gone`, changes: [] };
  }
}
