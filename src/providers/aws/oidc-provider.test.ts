import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AwsCloudAccountSpec, CloudAccount } from '../../api/types.ts';
import type { AccountContext } from '../types.ts';
import { checkAwsAccount } from './account-check.ts';
import { FakeEks } from './fake/eks.ts';
import { FakeIam } from './fake/iam.ts';
import type { IamPort } from './iam-port.ts';
import { convergeOidcProviders, releaseOidcProviders } from './oidc-provider.ts';

const ISSUER = 'https://issuer.example.com/cluster-1';
const ARN = 'arn:aws:iam::123456789012:oidc-provider/issuer.example.com/cluster-1';
const OTHER_ISSUER = 'https://issuer.example.com/cluster-2';
const OTHER_ARN = 'arn:aws:iam::123456789012:oidc-provider/issuer.example.com/cluster-2';
const OURS = { 'keyless.dev/cluster': 'prod', 'keyless.dev/cloud-account': 'prod-aws' };

function anAccount(aws: Partial<AwsCloudAccountSpec> = {}, recorded: string[] = [], name = 'prod-aws'): CloudAccount {
  return {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name },
    spec: { aws: { accountId: '123456789012', region: 'us-east-1', oidcIssuer: ISSUER, ...aws } },
    ...(recorded.length ? { status: { managedTrust: { oidcProviderArns: recorded } } } : {}),
  };
}

function context(opts: Partial<AccountContext> = {}): AccountContext {
  return { cluster: 'prod', identities: 0, others: [], ...opts };
}

