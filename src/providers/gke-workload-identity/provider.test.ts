import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CloudAccount, GcpMechanism, GcpRoleGrant } from '../../api/types.ts';
import { CloudError } from '../cloud-error.ts';
import { converge, revokeIntended } from '../fake/contract.ts';
import { fakeToken } from '../fake/token.ts';
import { ProviderError, type IdentityContext } from '../types.ts';
import { FakeClock } from '../../controller/fake-clock.ts';
import type { SharedReadsOptions } from '../shared-reads.ts';
import { checkGcpAccount } from './account-check.ts';
import { FakeGcpExchange } from './fake/exchange.ts';
import { FakeGcp } from './fake/gcp.ts';
import { GkeWorkloadIdentityProvider } from './provider.ts';
import type { PolicyTarget } from './resources.ts';
import { shareGcpReads } from './shared-port.ts';

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

/** A provider over `gcp` whose shared reads keep nothing (max age 0): each converge reads what the cloud has now. */
function gke(mode: GcpMechanism, gcp: FakeGcp, reads: SharedReadsOptions = { maxAgeMs: 0 }): GkeWorkloadIdentityProvider {
  return new GkeWorkloadIdentityProvider(mode, shareGcpReads(gcp, reads), new FakeGcpExchange(gcp));
}

/** Converges from the record a previous converge left, as the reconciler does. */
async function next(provider: GkeWorkloadIdentityProvider, ctx: IdentityContext, previous: { record: IdentityContext['record'] }) {
  return converge(provider, { ...ctx, record: previous.record });
}

const membersOf = (gcp: FakeGcp, target: PolicyTarget) => (gcp.policy(target).bindings ?? []).map((b) => ({ role: b.role, members: b.members, ...(b.condition ? { condition: b.condition } : {}) }));

