// The workload identity pool and provider Keyless manages for a GCP CloudAccount (spec.gcp.manageWorkloadIdentityProvider),
// against the in-memory FederationPort: what exists afterwards, what carries the marker, what was never touched.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CloudAccount, GcpCloudAccountSpec, ManagedTrust } from '../../api/types.ts';
import { CloudError } from '../cloud-error.ts';
import type { AccountContext } from '../types.ts';
import { checkGcpAccount } from './account-check.ts';
import { FakeFederation } from './fake/federation.ts';
import { FakeGcp } from './fake/gcp.ts';
import { convergeWorkloadIdentityProvider, releaseWorkloadIdentityProviders } from './managed-provider.ts';
import { accountOwnershipMarker, carriesMarker } from './naming.ts';
import { shareGcpReads } from './shared-port.ts';

const NUMBER = '123456789012';
const POOL = `projects/${NUMBER}/locations/global/workloadIdentityPools/my-clusters`;
const PROVIDER = `${POOL}/providers/prod-eks`;
const OTHER_PROVIDER = `${POOL}/providers/other`;
const OTHER_POOL = `projects/${NUMBER}/locations/global/workloadIdentityPools/elsewhere`;
const ISSUER = 'https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE';
const MARKER = accountOwnershipMarker('prod', 'prod-gcp');
const OURS = `Managed by Keyless; do not edit. ${MARKER}`;

function anAccount(gcp: Partial<GcpCloudAccountSpec> = {}, recorded: ManagedTrust = {}, name = 'prod-gcp'): CloudAccount {
  return {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name },
    spec: { gcp: { projectId: 'my-project', projectNumber: NUMBER, workloadIdentityProvider: PROVIDER, manageWorkloadIdentityProvider: true, oidcIssuer: ISSUER, ...gcp } },
    ...(Object.keys(recorded).length ? { status: { managedTrust: recorded } } : {}),
  };
}

function context(opts: Partial<AccountContext> = {}): AccountContext {
  return { cluster: 'prod', identities: 0, others: [], ...opts };
}

/** A pool and provider made by hand, as a platform team makes them. */
function foreign(fed: FakeFederation, provider = PROVIDER): void {
  fed.add(provider, ISSUER, (p) => ({ ...p, description: 'made by the platform team', attributeMapping: { 'google.subject': 'assertion.sub', 'attribute.ns': 'assertion.namespace' } }));
}

/** What a converge left as the record, fed back as the next reconcile's status. */
async function converged(fed: FakeFederation, account: CloudAccount, ctx = context()) {
  const outcome = await convergeWorkloadIdentityProvider(fed, account, ctx);
  return { outcome, next: { ...account, status: { managedTrust: outcome.record } } };
}

