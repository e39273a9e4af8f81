import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloudError } from '../cloud-error.ts';
import { FakeGcp } from './fake/gcp.ts';
import { editPolicy, MAX_POLICY_ATTEMPTS } from './policy-edit.ts';
import { editMembers, type Grant, type IamPolicy } from './policy.ts';
import { policyTarget } from './resources.ts';

const ME = 'serviceAccount:me@p.iam.gserviceaccount.com';
const covers = { title: 'covers-only', expression: 'resource.name.startsWith("projects/_/buckets/b/objects/covers/")' };

/** One member that is ours alone (every grant of it removable), as the edit of our own Google service account. */
function setMemberGrants(before: IamPolicy, edit: { member: string; grants: Grant[]; purge?: (m: string) => boolean; exclusiveRoles?: string[] }) {
  const result = editMembers(before, [{ member: edit.member, grants: edit.grants, removable: 'all', ...(edit.exclusiveRoles ? { exclusiveRoles: edit.exclusiveRoles } : {}) }], edit.purge);
  return { ...result, added: result.added.map((a) => a.grant), removed: result.removed.map((r) => r.grant) };
}

function policy(bindings: IamPolicy['bindings'], extra: Partial<IamPolicy> = {}): IamPolicy {
  return { version: 1, etag: 'BwAAAAAAAAE=', bindings, ...extra };
}