describe('GkeWorkloadIdentityProvider, ServiceAccount mode', () => {
  const mode: GcpMechanism = 'ServiceAccount';

  it('creates a marked Google service account, its workloadIdentityUser binding and every grant, and asks for the annotation', async () => {
    const gcp = world();
    const result = await converge(gke(mode, gcp), context());
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
    assert.deepEqual(result.status, { identity: sa.email, audience: POOL, gcp: { serviceAccountEmail: sa.email, member: me } });
    assert.deepEqual(result.record, {
      gcp: {
        projectId: PROJECT,
        projectNumber: '123456789012',
        workloadPool: POOL,
        serviceAccountEmail: sa.email,
        grants: [
          { member: me, resource: `//cloudresourcemanager.googleapis.com/projects/${PROJECT}`, role: 'roles/cloudtrace.agent' },
          { member: me, resource: '//storage.googleapis.com/projects/_/buckets/covers', role: 'roles/storage.objectViewer', condition: covers },
          { member: me, resource: `//pubsub.googleapis.com/projects/${PROJECT}/topics/orders`, role: 'roles/pubsub.publisher' },
          { member: me, resource: `//secretmanager.googleapis.com/projects/${PROJECT}/secrets/db-password`, role: 'roles/secretmanager.secretAccessor' },
        ],
      },
    });
    assert.match(result.messages.trust, new RegExp(`lets serviceAccount:${POOL.replace(/\./g, '\\.')}\\[bookstore/catalog-sa\\] impersonate it`));
    assert.deepEqual(result.changes.map((c) => c.action), ['Created', 'TrustGranted', 'RoleGranted', 'RoleGranted', 'RoleGranted', 'RoleGranted']);
  });

  it('writes nothing when the cloud already matches', async () => {
    const gcp = world();
    const provider = gke(mode, gcp);
    const first = await converge(provider, context());
    gcp.writes.length = 0;
    const again = await next(provider, context(), first);
    assert.deepEqual(gcp.writes, []);
    assert.deepEqual(again.changes, []);
  });

  it('revokes grants the spec no longer lists, on resources it still names and on those it dropped', async () => {
    const gcp = world();
    const provider = gke(mode, gcp);
    const first = await converge(provider, context());
    const result = await next(provider, context([{ role: 'roles/cloudtrace.agent' }]), first);
    assert.deepEqual(result.changes.map((c) => c.action).sort(), ['RoleRevoked', 'RoleRevoked', 'RoleRevoked']);
    assert.deepEqual(membersOf(gcp, bucket), [{ role: 'roles/storage.objectViewer', members: ['group:readers@example.com'] }]);
    assert.deepEqual(membersOf(gcp, topic), []);
    assert.deepEqual(membersOf(gcp, secret), []);
  });

  it('revokes the grant on a resource dropped while the operator was down, from the record alone', async () => {
    const gcp = world();
    const first = await converge(gke(mode, gcp), context());
    // A restarted operator: a new provider, and only the record the first one wrote.
    const result = await next(gke(mode, gcp), context([{ role: 'roles/cloudtrace.agent' }]), first);
    assert.deepEqual(result.changes.map((c) => c.action).sort(), ['RoleRevoked', 'RoleRevoked', 'RoleRevoked']);
    assert.deepEqual(membersOf(gcp, topic), []);
    assert.deepEqual(result.record.gcp?.grants?.map((g) => g.resource), [`//cloudresourcemanager.googleapis.com/projects/${PROJECT}`]);
  });

  it('repairs a widened trust: a second Kubernetes ServiceAccount on its workloadIdentityUser role', async () => {
    const gcp = world();
    const provider = gke(mode, gcp);
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
    const provider = gke(mode, gcp);
    const desired = provider.desired(context());
    await gcp.createServiceAccount(PROJECT, desired.gsa?.accountId ?? '', { displayName: 'theirs', description: 'hand-made' });
    gcp.writes.length = 0;
    await assert.rejects(provider.ensure(desired, await provider.observe(desired)), (err: unknown) => err instanceof ProviderError && err.reason === 'NotOwned' && !err.retryable && /no Keyless ownership marker/.test(err.message));
    const revoked = await revokeIntended(provider, context());
    assert.equal(revoked.complete, true);
    assert.deepEqual(gcp.writes, []);
    assert.equal(gcp.serviceAccounts.size, 1, 'the foreign account survives delete');
  });

  it('names the owner when the account belongs to another WorkloadIdentity', async () => {
    const gcp = world();
    const provider = gke(mode, gcp);
    const desired = provider.desired(context());
    await gcp.createServiceAccount(PROJECT, desired.gsa?.accountId ?? '', { displayName: 'x', description: 'Managed by Keyless; do not edit. keyless.dev/cluster=c9 keyless.dev/namespace=bookstore keyless.dev/name=catalog' });
    await assert.rejects(provider.ensure(desired, await provider.observe(desired)), /belongs to bookstore\/catalog \(cluster c9\)/);
  });

  it('finds its own account again after a crash between create and the status write', async () => {
    const gcp = world();
    const provider = gke(mode, gcp);
    const desired = provider.desired(context());
    const staleObservation = await provider.observe(desired);
    await provider.ensure(desired, staleObservation);
    await provider.ensure(desired, staleObservation);
    assert.equal(gcp.serviceAccounts.size, 1);
  });

  it('retries quietly while a new account has not propagated, then converges with one account', async () => {
    const gcp = world();
    const provider = gke(mode, gcp);
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
    await assert.rejects(converge(gke(mode, gcp), context()), (err: unknown) => err instanceof ProviderError && err.reason === 'QuotaExceeded' && err.step === 'identity' && !err.retryable && /DirectPrincipal/.test(err.message));
  });

  it('reports a missing bucket as ResourceNotFound and retries', async () => {
    const gcp = world();
    const roles = [{ role: 'roles/storage.objectViewer', resource: '//storage.googleapis.com/projects/_/buckets/nope' }];
    await assert.rejects(converge(gke(mode, gcp), context(roles)), (err: unknown) => err instanceof ProviderError && err.reason === 'ResourceNotFound' && err.retryable && /gs:\/\/nope/.test(err.message));
  });

  it('cleans up deleted: members of its own earlier account after the account was deleted behind its back', async () => {
    const gcp = world();
    const provider = gke(mode, gcp);
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
    const provider = gke(mode, gcp);
    const first = await converge(provider, context());
    const revoked = await provider.revoke(first.record, context());
    assert.equal(revoked.complete, true);
    assert.equal(gcp.serviceAccounts.size, 0);
    assert.deepEqual(membersOf(gcp, project), [{ role: 'roles/owner', members: ['user:root@example.com'] }]);
    assert.deepEqual(membersOf(gcp, bucket), [{ role: 'roles/storage.objectViewer', members: ['group:readers@example.com'] }]);
    assert.deepEqual(membersOf(gcp, topic), []);
    assert.deepEqual(membersOf(gcp, secret), []);
    assert.deepEqual(revoked.changes.map((c) => c.action), ['TrustRevoked', 'RoleRevoked', 'RoleRevoked', 'RoleRevoked', 'RoleRevoked', 'Deleted']);
  });

  it('rejects a resource type it cannot grant on, naming the supported ones', () => {
    const problems = gke(mode, world()).validate(context([{ role: 'roles/bigquery.dataViewer', resource: '//bigquery.googleapis.com/projects/p/datasets/d' }]));
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /spec\.gcp\.roles\[0\]\.resource "\/\/bigquery.googleapis.com\/projects\/p\/datasets\/d" is not a resource Keyless can grant on; use one of \/\/cloudresourcemanager/);
    assert.deepEqual(gke(mode, world()).validate(context()), []);
  });
});

