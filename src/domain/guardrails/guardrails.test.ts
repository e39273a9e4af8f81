import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AwsPolicyStatement, CloudAccount, Guardrails, WorkloadIdentitySpec } from '../../api/types.ts';
import { iamDataCatalogue } from '../../providers/aws/action-catalogue.ts';
import { describeViolation, evaluateGuardrails } from './index.ts';

const catalogue = iamDataCatalogue();

function account(guardrails: Guardrails = {}, extra: Partial<CloudAccount['spec']> = {}): CloudAccount {
  return {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name: 'prod' },
    spec: { aws: { accountId: '123456789012', region: 'us-east-1' }, gcp: { projectId: 'books-prod', projectNumber: '1' }, guardrails, ...extra },
  };
}

const aws = (policy: AwsPolicyStatement[], more: Partial<NonNullable<WorkloadIdentitySpec['aws']>> = {}): WorkloadIdentitySpec => ({
  serviceAccountName: 'sa',
  cloudAccountRef: { name: 'prod' },
  aws: { policy, ...more },
});
const allow = (actions: string[], resources = ['arn:aws:s3:::covers/*']): AwsPolicyStatement => ({ effect: 'Allow', actions, resources });

async function rules(spec: WorkloadIdentitySpec, a = account()): Promise<string[]> {
  return (await evaluateGuardrails(spec, a, catalogue)).violations.map(describeViolation);
}

describe('AWS guardrails', () => {
  const cases: [string, WorkloadIdentitySpec, RegExp | undefined, Guardrails?][] = [
    ['a plain least-privilege grant passes', aws([allow(['s3:GetObject', 's3:List*'], ['arn:aws:s3:::covers', 'arn:aws:s3:::covers/*'])]), undefined],
    ['a typo gets a suggestion', aws([allow(['s3:GetObjects'])]), /unknown AWS action \(did you mean s3:GetObject\)/],
    ['an unknown service is refused', aws([allow(['s4:GetObject'])]), /unknown AWS service \(did you mean s3:GetObject\)/],
    ['a pattern that matches nothing is refused', aws([allow(['s3:Frobnicate*'])]), /pattern matches no AWS action/],
    ['a * action is refused', aws([allow(['*'])]), /no wildcard action/],
    ['a * resource is refused', aws([allow(['s3:GetObject'], ['*'])]), /no wildcard resource/],
    ['iam:PassRole is escalation', aws([allow(['iam:PassRole'], ['arn:aws:iam::123456789012:role/x'])]), /no privilege escalation/],
    ['iam:Put* covers PutRolePolicy', aws([allow(['iam:Put*'], ['arn:aws:iam::123456789012:role/x'])]), /covers iam:PutGroupPolicy|covers iam:Put/],
    ['iam:* is escalation', aws([allow(['iam:*'], ['arn:aws:iam::123456789012:role/x'])]), /no privilege escalation/],
    ['organizations:* is escalation', aws([allow(['organizations:*'], ['arn:aws:organizations::123456789012:account/*'])]), /no privilege escalation/],
    ['sts:AssumeRole on * is escalation', aws([allow(['sts:AssumeRole'], ['*'])]), /no privilege escalation/],
    ['sts:AssumeRole on one role is fine', aws([allow(['sts:AssumeRole'], ['arn:aws:iam::123456789012:role/reader'])]), undefined],
    ['managed policies need an allow-list', aws([], { managedPolicyArns: ['arn:aws:iam::aws:policy/AdministratorAccess'] }), /allowedManagedPolicyArns/],
    ['an allowed managed policy passes', aws([], { managedPolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'] }), undefined, { aws: { allowedManagedPolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'] } }],
    ['allowedActions bound the actions', aws([allow(['s3:PutObject'])]), /guardrails.aws.allowedActions/, { aws: { allowedActions: ['s3:Get*'] } }],
    ['deniedActions apply through patterns', aws([allow(['s3:Delete*'])]), /guardrails.aws.deniedActions/, { aws: { deniedActions: ['s3:DeleteObject'] } }],
    ['a broad resource reaching a denied one is refused', aws([allow(['s3:GetObject'], ['arn:aws:s3:::*'])]), /deniedResources/, { aws: { deniedResources: ['arn:aws:s3:::audit-*'] } }],
    ['resources outside the allowed patterns are refused', aws([allow(['s3:GetObject'], ['arn:aws:s3:::other/*'])]), /allowedResources/, { aws: { allowedResources: ['arn:aws:s3:::team-a-*'] } }],
    ['a session longer than allowed is refused', aws([allow(['s3:GetObject'])], { maxSessionDuration: '4h' }), /maxSessionDuration/, { aws: { maxSessionDuration: '2h' } }],
    ['sts:AssumeRole on any role of any account is escalation', aws([allow(['sts:AssumeRole'], ['arn:aws:iam::*:role/*'])]), /no privilege escalation/],
    ['sts:AssumeRole on every role of this account is escalation', aws([allow(['sts:AssumeRole'], ['arn:aws:iam::123456789012:role/*'])]), /no privilege escalation/],
    ['a wildcard partition is a wildcard resource', aws([allow(['s3:GetObject'], ['arn:*'])]), /no wildcard resource/],
    ['a wildcard account is a wildcard resource', aws([allow(['sqs:SendMessage'], ['arn:aws:sqs:us-east-1:*:orders'])]), /no wildcard resource/],
    ['wildcards pass when the platform allows them', aws([allow(['s3:*'], ['*'])]), undefined, { aws: { allowWildcards: true } }],
  ];
  for (const [name, spec, expected, guardrails] of cases) {
    it(name, async () => {
      const found = await rules(spec, account(guardrails));
      if (expected) assert.ok(found.some((f) => expected.test(f)), found.join('\n') || 'no violation');
      else assert.deepEqual(found, []);
    });
  }

  it('requires the account boundary when the guardrail says so, and then permits nothing', async () => {
    const verdict = await evaluateGuardrails(aws([allow(['s3:GetObject'])]), account({ aws: { requirePermissionsBoundary: true } }), catalogue);
    assert.match(verdict.violations.map(describeViolation).join(), /requirePermissionsBoundary/);
    assert.deepEqual(verdict.permitted.aws?.policy, []);
  });

  it('permits exactly the statements without violations', async () => {
    const ok = allow(['s3:GetObject']);
    const verdict = await evaluateGuardrails(aws([ok, allow(['s3:DeleteObject'])]), account({ aws: { deniedActions: ['s3:Delete*'] } }), catalogue);
    assert.deepEqual(verdict.permitted.aws?.policy, [ok]);
  });
});

