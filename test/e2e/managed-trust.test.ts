// Issue 17's managed trust end to end: the real operator (its own ServiceAccount and ClusterRole), the real control
// plane and moto. A CloudAccount that sets spec.aws.manageOidcProvider gets the IAM OIDC provider it lacks, an IRSA
// identity goes Ready through it, a provider someone else made is used and left exactly as it was, and deleting the
// accounts removes only what Keyless made, after their identities. IssuerReachable is judged against an HTTPS issuer
// server the operator reaches the way a cloud would: anonymously, over TLS it trusts (NODE_EXTRA_CA_CERTS).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CreateOpenIDConnectProviderCommand,
  GetOpenIDConnectProviderCommand,
  GetRoleCommand,
  ListOpenIDConnectProvidersCommand,
  type GetOpenIDConnectProviderCommandOutput,
} from '@aws-sdk/client-iam';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { CloudAccount, Condition, WorkloadIdentity } from '../../src/api/types.ts';
import { parseIamDocument } from '../../src/providers/aws/policy-document.ts';
import { aJwks, startIssuerServer, type IssuerServer } from '../emulators/oidc/issuer-server.ts';
import { startAwsEmulator, TEST_ACCOUNT_ID, type AwsEmulator } from '../support/aws.ts';
import { clusterIssuer, eventually, freshNamespace, kubeConfig, kubectl, kubectlApply } from '../support/cluster.ts';
import { awsEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const group = { group: 'keyless.dev', version: 'v1alpha1' };
const CLUSTER = 'e2e-cluster';

describe('managed trust end to end: the IAM OIDC provider and IssuerReachable', () => {
  let kc: KubeConfig;
  let aws: AwsEmulator;
  let issuers: IssuerServer;
  let operator: RunningOperator;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  const suffix = randomBytes(3).toString('hex');
  const accounts: string[] = [];

  const custom = () => kc.makeApiClient(CustomObjectsApi);
  const getAccount = async (name: string) => (await custom().getClusterCustomObject({ ...group, plural: 'cloudaccounts', name })) as CloudAccount;
  const condition = (obj: { status?: { conditions?: Condition[] } | undefined }, type: string) => obj.status?.conditions?.find((c) => c.type === type);
  const providerArn = (issuer: string) => `arn:aws:iam::${TEST_ACCOUNT_ID}:oidc-provider/${issuer.replace(/^https:\/\//, '').replace(/\/+$/, '')}`;
  /** GetOpenIDConnectProvider as IAM answers it, without the per-request metadata; undefined once it is gone. */
  const provider = async (arn: string): Promise<Omit<GetOpenIDConnectProviderCommandOutput, '$metadata'> | undefined> => {
    try {
      const answer: Partial<GetOpenIDConnectProviderCommandOutput> = await aws.iam().send(new GetOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn }));
      delete answer.$metadata;
      return answer;
    } catch (err) {
      if ((err as { name?: string }).name?.startsWith('NoSuchEntity')) return undefined;
      throw err;
    }
  };
  const account = async (name: string, aws: Record<string, unknown>) => {
    accounts.push(name);
    await kubectlApply({ apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name }, spec: { aws: { accountId: TEST_ACCOUNT_ID, region: 'us-east-1', ...aws } } });
  };
  /** The account's condition of `type` once `ready` says it is there. */
  const accountCondition = (name: string, type: string, ready: (c: Condition) => boolean = () => true, timeoutMs?: number) =>
    eventually(
      `${type} on CloudAccount ${name}`,
      async () => {
        const c = condition(await getAccount(name), type);
        return c && ready(c) ? c : undefined;
      },
      timeoutMs,
    );
  /** A ServiceAccount and an IRSA WorkloadIdentity for it in the test namespace, Ready. */
  const identity = async (name: string, accountName: string) => {
    await kubectlApply(
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } },
      {
        apiVersion: 'keyless.dev/v1alpha1',
        kind: 'WorkloadIdentity',
        metadata: { name, namespace: ns },
        spec: { serviceAccountName: name, cloudAccountRef: { name: accountName }, aws: { mechanism: 'IRSA', policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::your-org-book-covers/*'] }] } },
      },
    );
    await kubectl(['wait', '--for=condition=Ready', '--timeout=90s', '-n', ns, `workloadidentity/${name}`]);
    return (await custom().getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns, name })) as WorkloadIdentity;
  };
  /** A provider made by hand, as a platform team or another tool makes one. */
  const foreignProvider = async (issuer: string, clientIds: string[]) => {
    await aws.iam().send(
      new CreateOpenIDConnectProviderCommand({ Url: issuer, ClientIDList: clientIds, ThumbprintList: ['9e99a48a9960b14926bb7f3b02e22da2b0ab7280'], Tags: [{ Key: 'owner', Value: 'platform-team' }] }),
    );
    const before = await provider(providerArn(issuer));
    assert.ok(before);
    return before;
  };

  before(async () => {
    kc = kubeConfig();
    aws = await startAwsEmulator();
    issuers = await startIssuerServer(path.join(root, '.test', 'issuer-tls'));
    const operatorKubeconfig = await installOperator(kc, 'managed-trust');
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-trust');
    operator = await startOperator({
      name: 'managed-trust',
      kubeconfig: operatorKubeconfig,
      env: { ...awsEnv(aws.endpoint), KEYLESS_RESYNC_SECONDS: '5', KEYLESS_CLUSTER_NAME: CLUSTER, NODE_EXTRA_CA_CERTS: issuers.caFile },
    });
  });

  after(async () => {
    // The namespace first, while the operator runs, so every WorkloadIdentity's finalizer is honoured.
    await dropNamespace();
    for (const name of accounts) await kubectl(['delete', 'cloudaccount', name, '--ignore-not-found', '--timeout=60s']);
    await operator.stop();
    await issuers.stop();
    await aws.stop();
  });

  it('creates the IAM OIDC provider a CloudAccount asks for, and an IRSA identity goes Ready through it', async () => {
    const name = `mt-managed-${suffix}`;
    const issuer = await clusterIssuer(kc);
    const arn = providerArn(issuer);
    assert.equal(await provider(arn), undefined, 'moto starts without a provider for the cluster issuer');
    await account(name, { oidcIssuer: issuer, manageOidcProvider: true, tags: { team: 'platform' } });
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${name}`]);

    const created = await provider(arn);
    assert.deepEqual(created?.ClientIDList, ['sts.amazonaws.com']);
    assert.deepEqual(
      Object.fromEntries((created?.Tags ?? []).map((t) => [t.Key, t.Value])),
      { 'keyless.dev/cluster': CLUSTER, 'keyless.dev/cloud-account': name, team: 'platform' },
    );
    const status = (await getAccount(name)).status;
    assert.equal(status?.oidcProviderArn, arn);
    assert.deepEqual(status?.managedTrust, { oidcProviderArns: [arn] });
    const managed = condition({ status }, 'OIDCProviderManaged');
    assert.deepEqual([managed?.status, managed?.reason], ['True', 'Managed']);

    const wi = await identity('catalog', name);
    const { Role: role } = await aws.iam().send(new GetRoleCommand({ RoleName: wi.status?.aws?.roleName ?? '' }));
    const trust = parseIamDocument(role?.AssumeRolePolicyDocument ?? '') as { Statement: { Principal: { Federated: string } }[] };
    assert.equal(trust.Statement[0]?.Principal.Federated, arn);

    // The control plane serves its discovery document only to authenticated clients, under its own CA: a cloud could
    // not fetch it. A warning beside Ready, which it does not touch.
    const reachable = condition(await getAccount(name), 'IssuerReachable');
    assert.deepEqual([reachable?.status, reachable?.reason], ['False', 'DiscoveryUnreachable']);
    assert.match(reachable?.message ?? '', /could not be fetched anonymously: its TLS certificate is not trusted/);
    assert.equal(condition(await getAccount(name), 'Ready')?.status, 'True');
  });

  it('uses an IAM OIDC provider made without its marker as it is, byte for byte', async () => {
    const name = `mt-foreign-${suffix}`;
    const issuer = issuers.publishIssuer('/foreign');
    const before = await foreignProvider(issuer, ['sts.amazonaws.com', 'my-app']);
    await account(name, { oidcIssuer: issuer, manageOidcProvider: true, tags: { team: 'platform' } });
    const existing = await accountCondition(name, 'OIDCProviderManaged');
    assert.deepEqual([existing.status, existing.reason], ['False', 'ExistingProvider']);
    assert.match(existing.message, /no Keyless ownership tags.*never changes or deletes it/);
    assert.equal((await getAccount(name)).status?.managedTrust, undefined);

    await identity('inventory', name);
    assert.deepEqual(await provider(providerArn(issuer)), before);
  });

  it('says a foreign provider lacks sts.amazonaws.com, and leaves it as it is', async () => {
    const name = `mt-noaud-${suffix}`;
    const issuer = issuers.publishIssuer('/no-audience');
    const before = await foreignProvider(issuer, ['my-app']);
    await account(name, { oidcIssuer: issuer, manageOidcProvider: true });
    const missing = await accountCondition(name, 'OIDCProviderManaged');
    assert.deepEqual([missing.status, missing.reason], ['False', 'AudienceMissing']);
    assert.match(missing.message, /add-client-id-to-open-id-connect-provider/);
    assert.deepEqual(await provider(providerArn(issuer)), before);
  });

  it('deletes only the provider it created, and only once the accounts\' identities are gone', async () => {
    const managed = `mt-del-managed-${suffix}`;
    const foreign = `mt-del-foreign-${suffix}`;
    const managedIssuer = issuers.publishIssuer('/delete-managed');
    const foreignIssuer = issuers.publishIssuer('/delete-foreign');
    const before = await foreignProvider(foreignIssuer, ['sts.amazonaws.com']);
    await account(managed, { oidcIssuer: managedIssuer, manageOidcProvider: true });
    await account(foreign, { oidcIssuer: foreignIssuer, manageOidcProvider: true });
    await identity('orders', managed);
    await identity('billing', foreign);
    assert.ok(await provider(providerArn(managedIssuer)), 'created for the managed account');

    await kubectl(['delete', 'cloudaccount', managed, foreign, '--wait=false']);
    for (const name of [managed, foreign]) {
      const ready = await accountCondition(name, 'Ready', (c) => c.reason === 'InUse');
      assert.match(ready.message, /Deletion waits for the 1 WorkloadIdentities/);
    }
    assert.ok(await provider(providerArn(managedIssuer)), 'kept while its identity exists');

    await kubectl(['delete', 'workloadidentity', '-n', ns, 'orders', 'billing', '--timeout=60s']);
    await kubectl(['wait', '--for=delete', '--timeout=60s', `cloudaccount/${managed}`, `cloudaccount/${foreign}`]);
    assert.equal(await provider(providerArn(managedIssuer)), undefined, 'the provider Keyless created is gone');
    assert.deepEqual(await provider(providerArn(foreignIssuer)), before, 'the one it did not create is exactly as it was');
    const left = (await aws.iam().send(new ListOpenIDConnectProvidersCommand({}))).OpenIDConnectProviderList?.map((p) => p.Arn);
    assert.ok(left?.includes(providerArn(foreignIssuer)));
  });

  describe('IssuerReachable', () => {
    const reachability = async (name: string, issuer: string) => {
      await account(name, { oidcIssuer: issuer });
      return accountCondition(name, 'IssuerReachable', (c) => c.status !== 'Unknown');
    };

    it('is Reachable for an issuer whose discovery document and JWKS a cloud can fetch', async () => {
      const c = await reachability(`mt-good-${suffix}`, issuers.publishIssuer('/good'));
      assert.deepEqual([c.status, c.reason], ['True', 'Reachable']);
      assert.match(c.message, /has 1 key, both fetched anonymously/);
    });

    it('is DiscoveryUnreachable where nothing is published, and turns Reachable once it is', async () => {
      const name = `mt-missing-${suffix}`;
      const c = await reachability(name, issuers.issuer('/later'));
      assert.deepEqual([c.status, c.reason], ['False', 'DiscoveryUnreachable']);
      assert.match(c.message, /answered HTTP 404 to an anonymous GET/);
      issuers.publishIssuer('/later');
      await accountCondition(name, 'IssuerReachable', (r) => r.reason === 'Reachable', 60_000);
    });

    it('is IssuerMismatch when the discovery document names another issuer', async () => {
      const issuer = issuers.issuer('/mismatch');
      issuers.publish('/mismatch/.well-known/openid-configuration', { issuer: `${issuer}/`, jwks_uri: `${issuer}/keys` });
      issuers.publish('/mismatch/keys', aJwks());
      const c = await reachability(`mt-mismatch-${suffix}`, issuer);
      assert.deepEqual([c.status, c.reason], ['False', 'IssuerMismatch']);
      assert.match(c.message, /differ only in the trailing slash/);
    });

    it('is JwksInvalid when the JWKS does not parse', async () => {
      const issuer = issuers.publishIssuer('/bad-jwks');
      issuers.publish('/bad-jwks/openid/v1/jwks', { status: 200, body: '<html>keys</html>' });
      const c = await reachability(`mt-badjwks-${suffix}`, issuer);
      assert.deepEqual([c.status, c.reason], ['False', 'JwksInvalid']);
    });

    it('is NotHttps when the jwks_uri is plain http', async () => {
      const issuer = issuers.issuer('/http-jwks');
      issuers.publish('/http-jwks/.well-known/openid-configuration', { issuer, jwks_uri: `http://127.0.0.1:1/keys` });
      const c = await reachability(`mt-http-${suffix}`, issuer);
      assert.deepEqual([c.status, c.reason], ['False', 'NotHttps']);
    });
  });
});