describe('GkeWorkloadIdentityProvider adoption', () => {
  const mode: GcpMechanism = 'ServiceAccount';
  const HAND_MADE = `catalog-reader@${PROJECT}.iam.gserviceaccount.com`;
  const ME = `serviceAccount:${HAND_MADE}`;
  const adopting = (overrides: Partial<IdentityContext> = {}): IdentityContext => ({ ...context([{ role: 'roles/cloudtrace.agent' }]), adopt: true, adoptIdentity: HAND_MADE, ...overrides });
  /** A Google service account made by hand for bookstore/catalog-sa, with a grant of its own. */
  const handMade = async (gcp: FakeGcp, impersonators: string[]) => {
    await gcp.createServiceAccount(PROJECT, 'catalog-reader', { displayName: 'catalog', description: 'made by hand' });
    const own: PolicyTarget = { kind: 'serviceAccount', project: PROJECT, email: HAND_MADE };
    gcp.foreignWrite(own, () => ({ version: 1, bindings: [{ role: 'roles/iam.workloadIdentityUser', members: impersonators }] }));
    gcp.foreignWrite(project, (p) => ({ ...p, bindings: [...(p.bindings ?? []), { role: 'roles/cloudtrace.agent', members: [ME] }] }));
    gcp.writes.length = 0;
  };

  it('takes over the Google service account keyless.dev/adopt names when this ServiceAccount may impersonate it', async () => {
    const gcp = world();
    await handMade(gcp, [KSA]);
    const provider = gke(mode, gcp);
    const result = await converge(provider, adopting());
    assert.equal(gcp.serviceAccounts.size, 1, 'no new account');
    assert.match(gcp.serviceAccounts.get(HAND_MADE)?.description ?? '', /keyless\.dev\/cluster=c1 keyless\.dev\/namespace=bookstore keyless\.dev\/name=catalog/);
    assert.deepEqual(result.serviceAccountAnnotations, { 'iam.gke.io/gcp-service-account': HAND_MADE });
    assert.deepEqual(gcp.writes, [`PatchServiceAccount:${HAND_MADE}`], 'its trust and its grant already were what the spec asks');
    assert.equal(result.record.gcp?.serviceAccountEmail, HAND_MADE);
    assert.equal(provider.continues(result.record, adopting()), true);
    assert.equal(provider.continues(result.record, context()), false, 'without the annotation it is not this identity');

    const revoked = await provider.revoke(result.record, context());
    assert.equal(revoked.complete, true);
    assert.equal(gcp.serviceAccounts.size, 0, 'once adopted it is revoked like our own');
    assert.deepEqual(membersOf(gcp, project), [{ role: 'roles/owner', members: ['user:root@example.com'] }]);
  });

  it('refuses a named account that this ServiceAccount cannot impersonate, and changes nothing', async () => {
    const gcp = world();
    await handMade(gcp, [`serviceAccount:${POOL}[bookstore/other-sa]`]);
    const provider = gke(mode, gcp);
    const desired = provider.desired(adopting());
    await assert.rejects(provider.ensure(desired, await provider.observe(desired)), (err: unknown) => err instanceof ProviderError && err.reason === 'NotOwned' && /does not let serviceAccount:.*\[bookstore\/catalog-sa\] impersonate it/.test(err.message));
    assert.deepEqual(gcp.writes, []);
  });

  it('rejects an email of another project, and a Google service account for DirectPrincipal', () => {
    const gcp = world();
    const sa = gke(mode, gcp);
    assert.match(sa.validate(adopting({ adoptIdentity: 'catalog-reader@other-project.iam.gserviceaccount.com' })).join(' '), /is neither "true" nor a Google service account email of project my-project/);
    assert.match(gke('DirectPrincipal', gcp).validate(adopting()).join(' '), /DirectPrincipal does not use/);
  });
});

