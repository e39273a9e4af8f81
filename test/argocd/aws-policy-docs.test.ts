// The operator's own IAM policies in docs/aws-irsa.md, evaluated with an independent IAM policy simulator
// (@cloud-copilot/iam-simulate): every IAM call the code makes (src/providers/aws/iam-client.ts) is allowed on a
// role that carries this cluster's ownership tag, and refused on a role that does not. A new IAM call in the code
// fails here until the documented policy covers it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runUnsafeSimulation, type EvaluationResult } from '@cloud-copilot/iam-simulate';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const guide = readFileSync(path.join(root, 'docs/aws-irsa.md'), 'utf8');

const ACCOUNT = '111122223333';
const CLUSTER = 'prod-use1';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/keyless/keyless-bookstore-catalog-1a2b3c4d`;
const FOREIGN_PATH_ROLE = `arn:aws:iam::${ACCOUNT}:role/admin/keyless-bookstore-catalog-1a2b3c4d`;
const BOUNDARY = `arn:aws:iam::${ACCOUNT}:policy/keyless-workload-boundary`;
const OPERATOR = `arn:aws:sts::${ACCOUNT}:assumed-role/keyless-operator/operator-session`;

interface Statement {
  Sid: string;
  [key: string]: unknown;
}
interface PolicyDocument {
  Version: string;
  Statement: Statement[];
}

/** The JSON block right after an HTML comment marker in the guide. */
function documentedPolicy(marker: string): PolicyDocument {
  const block = new RegExp(`<!-- ${marker} -->\\n\`\`\`json\\n([\\s\\S]*?)\\n\`\`\``).exec(guide)?.[1];
  assert.ok(block, `docs/aws-irsa.md has a JSON block after <!-- ${marker} -->`);
  return JSON.parse(block) as PolicyDocument;
}

const base = documentedPolicy('operator-policy');
const boundaryStatements = documentedPolicy('operator-policy-with-boundary').Statement;
/** The guide says: the boundary statements replace these two; the rest stays. */
const hardened: PolicyDocument = {
  Version: '2012-10-17',
  Statement: [...base.Statement.filter((s) => !['CreateRolesOnlyWithThisClustersMarker', 'ChangeOnlyRolesThisClusterOwns'].includes(s.Sid)), ...boundaryStatements],
};

