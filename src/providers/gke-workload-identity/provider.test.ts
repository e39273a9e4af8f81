import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CloudAccount, GcpMechanism, GcpRoleGrant } from '../../api/types.ts';
import { CloudError } from '../cloud-error.ts';
import { ProviderError, type IdentityContext } from '../types.ts';
import { FakeGcp } from './fake/gcp.ts';
import { GrantLedger } from './grant-ledger.ts';
import { GkeWorkloadIdentityProvider } from './provider.ts';
import type { PolicyTarget } from './resources.ts';

const PROJECT = 'my-project';
const POOL = 'my-project.svc.id.goog';
const KSA = `serviceAccount:${POOL}[bookstore/catalog-sa]`;
const PRINCIPAL = `principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/${POOL}/subject/ns/bookstore/sa/catalog-sa`;
const covers = { title: 'covers-only', expression: 'resource.name.startsWith("projects/_/buckets/covers/objects/covers/")' };
const project: PolicyTarget = { kind: 'project', project: PROJECT };
const bucket: PolicyTarget = { kind: 'bucket', bucket: 'covers' };
const topic: PolicyTarget = { kind: 'topic', project: PROJECT, topic: 'orders' };
const secret: PolicyTarget = { kind: 'secret', project: PROJECT, secret: 'db-password' };

const ROLES: GcpRoleGrant[] = [
  { role: 'roles/cloudtrace.agent' },
  { role: 'roles/storage.objectViewer', resource: '//storage.googleapis.com/projects/_/buckets/covers', condition: covers },
  { role: 'roles/pubsub.publisher', resource: `//pubsub.googleapis.com/projects/${PROJECT}/topics/orders` },
  { role: 'roles/secretmanager.secretAccessor', resource: `//secretmanager.googleapis.com/projects/${PROJECT}/secrets/db-password` },
];

function context(roles: GcpRoleGrant[] = ROLES, name = 'catalog'): IdentityContext {
  const account: CloudAccount = {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name: 'prod-gcp' },
    spec: { gcp: { projectId: PROJECT, projectNumber: '123456789012' } },
    status: { issuer: POOL },
  };
  return {
    cluster: 'c1',
    namespace: 'bookstore',
    name,
    uid: 'uid-1',
    serviceAccountName: 'catalog-sa',
    subject: 'system:serviceaccount:bookstore:catalog-sa',
    issuer: POOL,
    account,
    serviceAccountAnnotations: undefined,
    spec: { serviceAccountName: 'catalog-sa', cloudAccountRef: { name: 'prod-gcp' }, gcp: { roles } },
  };
}

function world(): FakeGcp {
  const gcp = new FakeGcp(PROJECT);
  // Someone else's bindings, there before Keyless, must survive everything below.
  gcp.addResource(project, { version: 1, bindings: [{ role: 'roles/owner', members: ['user:root@example.com'] }] });
  gcp.addResource(bucket, { version: 1, bindings: [{ role: 'roles/storage.objectViewer', members: ['group:readers@example.com'] }] });
  gcp.addResource(topic);
  gcp.addResource(secret);
  return gcp;
}

async function converge(provider: GkeWorkloadIdentityProvider, ctx: IdentityContext) {
  const desired = provider.desired(ctx);
  return provider.ensure(desired, await provider.observe(desired));
}

const membersOf = (gcp: FakeGcp, target: PolicyTarget) => (gcp.policy(target).bindings ?? []).map((b) => ({ role: b.role, members: b.members, ...(b.condition ? { condition: b.condition } : {}) }));