describe('the managed workload identity pool provider', () => {
  describe('when the account asks for it', () => {
    it('creates the missing pool and provider with the marker, the issuer, google.subject=assertion.sub and no allowed audiences', async () => {
      const fed = new FakeFederation();
      const { outcome } = await converged(fed, anAccount());
      assert.deepEqual(fed.pools.get(POOL), { name: POOL, state: 'ACTIVE', disabled: false, description: OURS });
      assert.deepEqual(fed.providers.get(PROVIDER), {
        name: PROVIDER,
        state: 'ACTIVE',
        disabled: false,
        description: OURS,
        attributeMapping: { 'google.subject': 'assertion.sub' },
        attributeCondition: undefined,
        oidc: { issuerUri: ISSUER, allowedAudiences: [], jwksJson: false },
      });
      assert.deepEqual(outcome.record, { workloadIdentityPools: [POOL], workloadIdentityProviders: [PROVIDER] });
      assert.deepEqual([outcome.condition?.status, outcome.condition?.reason], ['True', 'Managed']);
      assert.deepEqual(outcome.events.map((e) => e.reason), ['WorkloadIdentityPoolCreated', 'WorkloadIdentityProviderCreated']);
    });

    it('writes nothing on the next reconcile', async () => {
      const fed = new FakeFederation();
      const { next } = await converged(fed, anAccount());
      const before = fed.writes.length;
      const { outcome } = await converged(fed, next);
      assert.equal(fed.writes.length, before);
      assert.deepEqual(outcome.events, []);
      assert.deepEqual(outcome.record, { workloadIdentityPools: [POOL], workloadIdentityProviders: [PROVIDER] });
    });

    it('finds its own pool and provider again after a crash before the record, by the marker', async () => {
      const fed = new FakeFederation();
      await converged(fed, anAccount());
      const { outcome } = await converged(fed, anAccount());
      assert.deepEqual(outcome.record, { workloadIdentityPools: [POOL], workloadIdentityProviders: [PROVIDER] });
      assert.equal(fed.writes.length, 2);
    });

    it('uses a provider made without its marker as it is: ExistingProvider, no write, nothing recorded', async () => {
      const fed = new FakeFederation();
      foreign(fed);
      const before = structuredClone([fed.pools.get(POOL), fed.providers.get(PROVIDER)]);
      const { outcome } = await converged(fed, anAccount({ oidcIssuer: 'https://issuer.example.com/other' }));
      assert.deepEqual(fed.writes, []);
      assert.deepEqual([fed.pools.get(POOL), fed.providers.get(PROVIDER)], before);
      assert.deepEqual(outcome.record, { workloadIdentityPools: [], workloadIdentityProviders: [] });
      assert.deepEqual([outcome.condition?.status, outcome.condition?.reason], ['False', 'ExistingProvider']);
      assert.match(outcome.condition?.message ?? '', /created outside Keyless.*never changes or deletes it.*trusts issuer https:\/\/oidc\.eks/);
    });

    it('treats a provider marked for another CloudAccount as someone else’s', async () => {
      const fed = new FakeFederation();
      fed.add(PROVIDER, ISSUER, (p) => ({ ...p, description: `Managed by Keyless; do not edit. ${accountOwnershipMarker('prod', 'team-gcp')}` }));
      const { outcome } = await converged(fed, anAccount(), context({ others: [anAccount({}, {}, 'team-gcp')] }));
      assert.deepEqual(fed.writes, []);
      assert.equal(outcome.condition?.reason, 'ExistingProvider');
      assert.match(outcome.condition?.message ?? '', /CloudAccount team-gcp of this cluster, which manages it/);
    });

    it('creates its marked provider inside a pool made by hand, and records only the provider', async () => {
      const fed = new FakeFederation();
      fed.addPool(POOL, (p) => ({ ...p, description: 'shared pool' }));
      const { outcome } = await converged(fed, anAccount());
      assert.equal(fed.pools.get(POOL)?.description, 'shared pool');
      assert.ok(carriesMarker(fed.providers.get(PROVIDER)?.description, MARKER));
      assert.deepEqual(outcome.record, { workloadIdentityPools: [], workloadIdentityProviders: [PROVIDER] });
      assert.equal(outcome.condition?.reason, 'Managed');
      assert.match(outcome.condition?.message ?? '', /which Keyless did not create and never changes or deletes/);
    });

    it('undeletes its own soft-deleted provider instead of creating it again (IAM refuses the id for 30 days)', async () => {
      const fed = new FakeFederation();
      const { next } = await converged(fed, anAccount());
      await fed.deleteWorkloadIdentityPoolProvider(PROVIDER);
      fed.writes.length = 0;
      const { outcome } = await converged(fed, next);
      assert.deepEqual(fed.writes, [`undeleteProvider ${PROVIDER}`]);
      assert.equal(fed.providers.get(PROVIDER)?.state, 'ACTIVE');
      assert.equal(outcome.condition?.reason, 'Managed');
    });

    it('undeletes its own soft-deleted pool, then its provider', async () => {
      const fed = new FakeFederation();
      const { next } = await converged(fed, anAccount());
      await fed.deleteWorkloadIdentityPoolProvider(PROVIDER);
      await fed.deleteWorkloadIdentityPool(POOL);
      fed.writes.length = 0;
      await converged(fed, next);
      assert.deepEqual(fed.writes, [`undeletePool ${POOL}`, `undeleteProvider ${PROVIDER}`]);
    });

    it('leaves a soft-deleted provider of someone else’s deleted: OIDCProviderNotFound with the undelete command', async () => {
      const fed = new FakeFederation();
      foreign(fed);
      fed.providers.set(PROVIDER, { ...fed.providers.get(PROVIDER)!, state: 'DELETED' });
      const { outcome } = await converged(fed, anAccount());
      assert.deepEqual(fed.writes, []);
      assert.deepEqual([outcome.condition?.status, outcome.condition?.reason], ['False', 'OIDCProviderNotFound']);
      assert.match(outcome.condition?.message ?? '', /gcloud iam workload-identity-pools providers undelete prod-eks --project=123456789012 --location=global --workload-identity-pool=my-clusters/);
    });

    it('leaves a soft-deleted pool of someone else’s deleted, and creates nothing in it', async () => {
      const fed = new FakeFederation();
      fed.addPool(POOL, (p) => ({ ...p, state: 'DELETED' }));
      const { outcome } = await converged(fed, anAccount());
      assert.deepEqual(fed.writes, []);
      assert.equal(outcome.condition?.reason, 'OIDCProviderNotFound');
      assert.match(outcome.condition?.message ?? '', /gcloud iam workload-identity-pools undelete my-clusters/);
    });

    it('brings its own provider back to the issuer and mapping the account asks for, keeping other mappings', async () => {
      const fed = new FakeFederation();
      const { next } = await converged(fed, anAccount());
      const p = fed.providers.get(PROVIDER)!;
      fed.providers.set(PROVIDER, { ...p, attributeMapping: { 'google.subject': 'assertion.email', 'attribute.team': 'assertion.team' } });
      const { outcome } = await converged(fed, { ...next, spec: { gcp: { ...next.spec.gcp!, oidcIssuer: 'https://issuer.example.com/new' } } });
      assert.deepEqual(fed.providers.get(PROVIDER)?.attributeMapping, { 'google.subject': 'assertion.sub', 'attribute.team': 'assertion.team' });
      assert.equal(fed.providers.get(PROVIDER)?.oidc?.issuerUri, 'https://issuer.example.com/new');
      assert.deepEqual(outcome.events.map((e) => e.reason), ['WorkloadIdentityProviderUpdated']);
    });

    it('makes no cloud call for an account that neither asks nor keeps anything', async () => {
      const fed = new FakeFederation();
      const outcome = await convergeWorkloadIdentityProvider(fed, anAccount({ manageWorkloadIdentityProvider: false }), context());
      assert.deepEqual(outcome, { record: {}, events: [] });
      assert.equal(fed.pools.size, 0);
    });
  });

  describe('when the account stops asking', () => {
    it('keeps its provider while WorkloadIdentities use the account: InUse', async () => {
      const fed = new FakeFederation();
      const { next } = await converged(fed, anAccount());
      const { outcome } = await converged(fed, { ...next, spec: { gcp: { ...next.spec.gcp!, manageWorkloadIdentityProvider: false } } }, context({ identities: 2 }));
      assert.equal(fed.providers.get(PROVIDER)?.state, 'ACTIVE');
      assert.deepEqual(outcome.record, { workloadIdentityPools: [POOL], workloadIdentityProviders: [PROVIDER] });
      assert.deepEqual([outcome.condition?.status, outcome.condition?.reason], ['True', 'InUse']);
      assert.match(outcome.condition?.message ?? '', /2 WorkloadIdentities still reference this account/);
    });

    it('deletes its provider, then its pool, once none does', async () => {
      const fed = new FakeFederation();
      const { next } = await converged(fed, anAccount());
      const { outcome } = await converged(fed, { ...next, spec: { gcp: { ...next.spec.gcp!, manageWorkloadIdentityProvider: false } } });
      assert.deepEqual([fed.providers.get(PROVIDER)?.state, fed.pools.get(POOL)?.state], ['DELETED', 'DELETED']);
      assert.deepEqual(outcome.record, { workloadIdentityPools: [], workloadIdentityProviders: [] });
      assert.equal(outcome.condition, undefined);
      assert.deepEqual(outcome.events.map((e) => e.reason), ['WorkloadIdentityProviderDeleted', 'WorkloadIdentityPoolDeleted']);
    });

    it('deletes the provider it made when the account names another, at once, and creates the new one', async () => {
      const fed = new FakeFederation();
      const { next } = await converged(fed, anAccount());
      const moved = `${OTHER_POOL}/providers/prod-eks`;
      const { outcome } = await converged(fed, { ...next, spec: { gcp: { ...next.spec.gcp!, workloadIdentityProvider: moved } } }, context({ identities: 3 }));
      assert.deepEqual([fed.providers.get(PROVIDER)?.state, fed.pools.get(POOL)?.state, fed.providers.get(moved)?.state], ['DELETED', 'DELETED', 'ACTIVE']);
      assert.deepEqual(outcome.record, { workloadIdentityPools: [OTHER_POOL], workloadIdentityProviders: [moved] });
    });
  });

  describe('when the account is deleted', () => {
    it('deletes its provider and pool', async () => {
      const fed = new FakeFederation();
      const { next } = await converged(fed, anAccount());
      const released = await releaseWorkloadIdentityProviders(fed, next, context());
      assert.equal(released.complete, true);
      assert.deepEqual([fed.providers.get(PROVIDER)?.state, fed.pools.get(POOL)?.state], ['DELETED', 'DELETED']);
    });

    it('finds what it created by the marker when nothing was recorded', async () => {
      const fed = new FakeFederation();
      await converged(fed, anAccount());
      const released = await releaseWorkloadIdentityProviders(fed, anAccount(), context());
      assert.equal(released.complete, true);
      assert.deepEqual([fed.providers.get(PROVIDER)?.state, fed.pools.get(POOL)?.state], ['DELETED', 'DELETED']);
    });

    it('deletes its provider but never a pool made by hand', async () => {
      const fed = new FakeFederation();
      fed.addPool(POOL, (p) => ({ ...p, description: 'shared pool' }));
      const { next } = await converged(fed, anAccount());
      await releaseWorkloadIdentityProviders(fed, next, context());
      assert.deepEqual([fed.providers.get(PROVIDER)?.state, fed.pools.get(POOL)?.state], ['DELETED', 'ACTIVE']);
    });

    it('deletes nothing it did not create', async () => {
      const fed = new FakeFederation();
      foreign(fed);
      const before = structuredClone([fed.pools.get(POOL), fed.providers.get(PROVIDER)]);
      const released = await releaseWorkloadIdentityProviders(fed, anAccount(), context());
      assert.equal(released.complete, true);
      assert.deepEqual(fed.writes, []);
      assert.deepEqual([fed.pools.get(POOL), fed.providers.get(PROVIDER)], before);
    });

    it('leaves its pool in place, and forgets it, when someone else put a provider in it', async () => {
      const fed = new FakeFederation();
      const { next } = await converged(fed, anAccount());
      foreign(fed, OTHER_PROVIDER);
      const released = await releaseWorkloadIdentityProviders(fed, next, context());
      assert.equal(released.complete, true);
      assert.deepEqual([fed.providers.get(PROVIDER)?.state, fed.pools.get(POOL)?.state, fed.providers.get(OTHER_PROVIDER)?.state], ['DELETED', 'ACTIVE', 'ACTIVE']);
      assert.deepEqual(released.events.map((e) => e.reason), ['WorkloadIdentityProviderDeleted', 'WorkloadIdentityPoolKept']);
    });

    it('waits while another CloudAccount of the cluster names its provider', async () => {
      const fed = new FakeFederation();
      const { next } = await converged(fed, anAccount());
      const released = await releaseWorkloadIdentityProviders(fed, next, context({ others: [anAccount({ manageWorkloadIdentityProvider: false }, {}, 'team-gcp')] }));
      assert.equal(released.complete, false);
      assert.match(released.message, /CloudAccount\(s\) team-gcp name it/);
      assert.deepEqual([fed.providers.get(PROVIDER)?.state, fed.pools.get(POOL)?.state], ['ACTIVE', 'ACTIVE']);
    });
  });
});