/** The fake with every call counted, reads included: "no cloud call" must be provable. */
function counted(iam: FakeIam): { iam: IamPort; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(iam, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { iam: proxy, calls };
}

describe('the managed IAM OIDC provider (spec.aws.manageOidcProvider)', () => {
  describe('while the account asks for it', () => {
    it('creates it for the issuer with client ID sts.amazonaws.com, the marker and the account tags, and records it', async () => {
      const iam = new FakeIam();
      const out = await convergeOidcProviders(iam, anAccount({ manageOidcProvider: true, tags: { team: 'platform' } }), ISSUER, context());
      assert.deepEqual(await iam.getOpenIDConnectProvider(ARN), { arn: ARN, url: 'issuer.example.com/cluster-1', clientIds: ['sts.amazonaws.com'], thumbprints: [], tags: { ...OURS, team: 'platform' } });
      assert.deepEqual(out.record, [ARN]);
      assert.equal(out.condition?.status, 'True');
      assert.equal(out.condition?.reason, 'Managed');
      assert.deepEqual(out.events.map((e) => e.reason), ['OIDCProviderCreated']);
    });

    it('finds its own provider again by ARN and marker after a crash before the record, without a second create', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'], tags: OURS });
      const out = await convergeOidcProviders(iam, anAccount({ manageOidcProvider: true }), ISSUER, context());
      assert.deepEqual(iam.writes, []);
      assert.deepEqual(out.record, [ARN]);
      assert.equal(out.condition?.reason, 'Managed');
      assert.deepEqual(out.events, []);
    });

    it('adds the account tags its own provider lacks, and only those', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'], tags: { ...OURS, team: 'old', keep: 'me' } });
      await convergeOidcProviders(iam, anAccount({ manageOidcProvider: true, tags: { team: 'platform', keep: 'me' } }), ISSUER, context());
      assert.deepEqual(iam.writes, [`TagOpenIDConnectProvider:${ARN}`]);
      assert.deepEqual((await iam.getOpenIDConnectProvider(ARN))?.tags, { ...OURS, team: 'platform', keep: 'me' });
    });

    it('says its own provider lost sts.amazonaws.com, without editing its client IDs, and keeps it recorded', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['my-app'], tags: OURS });
      const out = await convergeOidcProviders(iam, anAccount({ manageOidcProvider: true }), ISSUER, context());
      assert.deepEqual(iam.writes, []);
      assert.deepEqual(out.record, [ARN]);
      assert.equal(out.condition?.reason, 'AudienceMissing');
      assert.match(out.condition?.message ?? '', /which Keyless created .* no longer accepts sts\.amazonaws\.com/);
    });

    it('uses a provider created outside Keyless as it is: no write, no record, ExistingProvider', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com', 'other'], thumbprints: ['9e99a48a9960b14926bb7f3b02e22da2b0ab7280'], tags: { owner: 'platform' } });
      const before = await iam.getOpenIDConnectProvider(ARN);
      const out = await convergeOidcProviders(iam, anAccount({ manageOidcProvider: true, tags: { team: 'platform' } }), ISSUER, context());
      assert.deepEqual(iam.writes, []);
      assert.deepEqual(await iam.getOpenIDConnectProvider(ARN), before);
      assert.deepEqual(out.record, []);
      assert.equal(out.condition?.status, 'False');
      assert.equal(out.condition?.reason, 'ExistingProvider');
      assert.match(out.condition?.message ?? '', /no Keyless ownership tags.*never changes or deletes it/);
    });

    it('says a foreign provider without sts.amazonaws.com breaks IRSA, with the command, and changes nothing', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['my-app'], tags: {} });
      const out = await convergeOidcProviders(iam, anAccount({ manageOidcProvider: true }), ISSUER, context());
      assert.deepEqual(iam.writes, []);
      assert.equal(out.condition?.reason, 'AudienceMissing');
      assert.match(out.condition?.message ?? '', /client IDs \(my-app\) lack sts\.amazonaws\.com/);
      assert.match(out.condition?.message ?? '', new RegExp(`aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn ${ARN} --client-id sts\\.amazonaws\\.com`));
    });

    it('treats the provider of another CloudAccount of this cluster as foreign, naming it', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'], tags: { 'keyless.dev/cluster': 'prod', 'keyless.dev/cloud-account': 'shared-aws' } });
      const live = await convergeOidcProviders(iam, anAccount({ manageOidcProvider: true }), ISSUER, context({ others: [anAccount({}, [], 'shared-aws')] }));
      assert.match(live.condition?.message ?? '', /belongs to CloudAccount shared-aws of this cluster, which manages it/);
      const orphaned = await convergeOidcProviders(iam, anAccount({ manageOidcProvider: true }), ISSUER, context());
      assert.match(orphaned.condition?.message ?? '', /created by CloudAccount shared-aws of this cluster, which no longer exists.*--tags Key=keyless\.dev\/cloud-account,Value=prod-aws/);
      assert.deepEqual(iam.writes, []);
    });

    it('treats a provider marked by another cluster as foreign', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'], tags: { ...OURS, 'keyless.dev/cluster': 'staging' } });
      const out = await convergeOidcProviders(iam, anAccount({ manageOidcProvider: true }), ISSUER, context());
      assert.equal(out.condition?.reason, 'ExistingProvider');
      assert.match(out.condition?.message ?? '', /another cluster \(keyless\.dev\/cluster=staging\)/);
    });

    it('judges a provider someone created between its read and its create by its tags', async () => {
      const iam = new FakeIam();
      const racing = Object.assign(Object.create(iam) as FakeIam, {
        getOpenIDConnectProvider: (arn: string) => iam.getOpenIDConnectProvider(arn),
        createOpenIDConnectProvider: async () => {
          iam.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'], tags: {} });
          return iam.createOpenIDConnectProvider({ url: ISSUER, clientIds: [], tags: {} });
        },
      });
      const out = await convergeOidcProviders(racing, anAccount({ manageOidcProvider: true }), ISSUER, context());
      assert.equal(out.condition?.reason, 'ExistingProvider');
      assert.deepEqual(out.record, []);
    });

    it('deletes the provider of its previous issuer at once, identities or not: their roles move to the new one', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: OTHER_ISSUER, clientIds: ['sts.amazonaws.com'], tags: OURS });
      const out = await convergeOidcProviders(iam, anAccount({ manageOidcProvider: true }, [OTHER_ARN]), ISSUER, context({ identities: 3 }));
      assert.deepEqual(iam.oidcProviders, [ARN]);
      assert.deepEqual(out.record, [ARN]);
      assert.deepEqual(out.events.map((e) => e.reason), ['OIDCProviderCreated', 'OIDCProviderDeleted']);
    });

    it('keeps the provider of its previous issuer while another CloudAccount trusts through it', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: OTHER_ISSUER, clientIds: ['sts.amazonaws.com'], tags: OURS });
      const other = { ...anAccount({}, [], 'team-b'), status: { oidcProviderArn: OTHER_ARN } };
      const out = await convergeOidcProviders(iam, anAccount({ manageOidcProvider: true }, [OTHER_ARN]), ISSUER, context({ others: [other] }));
      assert.ok(iam.oidcProviders.includes(OTHER_ARN));
      assert.deepEqual(out.record, [ARN, OTHER_ARN]);
      assert.match(out.condition?.message ?? '', /is kept while CloudAccount\(s\) team-b trust this cluster through it/);
    });

    it('touches nothing while the issuer is unknown', async () => {
      const { iam, calls } = counted(new FakeIam());
      const out = await convergeOidcProviders(iam, anAccount({ manageOidcProvider: true }, [ARN]), undefined, context());
      assert.deepEqual(calls, []);
      assert.deepEqual(out.record, [ARN]);
      assert.equal(out.condition?.status, 'Unknown');
    });
  });

  describe('once the account stops asking (manageOidcProvider false)', () => {
    it('costs no cloud call when it never asked', async () => {
      const { iam, calls } = counted(new FakeIam());
      const out = await convergeOidcProviders(iam, anAccount(), ISSUER, context({ identities: 5 }));
      assert.deepEqual(calls, []);
      assert.deepEqual(out, { record: [], events: [] });
    });

    it('keeps its provider while WorkloadIdentities use the account, saying how to keep it for good', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'], tags: OURS });
      const out = await convergeOidcProviders(iam, anAccount({}, [ARN]), ISSUER, context({ identities: 2 }));
      assert.deepEqual(iam.writes, []);
      assert.deepEqual(out.record, [ARN]);
      assert.equal(out.condition?.status, 'True');
      assert.equal(out.condition?.reason, 'InUse');
      assert.match(out.condition?.message ?? '', /2 WorkloadIdentities still reference this account/);
      assert.match(out.condition?.message ?? '', /untag-open-id-connect-provider/);
    });

    it('deletes its provider once no identity uses the account, and forgets it', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'], tags: OURS });
      const out = await convergeOidcProviders(iam, anAccount({}, [ARN]), ISSUER, context());
      assert.deepEqual(iam.writes, [`DeleteOpenIDConnectProvider:${ARN}`]);
      assert.deepEqual(out.record, []);
      assert.equal(out.condition, undefined);
      assert.deepEqual(out.events.map((e) => e.reason), ['OIDCProviderDeleted']);
    });

    it('forgets a recorded provider that lost its marker (a person kept it), without deleting it', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'], tags: { 'keyless.dev/cluster': 'prod' } });
      const out = await convergeOidcProviders(iam, anAccount({}, [ARN]), ISSUER, context({ identities: 2 }));
      assert.deepEqual(iam.writes, []);
      assert.deepEqual(out.record, []);
      assert.equal(out.condition, undefined);
    });
  });

  describe('checkAwsAccount', () => {
    const clients = (iam: IamPort) => ({ iam, eks: new FakeEks() });

    it('is Ready through the provider it created, with the record and the condition', async () => {
      const iam = new FakeIam();
      const verdict = await checkAwsAccount(clients(iam), anAccount({ manageOidcProvider: true }), context());
      assert.equal(verdict.ok, true);
      assert.equal(verdict.oidcProviderArn, ARN);
      assert.equal(verdict.issuerFetchedByCloud, true);
      assert.deepEqual(verdict.managedTrust, { oidcProviderArns: [ARN] });
      assert.deepEqual(verdict.conditions?.map((c) => c.reason), ['Managed']);
    });

    it('without the opt-in, still reports a missing provider and now names the opt-in', async () => {
      const verdict = await checkAwsAccount(clients(new FakeIam()), anAccount(), context());
      assert.equal(verdict.reason, 'OIDCProviderNotFound');
      assert.match(verdict.message, /or let Keyless create it: spec\.aws\.manageOidcProvider: true/);
      assert.deepEqual(verdict.conditions, []);
    });

    it('keeps the record when the issuer cannot be resolved', async () => {
      const verdict = await checkAwsAccount(clients(new FakeIam()), anAccount({ oidcIssuer: '', clusterName: 'gone', manageOidcProvider: true }, [ARN]), context());
      assert.equal(verdict.reason, 'IssuerNotFound');
      assert.deepEqual(verdict.managedTrust, { oidcProviderArns: [ARN] });
    });
  });

  describe('releaseOidcProviders (the CloudAccount is being deleted)', () => {
    it('deletes the provider it recorded', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'], tags: OURS });
      const released = await releaseOidcProviders(iam, anAccount({ manageOidcProvider: true }, [ARN]), context());
      assert.equal(released.complete, true);
      assert.deepEqual(iam.oidcProviders, []);
    });

    it('finds and deletes its provider even when a crash came before the record', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'], tags: OURS });
      assert.equal((await releaseOidcProviders(iam, anAccount({ manageOidcProvider: true }), context())).complete, true);
      assert.deepEqual(iam.oidcProviders, []);
    });

    it('never deletes a provider without its marker', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'], tags: { ...OURS, 'keyless.dev/cloud-account': 'another' } });
      const released = await releaseOidcProviders(iam, anAccount({ manageOidcProvider: true }, [ARN]), context());
      assert.equal(released.complete, true);
      assert.deepEqual(iam.writes, []);
      assert.deepEqual(iam.oidcProviders, [ARN]);
    });

    it('waits while another CloudAccount trusts through it, and says how to let go', async () => {
      const iam = new FakeIam();
      iam.seedOidcProvider({ url: ISSUER, clientIds: ['sts.amazonaws.com'], tags: OURS });
      const other = { ...anAccount({}, [], 'team-b'), status: { oidcProviderArn: ARN } };
      const released = await releaseOidcProviders(iam, anAccount({ manageOidcProvider: true }, [ARN]), context({ others: [other] }));
      assert.equal(released.complete, false);
      assert.match(released.message, /Deletion waits: IAM OIDC provider .* is kept while CloudAccount\(s\) team-b trust this cluster through it/);
      assert.deepEqual(iam.writes, []);
    });

    it('costs no cloud call for an account that never managed a provider', async () => {
      const { iam, calls } = counted(new FakeIam());
      assert.equal((await releaseOidcProviders(iam, anAccount(), context())).complete, true);
      assert.deepEqual(calls, []);
    });
  });
});