describe('GkeWorkloadIdentityProvider, ServiceAccount mode', () => {
  const mode: GcpMechanism = 'ServiceAccount';

  it('creates a marked Google service account, its workloadIdentityUser binding and every grant, and asks for the annotation', async () => {
    const gcp = world();
    const result = await converge(new GkeWorkloadIdentityProvider(mode, gcp), context());
    const [sa] = [...gcp.serviceAccounts.values()];
    assert.ok(sa);
    assert.match(sa.email, /^bookstore-catalog-[0-9a-f]{8}@my-project\.iam\.gserviceaccount\.com$/);
    assert.equal(sa.displayName, 'bookstore/catalog');
    assert.equal(sa.description, 'Managed by Keyless; do not edit. keyless.dev/cluster=c1 keyless.dev/namespace=bookstore keyless.dev/name=catalog');
    const me = `serviceAccount:${sa.email}`;
    assert.deepEqual(membersOf(gcp, { kind: 'serviceAccount', project: PROJECT, email: sa.email }), [{ role: 'roles/iam.workloadIdentityUser', members: [KSA] }]);
    assert.deepEqual(membersOf(gcp, project), [{ role: 'roles/owner', members: ['user:root@example.com'] }, { role: 'roles/cloudtrace.agent', members: [me] }]);
    assert.deepEqual(membersOf(gcp, bucket), [
      { role: 'roles/storage.objectViewer', members: ['group:readers@example.com'] },
      { role: 'roles/storage.objectViewer', members: [me], condition: covers },
    ]);
    assert.equal(gcp.policy(bucket).version, 3);
    assert.deepEqual(membersOf(gcp, topic), [{ role: 'roles/pubsub.publisher', members: [me] }]);
    assert.deepEqual(membersOf(gcp, secret), [{ role: 'roles/secretmanager.secretAccessor', members: [me] }]);

    assert.deepEqual(result.serviceAccountAnnotations, { 'iam.gke.io/gcp-service-account': sa.email });
    assert.deepEqual(result.status, {
      identity: sa.email,
      audience: POOL,
      gcp: {
        serviceAccountEmail: sa.email,
        member: me,
        grantedResources: [
          `//cloudresourcemanager.googleapis.com/projects/${PROJECT}`,
          '//storage.googleapis.com/projects/_/buckets/covers',
          `//pubsub.googleapis.com/projects/${PROJECT}/topics/orders`,
          `//secretmanager.googleapis.com/projects/${PROJECT}/secrets/db-password`,
        ],
      },
    });
    assert.match(result.messages.trust, new RegExp(`lets serviceAccount:${POOL.replace(/\./g, '\\.')}\\[bookstore/catalog-sa\\] impersonate it`));
    assert.deepEqual(result.changes.map((c) => c.action), ['Created', 'TrustGranted', 'RoleGranted', 'RoleGranted', 'RoleGranted', 'RoleGranted']);
  });

  it('writes nothing when the cloud already matches', async () => {
    const gcp = world();
    const provider = new GkeWorkloadIdentityProvider(mode, gcp);
    await converge(provider, context());
    gcp.writes.length = 0;
    const again = await converge(provider, context());
    assert.deepEqual(gcp.writes, []);
    assert.deepEqual(again.changes, []);
  });

  it('revokes grants the spec no longer lists, on resources it still names and on one it dropped', async () => {
    const gcp = world();
    const provider = new GkeWorkloadIdentityProvider(mode, gcp);
    await converge(provider, context());
    const result = await converge(provider, context([{ role: 'roles/cloudtrace.agent' }]));
    assert.deepEqual(result.changes.map((c) => c.action).sort(), ['RoleRevoked', 'RoleRevoked', 'RoleRevoked']);
    assert.deepEqual(membersOf(gcp, bucket), [{ role: 'roles/storage.objectViewer', members: ['group:readers@example.com'] }]);
    assert.deepEqual(membersOf(gcp, topic), []);
    assert.deepEqual(membersOf(gcp, secret), []);
  });

  it('revokes the grant on a resource dropped while the operator was down, from the last written status', async () => {
    const gcp = world();
    const first = await converge(new GkeWorkloadIdentityProvider(mode, gcp), context());
    // A restarted operator: a new provider with an empty memory, and the status the first one wrote.
    const restarted = new GkeWorkloadIdentityProvider(mode, gcp);
    const ctx = { ...context([{ role: 'roles/cloudtrace.agent' }]), status: first.status };
    const result = await converge(restarted, ctx);
    assert.deepEqual(result.changes.map((c) => c.action).sort(), ['RoleRevoked', 'RoleRevoked', 'RoleRevoked']);
    assert.deepEqual(membersOf(gcp, topic), []);
    assert.deepEqual(result.status.gcp?.grantedResources, [`//cloudresourcemanager.googleapis.com/projects/${PROJECT}`]);
  });

  it('repairs a widened trust: a second Kubernetes ServiceAccount on its workloadIdentityUser role', async () => {
    const gcp = world();
    const provider = new GkeWorkloadIdentityProvider(mode, gcp);
    await converge(provider, context());
    const [sa] = [...gcp.serviceAccounts.values()];
    assert.ok(sa);
    const own: PolicyTarget = { kind: 'serviceAccount', project: PROJECT, email: sa.email };
    gcp.foreignWrite(own, (p) => ({ ...p, bindings: [{ role: 'roles/iam.workloadIdentityUser', members: [KSA, `serviceAccount:${POOL}[other/intruder]`] }] }));
    const result = await converge(provider, context());
    assert.deepEqual(result.changes.map((c) => c.action), ['TrustRestricted']);
    assert.deepEqual(membersOf(gcp, own), [{ role: 'roles/iam.workloadIdentityUser', members: [KSA] }]);
  });

  it('refuses a service account with its id that carries no marker, and changes nothing', async () => {
    const gcp = world();
    const provider = new GkeWorkloadIdentityProvider(mode, gcp);
    const desired = provider.desired(context());
    await gcp.createServiceAccount(PROJECT, desired.gsa?.accountId ?? '', { displayName: 'theirs', description: 'hand-made' });
    gcp.writes.length = 0;
    await assert.rejects(provider.ensure(desired, await provider.observe(desired)), (err: unknown) => err instanceof ProviderError && err.reason === 'NotOwned' && !err.retryable && /no Keyless ownership marker/.test(err.message));
    const revoked = await provider.delete(desired);
    assert.equal(revoked.complete, true);
    assert.deepEqual(gcp.writes, []);
    assert.equal(gcp.serviceAccounts.size, 1, 'the foreign account survives delete');
  });

  it('names the owner when the account belongs to another WorkloadIdentity', async () => {
    const gcp = world();
    const provider = new GkeWorkloadIdentityProvider(mode, gcp);
    const desired = provider.desired(context());
    await gcp.createServiceAccount(PROJECT, desired.gsa?.accountId ?? '', { displayName: 'x', description: 'Managed by Keyless; do not edit. keyless.dev/cluster=c9 keyless.dev/namespace=bookstore keyless.dev/name=catalog' });
    await assert.rejects(provider.ensure(desired, await provider.observe(desired)), /belongs to bookstore\/catalog \(cluster c9\)/);
  });

  it('finds its own account again after a crash between create and the status write', async () => {
    const gcp = world();
    const provider = new GkeWorkloadIdentityProvider(mode, gcp);
    const desired = provider.desired(context());
    const staleObservation = await provider.observe(desired);
    await provider.ensure(desired, staleObservation);
    await provider.ensure(desired, staleObservation);
    assert.equal(gcp.serviceAccounts.size, 1);
  });

  it('retries quietly while a new account has not propagated, then converges with one account', async () => {
    const gcp = world();
    const provider = new GkeWorkloadIdentityProvider(mode, gcp);
    const desired = provider.desired(context());
    gcp.unpropagated.add(desired.gsa?.email ?? '');
    await assert.rejects(converge(provider, context()), (err: unknown) => err instanceof CloudError && err.kind === 'retryable' && !(err instanceof ProviderError));
    // The next attempt does not see the account yet either (reads lag): the create answers ALREADY_EXISTS.
    const hidden = gcp.serviceAccounts.get(desired.gsa?.email ?? '');
    gcp.serviceAccounts.clear();
    const observed = await provider.observe(desired);
    if (hidden) gcp.serviceAccounts.set(hidden.email, hidden);
    await assert.rejects(provider.ensure(desired, observed), (err: unknown) => err instanceof CloudError && err.kind === 'retryable');
    gcp.unpropagated.clear();
    await converge(provider, context());
    assert.equal(gcp.serviceAccounts.size, 1);
    assert.equal(membersOf(gcp, topic).length, 1);
  });

  it('reports the service account quota as QuotaExceeded, not retried until something changes', async () => {
    const gcp = world();
    gcp.quota = 0;
    await assert.rejects(converge(new GkeWorkloadIdentityProvider(mode, gcp), context()), (err: unknown) => err instanceof ProviderError && err.reason === 'QuotaExceeded' && err.step === 'identity' && !err.retryable && /DirectPrincipal/.test(err.message));
  });

  it('reports a missing bucket as ResourceNotFound and retries', async () => {
    const gcp = world();
    const roles = [{ role: 'roles/storage.objectViewer', resource: '//storage.googleapis.com/projects/_/buckets/nope' }];
    await assert.rejects(converge(new GkeWorkloadIdentityProvider(mode, gcp), context(roles)), (err: unknown) => err instanceof ProviderError && err.reason === 'ResourceNotFound' && err.retryable && /gs:\/\/nope/.test(err.message));
  });

  it('cleans up deleted: members of its own earlier account after the account was deleted behind its back', async () => {
    const gcp = world();
    const provider = new GkeWorkloadIdentityProvider(mode, gcp);
    await converge(provider, context());
    const [sa] = [...gcp.serviceAccounts.values()];
    assert.ok(sa);
    await gcp.deleteServiceAccount(PROJECT, sa.email);
    assert.ok(JSON.stringify(gcp.policy(topic)).includes(`deleted:serviceAccount:${sa.email}?uid=`));
    const result = await converge(provider, context());
    assert.ok(result.changes.some((c) => c.action === 'StaleMembersRemoved'));
    for (const target of [project, bucket, topic, secret]) {
      assert.doesNotMatch(JSON.stringify(gcp.policy(target)), /deleted:/, JSON.stringify(target));
    }
    assert.equal(gcp.serviceAccounts.size, 1);
  });

  it('deletes trust, grants and then the account, leaving every foreign binding and no ghosts', async () => {
    const gcp = world();
    const provider = new GkeWorkloadIdentityProvider(mode, gcp);
    await converge(provider, context());
    const revoked = await provider.delete(provider.desired(context()));
    assert.equal(revoked.complete, true);
    assert.equal(gcp.serviceAccounts.size, 0);
    assert.deepEqual(membersOf(gcp, project), [{ role: 'roles/owner', members: ['user:root@example.com'] }]);
    assert.deepEqual(membersOf(gcp, bucket), [{ role: 'roles/storage.objectViewer', members: ['group:readers@example.com'] }]);
    assert.deepEqual(membersOf(gcp, topic), []);
    assert.deepEqual(membersOf(gcp, secret), []);
    assert.deepEqual(revoked.changes.map((c) => c.action), ['TrustRevoked', 'RoleRevoked', 'RoleRevoked', 'RoleRevoked', 'RoleRevoked', 'Deleted']);
  });

  it('rejects a resource type it cannot grant on, naming the supported ones', () => {
    const problems = new GkeWorkloadIdentityProvider(mode, world()).validate(context([{ role: 'roles/bigquery.dataViewer', resource: '//bigquery.googleapis.com/projects/p/datasets/d' }]));
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /spec\.gcp\.roles\[0\]\.resource "\/\/bigquery.googleapis.com\/projects\/p\/datasets\/d" is not a resource Keyless can grant on; use one of \/\/cloudresourcemanager/);
    assert.deepEqual(new GkeWorkloadIdentityProvider(mode, world()).validate(context()), []);
  });
});