describe('setMemberGrants', () => {
  it('adds our member next to a foreign member of the same role, and a new binding for a new role', () => {
    const before = policy([{ role: 'roles/viewer', members: ['user:alice@example.com'] }]);
    const edit = setMemberGrants(before, { member: ME, grants: [{ role: 'roles/viewer' }, { role: 'roles/pubsub.publisher' }] });
    assert.equal(edit.changed, true);
    assert.deepEqual(edit.policy.bindings, [
      { role: 'roles/viewer', members: ['user:alice@example.com', ME] },
      { role: 'roles/pubsub.publisher', members: [ME] },
    ]);
    assert.deepEqual(edit.added.map((g) => g.role), ['roles/viewer', 'roles/pubsub.publisher']);
    assert.equal(edit.policy.etag, 'BwAAAAAAAAE=', 'the etag read is the etag written');
  });

  it('removes only our member from grants no longer wanted, dropping bindings it empties', () => {
    const before = policy([
      { role: 'roles/viewer', members: ['user:alice@example.com', ME] },
      { role: 'roles/editor', members: [ME] },
      { role: 'roles/owner', members: ['user:root@example.com'] },
    ]);
    const edit = setMemberGrants(before, { member: ME, grants: [] });
    assert.deepEqual(edit.policy.bindings, [
      { role: 'roles/viewer', members: ['user:alice@example.com'] },
      { role: 'roles/owner', members: ['user:root@example.com'] },
    ]);
    assert.deepEqual(edit.removed.map((g) => g.role).sort(), ['roles/editor', 'roles/viewer']);
  });

  it('never drops or reshapes a foreign binding, conditional ones included', () => {
    const foreign = [
      { role: 'roles/storage.admin', members: ['group:ops@example.com'], condition: { title: 'ops', expression: 'request.time < timestamp("2030-01-01T00:00:00Z")', location: '' } },
      { role: 'roles/viewer', members: ['domain:example.com', 'deleted:serviceAccount:other@p.iam.gserviceaccount.com?uid=1'] },
    ];
    const edit = setMemberGrants(policy(foreign, { version: 3, auditConfigs: [{ service: 'allServices' }] }), {
      member: ME,
      grants: [{ role: 'roles/storage.objectViewer' }],
      purge: (m) => m.startsWith('deleted:serviceAccount:me@p.iam.gserviceaccount.com?uid='),
    });
    assert.deepEqual(edit.policy.bindings?.slice(0, 2), foreign);
    assert.deepEqual(edit.policy['auditConfigs'], [{ service: 'allServices' }]);
    assert.equal(edit.policy.version, 3);
  });

  it('treats the same role under another condition as another grant, and writes version 3', () => {
    const before = policy([{ role: 'roles/storage.objectViewer', members: [ME] }]);
    const edit = setMemberGrants(before, { member: ME, grants: [{ role: 'roles/storage.objectViewer', condition: covers }] });
    assert.equal(edit.policy.version, 3);
    assert.deepEqual(edit.policy.bindings, [{ role: 'roles/storage.objectViewer', members: [ME], condition: covers }]);
    assert.deepEqual(edit.removed, [{ role: 'roles/storage.objectViewer' }]);
    assert.deepEqual(edit.added, [{ role: 'roles/storage.objectViewer', condition: covers }]);
  });

  it('joins an existing conditional binding whose condition matches, ignoring the location field', () => {
    const before = policy([{ role: 'roles/storage.objectViewer', members: ['user:bob@example.com'], condition: { ...covers, description: '', location: '' } }], { version: 3 });
    const edit = setMemberGrants(before, { member: ME, grants: [{ role: 'roles/storage.objectViewer', condition: covers }] });
    assert.equal(edit.policy.bindings?.length, 1);
    assert.deepEqual(edit.policy.bindings?.[0]?.members, ['user:bob@example.com', ME]);
  });

  it('reports no change when the policy already says exactly that', () => {
    const before = policy([{ role: 'roles/viewer', members: [ME, 'user:alice@example.com'] }, { role: 'roles/x', members: [ME], condition: covers }], { version: 3 });
    const edit = setMemberGrants(before, { member: ME, grants: [{ role: 'roles/x', condition: covers }, { role: 'roles/viewer' }] });
    assert.equal(edit.changed, false);
    assert.deepEqual(edit.policy.bindings, before.bindings);
  });

  it('purges the deleted: ghosts of our own account and nobody else\'s', () => {
    const ghost = 'deleted:serviceAccount:me@p.iam.gserviceaccount.com?uid=123';
    const other = 'deleted:serviceAccount:meh@p.iam.gserviceaccount.com?uid=9';
    const edit = setMemberGrants(policy([{ role: 'roles/viewer', members: [ghost, other] }, { role: 'roles/editor', members: [ghost] }]), {
      member: ME,
      grants: [{ role: 'roles/viewer' }],
      purge: (m) => m.startsWith('deleted:serviceAccount:me@p.iam.gserviceaccount.com?uid='),
    });
    assert.deepEqual(edit.policy.bindings, [{ role: 'roles/viewer', members: [other, ME] }]);
    assert.deepEqual(edit.purged, [ghost, ghost]);
  });

  it('makes us the only member of an exclusive role', () => {
    const ksa = 'serviceAccount:p.svc.id.goog[ns/app]';
    const edit = setMemberGrants(policy([{ role: 'roles/iam.workloadIdentityUser', members: ['serviceAccount:p.svc.id.goog[ns/intruder]'] }, { role: 'roles/iam.serviceAccountAdmin', members: ['user:a@example.com'] }]), {
      member: ksa,
      grants: [{ role: 'roles/iam.workloadIdentityUser' }],
      exclusiveRoles: ['roles/iam.workloadIdentityUser'],
    });
    assert.deepEqual(edit.policy.bindings, [{ role: 'roles/iam.serviceAccountAdmin', members: ['user:a@example.com'] }, { role: 'roles/iam.workloadIdentityUser', members: [ksa] }]);
    assert.deepEqual(edit.purged, ['serviceAccount:p.svc.id.goog[ns/intruder]']);
  });
});

describe('editMembers on a shared member', () => {
  const PRINCIPAL = 'principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p.svc.id.goog/subject/ns/ns/sa/app';

  it('removes only the grants it may remove, and never a foreign binding of the same member', () => {
    const before = policy([
      { role: 'roles/viewer', members: [PRINCIPAL] },
      { role: 'roles/storage.objectViewer', members: [PRINCIPAL, 'user:bob@example.com'] },
    ]);
    const edit = editMembers(before, [{ member: PRINCIPAL, grants: [], removable: [{ role: 'roles/storage.objectViewer' }] }]);
    assert.deepEqual(edit.policy.bindings, [
      { role: 'roles/viewer', members: [PRINCIPAL] },
      { role: 'roles/storage.objectViewer', members: ['user:bob@example.com'] },
    ]);
    assert.deepEqual(edit.removed, [{ member: PRINCIPAL, grant: { role: 'roles/storage.objectViewer' } }]);
  });

  it('finds a wanted grant already held and adds nothing, so the caller knows it is not ours', () => {
    const before = policy([{ role: 'roles/viewer', members: [PRINCIPAL] }]);
    const edit = editMembers(before, [{ member: PRINCIPAL, grants: [{ role: 'roles/viewer' }], removable: [] }]);
    assert.equal(edit.changed, false);
    assert.deepEqual(edit.added, []);
  });

  it('edits several members at once: the new one gains, the former one loses what was recorded', () => {
    const GSA = 'serviceAccount:app@p.iam.gserviceaccount.com';
    const before = policy([{ role: 'roles/viewer', members: [GSA, PRINCIPAL] }]);
    const edit = editMembers(before, [
      { member: GSA, grants: [{ role: 'roles/viewer' }], removable: 'all' },
      { member: PRINCIPAL, grants: [], removable: [{ role: 'roles/viewer' }] },
    ]);
    assert.deepEqual(edit.policy.bindings, [{ role: 'roles/viewer', members: [GSA] }]);
    assert.deepEqual(edit.removed.map((r) => r.member), [PRINCIPAL]);
  });
});

