import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1ServiceAccount } from '@kubernetes/client-node';
import type { CloudAccount, WorkloadIdentity } from '../../api/types.ts';
import { FakeArm } from '../../providers/aks-workload-identity/fake/arm.ts';
import { iamDataCatalogue } from '../../providers/aws/action-catalogue.ts';
import { FakeIam } from '../../providers/aws/fake/iam.ts';
import { FakeGcp } from '../../providers/gke-workload-identity/fake/gcp.ts';
import { KubeApiError } from '../../kube/api.ts';
import type { ClusterReader } from '../cluster.ts';
import { migrate, type MigrateDeps } from './migrate.ts';
import { renderManifests, renderReport } from './render.ts';

const ISSUER = 'https://oidc.example/cluster';
const HOST = 'oidc.example/cluster';
const PROVIDER = `arn:aws:iam::111122223333:oidc-provider/${HOST}`;
const catalogue = iamDataCatalogue();

function sa(namespace: string, name: string, annotations: Record<string, string>): V1ServiceAccount {
  return { metadata: { namespace, name, annotations } };
}

function awsAccount(name: string, guardrails: CloudAccount['spec']['guardrails'] = { allowAdoption: true }): CloudAccount {
  return { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name }, spec: { aws: { accountId: '111122223333', region: 'us-east-1' }, guardrails }, status: { issuer: ISSUER, oidcProviderArn: PROVIDER } };
}

/** The cluster as migrate reads it; `dryRun` decides what the API server says to each manifest. */
function cluster(serviceAccounts: V1ServiceAccount[], accounts: CloudAccount[], identities: WorkloadIdentity[] = [], dryRun: (wi: WorkloadIdentity) => string | undefined = () => undefined): ClusterReader & { dryRuns: string[] } {
  const dryRuns: string[] = [];
  return {
    dryRuns,
    workloadIdentities: (ns) => Promise.resolve(identities.filter((wi) => ns === undefined || wi.metadata.namespace === ns)),
    cloudAccounts: () => Promise.resolve(accounts),
    serviceAccounts: (ns) => Promise.resolve(serviceAccounts.filter((s) => ns === undefined || s.metadata?.namespace === ns)),
    serviceAccount: () => Promise.resolve(undefined),
    namespace: (name) => Promise.resolve({ metadata: { name, labels: {} } }),
    workload: () => Promise.resolve(undefined),
    mutatingWebhooks: () => Promise.resolve([]),
    dryRunCreate: (wi) => {
      dryRuns.push(wi.metadata.name);
      return Promise.resolve(dryRun(wi));
    },
  };
}

function trust(...subjects: string[]) {
  return JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Federated: PROVIDER }, Action: 'sts:AssumeRoleWithWebIdentity', Condition: { StringEquals: { [`${HOST}:sub`]: subjects } } }] });
}