describe('the CloudAccount check of an account that manages its provider', () => {
  const gcp = () => {
    const fake = new FakeGcp('my-project');
    fake.addResource({ kind: 'project', project: 'my-project' }, { version: 1, bindings: [] });
    return shareGcpReads(fake, { maxAgeMs: 0 });
  };

  it('creates the provider, then is Ready with its issuer, the record and OIDCProviderManaged', async () => {
    const fed = new FakeFederation();
    const verdict = await checkGcpAccount(gcp(), anAccount(), fed, context());
    assert.equal(verdict.ok, true, verdict.message);
    assert.equal(verdict.issuer, ISSUER);
    assert.deepEqual(verdict.managedTrust, { workloadIdentityPools: [POOL], workloadIdentityProviders: [PROVIDER] });
    assert.deepEqual(verdict.conditions?.map((c) => [c.type, c.reason]), [['OIDCProviderManaged', 'Managed']]);
  });

  it('says which role is missing when IAM refuses the create: CloudRejected', async () => {
    const fed = new FakeFederation();
    fed.failNextWrite = new CloudError('terminal', 'PERMISSION_DENIED', 'CreateWorkloadIdentityPool', "Permission 'iam.workloadIdentityPools.create' denied");
    const verdict = await checkGcpAccount(gcp(), anAccount(), fed, context());
    assert.equal(verdict.reason, 'CloudRejected');
    assert.match(verdict.message, /roles\/iam\.workloadIdentityPoolAdmin on project my-project/);
  });

  it('checks an unmanaged account without a write', async () => {
    const fed = new FakeFederation();
    foreign(fed);
    const verdict = await checkGcpAccount(gcp(), anAccount({ manageWorkloadIdentityProvider: false }), fed, context());
    assert.equal(verdict.ok, true);
    assert.deepEqual(fed.writes, []);
    assert.equal(verdict.managedTrust, undefined);
  });
});