describe('editPolicy', () => {
  const project = { kind: 'project' as const, project: 'p' };
  const PRINCIPAL = 'principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p.svc.id.goog/subject/ns/ns/sa/app';

  it('redoes the whole read-modify-write after a concurrent writer, keeping that writer\'s binding', async () => {
    const gcp = new FakeGcp('p');
    const stale = await gcp.getIamPolicy(project);
    let interfered = 0;
    gcp.beforeSet = () => {
      if (interfered++ < 2) gcp.foreignWrite(project, (p) => ({ ...p, bindings: [...(p.bindings ?? []), { role: 'roles/browser', members: [`user:racer${interfered}@example.com`] }] }));
    };
    const result = await editPolicy(gcp, project, [{ member: PRINCIPAL, grants: [{ role: 'roles/viewer' }], removable: [] }], undefined, stale);
    assert.equal(result.attempts, 3);
    assert.deepEqual(gcp.policy(project).bindings, [
      { role: 'roles/browser', members: ['user:racer1@example.com'] },
      { role: 'roles/browser', members: ['user:racer2@example.com'] },
      { role: 'roles/viewer', members: [PRINCIPAL] },
    ]);
  });

  it('gives up after a bounded number of conflicts with a retryable conflict error', async () => {
    const gcp = new FakeGcp('p');
    gcp.beforeSet = () => gcp.foreignWrite(project, (p) => p);
    await assert.rejects(editPolicy(gcp, project, [{ member: PRINCIPAL, grants: [{ role: 'roles/viewer' }], removable: [] }]), (err: unknown) => err instanceof CloudError && err.kind === 'conflict');
    assert.equal(gcp.calls.filter((c) => c.startsWith('SetIamPolicy')).length, MAX_POLICY_ATTEMPTS);
  });

  it('writes nothing when nothing changes', async () => {
    const gcp = new FakeGcp('p');
    await editPolicy(gcp, project, [{ member: PRINCIPAL, grants: [], removable: [] }]);
    assert.deepEqual(gcp.writes, []);
  });
});

describe('policyTarget', () => {
  const cases: [string | undefined, unknown][] = [
    [undefined, { kind: 'project', project: 'home' }],
    ['//cloudresourcemanager.googleapis.com/projects/other-project', { kind: 'project', project: 'other-project' }],
    ['//storage.googleapis.com/projects/_/buckets/your-org-book-covers', { kind: 'bucket', bucket: 'your-org-book-covers' }],
    ['//pubsub.googleapis.com/projects/p1/topics/orders', { kind: 'topic', project: 'p1', topic: 'orders' }],
    ['//secretmanager.googleapis.com/projects/p1/secrets/db-password', { kind: 'secret', project: 'p1', secret: 'db-password' }],
    ['//bigquery.googleapis.com/projects/p1/datasets/d', undefined],
    ['//storage.googleapis.com/projects/_/buckets/b/objects/o', undefined],
    ['//pubsub.googleapis.com/projects/p1/subscriptions/s', undefined],
  ];
  for (const [resource, expected] of cases) {
    it(`${resource ?? '(absent)'} → ${expected ? JSON.stringify(expected) : 'unsupported'}`, () => {
      assert.deepEqual(policyTarget(resource, 'home'), expected);
    });
  }
});
