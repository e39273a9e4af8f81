import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AwsMechanism, CloudAccount, WorkloadIdentitySpec } from '../../api/types.ts';
import { FakeClock } from '../../controller/fake-clock.ts';
import { converge, revokeIntended } from '../fake/contract.ts';
import { fakeToken } from '../fake/token.ts';
import { ProviderError, type IdentityContext } from '../types.ts';
import { AccountSnapshot, SETTLE_MS } from './account-snapshot.ts';
import { FakeEks } from './fake/eks.ts';
import { FakeExchange } from './fake/exchange.ts';
import { FakeIam } from './fake/iam.ts';
import { AwsProvider } from './provider.ts';
import { INLINE_POLICY_NAME } from './role.ts';
import type { CredentialPath, WorkloadPods } from './workload-pods.ts';

const issuer = 'https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE';
const providerArn = 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE';

function context(spec: Partial<WorkloadIdentitySpec['aws']> = {}, annotations: Record<string, string> | undefined = {}): IdentityContext {
  const account: CloudAccount = {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name: 'prod' },
    spec: { aws: { accountId: '123456789012', region: 'us-east-1', clusterName: 'prod', rolePath: '/keyless/', roleNamePrefix: 'keyless-', tags: { team: 'platform' } } },
    status: { issuer, oidcProviderArn: providerArn },
  };
  return {
    cluster: 'c1',
    namespace: 'bookstore',
    name: 'catalog',
    uid: 'uid-1',
    serviceAccountAnnotations: annotations,
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

/** Pods that depend on a credential path, as the reconciler's pod lookup would report them. */
class FakePods implements WorkloadPods {
  dependent: Record<CredentialPath, number> = { IRSA: 0, PodIdentity: 0 };
  async countDependent(_ns: string, _sa: string, path: CredentialPath, _roleArn: string): Promise<number> {
    return Promise.resolve(this.dependent[path]);
  }
}

function world() {
  const iam = new FakeIam();
  const eks = new FakeEks();
  const pods = new FakePods();
  const provider = (mechanism: AwsMechanism) => new AwsProvider(mechanism, { iam, eks, pods, exchange: new FakeExchange(iam, eks) });
  return { iam, eks, pods, irsa: provider('IRSA'), pod: provider('PodIdentity') };
}

const sids = (trust: unknown) => ((trust as { Statement: { Sid: string }[] }).Statement ?? []).map((s) => s.Sid).sort();

describe('AwsProvider (IRSA)', () => {
  it('creates a role trusting exactly one subject and audience, with the inline policy and ownership tags', async () => {
    const iam = new FakeIam();
    const result = await converge(new AwsProvider('IRSA', { iam, eks: new FakeEks(), pods: new FakePods(), exchange: new FakeExchange(iam, new FakeEks()) }), context({ maxSessionDuration: '2h' }));
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
    const provider = new AwsProvider('IRSA', { iam, eks: new FakeEks(), pods: new FakePods(), exchange: new FakeExchange(iam, new FakeEks()) });
    await converge(provider, context());
    iam.writes.length = 0;
    const again = await converge(provider, context());
    assert.deepEqual(iam.writes, []);
    assert.deepEqual(again.changes, []);
  });

  it('repairs drift: a widened trust, a foreign inline policy and an extra managed policy', async () => {
    const iam = new FakeIam();
    const provider = new AwsProvider('IRSA', { iam, eks: new FakeEks(), pods: new FakePods(), exchange: new FakeExchange(iam, new FakeEks()) });
    await converge(provider, context());
    const [role] = [...iam.roles.values()];
    assert.ok(role);
    role.trustPolicy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Federated: providerArn }, Action: 'sts:AssumeRoleWithWebIdentity' }] };
    role.inline.set('backdoor', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] });
    role.attached.add('arn:aws:iam::aws:policy/AdministratorAccess');

    const result = await converge(provider, context());
    assert.deepEqual(result.changes.map((c: { action: string }) => c.action).sort(), ['PolicyDetached', 'PolicyRemoved', 'TrustUpdated']);
    assert.deepEqual([...role.inline.keys()], [INLINE_POLICY_NAME]);
    assert.deepEqual([...role.attached], []);
    assert.equal(JSON.stringify(role.trustPolicy).includes('system:serviceaccount:bookstore:catalog-sa'), true);
  });

  it('refuses a role with the derived name that carries no marker, and changes nothing', async () => {
    const iam = new FakeIam();
    const provider = new AwsProvider('IRSA', { iam, eks: new FakeEks(), pods: new FakePods(), exchange: new FakeExchange(iam, new FakeEks()) });
    const desired = provider.desired(context());
    iam.seedRole({ name: desired.role.name, path: '/keyless/', trustPolicy: '{"Version":"2012-10-17","Statement":[]}', description: 'someone else', maxSessionDuration: 3600, tags: {} });
    await assert.rejects(provider.ensure(desired, await provider.observe(desired)), (err: unknown) => err instanceof ProviderError && err.reason === 'NotOwned' && !err.retryable);
    assert.deepEqual(iam.writes, []);
    const revoked = await revokeIntended(provider, context());
    assert.equal(revoked.complete, true);
    assert.ok(iam.roles.has(desired.role.name.toLowerCase()), 'the foreign role survives delete');
  });

  it('finds its own role again after a crash between CreateRole and the status write', async () => {
    const iam = new FakeIam();
    const provider = new AwsProvider('IRSA', { iam, eks: new FakeEks(), pods: new FakePods(), exchange: new FakeExchange(iam, new FakeEks()) });
    const desired = provider.desired(context());
    const staleObservation = await provider.observe(desired);
    await provider.ensure(desired, staleObservation);
    // A restarted operator that observed before the create completed still ends with one role.
    await provider.ensure(desired, staleObservation);
    assert.equal(iam.roles.size, 1);
  });

  it('deletes policies, attachments and then the role', async () => {
    const iam = new FakeIam();
    const provider = new AwsProvider('IRSA', { iam, eks: new FakeEks(), pods: new FakePods(), exchange: new FakeExchange(iam, new FakeEks()) });
    await converge(provider, context({ managedPolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'] }));
    iam.writes.length = 0;
    const revoked = await revokeIntended(provider, context());
    assert.equal(revoked.complete, true);
    assert.deepEqual(iam.writes.map((w) => w.split(':')[0]), ['DeleteRolePolicy', 'DetachRolePolicy', 'DeleteRole']);
    assert.equal(iam.roles.size, 0);
  });

  it('reports specs whose rendered documents exceed IAM quotas', () => {
    const provider = new AwsProvider('IRSA', { iam: new FakeIam(), eks: new FakeEks(), pods: new FakePods(), exchange: new FakeExchange(new FakeIam(), new FakeEks()) });
    const huge = Array.from({ length: 200 }, (_, i) => ({ effect: 'Allow' as const, actions: ['s3:GetObject'], resources: [`arn:aws:s3:::bucket-${i}/objects/*`] }));
    const problems = provider.validate(context({ policy: huge }));
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /10240-character inline policy quota/);
    assert.deepEqual(provider.validate(context()), []);
  });
});