describe('GkeWorkloadIdentityProvider, DirectPrincipal mode', () => {
  const mode: GcpMechanism = 'DirectPrincipal';

  it('grants to the principal, creates no service account and asks for no annotation', async () => {
    const gcp = world();
    const result = await converge(new GkeWorkloadIdentityProvider(mode, gcp), context());
    assert.equal(gcp.serviceAccounts.size, 0);
    assert.deepEqual(membersOf(gcp, project), [{ role: 'roles/owner', members: ['user:root@example.com'] }, { role: 'roles/cloudtrace.agent', members: [PRINCIPAL] }]);
    assert.deepEqual(membersOf(gcp, topic), [{ role: 'roles/pubsub.publisher', members: [PRINCIPAL] }]);
    assert.deepEqual(result.serviceAccountAnnotations, {});
    assert.equal(result.status.gcp?.member, PRINCIPAL);
    assert.equal(result.status.gcp?.serviceAccountEmail, undefined);
    assert.equal(result.status.identity, PRINCIPAL);
    assert.match(result.messages.identity, /No Google service account/);
  });

  it('revokes exactly its grants on delete', async () => {
    const gcp = world();
    const ledger = new GrantLedger();
    await converge(new GkeWorkloadIdentityProvider(mode, gcp, ledger), context());
    // A fresh provider (new CloudAccount generation) shares the account's ledger.
    const provider = new GkeWorkloadIdentityProvider(mode, gcp, ledger);
    const revoked = await provider.delete(provider.desired(context([])));
    assert.equal(revoked.complete, true);
    assert.deepEqual(membersOf(gcp, project), [{ role: 'roles/owner', members: ['user:root@example.com'] }]);
    assert.deepEqual(membersOf(gcp, bucket), [{ role: 'roles/storage.objectViewer', members: ['group:readers@example.com'] }]);
    assert.deepEqual(membersOf(gcp, topic), []);
    assert.deepEqual(membersOf(gcp, secret), []);
  });
});