describe('GkeWorkloadIdentityProvider, DirectPrincipal mode', () => {
  const mode: GcpMechanism = 'DirectPrincipal';

  it('grants to the principal, creates no service account and asks for no annotation', async () => {
    const gcp = world();
    const result = await converge(gke(mode, gcp), context());
    assert.equal(gcp.serviceAccounts.size, 0);
    assert.deepEqual(membersOf(gcp, project), [{ role: 'roles/owner', members: ['user:root@example.com'] }, { role: 'roles/cloudtrace.agent', members: [PRINCIPAL] }]);
    assert.deepEqual(membersOf(gcp, topic), [{ role: 'roles/pubsub.publisher', members: [PRINCIPAL] }]);
    assert.deepEqual(result.serviceAccountAnnotations, {});
    assert.equal(result.status.gcp?.member, PRINCIPAL);
    assert.equal(result.status.gcp?.serviceAccountEmail, undefined);
    assert.equal(result.status.identity, PRINCIPAL);
    assert.match(result.messages.identity, /No Google service account/);
  });

  it('revokes exactly its grants on delete, from the record, whatever the spec says now', async () => {
    const gcp = world();
    const first = await converge(gke(mode, gcp), context());
    const revoked = await gke(mode, gcp).revoke(first.record, context([]));
    assert.equal(revoked.complete, true);
    assert.deepEqual(membersOf(gcp, project), [{ role: 'roles/owner', members: ['user:root@example.com'] }]);
    assert.deepEqual(membersOf(gcp, bucket), [{ role: 'roles/storage.objectViewer', members: ['group:readers@example.com'] }]);
    assert.deepEqual(membersOf(gcp, topic), []);
    assert.deepEqual(membersOf(gcp, secret), []);
  });

  it('never records, and never removes, a binding of the principal that someone else made', async () => {
    const gcp = world();
    // A person granted exactly what the spec will ask for, and something else, to the same principal.
    gcp.foreignWrite(project, (p) => ({ ...p, bindings: [...(p.bindings ?? []), { role: 'roles/cloudtrace.agent', members: [PRINCIPAL] }, { role: 'roles/viewer', members: [PRINCIPAL] }] }));
    const provider = gke(mode, gcp);
    const desired = provider.desired(context());
    const intent = provider.intent(desired, await provider.observe(desired));
    assert.ok(!intent.gcp?.grants?.some((g) => g.role === 'roles/cloudtrace.agent'), 'a binding the principal already holds is not ours');
    const result = await provider.ensure(desired, await provider.observe(desired));
    assert.ok(!result.record.gcp?.grants?.some((g) => g.role === 'roles/cloudtrace.agent'));
    await provider.revoke(result.record, context());
    assert.deepEqual(membersOf(gcp, project), [
      { role: 'roles/owner', members: ['user:root@example.com'] },
      { role: 'roles/cloudtrace.agent', members: [PRINCIPAL] },
      { role: 'roles/viewer', members: [PRINCIPAL] },
    ]);
  });
});

