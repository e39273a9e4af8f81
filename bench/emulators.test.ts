// The bench's cloud speaks the real wire formats: the in-bench IAM serves the operator's own IamPort over
// @aws-sdk/client-iam, and the proxy's throttling answers reach the operator as the `throttled` kind it backs off
// on. No timings are asserted. Run: node --test 'bench/**/*.test.ts'
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { IAMClient } from '@aws-sdk/client-iam';
import { CreatePodIdentityAssociationCommand, EKSClient } from '@aws-sdk/client-eks';
import { isCloudError } from '../src/providers/cloud-error.ts';
import { classifyAwsError } from '../src/providers/aws/errors.ts';
import { createIamPort } from '../src/providers/aws/iam-client.ts';
import type { IamPage, IamPageRequest } from '../src/providers/aws/iam-port.ts';
import type { CloudCall } from '../src/providers/instrument.ts';
import { awsDialect } from './cloud-dialects.ts';
import { startCloudProxy, type CloudProxy } from './cloud-proxy.ts';
import { startIamEmulator, type IamEmulator } from './iam-emulator.ts';

const credentials = { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench' };
const call: CloudCall = async (operation, fn) => {
  try {
    return await fn(new AbortController().signal);
  } catch (err) {
    throw classifyAwsError(operation, err);
  }
};
const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
const policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/*' }] };

/** Every item of a paged IamPort read, `maxItems` a page, and how many pages it took. */
async function everyPage<T>(fetch: (page: IamPageRequest) => Promise<IamPage<T>>, maxItems: number): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let pages = 0;
  let marker: string | undefined;
  do {
    const page = await fetch({ maxItems, ...(marker ? { marker } : {}) });
    items.push(...page.items);
    pages += 1;
    marker = page.marker;
  } while (marker);
  return { items, pages };
}

