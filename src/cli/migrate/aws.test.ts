import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CloudAccount } from '../../api/types.ts';
import type { IamRole } from '../../providers/aws/iam-port.ts';
import { planAws, type AwsRoleFacts } from './aws.ts';
import type { HandMade } from './candidates.ts';

const ISSUER = 'https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE';
const HOST = 'oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE';
const PROVIDER = `arn:aws:iam::111122223333:oidc-provider/${HOST}`;
const ARN = 'arn:aws:iam::111122223333:role/catalog-reader';
const SUBJECT = 'system:serviceaccount:bookstore:catalog-sa';

const account = (aws: Partial<NonNullable<CloudAccount['spec']['aws']>> = {}): CloudAccount => ({
  apiVersion: 'keyless.dev/v1alpha1',
  kind: 'CloudAccount',
  metadata: { name: 'prod-aws' },
  spec: { aws: { accountId: '111122223333', region: 'us-east-1', ...aws }, guardrails: { allowAdoption: true } },
  status: { issuer: ISSUER, oidcProviderArn: PROVIDER },
});
const source: HandMade = { cloud: 'aws', namespace: 'bookstore', serviceAccount: 'catalog-sa', identity: ARN, annotations: { 'eks.amazonaws.com/role-arn': ARN }, sharedWith: [] };
const irsa = (condition: Record<string, Record<string, unknown>>, extra: object = {}) => ({ Effect: 'Allow', Principal: { Federated: PROVIDER }, Action: 'sts:AssumeRoleWithWebIdentity', Condition: condition, ...extra });
const exact = irsa({ StringEquals: { [`${HOST}:sub`]: SUBJECT, [`${HOST}:aud`]: 'sts.amazonaws.com' } });

function facts(statements: object[], opts: Partial<IamRole> & { inline?: AwsRoleFacts['inline']; managed?: string[] } = {}): AwsRoleFacts {
  const { inline, managed, ...role } = opts;
  return {
    role: { name: 'catalog-reader', arn: ARN, path: '/', trustPolicy: { Version: '2012-10-17', Statement: statements }, maxSessionDuration: 3600, tags: {}, ...role },
    inline: inline ?? [{ name: 'read', document: { Version: '2012-10-17', Statement: [{ Sid: 'Covers', Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::covers/*' }] } }],
    managed: managed ?? [],
  };
}

describe('planAws', () => {
  it('carries every inline statement and managed policy and the session length into a spec that adopts the role', () => {
    const plan = planAws(source, account(), facts([exact], { maxSessionDuration: 5400, managed: ['arn:aws:iam::111122223333:policy/list'] }));
    assert.deepEqual(plan.blockers, []);
    assert.equal(plan.adopt, ARN);
    assert.deepEqual(plan.spec.aws, {
      mechanism: 'IRSA',
      policy: [{ sid: 'Covers', effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::covers/*'] }],
      managedPolicyArns: ['arn:aws:iam::111122223333:policy/list'],
      maxSessionDuration: '1h30m',
    });
    assert.equal(plan.takeOverAnnotations, false, 'the annotation already says what Keyless will');
  });

  it('merges several inline policies into one, and keeps condition values as strings', () => {
    const inline = [
      { name: 'a', document: { Statement: { Sid: 'Same', Effect: 'Allow', Action: ['s3:ListBucket'], Resource: 'arn:aws:s3:::covers', Condition: { Bool: { 'aws:SecureTransport': true } } } } },
      { name: 'b', document: { Statement: [{ Sid: 'Same', Effect: 'Deny', Action: 's3:DeleteObject', Resource: '*' }] } },
    ];
    const plan = planAws(source, account(), facts([exact], { inline }));
    assert.deepEqual(plan.spec.aws?.policy, [
      { sid: 'Same', effect: 'Allow', actions: ['s3:ListBucket'], resources: ['arn:aws:s3:::covers'], conditions: { Bool: { 'aws:SecureTransport': ['true'] } } },
      { effect: 'Deny', actions: ['s3:DeleteObject'], resources: ['*'] },
    ]);
    assert.ok(plan.notes.some((n) => /inline policies a, b become one inline policy/.test(n)));
    assert.ok(plan.notes.some((n) => /statement id Same appears in more than one/.test(n)));
  });

  const blocked: [string, AwsRoleFacts, RegExp, HandMade?][] = [
    ['a trust for several ServiceAccounts', facts([irsa({ StringEquals: { [`${HOST}:sub`]: [SUBJECT, 'system:serviceaccount:bookstore:other'] } })]), /also trusts system:serviceaccount:bookstore:other/],
    ['a wildcard trust', facts([irsa({ StringLike: { [`${HOST}:sub`]: 'system:serviceaccount:bookstore:*' } })]), /wildcard trust: it lets every ServiceAccount matching system:serviceaccount:bookstore:\*/],
    ['a trust that lets another principal in as well', facts([exact, { Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:root' }, Action: 'sts:AssumeRole' }]), /also lets AWS arn:aws:iam::111122223333:root sts:AssumeRole/],
    ['a trust of another cluster only', facts([irsa({ StringEquals: { 'oidc.other/id/X:sub': SUBJECT } }, { Principal: { Federated: 'arn:aws:iam::111122223333:oidc-provider/oidc.other/id/X' } })]), /does not let system:serviceaccount:bookstore:catalog-sa assume it through/],
    ['a statement with NotAction', facts([exact], { inline: [{ name: 'broad', document: { Statement: [{ Effect: 'Allow', NotAction: 'iam:*', Resource: '*' }] } }] }), /inline policy broad, statement 1, uses NotAction/],
    ['a permissions boundary the account would drop', facts([exact], { permissionsBoundaryArn: 'arn:aws:iam::111122223333:policy/ceiling' }), /Keyless would remove it, and the role could do more than today/],
    ['a role Keyless already owns', facts([exact], { tags: { 'keyless.dev/cluster': 'c1', 'keyless.dev/namespace': 'shop', 'keyless.dev/name': 'catalog' } }), /carries a Keyless ownership marker: It belongs to shop\/catalog \(cluster c1\)\. If that WorkloadIdentity is gone/],
    ['a token audience other than STS', facts([exact]), /eks\.amazonaws\.com\/audience: other/, { ...source, annotations: { ...source.annotations, 'eks.amazonaws.com/audience': 'other' } }],
  ];
  for (const [what, f, why, from] of blocked) {
    it(`leaves alone ${what}`, () => {
      const plan = planAws(from ?? source, account(), f);
      assert.ok(plan.blockers.some((b) => why.test(b)), JSON.stringify(plan.blockers));
    });
  }

  it('notes what adoption changes without taking anything away', () => {
    const plan = planAws(source, account({ permissionsBoundaryArn: 'arn:aws:iam::111122223333:policy/ceiling' }), facts([exact, { Effect: 'Deny', Principal: '*', Action: 'sts:AssumeRole' }]));
    assert.deepEqual(plan.blockers, []);
    assert.ok(plan.notes.some((n) => /adds CloudAccount prod-aws's permissions boundary/.test(n)));
    assert.ok(plan.notes.some((n) => /trust statement 2 denies sts:AssumeRole/.test(n)));
    assert.ok(plan.notes.some((n) => /the role's path \/ is not the CloudAccount's \/keyless\//.test(n)));
  });

  it('needs the account to know the cluster\'s IAM OIDC provider', () => {
    const plan = planAws(source, { ...account(), status: {} }, facts([exact]));
    assert.match(plan.blockers.join(' '), /knows no IAM OIDC provider/);
  });
});