describe('AwsProvider adoption of a role named in keyless.dev/adopt', () => {
  const HAND_MADE = 'arn:aws:iam::123456789012:role/teams/catalog-reader';
  const handMadeTrust = (sub: string, operator = 'StringEquals') =>
    JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Federated: providerArn }, Action: 'sts:AssumeRoleWithWebIdentity', Condition: { [operator]: { 'oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE:sub': sub } } }],
    });
  const adopting = (overrides: Partial<IdentityContext> = {}): IdentityContext => ({ ...context(), adopt: true, adoptIdentity: HAND_MADE, ...overrides });
  const seed = async (iam: FakeIam, trust: string) => {
    iam.seedRole({ name: 'catalog-reader', path: '/teams/', trustPolicy: trust, description: 'made by hand', maxSessionDuration: 3600, tags: { owner: 'catalog-team' } });
    await iam.putRolePolicy('catalog-reader', 'read-covers', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::covers/*' }] }));
    iam.writes.length = 0;
  };

  it('takes over the named role that trusts this ServiceAccount: same ARN, our marker and trust, exactly the spec', async () => {
    const { iam, irsa } = world();
    await seed(iam, handMadeTrust('system:serviceaccount:bookstore:catalog-sa'));
    const result = await converge(irsa, adopting());
    assert.equal(iam.roles.size, 1, 'no new role');
    const role = iam.roles.get('catalog-reader');
    assert.ok(role);
    assert.equal(result.status.identity, HAND_MADE);
    assert.deepEqual(result.serviceAccountAnnotations, { 'eks.amazonaws.com/role-arn': HAND_MADE });
    assert.equal(role.tags['owner'], 'catalog-team', 'its own tags stay');
    assert.equal(role.tags['keyless.dev/name'], 'catalog');
    assert.deepEqual(sids(role.trustPolicy), ['KeylessIRSA']);
    assert.deepEqual([...role.inline.keys()], [INLINE_POLICY_NAME], 'the hand-made inline policy gives way to the spec, after it is in place');
    assert.deepEqual(iam.writes.map((w) => w.split(':')[0]).slice(0, 2), ['TagRole', 'UpdateAssumeRolePolicy']);
    assert.equal(irsa.continues(result.record, adopting()), true);
    assert.equal(irsa.continues(result.record, context()), false, 'without the annotation the role is not this identity');
  });

  it('refuses a named role whose trust does not name exactly this ServiceAccount, and changes nothing', async () => {
    const { iam, irsa } = world();
    await seed(iam, handMadeTrust('system:serviceaccount:bookstore:*', 'StringLike'));
    const desired = irsa.desired(adopting());
    await assert.rejects(
      irsa.ensure(desired, await irsa.observe(desired)),
      (err: unknown) => err instanceof ProviderError && err.reason === 'NotOwned' && /does not let system:serviceaccount:bookstore:catalog-sa assume it/.test(err.message),
    );
    assert.deepEqual(iam.writes, []);
  });

  it('refuses it where the CloudAccount does not allow adoption, as with the derived name', () => {
    const { irsa } = world();
    const ctx = adopting({ adopt: false });
    assert.match(irsa.validate(ctx).join(' '), /does not allow adoption \(spec\.guardrails\.allowAdoption\)/);
    assert.deepEqual(irsa.validate({ ...ctx, record: { aws: { accountId: '123456789012', region: 'us-east-1', roleName: 'catalog-reader', roleArn: HAND_MADE } } }), [], 'what was adopted stays adopted');
  });

  const invalid: [string, string][] = [
    ['a role of another account', 'arn:aws:iam::999999999999:role/catalog-reader'],
    ['another partition', 'arn:aws-cn:iam::123456789012:role/catalog-reader'],
    ['something else than a role ARN', 'yes'],
  ];
  for (const [what, value] of invalid) {
    it(`rejects ${what} as the identity to adopt`, () => {
      const { irsa } = world();
      assert.match(irsa.validate(adopting({ adoptIdentity: value })).join(' '), /is neither "true" nor an IAM role ARN in account 123456789012/);
    });
  }
});

describe('AwsProvider (Pod Identity)', () => {
  it('creates a role trusting only pods.eks.amazonaws.com with this namespace, ServiceAccount and cluster, and the association', async () => {
    const w = world();
    const result = await converge(w.pod, context());
    const [role] = [...w.iam.roles.values()];
    assert.deepEqual(role?.trustPolicy, {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'KeylessPodIdentity',
          Effect: 'Allow',
          Principal: { Service: 'pods.eks.amazonaws.com' },
          Action: ['sts:AssumeRole', 'sts:TagSession'],
          Condition: {
            StringEquals: {
              'aws:RequestTag/kubernetes-namespace': 'bookstore',
              'aws:RequestTag/kubernetes-service-account': 'catalog-sa',
              'aws:RequestTag/eks-cluster-arn': 'arn:aws:eks:us-east-1:123456789012:cluster/prod',
            },
          },
        },
      ],
    });
    const [association] = [...w.eks.associations.values()];
    assert.equal(association?.roleArn, role?.arn);
    assert.deepEqual(association?.tags, { 'keyless.dev/cluster': 'c1', 'keyless.dev/namespace': 'bookstore', 'keyless.dev/name': 'catalog' });
    assert.deepEqual(result.serviceAccountAnnotations, {});
    assert.equal(result.status.aws?.associationId, association?.associationId);
    assert.match(result.serviceAccountHint ?? '', /eks-pod-identity-agent/);
    w.iam.writes.length = 0;
    w.eks.writes.length = 0;
    await converge(w.pod, context());
    assert.deepEqual([...w.iam.writes, ...w.eks.writes], [], 'steady state writes nothing');
  });

  it('reports a foreign association for the same ServiceAccount as a Conflict naming it, and leaves it alone', async () => {
    const w = world();
    const foreign = w.eks.seed({ clusterName: 'prod', namespace: 'bookstore', serviceAccount: 'catalog-sa', roleArn: 'arn:aws:iam::123456789012:role/other', tags: {} });
    await assert.rejects(converge(w.pod, context()), (err: unknown) => err instanceof ProviderError && err.reason === 'Conflict' && err.message.includes(foreign.associationId));
    assert.equal(w.eks.associations.get(foreign.associationId)?.roleArn, 'arn:aws:iam::123456789012:role/other');
    const revoked = await revokeIntended(w.pod, context());
    assert.equal(revoked.complete, true);
    assert.ok(w.eks.associations.has(foreign.associationId), 'delete leaves the foreign association');
  });

  it('deletes the association first and waits for EKS to confirm before deleting the role', async () => {
    const w = world();
    await converge(w.pod, context());
    w.eks.deleteLag = 1;
    const first = await revokeIntended(w.pod, context());
    assert.equal(first.complete, false);
    assert.equal(w.iam.roles.size, 1, 'the role waits');
    const second = await revokeIntended(w.pod, context());
    assert.equal(second.complete, true);
    assert.equal(w.iam.roles.size, 0);
  });

  it('needs the cluster name', () => {
    const w = world();
    const ctx = context();
    ctx.account = { ...ctx.account, spec: { aws: { accountId: '123456789012', region: 'us-east-1' } } };
    assert.match(w.pod.validate(ctx).join(), /spec.aws.clusterName/);
  });
});

describe('AwsProvider migration', () => {
  it('IRSA to Pod Identity: bridges both trusts, then drops IRSA once no pod and no annotation need it', async () => {
    const w = world();
    await converge(w.irsa, context());
    const [role] = [...w.iam.roles.values()];
    w.pods.dependent.IRSA = 2;

    // The switch, while the annotation is still on and two IRSA pods run.
    const bridged = await converge(w.pod, context({}, { 'eks.amazonaws.com/role-arn': role?.arn ?? '' }));
    assert.deepEqual(sids(role?.trustPolicy), ['KeylessIRSA', 'KeylessPodIdentity']);
    assert.equal(w.eks.associations.size, 1, 'the new path exists');
    assert.deepEqual(bridged.serviceAccountAnnotations, {}, 'the annotation is to be removed');
    assert.match(bridged.waitingFor ?? '', /2 running pod\(s\).*IRSA/);

    // The annotation is gone but the old pods still run: IRSA stays.
    await converge(w.pod, context({}, {}));
    assert.deepEqual(sids(role?.trustPolicy), ['KeylessIRSA', 'KeylessPodIdentity']);

    // The pods restarted.
    w.pods.dependent.IRSA = 0;
    const done = await converge(w.pod, context({}, {}));
    assert.deepEqual(sids(role?.trustPolicy), ['KeylessPodIdentity']);
    assert.equal(done.waitingFor, undefined);
    assert.ok(done.changes.some((c) => c.action === 'LegacyTrustRemoved'));
  });

  it('Pod Identity to IRSA: keeps the association until no pod depends on it, then deletes it', async () => {
    const w = world();
    await converge(w.pod, context());
    const [role] = [...w.iam.roles.values()];
    w.pods.dependent.PodIdentity = 1;

    const bridged = await converge(w.irsa, context({}, {}));
    assert.deepEqual(sids(role?.trustPolicy), ['KeylessIRSA', 'KeylessPodIdentity']);
    assert.equal(w.eks.associations.size, 1);
    assert.deepEqual(bridged.serviceAccountAnnotations, { 'eks.amazonaws.com/role-arn': role?.arn });

    w.pods.dependent.PodIdentity = 0;
    await converge(w.irsa, context({}, { 'eks.amazonaws.com/role-arn': role?.arn ?? '' }));
    assert.deepEqual(sids(role?.trustPolicy), ['KeylessIRSA']);
    assert.equal(w.eks.associations.size, 0);
  });

  it('re-renders the old path for the exact subject instead of copying a widened statement from the role', async () => {
    const w = world();
    await converge(w.irsa, context());
    const [role] = [...w.iam.roles.values()];
    assert.ok(role);
    // Someone widened the IRSA statement: no conditions at all.
    role.trustPolicy = { Version: '2012-10-17', Statement: [{ Sid: 'KeylessIRSA', Effect: 'Allow', Principal: { Federated: providerArn }, Action: 'sts:AssumeRoleWithWebIdentity' }] };
    w.pods.dependent.IRSA = 1;
    await converge(w.pod, context({}, { 'eks.amazonaws.com/role-arn': role.arn }));
    const irsa = (role.trustPolicy as { Statement: { Sid: string; Condition?: unknown }[] }).Statement.find((st) => st.Sid === 'KeylessIRSA');
    assert.deepEqual(irsa?.Condition, {
      StringEquals: { 'oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE:sub': 'system:serviceaccount:bookstore:catalog-sa', 'oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE:aud': 'sts.amazonaws.com' },
    });
  });
});

describe('AwsProvider without an IAM OIDC provider', () => {
  const noProvider = (ctx: IdentityContext): IdentityContext => ({ ...ctx, account: { ...ctx.account, status: { issuer } } });

  it('validates and builds its desired state, and reports the missing provider from ensure, before any write', async () => {
    const w = world();
    const ctx = noProvider(context());
    assert.deepEqual(w.irsa.validate(ctx), []);
    const desired = w.irsa.desired(ctx);
    await assert.rejects(w.irsa.ensure(desired, await w.irsa.observe(desired)), (err: unknown) => err instanceof ProviderError && err.reason === 'OIDCProviderNotFound');
    assert.deepEqual(w.iam.writes, []);
  });

  it('still deletes what exists', async () => {
    const w = world();
    await converge(w.irsa, context());
    const revoked = await revokeIntended(w.irsa, noProvider(context()));
    assert.equal(revoked.complete, true);
    assert.equal(w.iam.roles.size, 0);
  });
});


describe('AwsProvider record', () => {
  it('records the role and the cluster before anything exists, and the same after ensure', async () => {
    const w = world();
    const desired = w.pod.desired(context());
    const intent = w.pod.intent(desired, await w.pod.observe(desired));
    assert.deepEqual(intent, { aws: { accountId: '123456789012', region: 'us-east-1', roleName: desired.role.name, roleArn: desired.role.arn, clusterName: 'prod' } });
    const result = await w.pod.ensure(desired, await w.pod.observe(desired));
    assert.deepEqual(result.record, intent);
  });

  it('continues a record of the same role in the same account and cluster, and no other', () => {
    const w = world();
    const ctx = context();
    const own = w.irsa.intent(w.irsa.desired(ctx), { role: { role: undefined, inlinePolicyNames: [], inlinePolicy: undefined, managedPolicyArns: [] }, association: undefined });
    const aws = own.aws;
    assert.ok(aws);
    assert.equal(w.irsa.continues(own, ctx), true);
    assert.equal(w.irsa.continues({ aws: { ...aws, roleName: aws.roleName.toUpperCase() } }, ctx), true, 'IAM role names are case-insensitive');
    assert.equal(w.irsa.continues({ aws: { ...aws, accountId: '210987654321' } }, ctx), false);
    assert.equal(w.irsa.continues({ aws: { ...aws, roleName: 'other-prefix-catalog' } }, ctx), false, 'a roleNamePrefix change names another role');
    assert.equal(aws.clusterName, undefined, 'an IRSA identity has no association to record');
    assert.equal(w.irsa.continues({ aws: { ...aws, region: 'eu-west-1' } }, ctx), true, 'so a region or cluster change leaves its role alone');
    assert.equal(w.irsa.continues({ aws: { ...aws, clusterName: 'prod', region: 'eu-west-1' } }, ctx), false, 'an association in another region is another object');
    assert.equal(w.irsa.continues({ gcp: { projectId: 'p', projectNumber: '1', workloadPool: 'p.svc.id.goog' } }, ctx), false);
  });

  it('revokes from the record alone, after the account moved to another cluster name', async () => {
    const w = world();
    await converge(w.pod, context());
    const desired = w.pod.desired(context());
    const record = w.pod.intent(desired, await w.pod.observe(desired));
    // The CloudAccount now names another cluster: the spec of the moment would look in the wrong place.
    const moved = context();
    moved.account = { ...moved.account, spec: { aws: { ...moved.account.spec.aws, accountId: '123456789012', region: 'us-east-1', clusterName: 'elsewhere' } } };
    assert.equal(w.pod.continues(record, moved), false);
    const revoked = await w.pod.revoke(record, moved);
    assert.equal(revoked.complete, true);
    assert.equal(w.eks.associations.size, 0, 'the association in the recorded cluster is gone');
    assert.equal(w.iam.roles.size, 0);
  });

  it('revokes nothing that carries another owner marker', async () => {
    const w = world();
    await converge(w.irsa, context());
    const desired = w.irsa.desired(context());
    const record = w.irsa.intent(desired, await w.irsa.observe(desired));
    const revoked = await w.irsa.revoke(record, { cluster: 'c1', namespace: 'bookstore', name: 'someone-else', serviceAccountName: 'catalog-sa' });
    assert.equal(revoked.complete, true);
    assert.equal(w.iam.roles.size, 1, 'the role is not the other owner\'s to delete');
  });
});

describe('AwsProvider credentials (the exchange a pod performs)', () => {
  const token = (sub: string, aud: string) => fakeToken({ iss: issuer, sub, aud });

  it('IRSA: the pod token of the ServiceAccount assumes the role; another ServiceAccount is refused by the trust', async () => {
    const w = world();
    w.iam.oidcProviders.push(providerArn);
    const { status } = await converge(w.irsa, context());
    const ok = await w.irsa.credentials.exchange(context(), status, token('system:serviceaccount:bookstore:catalog-sa', w.irsa.credentials.audience(context())));
    assert.deepEqual([ok.ok, ok.reason], [true, 'Verified']);
    const other = await w.irsa.credentials.exchange(context(), status, token('system:serviceaccount:bookstore:intruder', 'sts.amazonaws.com'));
    assert.deepEqual([other.ok, other.reason], [false, 'TrustRejected']);
  });

  it('IRSA: no IAM OIDC provider for the issuer is IssuerNotTrusted, with the command that creates it', async () => {
    const w = world();
    const { status } = await converge(w.irsa, context());
    const verdict = await w.irsa.credentials.exchange(context(), status, token('system:serviceaccount:bookstore:catalog-sa', 'sts.amazonaws.com'));
    assert.equal(verdict.reason, 'IssuerNotTrusted');
    assert.match(verdict.message, /aws iam create-open-id-connect-provider --url https:\/\/oidc\.eks/);
  });

  it('Pod Identity: EKS Auth answers for the association of the token\'s ServiceAccount; none for another', async () => {
    const w = world();
    const { status } = await converge(w.pod, context());
    assert.equal(w.pod.credentials.audience(context()), 'pods.eks.amazonaws.com');
    assert.equal((await w.pod.credentials.exchange(context(), status, token('system:serviceaccount:bookstore:catalog-sa', 'pods.eks.amazonaws.com'))).ok, true);
    assert.equal((await w.pod.credentials.exchange(context(), status, token('system:serviceaccount:bookstore:other', 'pods.eks.amazonaws.com'))).reason, 'TrustRejected');
  });
});

describe('AwsProvider over the account snapshot', () => {
  const MAX_AGE = 60_000;
  function snapshotWorld() {
    const raw = new FakeIam();
    const clock = new FakeClock();
    const roles = new AccountSnapshot(raw, { maxAgeMs: MAX_AGE, now: clock.now });
    const eks = new FakeEks();
    const provider = new AwsProvider('IRSA', { iam: roles.iam, roles, eks, pods: new FakePods(), exchange: new FakeExchange(raw, eks) });
    return { raw, clock, provider };
  }

  it('does not take its own change for drift when the snapshot predates it', async () => {
    const { raw, clock, provider } = snapshotWorld();
    await converge(provider, context());
    clock.advance(MAX_AGE + SETTLE_MS);
    // This reconcile takes a snapshot, then writes the new policy.
    const edited = context({ policy: [{ effect: 'Allow', actions: ['s3:PutObject'], resources: ['arn:aws:s3:::covers/*'] }] });
    assert.deepEqual((await converge(provider, edited)).changes.map((c) => c.action), ['PolicyUpdated']);
    raw.writes.length = 0;
    clock.advance(1);
    const again = await converge(provider, edited);
    assert.deepEqual(again.changes, []);
    assert.deepEqual(raw.writes, []);
  });

  it('repairs a hand edit made after the snapshot once the snapshot is its max age old', async () => {
    const { raw, clock, provider } = snapshotWorld();
    await converge(provider, context());
    clock.advance(MAX_AGE + SETTLE_MS);
    await converge(provider, context());
    const [role] = [...raw.roles.values()];
    assert.ok(role);
    role.trustPolicy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Federated: providerArn }, Action: 'sts:AssumeRoleWithWebIdentity' }] };
    role.attached.add('arn:aws:iam::aws:policy/AdministratorAccess');
    clock.advance(MAX_AGE);
    const repaired = await converge(provider, context());
    assert.deepEqual(repaired.changes.map((c) => c.action).sort(), ['PolicyDetached', 'TrustUpdated']);
    assert.deepEqual([...role.attached], []);
  });

  it('recreates a role deleted by hand after the snapshot once a repair write has found it gone', async () => {
    const { raw, clock, provider } = snapshotWorld();
    await converge(provider, context());
    const [role] = [...raw.roles.values()];
    assert.ok(role);
    role.trustPolicy = { Version: '2012-10-17', Statement: [] };
    clock.advance(MAX_AGE + SETTLE_MS);
    const desired = provider.desired(context());
    const stale = await provider.observe(desired);
    raw.roles.clear();
    await assert.rejects(provider.ensure(desired, stale), (err: unknown) => err instanceof ProviderError && err.reason === 'CloudRejected');
    clock.advance(1);
    const recreated = await converge(provider, context());
    assert.deepEqual(recreated.changes.map((c) => c.action), ['Created', 'PolicyUpdated']);
  });

  it('refuses an iam port that is not the snapshot\'s own, which would let our writes go unseen by it', () => {
    const raw = new FakeIam();
    const roles = new AccountSnapshot(raw, { maxAgeMs: MAX_AGE });
    assert.throws(() => new AwsProvider('IRSA', { iam: raw, roles, eks: new FakeEks(), pods: new FakePods(), exchange: new FakeExchange(raw, new FakeEks()) }), /roles\.iam/);
  });
});