describe('bench cloud', () => {
  let iam: IamEmulator;
  let proxy: CloudProxy;
  before(async () => {
    iam = await startIamEmulator({ accountId: '123456789012', oidcProviderArns: ['arn:aws:iam::123456789012:oidc-provider/example.com'] });
    proxy = await startCloudProxy(awsDialect, { latencyMs: 0, writeRate: 0, writeBurst: 1, upstream: iam.endpoint });
  });
  after(async () => {
    await proxy.stop();
    await iam.stop();
  });
  const port = () => createIamPort(new IAMClient({ endpoint: proxy.endpoint, region: 'us-east-1', credentials, maxAttempts: 1 }), call);

  it('serves a role with trust, tags and inline policy the way IAM does, URL-encoding included', async () => {
    const p = port();
    assert.equal(await p.getRole('app'), undefined);
    const created = await p.createRole({ name: 'app', path: '/keyless/', trustPolicy: trust, description: 'd', maxSessionDuration: 7200, tags: { 'keyless.dev/cluster': 'bench' } });
    assert.equal(created.arn, 'arn:aws:iam::123456789012:role/keyless/app');
    await p.putRolePolicy('app', 'keyless', JSON.stringify(policy));
    const role = await p.getRole('APP');
    assert.deepEqual(role?.trustPolicy, JSON.parse(trust));
    assert.equal(role?.maxSessionDuration, 7200);
    assert.deepEqual(role?.tags, { 'keyless.dev/cluster': 'bench' });
    assert.deepEqual(await p.listRolePolicies('app'), ['keyless']);
    assert.deepEqual(await p.getRolePolicy('app', 'keyless'), policy);
    assert.deepEqual(await p.listAttachedRolePolicies('app'), []);
    assert.deepEqual(await p.listOpenIDConnectProviders(), ['arn:aws:iam::123456789012:oidc-provider/example.com']);
    assert.equal(iam.countRoles({ 'keyless.dev/cluster': 'bench' }), 1);
  });

  it('pages the account\'s roles with their grants (GetAccountAuthorizationDetails) and a path\'s roles with their session length (ListRoles)', async () => {
    const p = port();
    const boundary = 'arn:aws:iam::123456789012:policy/boundary';
    await p.createRole({ name: 'snap-a', path: '/snap/', trustPolicy: trust, description: 'first', maxSessionDuration: 7200, permissionsBoundaryArn: boundary, tags: { 'keyless.dev/cluster': 'snap' } });
    await p.createRole({ name: 'snap-b', path: '/snap/', trustPolicy: trust, description: '', maxSessionDuration: 3600, tags: {} });
    await p.createRole({ name: 'snap-c', path: '/snap-other/', trustPolicy: trust, description: 'third', maxSessionDuration: 3600, tags: {} });
    await p.putRolePolicy('snap-a', 'keyless', JSON.stringify(policy));
    await p.attachRolePolicy('snap-a', 'arn:aws:iam::aws:policy/ReadOnlyAccess');
    try {
      const details = await everyPage((page) => p.getAccountAuthorizationDetails(page), 2);
      assert.ok(details.pages > 1, 'three roles at two a page');
      const ours = details.items.filter((r) => r.name.startsWith('snap-'));
      assert.deepEqual(ours.map((r) => r.name), ['snap-a', 'snap-b', 'snap-c']);
      assert.deepEqual(ours[0], {
        name: 'snap-a',
        arn: 'arn:aws:iam::123456789012:role/snap/snap-a',
        path: '/snap/',
        trustPolicy: JSON.parse(trust) as unknown,
        permissionsBoundaryArn: boundary,
        tags: { 'keyless.dev/cluster': 'snap' },
        inlinePolicies: { keyless: policy },
        managedPolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'],
      });
      const listed = await everyPage((page) => p.listRoles('/snap/', page), 1);
      assert.equal(listed.pages, 2);
      assert.deepEqual(listed.items, [
        { name: 'snap-a', arn: 'arn:aws:iam::123456789012:role/snap/snap-a', path: '/snap/', maxSessionDuration: 7200, description: 'first' },
        { name: 'snap-b', arn: 'arn:aws:iam::123456789012:role/snap/snap-b', path: '/snap/', maxSessionDuration: 3600 },
      ]);
      await assert.rejects(p.listRoles('/', { maxItems: 1001 }), (err) => isCloudError(err) && err.code === 'ValidationError');
    } finally {
      await p.deleteRolePolicy('snap-a', 'keyless');
      await p.detachRolePolicy('snap-a', 'arn:aws:iam::aws:policy/ReadOnlyAccess');
      for (const name of ['snap-a', 'snap-b', 'snap-c']) await p.deleteRole(name);
    }
  });

  it('answers EntityAlreadyExists, DeleteConflict and NoSuchEntity with the codes the operator classifies', async () => {
    const p = port();
    await assert.rejects(p.createRole({ name: 'App', path: '/', trustPolicy: trust, description: '', maxSessionDuration: 3600, tags: {} }), (err) => isCloudError(err, 'alreadyExists'));
    await assert.rejects(p.deleteRole('app').then(() => p.getRole('app')), (err) => isCloudError(err, 'retryable') && err.code === 'DeleteConflict');
    await p.deleteRolePolicy('app', 'keyless');
    await p.deleteRole('app');
    assert.equal(await p.getRole('app'), undefined);
    assert.equal(iam.countRoles({}), 0);
  });

  it('throttles writes beyond the limit with IAM Throttling and EKS ThrottlingException, per service, and never reads', async () => {
    proxy.configure({ writeRate: 0.001, writeBurst: 1 });
    try {
      const p = port();
      await p.createRole({ name: 'first', path: '/', trustPolicy: trust, description: '', maxSessionDuration: 3600, tags: {} });
      await assert.rejects(p.putRolePolicy('first', 'keyless', JSON.stringify(policy)), (err) => isCloudError(err, 'throttled') && err.code === 'Throttling');
      assert.ok(await p.getRole('first'));
      const eks = new EKSClient({ endpoint: proxy.endpoint, region: 'us-east-1', credentials, maxAttempts: 1 });
      const associate = () =>
        eks.send(new CreatePodIdentityAssociationCommand({ clusterName: 'c', namespace: 'n', serviceAccount: 's', roleArn: 'arn:aws:iam::123456789012:role/first', clientRequestToken: 't' }));
      // EKS has its own bucket: the first write passes the limit (and fails upstream, which serves only IAM).
      await assert.rejects(associate(), (err: Error) => err.name !== 'ThrottlingException');
      await assert.rejects(associate(), (err: Error) => err.name === 'ThrottlingException' && isCloudError(classifyAwsError('CreatePodIdentityAssociation', err), 'throttled'));
      const counts = proxy.snapshot();
      assert.equal(counts.byOperation['PutRolePolicy']?.throttled, 1);
      assert.equal(counts.byOperation['CreateRole']?.throttled, 0);
      assert.equal(counts.byOperation['CreatePodIdentityAssociation']?.throttled, 1);
    } finally {
      proxy.configure({ writeRate: 0 });
    }
  });
});
