import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { CLOUD_ACCOUNT_FINALIZER } from '../api/constants.ts';
import type { CloudAccount } from '../api/types.ts';
import { FakeCluster } from '../kube/fake/cluster.ts';
import { CloudError } from '../providers/cloud-error.ts';
import { discoveryUrl, type HttpAnswer } from '../providers/issuer/reachability.ts';
import type { AccountContext, AccountReleased, AccountVerdict } from '../providers/types.ts';
import { CloudAccountReconciler } from './cloud-account.ts';

const ISSUER = 'https://issuer.example.com/cluster-1';
const ARN = 'arn:aws:iam::123456789012:oidc-provider/issuer.example.com/cluster-1';
const TTL_MS = 60_000;

const anAccount = (name = 'prod-aws'): CloudAccount => ({
  apiVersion: 'keyless.dev/v1alpha1',
  kind: 'CloudAccount',
  metadata: { name, uid: `uid-${name}` },
  spec: { aws: { accountId: '123456789012', region: 'us-east-1', oidcIssuer: ISSUER } },
});

const trusted: AccountVerdict = { ok: true, reason: 'Ready', message: 'trusted', issuer: ISSUER, oidcProviderArn: ARN, issuerFetchedByCloud: true };

/** An issuer host that serves a good discovery document and JWKS until `down`. */
function issuerHost() {
  const host = { down: false, fetched: 0 };
  const get = (url: string): Promise<HttpAnswer> => {
    host.fetched++;
    if (host.down) return Promise.reject(new Error('the connection was refused (ECONNREFUSED)'));
    if (url === discoveryUrl(ISSUER)) return Promise.resolve({ status: 200, body: JSON.stringify({ issuer: ISSUER, jwks_uri: `${ISSUER}/keys` }) });
    return Promise.resolve({ status: 200, body: JSON.stringify({ keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB' }] }) });
  };
  return Object.assign(host, { get });
}

function harness(opts: { verdict?: AccountVerdict; release?: (account: CloudAccount, ctx: AccountContext) => Promise<AccountReleased> } = {}) {
  const cluster = new FakeCluster();
  const host = issuerHost();
  let now = Date.parse('2026-01-01T00:00:00Z');
  const h = {
    cluster,
    host,
    verdict: opts.verdict ?? trusted,
    checks: [] as AccountContext[],
    releases: [] as AccountContext[],
    advance: (ms: number) => {
      now += ms;
    },
    account: (name = 'prod-aws') => cluster.accounts.get(name) ?? assert.fail(`no CloudAccount ${name}`),
    condition: (type: string, name = 'prod-aws') => h.account(name).status?.conditions?.find((c) => c.type === type),
    /** kubectl delete: the finalizer holds the account. */
    delete: (name = 'prod-aws') => cluster.putAccount({ ...h.account(name), metadata: { ...h.account(name).metadata, deletionTimestamp: new Date(now) } }),
    reconciler: undefined as unknown as CloudAccountReconciler,
  };
  h.reconciler = new CloudAccountReconciler({
    accounts: cluster.accounts,
    identities: cluster.identities,
    checks: {
      aws: (_account, ctx) => {
        h.checks.push(ctx);
        return Promise.resolve(structuredClone(h.verdict));
      },
    },
    releases: {
      aws: (account, ctx) => {
        h.releases.push(ctx);
        return opts.release ? opts.release(account, ctx) : Promise.resolve({ complete: true, message: '', events: [] });
      },
    },
    issuerGet: host.get,
    cluster: 'prod',
    kube: cluster,
    logger: pino({ level: 'silent' }),
    verdictTtlMs: TTL_MS,
    now: () => new Date(now),
  });
  cluster.putAccount(anAccount());
  return h;
}

function addIdentity(cluster: FakeCluster, name: string, account = 'prod-aws'): void {
  cluster.applyIdentity({ metadata: { name, namespace: 'shop' }, spec: { serviceAccountName: name, cloudAccountRef: { name: account }, aws: {} } });
}

describe('CloudAccountReconciler', () => {
  describe('IssuerReachable', () => {
    it('is Reachable beside Ready for an issuer the cloud fetches, with no Event of its own', async () => {
      const h = harness();
      await h.reconciler.reconcile('prod-aws');
      assert.equal(h.condition('Ready')?.status, 'True');
      assert.deepEqual([h.condition('IssuerReachable')?.status, h.condition('IssuerReachable')?.reason], ['True', 'Reachable']);
      assert.deepEqual(h.cluster.events.map((e) => e.reason), ['Ready']);
    });

    it('warns about an unreachable issuer without touching Ready, once', async () => {
      const h = harness();
      h.host.down = true;
      await h.reconciler.reconcile('prod-aws');
      assert.equal(h.condition('Ready')?.status, 'True', 'an unreachable issuer never takes trust away');
      assert.deepEqual([h.condition('IssuerReachable')?.status, h.condition('IssuerReachable')?.reason], ['False', 'DiscoveryUnreachable']);
      h.advance(TTL_MS);
      await h.reconciler.reconcile('prod-aws');
      assert.deepEqual(
        h.cluster.events.map((e) => [e.type, e.reason]),
        [
          ['Normal', 'Ready'],
          ['Warning', 'DiscoveryUnreachable'],
        ],
      );
    });

    it('records a Normal Event when the issuer becomes reachable again', async () => {
      const h = harness();
      h.host.down = true;
      await h.reconciler.reconcile('prod-aws');
      h.host.down = false;
      h.advance(TTL_MS);
      await h.reconciler.reconcile('prod-aws');
      assert.deepEqual(h.cluster.events.at(-1)?.type, 'Normal');
      assert.deepEqual(h.cluster.events.at(-1)?.reason, 'Reachable');
    });

    it('fetches nothing where the cloud does not fetch the issuer (a GKE workload pool): NotRequired', async () => {
      const h = harness({ verdict: { ...trusted, issuer: 'my-project.svc.id.goog', issuerFetchedByCloud: false } });
      await h.reconciler.reconcile('prod-aws');
      assert.equal(h.host.fetched, 0);
      assert.equal(h.condition('IssuerReachable')?.reason, 'NotRequired');
    });

    it('is Unknown while the account has no issuer', async () => {
      const h = harness({ verdict: { ok: false, reason: 'IssuerNotFound', message: 'set one' } });
      await h.reconciler.reconcile('prod-aws');
      assert.equal(h.host.fetched, 0);
      assert.equal(h.condition('IssuerReachable')?.status, 'Unknown');
    });

    it('is fetched again only with the verdict: not on every reconcile', async () => {
      const h = harness();
      await h.reconciler.reconcile('prod-aws');
      await h.reconciler.reconcile('prod-aws');
      assert.equal(h.host.fetched, 2, 'discovery and JWKS, once');
    });
  });

  describe('managed trust', () => {
    it('writes the record and the condition the check returns, with the check\'s Events', async () => {
      const h = harness({
        verdict: {
          ...trusted,
          managedTrust: { oidcProviderArns: [ARN] },
          conditions: [{ type: 'OIDCProviderManaged', status: 'True', reason: 'Managed', message: 'ours' }],
          events: [{ type: 'Normal', reason: 'OIDCProviderCreated', message: `Created ${ARN}` }],
        },
      });
      await h.reconciler.reconcile('prod-aws');
      assert.deepEqual(h.account().status?.managedTrust, { oidcProviderArns: [ARN] });
      assert.equal(h.condition('OIDCProviderManaged')?.reason, 'Managed');
      assert.deepEqual(h.cluster.events.map((e) => e.reason), ['OIDCProviderCreated', 'Ready']);
    });

    it('records only the lists of managed objects that hold something (GCP pools and providers)', async () => {
      const provider = 'projects/1/locations/global/workloadIdentityPools/pool/providers/prov';
      const h = harness({ verdict: { ...trusted, managedTrust: { workloadIdentityPools: [], workloadIdentityProviders: [provider] } } });
      await h.reconciler.reconcile('prod-aws');
      assert.deepEqual(h.account().status?.managedTrust, { workloadIdentityProviders: [provider] });
    });

    it('keeps the record and the condition when a verdict does not speak for them, and drops them when it says none', async () => {
      const h = harness({ verdict: { ...trusted, managedTrust: { oidcProviderArns: [ARN] }, conditions: [{ type: 'OIDCProviderManaged', status: 'True', reason: 'Managed', message: 'ours' }] } });
      await h.reconciler.reconcile('prod-aws');
      h.verdict = { ok: false, reason: 'CloudRejected', message: 'AccessDenied' };
      h.advance(TTL_MS);
      await h.reconciler.reconcile('prod-aws');
      assert.deepEqual(h.account().status?.managedTrust, { oidcProviderArns: [ARN] });
      assert.equal(h.condition('OIDCProviderManaged')?.reason, 'Managed');
      h.verdict = { ...trusted, managedTrust: { oidcProviderArns: [] }, conditions: [] };
      h.advance(TTL_MS);
      await h.reconciler.reconcile('prod-aws');
      assert.equal(h.account().status?.managedTrust, undefined);
      assert.equal(h.condition('OIDCProviderManaged'), undefined);
    });

    it('asks the cloud again when the account\'s last identity goes, not when one of several goes', async () => {
      const h = harness();
      addIdentity(h.cluster, 'a');
      addIdentity(h.cluster, 'b');
      await h.reconciler.reconcile('prod-aws');
      h.cluster.deleteIdentity('shop/a');
      await h.reconciler.reconcile('prod-aws');
      assert.equal(h.checks.length, 1);
      h.cluster.deleteIdentity('shop/b');
      await h.reconciler.reconcile('prod-aws');
      assert.deepEqual(h.checks.map((c) => c.identities), [2, 0]);
    });

    it('hands the check the cluster and the other accounts', async () => {
      const h = harness();
      h.cluster.putAccount(anAccount('team-b'));
      await h.reconciler.reconcile('prod-aws');
      assert.equal(h.checks[0]?.cluster, 'prod');
      assert.deepEqual(h.checks[0]?.others.map((a) => a.metadata.name), ['team-b']);
    });
  });

  describe('deletion', () => {
    it('waits for its WorkloadIdentities before releasing anything, keeping the other conditions and the record', async () => {
      const h = harness({ verdict: { ...trusted, managedTrust: { oidcProviderArns: [ARN] }, conditions: [{ type: 'OIDCProviderManaged', status: 'True', reason: 'Managed', message: 'ours' }] } });
      addIdentity(h.cluster, 'a');
      await h.reconciler.reconcile('prod-aws');
      h.delete();
      await h.reconciler.reconcile('prod-aws');
      assert.deepEqual(h.releases, []);
      assert.equal(h.condition('Ready')?.reason, 'InUse');
      assert.equal(h.condition('OIDCProviderManaged')?.reason, 'Managed');
      assert.equal(h.condition('IssuerReachable')?.reason, 'Reachable');
      assert.deepEqual(h.account().status?.managedTrust, { oidcProviderArns: [ARN] });
      assert.ok(h.account().metadata.finalizers?.includes(CLOUD_ACCOUNT_FINALIZER));
    });

    it('releases once no identity is left, then lets the account go', async () => {
      const h = harness();
      await h.reconciler.reconcile('prod-aws');
      h.delete();
      await h.reconciler.reconcile('prod-aws');
      assert.equal(h.releases.length, 1);
      assert.deepEqual(h.account().metadata.finalizers, []);
    });

    it('keeps the finalizer and says why while the release waits', async () => {
      const h = harness({ release: () => Promise.resolve({ complete: false, message: 'Deletion waits: team-b trusts through it.', events: [] }) });
      await h.reconciler.reconcile('prod-aws');
      h.delete();
      await h.reconciler.reconcile('prod-aws');
      assert.deepEqual([h.condition('Ready')?.reason, h.condition('Ready')?.message], ['InUse', 'Deletion waits: team-b trusts through it.']);
      assert.ok(h.account().metadata.finalizers?.includes(CLOUD_ACCOUNT_FINALIZER));
    });

    it('says a failed release on the account and retries: the finalizer stays until the cloud confirms', async () => {
      const h = harness({
        release: () => Promise.reject(new CloudError('terminal', 'AccessDenied', 'DeleteOpenIDConnectProvider', 'DeleteOpenIDConnectProvider: not authorized')),
      });
      await h.reconciler.reconcile('prod-aws');
      h.delete();
      await assert.rejects(h.reconciler.reconcile('prod-aws'), /not authorized/);
      assert.equal(h.condition('Ready')?.reason, 'Deleting');
      assert.match(h.condition('Ready')?.message ?? '', /not authorized\. Check the operator's own cloud permissions/);
      assert.ok(h.account().metadata.finalizers?.includes(CLOUD_ACCOUNT_FINALIZER));
    });
  });
});