describe('GCP guardrails', () => {
  const gcp = (role: string, resource?: string): WorkloadIdentitySpec => ({
    serviceAccountName: 'sa',
    cloudAccountRef: { name: 'prod' },
    gcp: { roles: [{ role, ...(resource ? { resource } : {}) }] },
  });
  it('refuses basic, IAM admin and token creator roles', async () => {
    for (const role of ['roles/owner', 'roles/editor', 'roles/iam.serviceAccountTokenCreator', 'roles/iam.securityAdmin', 'roles/resourcemanager.projectIamAdmin']) {
      assert.match((await rules(gcp(role))).join(), /no privileged roles/, role);
    }
    assert.deepEqual(await rules(gcp('roles/storage.objectViewer', '//storage.googleapis.com/projects/_/buckets/covers')), []);
  });
  it('applies allowed and denied roles and resources, the project being the default resource', async () => {
    const a = account({ gcp: { allowedRoles: ['roles/storage.object*'], deniedResources: ['//cloudresourcemanager.googleapis.com/projects/*'] } });
    assert.match((await rules(gcp('roles/pubsub.publisher', '//pubsub.googleapis.com/projects/p/topics/t'), a)).join(), /allowedRoles/);
    assert.match((await rules(gcp('roles/storage.objectViewer'), a)).join(), /deniedResources/);
  });
});

describe('Azure guardrails', () => {
  const azure = (role: string, scope = '/subscriptions/s/resourceGroups/team-a/providers/Microsoft.Storage/storageAccounts/x'): WorkloadIdentitySpec => ({
    serviceAccountName: 'sa',
    cloudAccountRef: { name: 'prod' },
    azure: { roleAssignments: [{ role, scope }] },
  });
  it('refuses the privileged roles by name and by GUID', async () => {
    for (const role of [
      'Owner',
      'contributor',
      'User Access Administrator',
      'Role Based Access Control Administrator',
      '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
      '/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
    ]) {
      assert.match((await rules(azure(role))).join(), /no privileged roles/, role);
    }
    assert.deepEqual(await rules(azure('Storage Blob Data Reader')), []);
  });
  it('keeps assignments under the allowed scope prefixes', async () => {
    const a = account({ azure: { allowedScopePrefixes: ['/subscriptions/s/resourceGroups/team-a'] } });
    assert.deepEqual(await rules(azure('Storage Blob Data Reader'), a), []);
    assert.match((await rules(azure('Storage Blob Data Reader', '/subscriptions/s/resourceGroups/team-ab'), a)).join(), /allowedScopePrefixes/);
  });
  it('refuses . and .. segments, which would move the assignment up to a broader scope', async () => {
    const a = account({ azure: { allowedScopePrefixes: ['/subscriptions/s/resourceGroups/team-a'] } });
    assert.match((await rules(azure('Storage Blob Data Reader', '/subscriptions/s/resourceGroups/team-a/../..'), a)).join(), /plain scope path/);
    assert.match((await rules(azure('Storage Blob Data Reader', '/subscriptions/s/resourceGroups/team-a/./x'))).join(), /plain scope path/);
  });
});