async function iamWith(roles: { name: string; subjects: string[]; managed?: string[] }[]): Promise<FakeIam> {
  const iam = new FakeIam('111122223333');
  for (const r of roles) {
    iam.seedRole({ name: r.name, path: '/', trustPolicy: trust(...r.subjects), description: '', maxSessionDuration: 3600, tags: {} });
    await iam.putRolePolicy(r.name, 'p', JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::covers/*' }] }));
    for (const arn of r.managed ?? []) await iam.attachRolePolicy(r.name, arn);
  }
  iam.writes.length = 0;
  return iam;
}

function deps(c: ClusterReader, iam: FakeIam): MigrateDeps {
  const gcp = new FakeGcp('unused');
  const arm = new FakeArm();
  return {
    cluster: c,
    catalogue,
    clouds: {
      aws: () => iam,
      gcp: () => ({ getServiceAccount: (p, e) => gcp.getServiceAccount(p, e), getIamPolicy: (t) => gcp.getIamPolicy(t), listServiceAccounts: () => Promise.resolve([]), listBuckets: () => Promise.resolve([]), listTopics: () => Promise.resolve([]), listSecrets: () => Promise.resolve([]) }),
      azure: () => ({ msi: arm, authorization: arm }),
      azureInventory: { listIdentities: () => arm.listIdentities(), roleName: () => Promise.resolve(undefined) },
    },
  };
}

const roleArn = (name: string) => `arn:aws:iam::111122223333:role/${name}`;
const subject = (ns: string, name: string) => `system:serviceaccount:${ns}:${name}`;

describe('migrate', () => {
  it('writes the WorkloadIdentity that adopts a role, names it after the ServiceAccount (without -sa), and has the API server check it', async () => {
    const c = cluster([sa('shop', 'catalog-sa', { 'eks.amazonaws.com/role-arn': roleArn('catalog') })], [awsAccount('prod-aws')]);
    const iam = await iamWith([{ name: 'catalog', subjects: [subject('shop', 'catalog-sa')] }]);
    const result = await migrate(deps(c, iam), { namespace: 'shop', cloudAccount: undefined });
    assert.equal(result.manifests.length, 1);
    const wi = result.manifests[0]?.workloadIdentity;
    assert.deepEqual(wi?.metadata, { name: 'catalog', namespace: 'shop', annotations: { 'keyless.dev/adopt': roleArn('catalog') } });
    assert.deepEqual(wi?.spec.cloudAccountRef, { name: 'prod-aws' });
    assert.equal(wi?.spec.deletionPolicy, 'Orphan', 'backing out never deletes the role');
    assert.deepEqual(c.dryRuns, ['catalog']);
    assert.deepEqual(iam.writes, []);
    assert.match(renderManifests(result), /^---\n# ServiceAccount shop\/catalog-sa: adopts arn:aws:iam::111122223333:role\/catalog through CloudAccount prod-aws\n/);
  });

  it('notices an identity shared with a ServiceAccount of another namespace', async () => {
    const c = cluster([sa('shop', 'a', { 'eks.amazonaws.com/role-arn': roleArn('shared') }), sa('billing', 'b', { 'eks.amazonaws.com/role-arn': roleArn('shared') })], [awsAccount('prod-aws')]);
    const result = await migrate(deps(c, await iamWith([{ name: 'shared', subjects: [subject('shop', 'a')] }])), { namespace: 'shop', cloudAccount: undefined });
    assert.deepEqual(result.manifests, []);
    assert.match(renderReport(result), /shop\/a \(aws arn:aws:iam::111122223333:role\/shared\):\n {4}- the identity is shared with ServiceAccount billing\/b/);
  });

  it('picks another name when a WorkloadIdentity already has the ServiceAccount\'s', async () => {
    const taken = { apiVersion: 'keyless.dev/v1alpha1', kind: 'WorkloadIdentity', metadata: { name: 'catalog', namespace: 'shop' }, spec: { serviceAccountName: 'other-sa', cloudAccountRef: { name: 'prod-aws' }, aws: {} } } as WorkloadIdentity;
    const c = cluster([sa('shop', 'catalog-sa', { 'eks.amazonaws.com/role-arn': roleArn('catalog') })], [awsAccount('prod-aws')], [taken]);
    const result = await migrate(deps(c, await iamWith([{ name: 'catalog', subjects: [subject('shop', 'catalog-sa')] }])), { namespace: 'shop', cloudAccount: undefined });
    assert.equal(result.manifests[0]?.workloadIdentity.metadata.name, 'catalog-aws');
  });

  it('reports a ServiceAccount a WorkloadIdentity already manages, and plans nothing for it', async () => {
    const managing = { apiVersion: 'keyless.dev/v1alpha1', kind: 'WorkloadIdentity', metadata: { name: 'catalog', namespace: 'shop' }, spec: { serviceAccountName: 'catalog-sa', cloudAccountRef: { name: 'prod-aws' }, aws: {} } } as WorkloadIdentity;
    const c = cluster([sa('shop', 'catalog-sa', { 'eks.amazonaws.com/role-arn': roleArn('keyless-x') })], [awsAccount('prod-aws')], [managing]);
    const result = await migrate(deps(c, await iamWith([])), { namespace: 'shop', cloudAccount: undefined });
    assert.deepEqual(result.plans, []);
    assert.deepEqual(result.managed, ['shop/catalog-sa (aws)']);
  });

  const refusals: [string, { accounts: CloudAccount[]; managed?: string[]; dryRun?: string; only?: string }, RegExp][] = [
    ['an account that does not allow adoption', { accounts: [awsAccount('prod-aws', {})] }, /CloudAccount prod-aws does not allow adoption/],
    ['a managed policy the guardrails do not allow', { accounts: [awsAccount('prod-aws')], managed: ['arn:aws:iam::aws:policy/AdministratorAccess'] }, /guardrails refuse spec\.aws\.managedPolicyArns\[0\]: "arn:aws:iam::aws:policy\/AdministratorAccess" breaks guardrails\.aws\.allowedManagedPolicyArns/],
    ['a manifest the API server refuses', { accounts: [awsAccount('prod-aws')], dryRun: 'spec.aws.policy: Too many: 33' }, /the API server refuses the WorkloadIdentity: spec\.aws\.policy: Too many: 33/],
    ['two accounts that could both adopt it', { accounts: [awsAccount('a'), awsAccount('b')] }, /CloudAccounts a, b are all for AWS account 111122223333: choose one with --cloud-account/],
    ['no account for it', { accounts: [] }, /no aws CloudAccount is for AWS account 111122223333/],
  ];
  for (const [what, opts, why] of refusals) {
    it(`leaves a role alone for ${what}`, async () => {
      const c = cluster([sa('shop', 'catalog-sa', { 'eks.amazonaws.com/role-arn': roleArn('catalog') })], opts.accounts, [], () => opts.dryRun);
      const iam = await iamWith([{ name: 'catalog', subjects: [subject('shop', 'catalog-sa')], ...(opts.managed ? { managed: opts.managed } : {}) }]);
      const result = await migrate(deps(c, iam), { namespace: 'shop', cloudAccount: undefined });
      assert.deepEqual(result.manifests, []);
      assert.match(renderReport(result), why);
    });
  }

  it('scans only what --cloud-account can adopt, and chooses it among several', async () => {
    const c = cluster(
      [sa('shop', 'catalog-sa', { 'eks.amazonaws.com/role-arn': roleArn('catalog') }), sa('shop', 'orders-sa', { 'iam.gke.io/gcp-service-account': 'orders@p-123456.iam.gserviceaccount.com' })],
      [awsAccount('a'), awsAccount('b')],
    );
    const result = await migrate(deps(c, await iamWith([{ name: 'catalog', subjects: [subject('shop', 'catalog-sa')] }])), { namespace: 'shop', cloudAccount: 'b' });
    assert.deepEqual(result.plans.map((p) => p.source.serviceAccount), ['catalog-sa']);
    assert.equal(result.manifests[0]?.workloadIdentity.spec.cloudAccountRef.name, 'b');
  });

  it('says when the API server may not even dry-run the manifests', async () => {
    const c = cluster([sa('shop', 'catalog-sa', { 'eks.amazonaws.com/role-arn': roleArn('catalog') })], [awsAccount('prod-aws')]);
    c.dryRunCreate = () => Promise.reject(new KubeApiError('POST', '/apis/keyless.dev/v1alpha1/namespaces/shop/workloadidentities', 403, { message: 'forbidden' }));
    const result = await migrate(deps(c, await iamWith([{ name: 'catalog', subjects: [subject('shop', 'catalog-sa')] }])), { namespace: 'shop', cloudAccount: undefined });
    assert.equal(result.manifests.length, 1);
    assert.match(renderReport(result), /Warning: the manifests were not validated by the API server/);
  });
});
