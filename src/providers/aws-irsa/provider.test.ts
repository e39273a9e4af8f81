import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CloudAccount, WorkloadIdentitySpec } from '../../api/types.ts';
import { FakeIam } from '../aws/fake/iam.ts';
import { INLINE_POLICY_NAME } from '../aws/role.ts';
import { ProviderError, type IdentityContext } from '../types.ts';
import { IrsaProvider } from './provider.ts';

const issuer = 'https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE';
const providerArn = 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE';

function context(spec: Partial<WorkloadIdentitySpec['aws']> = {}): IdentityContext {
  const account: CloudAccount = {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name: 'prod' },
    spec: { aws: { accountId: '123456789012', region: 'us-east-1', rolePath: '/keyless/', roleNamePrefix: 'keyless-', tags: { team: 'platform' } } },
    status: { issuer, oidcProviderArn: providerArn },
  };
  return {
    cluster: 'c1',
    namespace: 'bookstore',
    name: 'catalog',
    serviceAccountName: 'catalog-sa',
    subject: 'system:serviceaccount:bookstore:catalog-sa',
    issuer,
    account,
    spec: {
      serviceAccountName: 'catalog-sa',
      cloudAccountRef: { name: 'prod' },
      aws: { policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::covers/*'] }], ...spec },
    },
  };
}

async function converge(provider: IrsaProvider, ctx: IdentityContext) {
  const desired = provider.desired(ctx);
  return provider.ensure(desired, await provider.observe(desired));
}

describe('IrsaProvider', () => {
  it('creates a role trusting exactly one subject and audience, with the inline policy and ownership tags', async () => {
    const iam = new FakeIam();
    const result = await converge(new IrsaProvider(iam), context({ maxSessionDuration: '2h' }));
    const [role] = [...iam.roles.values()];
    assert.ok(role);
    assert.match(role.name, /^keyless-bookstore-catalog-[0-9a-f]{8}$/);
    assert.equal(role.path, '/keyless/');
    assert.equal(role.maxSessionDuration, 7200);
    assert.deepEqual(role.trustPolicy, {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'KeylessIRSA',
          Effect: 'Allow',
          Principal: { Federated: providerArn },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: {
            StringEquals: {
              'oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE:sub': 'system:serviceaccount:bookstore:catalog-sa',
              'oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE:aud': 'sts.amazonaws.com',
            },
          },
        },
      ],
    });
    assert.deepEqual(role.tags, { team: 'platform', 'keyless.dev/cluster': 'c1', 'keyless.dev/namespace': 'bookstore', 'keyless.dev/name': 'catalog' });
    assert.deepEqual(role.inline.get(INLINE_POLICY_NAME), {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::covers/*'] }],
    });
    assert.deepEqual(result.serviceAccountAnnotations, { 'eks.amazonaws.com/role-arn': role.arn });
    assert.equal(result.status.identity, role.arn);
    assert.deepEqual(iam.writes.map((w) => w.split(':')[0]), ['CreateRole', 'PutRolePolicy']);
  });

  it('writes nothing when the cloud already matches', async () => {
    const iam = new FakeIam();
    const provider = new IrsaProvider(iam);
    await converge(provider, context());
    iam.writes.length = 0;
    const again = await converge(provider, context());
    assert.deepEqual(iam.writes, []);
    assert.deepEqual(again.changes, []);
  });

  it('repairs drift: a widened trust, a foreign inline policy and an extra managed policy', async () => {
    const iam = new FakeIam();
    const provider = new IrsaProvider(iam);
    await converge(provider, context());
    const [role] = [...iam.roles.values()];
    assert.ok(role);
    role.trustPolicy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Federated: providerArn }, Action: 'sts:AssumeRoleWithWebIdentity' }] };
    role.inline.set('backdoor', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] });
    role.attached.add('arn:aws:iam::aws:policy/AdministratorAccess');

    const result = await converge(provider, context());
    assert.deepEqual(result.changes.map((c) => c.action).sort(), ['PolicyDetached', 'PolicyRemoved', 'TrustUpdated']);
    assert.deepEqual([...role.inline.keys()], [INLINE_POLICY_NAME]);
    assert.deepEqual([...role.attached], []);
    assert.equal(JSON.stringify(role.trustPolicy).includes('system:serviceaccount:bookstore:catalog-sa'), true);
  });

  it('refuses a role with the derived name that carries no marker, and changes nothing', async () => {
    const iam = new FakeIam();
    const provider = new IrsaProvider(iam);
    const desired = provider.desired(context());
    iam.seedRole({ name: desired.role.name, path: '/keyless/', trustPolicy: '{"Version":"2012-10-17","Statement":[]}', description: 'someone else', maxSessionDuration: 3600, tags: {} });
    await assert.rejects(provider.ensure(desired, await provider.observe(desired)), (err: unknown) => err instanceof ProviderError && err.reason === 'NotOwned' && !err.retryable);
    assert.deepEqual(iam.writes, []);
    const revoked = await provider.delete(desired);
    assert.equal(revoked.complete, true);
    assert.ok(iam.roles.has(desired.role.name.toLowerCase()), 'the foreign role survives delete');
  });

  it('finds its own role again after a crash between CreateRole and the status write', async () => {
    const iam = new FakeIam();
    const provider = new IrsaProvider(iam);
    const desired = provider.desired(context());
    const staleObservation = await provider.observe(desired);
    await provider.ensure(desired, staleObservation);
    // A restarted operator that observed before the create completed still ends with one role.
    await provider.ensure(desired, staleObservation);
    assert.equal(iam.roles.size, 1);
  });

  it('deletes policies, attachments and then the role', async () => {
    const iam = new FakeIam();
    const provider = new IrsaProvider(iam);
    await converge(provider, context({ managedPolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'] }));
    iam.writes.length = 0;
    const revoked = await provider.delete(provider.desired(context()));
    assert.equal(revoked.complete, true);
    assert.deepEqual(iam.writes.map((w) => w.split(':')[0]), ['DeleteRolePolicy', 'DetachRolePolicy', 'DeleteRole']);
    assert.equal(iam.roles.size, 0);
  });

  it('reports specs whose rendered documents exceed IAM quotas', () => {
    const provider = new IrsaProvider(new FakeIam());
    const huge = Array.from({ length: 200 }, (_, i) => ({ effect: 'Allow' as const, actions: ['s3:GetObject'], resources: [`arn:aws:s3:::bucket-${i}/objects/*`] }));
    const problems = provider.validate(context({ policy: huge }));
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /10240-character inline policy quota/);
    assert.deepEqual(provider.validate(context()), []);
  });
});
