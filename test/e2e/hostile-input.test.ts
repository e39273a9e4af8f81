// Least privilege under hostile input: a table of specs that try to get more than the platform allows, break out
// of a policy document, hit every size and name limit, or reach another namespace. Each must be rejected by the
// API or reported with a clear reason; afterwards no trust anywhere is broader than its exact ServiceAccount, the
// operator is still running, and a role it does not own is untouched. Also: tightening a guardrail under a Ready
// identity, adoption, namespaceSelector, and the operator's own lack of access to Secrets.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  CreateRoleCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  ListRolePoliciesCommand,
  ListRolesCommand,
  ListRoleTagsCommand,
} from '@aws-sdk/client-iam';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { WorkloadIdentity } from '../../src/api/types.ts';
import { awsRoleName } from '../../src/domain/naming.ts';
import { irsaTrustStatement } from '../../src/providers/aws-irsa/trust.ts';
import { policySize } from '../../src/providers/aws/policy-document.ts';
import { startAwsEmulator, TEST_ACCOUNT_ID, type AwsEmulator, createOidcProvider } from '../support/aws.ts';
import { clusterIssuer, eventually, freshNamespace, kubeConfig, kubeConfigWithToken, kubectl, kubectlApply, statusCode } from '../support/cluster.ts';
import { awsEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';

const CLUSTER = 'e2e-cluster';
const group = { group: 'keyless.dev', version: 'v1alpha1' };
const GOOD = { effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::covers/*'] };

/**
 * What must happen to a spec: rejected by the API with a message, or a Ready=False reason with a message — before any
 * cloud write, unless `provisioned` (the cloud holds the spec as written, and the condition says why it is not Ready).
 */
type Expect = { api: RegExp } | { reason: string; message: RegExp; provisioned?: true } | { ready: true };

interface Case {
  name: string;
  /** Overrides of the WorkloadIdentity spec (aws section merged), or the raw spec when `raw` is set. */
  spec?: Record<string, unknown>;
  aws?: Record<string, unknown>;
  serviceAccountName?: string;
  metadataName?: string;
  expect: Expect;
}

const statement = (actions: string[], resources = ['arn:aws:s3:::covers/*']) => ({ policy: [{ effect: 'Allow', actions, resources }] });
const long = (n: number, c = 'a') => c.repeat(n);

const cases: Case[] = [
  // The API refuses these outright.
  { name: 'no cloud section', spec: { aws: undefined }, expect: { api: /exactly one of spec.aws, spec.gcp or spec.azure/ } },
  { name: 'two clouds at once', spec: { gcp: { roles: [{ role: 'roles/storage.objectViewer' }] } }, expect: { api: /exactly one of spec.aws, spec.gcp or spec.azure/ } },
  { name: 'uppercase and underscore in serviceAccountName', serviceAccountName: 'Catalog_SA', expect: { api: /serviceAccountName/ } },
  { name: 'unicode in serviceAccountName', serviceAccountName: 'catalög', expect: { api: /serviceAccountName/ } },
  { name: 'a control character in serviceAccountName', serviceAccountName: 'sa\nx', expect: { api: /serviceAccountName/ } },
  { name: 'serviceAccountName past 253 characters', serviceAccountName: long(254), expect: { api: /serviceAccountName|253/ } },
  { name: 'a JSON breakout in serviceAccountName', serviceAccountName: 'sa","Condition":{}}],"x":"', expect: { api: /serviceAccountName/ } },
  { name: 'another namespace through serviceAccountName', serviceAccountName: 'other-ns:catalog-sa', expect: { api: /serviceAccountName/ } },
  { name: 'a path in serviceAccountName', serviceAccountName: '../kube-system/default', expect: { api: /serviceAccountName/ } },
  { name: 'a namespace field', spec: { namespace: 'kube-system' }, expect: { api: /unknown field "spec.namespace"/ } },
  { name: 'a subject field', spec: { subject: 'system:serviceaccount:kube-system:default' }, expect: { api: /unknown field "spec.subject"/ } },
  { name: 'an issuer field', spec: { issuer: 'https://evil.example' }, expect: { api: /unknown field "spec.issuer"/ } },
  { name: 'a principal in the aws section', aws: { principal: '*' }, expect: { api: /unknown field "spec.aws.principal"/ } },
  { name: 'an audience in the aws section', aws: { audience: 'sts.amazonaws.com' }, expect: { api: /unknown field "spec.aws.audience"/ } },
  { name: 'a session shorter than 1h', aws: { maxSessionDuration: '30m' }, expect: { api: /maxSessionDuration/ } },
  { name: 'a session longer than 12h', aws: { maxSessionDuration: '13h' }, expect: { api: /maxSessionDuration/ } },
  { name: 'an unknown mechanism', aws: { mechanism: 'StaticKeys' }, expect: { api: /mechanism/ } },
  { name: 'an unknown effect', aws: { policy: [{ ...GOOD, effect: 'Allowed' }] }, expect: { api: /effect/ } },
  { name: 'no actions', aws: statement([]), expect: { api: /actions/ } },
  { name: 'no resources', aws: statement(['s3:GetObject'], []), expect: { api: /resources/ } },
  { name: 'an action without a service', aws: statement(['GetObject']), expect: { api: /action/ } },
  { name: 'a resource that is not an ARN', aws: statement(['s3:GetObject'], ['covers/*']), expect: { api: /ARN/ } },
  { name: 'a JSON breakout in a sid', aws: { policy: [{ ...GOOD, sid: 'x"},{"Effect":"Allow","Action":"*","Resource":"*' }] }, expect: { api: /sid/ } },
  { name: 'a managed policy that is not an ARN', aws: { managedPolicyArns: ['AdministratorAccess'] }, expect: { api: /managedPolicyArns|policy ARN/ } },
  { name: 'more than 32 statements', aws: { policy: Array.from({ length: 33 }, () => GOOD) }, expect: { api: /policy|32/ } },
  { name: 'no cloudAccountRef', spec: { cloudAccountRef: undefined }, expect: { api: /cloudAccountRef/ } },
  // The guardrails refuse these, before any cloud write.
  { name: 'the * action', aws: statement(['*']), expect: { reason: 'GuardrailViolation', message: /no wildcard action/ } },
  { name: 'the *:* action', aws: statement(['*:*']), expect: { api: /each action must look like service:Action/ } },
  { name: 'the * resource', aws: statement(['s3:GetObject'], ['*']), expect: { reason: 'GuardrailViolation', message: /no wildcard resource/ } },
  { name: 'iam:PassRole', aws: statement(['iam:PassRole'], [`arn:aws:iam::${TEST_ACCOUNT_ID}:role/admin`]), expect: { reason: 'GuardrailViolation', message: /no privilege escalation/ } },
  { name: 'IAM:PASSROLE in capitals', aws: statement(['IAM:PASSROLE'], [`arn:aws:iam::${TEST_ACCOUNT_ID}:role/admin`]), expect: { reason: 'GuardrailViolation', message: /no privilege escalation/ } },
  { name: 'iam:PassR?le as a pattern', aws: statement(['iam:PassR?le'], [`arn:aws:iam::${TEST_ACCOUNT_ID}:role/admin`]), expect: { reason: 'GuardrailViolation', message: /no privilege escalation/ } },
  { name: 'iam:*', aws: statement(['iam:*'], [`arn:aws:iam::${TEST_ACCOUNT_ID}:role/*`]), expect: { reason: 'GuardrailViolation', message: /no privilege escalation/ } },
  { name: 'iam:Put*Policy', aws: statement(['iam:Put*Policy'], [`arn:aws:iam::${TEST_ACCOUNT_ID}:role/*`]), expect: { reason: 'GuardrailViolation', message: /iam:PutRolePolicy/ } },
  { name: 'iam:AttachRolePolicy', aws: statement(['iam:AttachRolePolicy'], [`arn:aws:iam::${TEST_ACCOUNT_ID}:role/*`]), expect: { reason: 'GuardrailViolation', message: /no privilege escalation/ } },
  { name: 'iam:CreateAccessKey', aws: statement(['iam:CreateAccessKey'], [`arn:aws:iam::${TEST_ACCOUNT_ID}:user/*`]), expect: { reason: 'GuardrailViolation', message: /no privilege escalation/ } },
  { name: 'iam:UpdateAssumeRolePolicy', aws: statement(['iam:UpdateAssumeRolePolicy'], [`arn:aws:iam::${TEST_ACCOUNT_ID}:role/*`]), expect: { reason: 'GuardrailViolation', message: /no privilege escalation/ } },
  { name: 'iam:CreateRole', aws: statement(['iam:CreateRole'], [`arn:aws:iam::${TEST_ACCOUNT_ID}:role/*`]), expect: { reason: 'GuardrailViolation', message: /no privilege escalation/ } },
  { name: 'sts:AssumeRole on *', aws: statement(['sts:AssumeRole'], ['*']), expect: { reason: 'GuardrailViolation', message: /no privilege escalation|no wildcard resource/ } },
  { name: 'sts:*', aws: statement(['sts:*'], [`arn:aws:iam::${TEST_ACCOUNT_ID}:role/x`]), expect: { reason: 'GuardrailViolation', message: /no privilege escalation/ } },
  { name: 'organizations:*', aws: statement(['organizations:*'], [`arn:aws:organizations::${TEST_ACCOUNT_ID}:account/*`]), expect: { reason: 'GuardrailViolation', message: /no privilege escalation/ } },
  { name: 'a typo in an action', aws: statement(['s3:GetObjects']), expect: { reason: 'GuardrailViolation', message: /did you mean s3:GetObject/ } },
  { name: 'an unknown service', aws: statement(['s4:GetObject']), expect: { reason: 'GuardrailViolation', message: /unknown AWS service/ } },
  { name: 'a managed policy the account does not allow', aws: { managedPolicyArns: ['arn:aws:iam::aws:policy/AdministratorAccess'] }, expect: { reason: 'GuardrailViolation', message: /allowedManagedPolicyArns/ } },
  { name: 'one good and one escalating statement', aws: { policy: [GOOD, { effect: 'Allow', actions: ['iam:PassRole'], resources: ['*'] }] }, expect: { reason: 'GuardrailViolation', message: /spec.aws.policy\[1\]/ } },
  // Accepted by IAM (and by moto), but granting nothing: the classic "AccessDenied although I granted it".
  { name: 'an object action on a bucket ARN and a bucket action on objects', aws: { policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::covers'] }, { effect: 'Allow', actions: ['s3:ListBucket'], resources: ['arn:aws:s3:::covers/*'] }] }, expect: { reason: 'GrantsNothing', message: /s3:GetObject grants nothing on arn:aws:s3:::covers: it applies to .*\$\{BucketName\}\/\$\{ObjectName\}.*s3:ListBucket grants nothing on arn:aws:s3:::covers\/\*/, provisioned: true } },
  // Sizes and names at the limits.
  { name: 'an inline policy past 10,240 characters', aws: statement(['s3:GetObject'], Array.from({ length: 10 }, (_, i) => `arn:aws:s3:::covers/${i}${long(1100)}`)), expect: { reason: 'InvalidSpec', message: /10240-character inline policy quota/ } },
  { name: 'a WorkloadIdentity name at 253 characters', metadataName: `${long(240, 'n')}-${long(12, 'x')}`, expect: { ready: true } },
  { name: 'a serviceAccountName at 253 characters', serviceAccountName: long(253, 's'), expect: { ready: true } },
];

describe('hostile input', () => {
  let kc: KubeConfig;
  let aws: AwsEmulator;
  let operator: RunningOperator;
  let operatorKubeconfig: string;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  let issuer: string;
  const suffix = randomBytes(3).toString('hex');
  const account = `e2e-hostile-${suffix}`;
  const adopting = `e2e-adopting-${suffix}`;
  const selective = `e2e-selective-${suffix}`;

  const custom = () => kc.makeApiClient(CustomObjectsApi);
  const getWI = async (name: string) => (await custom().getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns, name })) as WorkloadIdentity;
  const ready = (wi: WorkloadIdentity) => wi.status?.conditions?.find((c) => c.type === 'Ready');
  const cloudAccount = (name: string, extra: Record<string, unknown> = {}) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name },
    spec: { aws: { accountId: TEST_ACCOUNT_ID, region: 'us-east-1', oidcIssuer: issuer }, ...extra },
  });
  const workloadIdentity = (name: string, sa: string, accountName: string, spec: Record<string, unknown> = {}, aws: Record<string, unknown> = {}, annotations?: Record<string, string>) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) },
    spec: { serviceAccountName: sa, cloudAccountRef: { name: accountName }, aws: { policy: [GOOD], ...aws }, ...spec },
  });

  before(async () => {
    kc = kubeConfig();
    aws = await startAwsEmulator();
    operatorKubeconfig = await installOperator(kc, 'hostile-input');
    issuer = await clusterIssuer(kc);
    await createOidcProvider(aws.iam(), issuer);
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-hostile');
    operator = await startOperator({ name: 'hostile-input', kubeconfig: operatorKubeconfig, env: { ...awsEnv(aws.endpoint), KEYLESS_RESYNC_SECONDS: '5', KEYLESS_CLUSTER_NAME: CLUSTER } });
    await kubectlApply(
      cloudAccount(account),
      cloudAccount(adopting, { guardrails: { allowAdoption: true } }),
      cloudAccount(selective, { namespaceSelector: { matchLabels: { 'keyless.dev/tenant': 'payments' } } }),
    );
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${account}`, `cloudaccount/${adopting}`, `cloudaccount/${selective}`]);
  });

  after(async () => {
    await dropNamespace();
    await kubectl(['delete', 'cloudaccount', account, adopting, selective, '--ignore-not-found']);
    await operator.stop();
    await aws.stop();
  });

  it(`rejects or reports each of ${cases.length} hostile specs, and no trust is broader than its exact ServiceAccount`, async (t) => {
    assert.ok(cases.length >= 40);
    const pending: { c: Case; name: string }[] = [];
    for (const [i, c] of cases.entries()) {
      const name = c.metadataName ?? `case-${i}`;
      const sa = c.serviceAccountName ?? `sa-${i}`;
      const wi = workloadIdentity(name, sa, account, c.spec ?? {}, c.aws ?? {});
      const objects: object[] = [wi];
      if ('ready' in c.expect) objects.unshift({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } });
      const result = await kubectlApply(...objects).then(() => undefined, (e: { stderr?: string }) => e.stderr ?? 'failed');
      if ('api' in c.expect) {
        assert.ok(result, `${c.name}: the API accepted it`);
        assert.match(result, c.expect.api, c.name);
      } else {
        assert.equal(result, undefined, `${c.name}: the API refused it: ${result ?? ''}`);
        pending.push({ c, name });
      }
    }
    for (const { c, name } of pending) {
      const condition = await eventually(`${c.name} to settle`, async () => {
        const r = ready(await getWI(name));
        if ('ready' in c.expect) return r?.status === 'True' ? r : undefined;
        const expected = 'reason' in c.expect ? c.expect.reason : '';
        return r && r.reason === expected ? r : undefined;
      });
      if ('message' in c.expect) assert.match(condition.message, c.expect.message, c.name);
      const roleArn = (await getWI(name)).status?.aws?.roleArn;
      if ('provisioned' in c.expect) assert.ok(roleArn, `${c.name}: the role exists as written`);
      else if (!('ready' in c.expect)) assert.equal(roleArn, undefined, `${c.name}: nothing was created`);
    }

    // Every role in the account trusts exactly one subject of this cluster, with StringEquals on sub and aud.
    const roles = (await aws.iam().send(new ListRolesCommand({ PathPrefix: '/keyless/' }))).Roles ?? [];
    const key = issuer.replace(/^https:\/\//, '');
    const wis = ((await custom().listNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns })) as { items: WorkloadIdentity[] }).items;
    for (const role of roles) {
      const owner = wis.find((w) => w.status?.aws?.roleName === role.RoleName);
      assert.ok(owner, `${role.RoleName ?? ''} belongs to a WorkloadIdentity`);
      const trust = JSON.parse(decodeURIComponent(role.AssumeRolePolicyDocument ?? '')) as { Statement: { Action: string; Principal: unknown; Condition: { StringEquals: Record<string, string> } }[] };
      assert.equal(trust.Statement.length, 1);
      assert.deepEqual(trust.Statement[0]?.Condition, { StringEquals: { [`${key}:sub`]: `system:serviceaccount:${ns}:${owner.spec.serviceAccountName}`, [`${key}:aud`]: 'sts.amazonaws.com' } });
      assert.deepEqual(trust.Statement[0]?.Principal, { Federated: `arn:aws:iam::${TEST_ACCOUNT_ID}:oidc-provider/${key}` });
    }
    // The largest trust a valid spec can produce stays inside IAM's 2,048-character quota.
    const biggest = irsaTrustStatement(`arn:aws:iam::${TEST_ACCOUNT_ID}:oidc-provider/${long(200, 'h')}`, `https://${long(200, 'h')}`, `system:serviceaccount:${long(63, 'n')}:${long(253, 's')}`);
    assert.ok(policySize({ Version: '2012-10-17', Statement: [biggest] }) < 2048);
    assert.equal(operator.process.exitCode, null, 'the operator is still running');
    t.diagnostic(`${cases.length} hostile specs: ${cases.filter((c) => 'api' in c.expect).length} refused by the API, ${pending.length} reported by the operator; ${roles.length} roles exist`);
  });

  it('leaves a role with the derived name but no marker untouched, and adopts it only with the annotation and the account’s permission', async () => {
    const squatted = awsRoleName('keyless-', CLUSTER, ns, 'squatted');
    const foreignTrust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
    await aws.iam().send(new CreateRoleCommand({ RoleName: squatted, Path: '/keyless/', AssumeRolePolicyDocument: foreignTrust, Tags: [{ Key: 'team', Value: 'someone-else' }] }));
    await kubectlApply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'squatted-sa', namespace: ns } }, workloadIdentity('squatted', 'squatted-sa', account, {}, {}, { 'keyless.dev/adopt': 'true' }));
    const refused = await eventually('NotOwned', async () => {
      const r = ready(await getWI('squatted'));
      return r?.reason === 'NotOwned' ? r : undefined;
    });
    assert.match(refused.message, /allowAdoption/);
    const untouched = await aws.iam().send(new GetRoleCommand({ RoleName: squatted }));
    assert.equal(decodeURIComponent(untouched.Role?.AssumeRolePolicyDocument ?? ''), foreignTrust);
    assert.deepEqual((await aws.iam().send(new ListRolePoliciesCommand({ RoleName: squatted }))).PolicyNames, []);

    // The same WorkloadIdentity under an account that allows adoption takes the role over.
    await kubectl(['delete', '-n', ns, 'workloadidentity/squatted', '--wait=true', '--timeout=60s']);
    await kubectlApply(workloadIdentity('squatted', 'squatted-sa', adopting, {}, {}, { 'keyless.dev/adopt': 'true' }));
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', '-n', ns, 'workloadidentity/squatted']);
    const tagList = (await aws.iam().send(new ListRoleTagsCommand({ RoleName: squatted }))).Tags ?? [];
    const tags: Record<string, string | undefined> = Object.fromEntries(tagList.map((tg) => [tg.Key ?? '', tg.Value]));
    assert.equal(tags['keyless.dev/name'], 'squatted');
    assert.equal(tags['team'], 'someone-else', 'adoption adds our marker and keeps their tags');
  });

  it('removes exactly the grant a tightened guardrail forbids from a Ready identity', async () => {
    const name = `tight-${suffix}`;
    const tightAccount = `e2e-tight-${suffix}`;
    await kubectlApply(cloudAccount(tightAccount));
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${tightAccount}`]);
    try {
      const read = { effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::covers/*'] };
      const remove = { effect: 'Allow', actions: ['s3:DeleteObject'], resources: ['arn:aws:s3:::covers/*'] };
      await kubectlApply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'tight-sa', namespace: ns } }, workloadIdentity(name, 'tight-sa', tightAccount, {}, { policy: [read, remove] }));
      await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', '-n', ns, `workloadidentity/${name}`]);
      const roleName = (await getWI(name)).status?.aws?.roleName ?? '';

      await kubectl(['patch', `cloudaccount/${tightAccount}`, '--type=merge', '-p', JSON.stringify({ spec: { guardrails: { aws: { deniedActions: ['s3:Delete*'] } } } })]);
      const permissions = await eventually('PermissionsReady=False GuardrailViolation', async () => {
        const c = (await getWI(name)).status?.conditions?.find((x) => x.type === 'PermissionsReady');
        return c?.reason === 'GuardrailViolation' ? c : undefined;
      });
      assert.match(permissions.message, /spec.aws.policy\[1\].actions: "s3:DeleteObject" breaks guardrails.aws.deniedActions/);
      assert.equal(ready(await getWI(name))?.status, 'False');
      const policy = await eventually('the policy to lose DeleteObject', async () => {
        const doc = JSON.parse(decodeURIComponent((await aws.iam().send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: 'keyless' }))).PolicyDocument ?? '')) as { Statement: { Action: string[] }[] };
        return doc.Statement.length === 1 ? doc : undefined;
      });
      assert.deepEqual(policy.Statement[0]?.Action, ['s3:GetObject'], 'the permitted grant stays');
      await kubectl(['delete', '-n', ns, `workloadidentity/${name}`, '--wait=true', '--timeout=60s']);
    } finally {
      await kubectl(['delete', 'cloudaccount', tightAccount, '--ignore-not-found']);
    }
  });

  it('refuses a namespace the CloudAccount does not admit, and creates nothing', async () => {
    await kubectlApply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'tenant-sa', namespace: ns } }, workloadIdentity('tenant', 'tenant-sa', selective));
    const r = await eventually('NamespaceNotAllowed', async () => {
      const c = ready(await getWI('tenant'));
      return c?.reason === 'NamespaceNotAllowed' ? c : undefined;
    });
    assert.match(r.message, new RegExp(`does not admit namespace ${ns}`));
    assert.equal((await getWI('tenant')).status?.aws?.roleArn, undefined);
    // Labelling the namespace admits it.
    await kubectl(['label', 'namespace', ns, 'keyless.dev/tenant=payments']);
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', '-n', ns, 'workloadidentity/tenant']);
  });

  it('runs the operator without access to Secrets', async () => {
    const token = JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(operatorKubeconfig, 'utf8'))) as { users: { user: { token: string } }[] };
    const asOperator = kubeConfigWithToken(kc, token.users[0]?.user.token ?? '').makeApiClient(CoreV1Api);
    assert.equal(await asOperator.listSecretForAllNamespaces().then(() => 200, statusCode), 403);
    assert.equal(await asOperator.listNamespacedSecret({ namespace: ns }).then(() => 200, statusCode), 403);
    assert.equal(await asOperator.listNamespacedServiceAccount({ namespace: ns }).then(() => 200, statusCode), 200, 'the token itself works');
  });
});
