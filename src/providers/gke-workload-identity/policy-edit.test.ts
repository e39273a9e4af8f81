// editPolicy against the fake's etag rules: edits of one shared policy that start from the same read (what every
// identity's observe saw) queue in the process instead of losing on the etag, so each costs exactly one write.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeGcp } from './fake/gcp.ts';
import { editPolicy } from './policy-edit.ts';
import { shareGcpReads } from './shared-port.ts';
import type { PolicyTarget } from './resources.ts';

const PROJECT: PolicyTarget = { kind: 'project', project: 'shop-prod' };

describe('editPolicy', () => {
  it('runs concurrent edits of one policy one after another: one write each, no etag conflict', async () => {
    const gcp = new FakeGcp('shop-prod');
    const observed = await gcp.getIamPolicy(PROJECT);
    const members = Array.from({ length: 5 }, (_, i) => `principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/subject/ns/sa-${i}`);
    const results = await Promise.all(members.map((member) => editPolicy(gcp, PROJECT, [{ member, grants: [{ role: 'roles/storage.objectViewer' }], removable: 'all' }], undefined, observed)));
    assert.deepEqual(results.map((r) => r.attempts), [1, 1, 1, 1, 1], 'no edit had to redo its read-modify-write');
    assert.equal(gcp.writes.length, 5);
    const binding = (await gcp.getIamPolicy(PROJECT)).bindings?.find((b) => b.role === 'roles/storage.objectViewer');
    assert.deepEqual([...(binding?.members ?? [])].sort(), [...members].sort(), 'every edit landed');
  });

  it('still redoes the cycle when someone else wrote the policy after it was read', async () => {
    const gcp = new FakeGcp('shop-prod');
    const observed = await gcp.getIamPolicy(PROJECT);
    gcp.foreignWrite(PROJECT, (p) => ({ ...p, bindings: [{ role: 'roles/viewer', members: ['user:someone@example.com'] }] }));
    const result = await editPolicy(gcp, PROJECT, [{ member: 'principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/subject/ns/sa', grants: [{ role: 'roles/viewer' }], removable: 'all' }], undefined, observed);
    assert.equal(result.attempts, 2);
    assert.ok((await gcp.getIamPolicy(PROJECT)).bindings?.some((b) => b.members.includes('user:someone@example.com')), 'the other writer is kept');
  });

  it('builds on the shared copy that another identity\'s write left, not on what observe read before that write', async () => {
    const gcp = new FakeGcp('shop-prod');
    const port = shareGcpReads(gcp, { maxAgeMs: 60_000 });
    const observed = await port.sharedIamPolicy(PROJECT);
    const member = (i: number) => `principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/subject/ns/sa-${i}`;
    // The first identity's edit finishes before the second one starts: the queue is idle, the second one's read is old.
    await editPolicy(port, PROJECT, [{ member: member(1), grants: [{ role: 'roles/viewer' }], removable: 'all' }], undefined, observed);
    const second = await editPolicy(port, PROJECT, [{ member: member(2), grants: [{ role: 'roles/viewer' }], removable: 'all' }], undefined, observed);
    assert.equal(second.attempts, 1, 'no etag conflict');
    assert.deepEqual(gcp.calls.filter((c) => c.startsWith('GetIamPolicy')).length, 1, 'and no second cloud read');
  });
});