function decide(policy: PolicyDocument, action: string, resource: string, context: Record<string, string> = {}): EvaluationResult {
  return runUnsafeSimulation(
    {
      identityPolicies: [{ name: 'keyless-operator', policy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: { principal: OPERATOR, action, resource: { resource, accountId: ACCOUNT }, contextVariables: context },
    },
    {},
  );
}

/** How the operator uses each IAM call, and so what the policy must allow it on. */
const USE: Record<string, 'read' | 'list-all' | 'create' | 'owned' | 'instance-profile' | 'oidc-read' | 'oidc-create' | 'oidc-owned'> = {
  GetRole: 'read',
  GetRolePolicy: 'read',
  ListRolePolicies: 'read',
  ListAttachedRolePolicies: 'read',
  ListInstanceProfilesForRole: 'read',
  ListOpenIDConnectProviders: 'list-all',
  GetAccountAuthorizationDetails: 'list-all',
  ListRoles: 'list-all',
  CreateRole: 'create',
  TagRole: 'owned',
  UpdateAssumeRolePolicy: 'owned',
  UpdateRole: 'owned',
  PutRolePolicy: 'owned',
  DeleteRolePolicy: 'owned',
  AttachRolePolicy: 'owned',
  DetachRolePolicy: 'owned',
  PutRolePermissionsBoundary: 'owned',
  DeleteRolePermissionsBoundary: 'owned',
  DeleteRole: 'owned',
  RemoveRoleFromInstanceProfile: 'instance-profile',
  // spec.aws.manageOidcProvider: the IAM OIDC provider of a CloudAccount.
  GetOpenIDConnectProvider: 'oidc-read',
  CreateOpenIDConnectProvider: 'oidc-create',
  TagOpenIDConnectProvider: 'oidc-owned',
  DeleteOpenIDConnectProvider: 'oidc-owned',
};

const OIDC_PROVIDER = `arn:aws:iam::${ACCOUNT}:oidc-provider/oidc.example.com/prod-use1`;

const iamCalls = [...readFileSync(path.join(root, 'src/providers/aws/iam-client.ts'), 'utf8').matchAll(/new (\w+)Command\(/g)].map((m) => m[1] ?? '');

const ours = { 'aws:ResourceTag/keyless.dev/cluster': CLUSTER };
const theirs = { 'aws:ResourceTag/keyless.dev/cluster': 'another-cluster' };

describe('the operator IAM policy in docs/aws-irsa.md', () => {
  it('knows how the code uses every IAM call it makes', () => {
    const unknown = [...new Set(iamCalls)].filter((call) => !(call in USE));
    assert.deepEqual(unknown, [], 'new IAM calls in iam-client.ts: add them to the operator policy in docs/aws-irsa.md and to USE here');
  });

  for (const call of Object.keys(USE).filter((c) => iamCalls.includes(c))) {
    it(`allows iam:${call} where the operator needs it, and no further`, () => {
      const action = `iam:${call}`;
      switch (USE[call]) {
        case 'read':
          assert.equal(decide(base, action, ROLE), 'Allowed', 'on any role under /keyless/, owned or not (to detect NotOwned)');
          assert.equal(decide(base, action, FOREIGN_PATH_ROLE), 'ImplicitlyDenied', 'outside the role path');
          break;
        case 'list-all':
          assert.equal(decide(base, action, '*'), 'Allowed');
          break;
        case 'create':
          assert.equal(decide(base, action, ROLE, { 'aws:RequestTag/keyless.dev/cluster': CLUSTER }), 'Allowed', 'with our marker');
          assert.equal(decide(base, action, ROLE, { 'aws:RequestTag/keyless.dev/cluster': 'another-cluster' }), 'ImplicitlyDenied', 'with another cluster\'s marker');
          assert.equal(decide(base, action, ROLE), 'ImplicitlyDenied', 'without a marker');
          assert.equal(decide(base, action, FOREIGN_PATH_ROLE, { 'aws:RequestTag/keyless.dev/cluster': CLUSTER }), 'ImplicitlyDenied', 'outside the role path');
          break;
        case 'owned':
          assert.equal(decide(base, action, ROLE, ours), 'Allowed', 'on a role this cluster owns');
          assert.equal(decide(base, action, ROLE, theirs), 'ImplicitlyDenied', 'on another cluster\'s role');
          assert.equal(decide(base, action, ROLE), 'ImplicitlyDenied', 'on an untagged role');
          assert.equal(decide(base, action, FOREIGN_PATH_ROLE, ours), 'ImplicitlyDenied', 'outside the role path');
          break;
        case 'instance-profile':
          assert.equal(decide(base, action, `arn:aws:iam::${ACCOUNT}:instance-profile/web`), 'Allowed');
          break;
        case 'oidc-read':
          assert.equal(decide(base, action, OIDC_PROVIDER), 'Allowed', 'any provider, owned or not (to tell ExistingProvider)');
          assert.equal(decide(base, action, ROLE), 'ImplicitlyDenied', 'nothing but OIDC providers');
          break;
        case 'oidc-create':
          assert.equal(decide(base, action, OIDC_PROVIDER, { 'aws:RequestTag/keyless.dev/cluster': CLUSTER }), 'Allowed', 'with our marker');
          assert.equal(decide(base, action, OIDC_PROVIDER, { 'aws:RequestTag/keyless.dev/cluster': 'another-cluster' }), 'ImplicitlyDenied', 'with another cluster\'s marker');
          assert.equal(decide(base, action, OIDC_PROVIDER), 'ImplicitlyDenied', 'without a marker');
          break;
        case 'oidc-owned':
          assert.equal(decide(base, action, OIDC_PROVIDER, ours), 'Allowed', 'on a provider this cluster owns');
          assert.equal(decide(base, action, OIDC_PROVIDER, theirs), 'ImplicitlyDenied', 'on another cluster\'s provider');
          assert.equal(decide(base, action, OIDC_PROVIDER), 'ImplicitlyDenied', 'on an untagged provider');
          break;
      }
    });
  }

  it('tags a role on creation with our marker (CreateRole with Tags also authorizes iam:TagRole)', () => {
    assert.equal(decide(base, 'iam:TagRole', ROLE, { 'aws:RequestTag/keyless.dev/cluster': CLUSTER }), 'Allowed');
  });

  it('tags an OIDC provider on creation with our marker (CreateOpenIDConnectProvider with Tags also authorizes iam:TagOpenIDConnectProvider)', () => {
    assert.equal(decide(base, 'iam:TagOpenIDConnectProvider', OIDC_PROVIDER, { 'aws:RequestTag/keyless.dev/cluster': CLUSTER }), 'Allowed');
  });

  it('never edits an OIDC provider\'s audiences or thumbprints, nor removes its tags', () => {
    for (const action of ['iam:AddClientIDToOpenIDConnectProvider', 'iam:RemoveClientIDFromOpenIDConnectProvider', 'iam:UpdateOpenIDConnectProviderThumbprint', 'iam:UntagOpenIDConnectProvider']) {
      assert.equal(decide(base, action, OIDC_PROVIDER, ours), 'ImplicitlyDenied', action);
    }
  });

  it('lets the operator discover the issuer of its own EKS cluster only', () => {
    assert.equal(decide(base, 'eks:DescribeCluster', `arn:aws:eks:us-east-1:${ACCOUNT}:cluster/${CLUSTER}`), 'Allowed');
    assert.equal(decide(base, 'eks:DescribeCluster', `arn:aws:eks:us-east-1:${ACCOUNT}:cluster/other`), 'ImplicitlyDenied');
  });

  it('grants nothing else: no PassRole, no user or policy management, no STS', () => {
    for (const action of ['iam:PassRole', 'iam:CreateUser', 'iam:CreateAccessKey', 'iam:CreatePolicy', 'iam:UntagRole', 'sts:AssumeRole']) {
      assert.equal(decide(base, action, ROLE, ours), 'ImplicitlyDenied', action);
    }
  });
});

describe('the permissions-boundary variant in docs/aws-irsa.md', () => {
  const withBoundary = { 'iam:PermissionsBoundary': BOUNDARY };

  it('creates roles only with our marker and the boundary', () => {
    const tag = { 'aws:RequestTag/keyless.dev/cluster': CLUSTER };
    assert.equal(decide(hardened, 'iam:CreateRole', ROLE, { ...tag, ...withBoundary }), 'Allowed');
    assert.equal(decide(hardened, 'iam:CreateRole', ROLE, tag), 'ImplicitlyDenied', 'without a boundary');
    assert.equal(decide(hardened, 'iam:CreateRole', ROLE, { ...tag, 'iam:PermissionsBoundary': `arn:aws:iam::${ACCOUNT}:policy/wide-open` }), 'ImplicitlyDenied', 'with another boundary');
    assert.equal(decide(hardened, 'iam:TagRole', ROLE, tag), 'Allowed', 'tags on create');
  });

  it('grants permissions only to roles under the boundary', () => {
    for (const action of ['iam:PutRolePolicy', 'iam:AttachRolePolicy', 'iam:PutRolePermissionsBoundary']) {
      assert.equal(decide(hardened, action, ROLE, { ...ours, ...withBoundary }), 'Allowed', action);
      assert.equal(decide(hardened, action, ROLE, ours), 'ImplicitlyDenied', `${action} without the boundary`);
    }
  });

  it('never removes the boundary', () => {
    assert.equal(decide(hardened, 'iam:DeleteRolePermissionsBoundary', ROLE, { ...ours, ...withBoundary }), 'ImplicitlyDenied');
  });

  it('still allows every other call the operator makes', () => {
    for (const call of iamCalls) {
      const use = USE[call];
      if (call === 'DeleteRolePermissionsBoundary' || call === 'CreateRole') continue;
      const resource = use === 'instance-profile' ? `arn:aws:iam::${ACCOUNT}:instance-profile/web` : use === 'list-all' ? '*' : use?.startsWith('oidc-') ? OIDC_PROVIDER : ROLE;
      const tags = use === 'oidc-create' ? { 'aws:RequestTag/keyless.dev/cluster': CLUSTER } : ours;
      assert.equal(decide(hardened, `iam:${call}`, resource, { ...tags, ...withBoundary }), 'Allowed', call);
    }
  });
});