describe('GkeWorkloadIdentityProvider, switching mechanism', () => {
  it('ServiceAccount → DirectPrincipal moves every grant to the principal and deletes the service account', async () => {
    const gcp = world();
    const ledger = new GrantLedger();
    await converge(new GkeWorkloadIdentityProvider('ServiceAccount', gcp, ledger), context());
    const result = await converge(new GkeWorkloadIdentityProvider('DirectPrincipal', gcp, ledger), context());
    assert.equal(gcp.serviceAccounts.size, 0);
    assert.ok(result.changes.some((c) => c.action === 'Deleted'));
    assert.deepEqual(membersOf(gcp, project), [{ role: 'roles/owner', members: ['user:root@example.com'] }, { role: 'roles/cloudtrace.agent', members: [PRINCIPAL] }]);
    assert.deepEqual(membersOf(gcp, topic), [{ role: 'roles/pubsub.publisher', members: [PRINCIPAL] }]);
    for (const target of [project, bucket, topic, secret]) assert.doesNotMatch(JSON.stringify(gcp.policy(target)), /serviceAccount:|deleted:/);
  });

  it('DirectPrincipal → ServiceAccount removes the principal\'s grants on the spec\'s resources', async () => {
    const gcp = world();
    const ledger = new GrantLedger();
    await converge(new GkeWorkloadIdentityProvider('DirectPrincipal', gcp, ledger), context());
    await converge(new GkeWorkloadIdentityProvider('ServiceAccount', gcp, ledger), context());
    for (const target of [project, bucket, topic, secret]) assert.doesNotMatch(JSON.stringify(gcp.policy(target)), /principal:\/\//);
    const [sa] = [...gcp.serviceAccounts.values()];
    assert.deepEqual(membersOf(gcp, topic), [{ role: 'roles/pubsub.publisher', members: [`serviceAccount:${sa?.email ?? ''}`] }]);
  });
});