describe('GkeWorkloadIdentityProvider, switching mechanism', () => {
  it('ServiceAccount → DirectPrincipal moves every grant to the principal and deletes the service account', async () => {
    const gcp = world();
    const first = await converge(gke('ServiceAccount', gcp), context());
    const result = await next(gke('DirectPrincipal', gcp), context(), first);
    assert.equal(gcp.serviceAccounts.size, 0);
    assert.ok(result.changes.some((c) => c.action === 'Deleted'));
    assert.equal(result.record.gcp?.serviceAccountEmail, undefined, 'the deleted account leaves the record');
    assert.deepEqual(membersOf(gcp, project), [{ role: 'roles/owner', members: ['user:root@example.com'] }, { role: 'roles/cloudtrace.agent', members: [PRINCIPAL] }]);
    assert.deepEqual(membersOf(gcp, topic), [{ role: 'roles/pubsub.publisher', members: [PRINCIPAL] }]);
    for (const target of [project, bucket, topic, secret]) assert.doesNotMatch(JSON.stringify(gcp.policy(target)), /serviceAccount:|deleted:/);
  });

  it('DirectPrincipal → ServiceAccount removes the principal\'s recorded grants and no other', async () => {
    const gcp = world();
    const first = await converge(gke('DirectPrincipal', gcp), context());
    gcp.foreignWrite(topic, (p) => ({ ...p, bindings: [...(p.bindings ?? []), { role: 'roles/pubsub.viewer', members: [PRINCIPAL] }] }));
    await next(gke('ServiceAccount', gcp), context(), first);
    for (const target of [project, bucket, secret]) assert.doesNotMatch(JSON.stringify(gcp.policy(target)), /principal:\/\//);
    const [sa] = [...gcp.serviceAccounts.values()];
    assert.deepEqual(membersOf(gcp, topic), [
      { role: 'roles/pubsub.viewer', members: [PRINCIPAL] },
      { role: 'roles/pubsub.publisher', members: [`serviceAccount:${sa?.email ?? ''}`] },
    ]);
  });

  it('keeps a foreign binding of the principal through create, both switches and delete', async () => {
    const gcp = world();
    gcp.foreignWrite(project, (p) => ({ ...p, bindings: [...(p.bindings ?? []), { role: 'roles/viewer', members: [PRINCIPAL] }] }));
    const foreign = { role: 'roles/viewer', members: [PRINCIPAL] };
    const sa = await converge(gke('ServiceAccount', gcp), context());
    assert.deepEqual(membersOf(gcp, project)[1], foreign, 'after create');
    const dp = await next(gke('DirectPrincipal', gcp), context(), sa);
    assert.ok(membersOf(gcp, project).some((b) => b.role === 'roles/viewer' && b.members.includes(PRINCIPAL)), 'after the switch to DirectPrincipal');
    const back = await next(gke('ServiceAccount', gcp), context(), dp);
    assert.ok(membersOf(gcp, project).some((b) => b.role === 'roles/viewer' && b.members.includes(PRINCIPAL)), 'after the switch back');
    assert.ok(!membersOf(gcp, project).some((b) => b.role === 'roles/cloudtrace.agent' && b.members.includes(PRINCIPAL)), 'our own principal grant went');
    await gke('ServiceAccount', gcp).revoke(back.record, context());
    assert.deepEqual(membersOf(gcp, project), [{ role: 'roles/owner', members: ['user:root@example.com'] }, foreign], 'after delete');
  });
});

describe('GkeWorkloadIdentityProvider record', () => {
  it('records the service account and every grant before anything is created', async () => {
    const gcp = world();
    const provider = gke('ServiceAccount', gcp);
    const desired = provider.desired(context());
    const intent = provider.intent(desired, await provider.observe(desired));
    assert.equal(intent.gcp?.serviceAccountEmail, desired.gsa?.email);
    assert.equal(intent.gcp?.grants?.length, ROLES.length);
    assert.deepEqual(gcp.writes, []);
  });

  it('continues a record of the same project and pool only', async () => {
    const gcp0 = world();
    const provider = gke('ServiceAccount', gcp0);
    const { record } = await converge(provider, context());
    const gcp = record.gcp;
    assert.ok(gcp);
    assert.equal(provider.continues(record, context()), true);
    assert.equal(provider.continues({ gcp: { ...gcp, workloadPool: 'fleet-host.svc.id.goog' } }, context()), false, 'another pool names other members');
    assert.equal(provider.continues({ gcp: { ...gcp, projectId: 'other-project' } }, context()), false);
  });
});

describe('GkeWorkloadIdentityProvider credentials (the metadata server\'s exchange)', () => {
  const ISSUER = 'https://container.googleapis.com/v1/projects/my-project/locations/us-central1/clusters/c1';
  const token = (sa: string) => fakeToken({ iss: ISSUER, sub: `system:serviceaccount:bookstore:${sa}`, aud: POOL });

  it('ServiceAccount mode: the pod may impersonate its Google service account until the binding goes', async () => {
    const gcp = world();
    const provider = gke('ServiceAccount', gcp);
    const { status } = await converge(provider, context());
    assert.equal(provider.credentials.audience(context()), POOL);
    assert.equal((await provider.credentials.exchange(context(), status, token('catalog-sa'))).ok, true);
    assert.equal((await provider.credentials.exchange(context(), status, token('intruder'))).reason, 'TrustRejected');
    const email = status.gcp?.serviceAccountEmail ?? '';
    gcp.foreignWrite({ kind: 'serviceAccount', project: PROJECT, email }, (p) => ({ ...p, bindings: [] }));
    const removed = await provider.credentials.exchange(context(), status, token('catalog-sa'));
    assert.equal(removed.reason, 'TrustRejected');
    assert.match(removed.message, /roles\/iam\.workloadIdentityUser binding is missing/);
  });

  it('DirectPrincipal: the STS exchange alone, refused for a token of another pool', async () => {
    const gcp = world();
    const provider = gke('DirectPrincipal', gcp);
    const { status } = await converge(provider, context());
    assert.equal((await provider.credentials.exchange(context(), status, token('catalog-sa'))).ok, true);
    const wrongPool = fakeToken({ iss: ISSUER, sub: 'system:serviceaccount:bookstore:catalog-sa', aud: 'other.svc.id.goog' });
    assert.equal((await provider.credentials.exchange(context(), status, wrongPool)).reason, 'IssuerNotTrusted');
  });
});

describe('GkeWorkloadIdentityProvider, reads shared by the identities of one CloudAccount', () => {
  const MAX_AGE = 60_000;
  /** The providers of both mechanisms over one account's port, as clients.ts builds them, on a clock the test moves. */
  function account(gcp: FakeGcp) {
    const clock = new FakeClock();
    const port = shareGcpReads(gcp, { maxAgeMs: MAX_AGE, now: clock.now });
    const exchange = new FakeGcpExchange(gcp);
    return { clock, ServiceAccount: new GkeWorkloadIdentityProvider('ServiceAccount', port, exchange), DirectPrincipal: new GkeWorkloadIdentityProvider('DirectPrincipal', port, exchange) };
  }
  /** Identity `name` with its own Kubernetes ServiceAccount `<name>-sa`. */
  function identity(name: string, roles: GcpRoleGrant[] = [{ role: 'roles/cloudtrace.agent' }]): IdentityContext {
    const ctx = context(roles, name);
    return { ...ctx, serviceAccountName: `${name}-sa`, subject: `system:serviceaccount:bookstore:${name}-sa`, spec: { ...ctx.spec, serviceAccountName: `${name}-sa` } };
  }
  const names = ['one', 'two', 'three'];
  const reads = (gcp: FakeGcp) => gcp.calls.filter((c) => /^(Get|List)/.test(c.split(':')[0] ?? ''));

  for (const mode of ['ServiceAccount', 'DirectPrincipal'] as const) {
    it(`${mode}: a resync of three converged identities reads the project's policy once${mode === 'ServiceAccount' ? ', the listing once and each service account\'s own policy' : ''}`, async () => {
      const gcp = world();
      const providers = account(gcp);
      const records = new Map<string, IdentityContext['record']>();
      for (const name of names) records.set(name, (await converge(providers[mode], identity(name))).record);
      providers.clock.advance(MAX_AGE);
      gcp.calls.length = 0;
      for (const name of names) await next(providers[mode], identity(name), { record: records.get(name) });
      const expected = mode === 'ServiceAccount' ? [`GetIamPolicy:project/${PROJECT}`, `ListServiceAccounts:${PROJECT}`, ...names.map(() => 'GetIamPolicy:serviceAccount')] : [`GetIamPolicy:project/${PROJECT}`];
      assert.deepEqual(reads(gcp).map((c) => c.replace(/^(GetIamPolicy:serviceAccount)\/.*$/, '$1')).sort(), expected.sort());
      assert.deepEqual(gcp.calls.filter((c) => c.startsWith('Set') || c.startsWith('Create') || c.startsWith('Patch') || c.startsWith('Delete')), [], 'no writes');
    });
  }

  it('concurrent reconciles of different identities share one request for the policy they all grant on', async () => {
    const gcp = world();
    const providers = account(gcp);
    const desired = names.map((name) => providers.DirectPrincipal.desired(identity(name)));
    await Promise.all(desired.map((d) => providers.DirectPrincipal.observe(d)));
    assert.deepEqual(gcp.calls, [`GetIamPolicy:project/${PROJECT}`]);
  });

  it('sees a binding removed by hand once its copy is older than the max age, and restores it', async () => {
    const gcp = world();
    const { clock, DirectPrincipal: provider } = account(gcp);
    const ctx = identity('one');
    const first = await converge(provider, ctx);
    const member = first.status.gcp?.member ?? '';
    gcp.foreignWrite(project, (p) => ({ ...p, bindings: (p.bindings ?? []).filter((b) => !b.members.includes(member)) }));
    clock.advance(MAX_AGE - 1);
    const early = await next(provider, ctx, first);
    assert.deepEqual(early.changes, [], 'within the max age the copy from before the change is used');
    clock.advance(1);
    const repaired = await next(provider, ctx, first);
    assert.deepEqual(repaired.changes.map((c) => c.action), ['RoleGranted']);
    assert.ok(membersOf(gcp, project).some((b) => b.role === 'roles/cloudtrace.agent' && b.members.includes(member)));
  });

  it("never undoes Keyless's own write: a reconcile right after it judges from what the write left", async () => {
    const gcp = world();
    const { ServiceAccount: provider } = account(gcp);
    const grant = await converge(provider, identity('one'));
    const me = grant.status.gcp?.member ?? '';
    // The clock does not move: every later read is answered from the copies, as within one resync.
    const revoked = await next(provider, identity('one', []), grant);
    assert.deepEqual(revoked.changes.map((c) => c.action), ['RoleRevoked']);
    assert.ok(!membersOf(gcp, project).some((b) => b.members.includes(me)), 'revoked');
    const again = await next(provider, identity('one'), revoked);
    assert.deepEqual(again.changes.map((c) => c.action), ['RoleGranted'], 'the copy knows the revoke: the grant is made again');
    assert.ok(membersOf(gcp, project).some((b) => b.role === 'roles/cloudtrace.agent' && b.members.includes(me)));
    gcp.writes.length = 0;
    assert.deepEqual((await next(provider, identity('one'), again)).changes, []);
    assert.deepEqual(gcp.writes, [], 'and nothing is written twice');
  });

  it('builds no write on a stale copy: a stale etag re-reads the policy and keeps what someone else wrote', async () => {
    const gcp = world();
    const { DirectPrincipal: provider } = account(gcp);
    await converge(provider, identity('one'));
    gcp.foreignWrite(project, (p) => ({ ...p, bindings: [...(p.bindings ?? []), { role: 'roles/viewer', members: ['user:someone@example.com'] }] }));
    gcp.calls.length = 0;
    const two = await converge(provider, identity('two'));
    assert.deepEqual(two.changes.map((c) => c.action), ['RoleGranted']);
    assert.deepEqual(gcp.calls, [`SetIamPolicy:project/${PROJECT}`, `GetIamPolicy:project/${PROJECT}`, `SetIamPolicy:project/${PROJECT}`], 'the copy failed on its etag, a fresh read followed');
    assert.ok(membersOf(gcp, project).some((b) => b.role === 'roles/viewer' && b.members.includes('user:someone@example.com')), 'the foreign binding survived');
    gcp.calls.length = 0;
    await converge(provider, identity('three'));
    assert.deepEqual(gcp.calls, [`SetIamPolicy:project/${PROJECT}`], 'the next identity builds on what the last write answered, with its current etag');
  });

  it('takes its service account from the listing its create updated, and notices one deleted behind its back at once', async () => {
    const gcp = world();
    const { clock, ServiceAccount: provider } = account(gcp);
    const ctx = identity('one');
    const first = await converge(provider, ctx);
    const email = first.status.gcp?.serviceAccountEmail ?? '';
    gcp.calls.length = 0;
    await next(provider, ctx, first);
    assert.ok(!gcp.calls.some((c) => c.startsWith('GetServiceAccount')), 'the create put the account in the listing');
    await gcp.deleteServiceAccount(PROJECT, email);
    gcp.writes.length = 0;
    const recreated = await next(provider, ctx, first);
    assert.ok(gcp.serviceAccounts.has(email), 'its policy gone, the account is looked up, found missing and created again at once');
    assert.deepEqual(recreated.changes.map((c) => c.action), ['Created', 'TrustGranted']);
    // The project's policy changed behind Keyless's back too (the old account's binding is a `deleted:` member now):
    // that shows once its copy is older than the max age.
    clock.advance(MAX_AGE);
    assert.deepEqual((await next(provider, ctx, recreated)).changes.map((c) => c.action), ['RoleGranted', 'StaleMembersRemoved']);
    gcp.writes.length = 0;
    assert.deepEqual((await next(provider, ctx, recreated)).changes, []);
    assert.deepEqual(gcp.writes, []);
  });

  it('writes nothing for a listed service account that someone replaced by their own, and then reports it as not owned', async () => {
    const gcp = world();
    const { ServiceAccount: provider } = account(gcp);
    const ctx = identity('one');
    const first = await converge(provider, ctx);
    const email = first.status.gcp?.serviceAccountEmail ?? '';
    await gcp.deleteServiceAccount(PROJECT, email);
    await gcp.createServiceAccount(PROJECT, email.split('@')[0] ?? '', { displayName: 'theirs', description: 'made by hand' });
    gcp.writes.length = 0;
    await assert.rejects(next(provider, ctx, first), (err: unknown) => err instanceof CloudError && err.code === 'ChangedSinceListed' && err.kind === 'retryable');
    assert.deepEqual(gcp.writes, [], 'no trust, display name or grant was written for the stranger');
    await assert.rejects(next(provider, ctx, first), (err: unknown) => err instanceof ProviderError && err.reason === 'NotOwned');
    assert.deepEqual(gcp.writes, []);
  });

  it('the CloudAccount check reads the project policy the identities share', async () => {
    const gcp = world();
    const port = shareGcpReads(gcp, { maxAgeMs: MAX_AGE, now: new FakeClock().now });
    const provider = new GkeWorkloadIdentityProvider('DirectPrincipal', port, new FakeGcpExchange(gcp));
    const verdict = await checkGcpAccount(port, context().account);
    assert.equal(verdict.ok, true);
    await provider.observe(provider.desired(identity('one')));
    assert.deepEqual(gcp.calls, [`GetIamPolicy:project/${PROJECT}`]);
  });
});
