import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock, flushPromises } from '../../controller/fake-clock.ts';
import { CloudError } from '../cloud-error.ts';
import { markerTags } from '../ownership.ts';
import { AccountSnapshot, SETTLE_MS } from './account-snapshot.ts';
import { FakeIam } from './fake/iam.ts';
import type { IamPort } from './iam-port.ts';
import { INLINE_POLICY_NAME, observeRole, type DesiredRole } from './role.ts';

const MAX_AGE = 60_000;
const TRUST = { Version: '2012-10-17', Statement: [{ Sid: 'KeylessPodIdentity', Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' }, Action: ['sts:AssumeRole', 'sts:TagSession'] }] };
const POLICY = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::covers/*'] }] };
const WIDE = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };

function desired(name: string, opts: { cluster?: string; path?: string } = {}): DesiredRole {
  const marker = markerTags({ cluster: opts.cluster ?? 'c1', namespace: 'shop', name });
  const path = opts.path ?? '/keyless/';
  return {
    name: `keyless-shop-${name}`,
    path,
    arn: `arn:aws:iam::123456789012:role${path}keyless-shop-${name}`,
    description: `Keyless WorkloadIdentity shop/${name}`,
    trustPolicy: TRUST as DesiredRole['trustPolicy'],
    inlinePolicy: POLICY as DesiredRole['inlinePolicy'],
    managedPolicyArns: [],
    maxSessionDuration: 7200,
    permissionsBoundaryArn: undefined,
    tags: { team: 'books', ...marker },
    marker,
    adopt: false,
  };
}

/** A role as it exists before the snapshot, put there behind the snapshot's back. */
async function existing(iam: FakeIam, role: DesiredRole): Promise<void> {
  iam.seedRole({ name: role.name, path: role.path, trustPolicy: JSON.stringify(role.trustPolicy), description: role.description, maxSessionDuration: role.maxSessionDuration, tags: role.tags });
  await iam.putRolePolicy(role.name, INLINE_POLICY_NAME, JSON.stringify(role.inlinePolicy));
  await iam.putRolePolicy(role.name, 'someone-elses', JSON.stringify(WIDE));
  await iam.attachRolePolicy(role.name, 'arn:aws:iam::aws:policy/ReadOnlyAccess');
}

/** Counts IamPort calls by method; `hold()` keeps GetAccountAuthorizationDetails waiting until the returned release. */
function counted(iam: IamPort) {
  const calls: Record<string, number> = {};
  let gate: Promise<void> | undefined;
  const port = new Proxy(iam, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        calls[String(prop)] = (calls[String(prop)] ?? 0) + 1;
        if (prop === 'getAccountAuthorizationDetails') await gate;
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
  const hold = () => {
    let release = () => {};
    gate = new Promise<void>((resolve) => (release = resolve));
    return () => {
      gate = undefined;
      release();
    };
  };
  return { port, calls, hold };
}

function world() {
  const iam = new FakeIam();
  const clock = new FakeClock();
  const { port, calls, hold } = counted(iam);
  const snapshot = new AccountSnapshot(port, { maxAgeMs: MAX_AGE, now: clock.now });
  // The roles exist well before anything observes them.
  clock.advance(SETTLE_MS * 2);
  return { iam, clock, calls, hold, snapshot };
}

/** The world with one role of ours, alpha, already in the account. */
async function worldWithAlpha() {
  const w = world();
  const role = desired('alpha');
  await existing(w.iam, role);
  return { ...w, role };
}

describe('AccountSnapshot', () => {
  it('answers exactly what reading the role directly answers, from one page of each list for the whole account', async () => {
    const { iam, calls, snapshot } = world();
    const roles = ['alpha', 'beta', 'gamma'].map((n) => desired(n));
    for (const role of roles) await existing(iam, role);
    await iam.putRolePermissionsBoundary(roles[0]?.name ?? '', 'arn:aws:iam::123456789012:policy/boundary');

    for (const role of roles) assert.deepEqual(await snapshot.observe(role), await observeRole(iam, role), role.name);
    assert.deepEqual(calls, { getAccountAuthorizationDetails: 1, listRoles: 1 });
  });

  it('takes one snapshot for many reconciles asking at once', async () => {
    const { iam, calls, hold, snapshot } = world();
    const roles = Array.from({ length: 8 }, (_, i) => desired(`wi${i}`));
    for (const role of roles) await existing(iam, role);
    const release = hold();
    const observing = Promise.all(roles.map((role) => snapshot.observe(role)));
    await flushPromises();
    assert.equal(calls['getAccountAuthorizationDetails'], 1);
    release();
    const observed = await observing;
    assert.ok(observed.every((o) => o !== undefined), 'every role answered from the one snapshot');
    assert.equal(calls['getAccountAuthorizationDetails'], 1);
  });

  it('serves a snapshot until it is maxAge old, then takes the next', async () => {
    const { clock, calls, snapshot, role } = await worldWithAlpha();
    await snapshot.observe(role);
    clock.advance(MAX_AGE - 1);
    await snapshot.observe(role);
    assert.equal(calls['getAccountAuthorizationDetails'], 1);
    clock.advance(1);
    await snapshot.observe(role);
    assert.equal(calls['getAccountAuthorizationDetails'], 2);
  });

  it('sees a change made by hand after the snapshot once that snapshot is maxAge old', async () => {
    const { iam, clock, snapshot, role } = await worldWithAlpha();
    await snapshot.observe(role);
    clock.advance(1);
    await iam.updateAssumeRolePolicy(role.name, JSON.stringify(WIDE));
    await iam.updateRole(role.name, { maxSessionDuration: 43200, description: 'edited' });

    // Within the bound the snapshot still shows the role as it was: this is the price of not reading it.
    assert.deepEqual((await snapshot.observe(role))?.role?.trustPolicy, TRUST);
    clock.advance(MAX_AGE);
    const seen = await snapshot.observe(role);
    assert.deepEqual(seen?.role?.trustPolicy, WIDE);
    assert.equal(seen?.role?.maxSessionDuration, 43200);
    assert.equal(seen?.role?.description, 'edited');
  });

  it('never judges a role by a snapshot begun before Keyless wrote it', async () => {
    const { clock, snapshot, role } = await worldWithAlpha();
    await snapshot.observe(role);
    clock.advance(1);
    await snapshot.iam.putRolePolicy(role.name, INLINE_POLICY_NAME, JSON.stringify(WIDE));

    assert.equal(await snapshot.observe(role), undefined, 'read it directly instead');
    clock.advance(MAX_AGE);
    assert.deepEqual((await snapshot.observe(role))?.inlinePolicy, WIDE, 'a snapshot begun after the write');
  });

  it('never judges a role by a snapshot begun within SETTLE_MS of a write of ours (IAM may not show it yet)', async () => {
    const { clock, snapshot, role } = await worldWithAlpha();
    await snapshot.iam.putRolePolicy(role.name, INLINE_POLICY_NAME, JSON.stringify(WIDE));
    clock.advance(SETTLE_MS);
    assert.equal(await snapshot.observe(role), undefined);
    clock.advance(MAX_AGE);
    assert.deepEqual((await snapshot.observe(role))?.inlinePolicy, WIDE);
  });

  it('never judges a role by the snapshot being taken while Keyless wrote it', async () => {
    const { clock, hold, snapshot, role } = await worldWithAlpha();
    const release = hold();
    const observing = snapshot.observe(role);
    await flushPromises();
    clock.advance(1);
    await snapshot.iam.tagRole(role.name, { team: 'payments' });
    release();
    assert.equal(await observing, undefined);
  });

  it('never judges a role by a snapshot begun before a write of ours that failed (it may have taken effect)', async () => {
    const { clock, snapshot, role } = await worldWithAlpha();
    await snapshot.observe(role);
    clock.advance(1);
    await assert.rejects(snapshot.iam.deleteRole(role.name), (err) => err instanceof CloudError && err.code === 'DeleteConflict');
    assert.equal(await snapshot.observe(role), undefined);
  });

  it('leaves roles it does not hold to direct reads: created after it, another cluster, another path, not this identity', async () => {
    const { iam, clock, snapshot } = world();
    const ours = desired('alpha');
    await existing(iam, ours);
    const otherCluster = desired('beta', { cluster: 'c2' });
    await existing(iam, otherCluster);
    // A role of ours from before the CloudAccount's rolePath changed.
    const otherPath = desired('gamma');
    await existing(iam, { ...otherPath, path: '/legacy/' });
    await snapshot.observe(ours);
    clock.advance(1);
    const later = desired('delta');
    await existing(iam, later);

    assert.equal(await snapshot.observe(later), undefined, 'created after the snapshot');
    assert.equal(await snapshot.observe({ ...otherCluster, marker: markerTags({ cluster: 'c1', namespace: 'shop', name: 'beta' }) }), undefined, 'another cluster');
    assert.equal(await snapshot.observe(otherPath), undefined, 'another path');
    assert.equal(await snapshot.observe({ ...ours, marker: markerTags({ cluster: 'c1', namespace: 'shop', name: 'impostor' }) }), undefined, 'not this identity');
    assert.ok(await snapshot.observe(ours));
  });

  it('follows the marker through every page, however short IAM cuts them', async () => {
    const { iam, calls, snapshot } = world();
    const roles = Array.from({ length: 5 }, (_, i) => desired(`wi${i}`));
    for (const role of roles) await existing(iam, role);
    for (let i = 0; i < 2; i++) await existing(iam, desired(`cluster${i}`, { cluster: 'c2' }));
    for (let i = 0; i < 2; i++) await existing(iam, desired(`path${i}`, { path: '/other/' }));
    iam.pageLimit = 2;
    for (const role of roles) assert.ok(await snapshot.observe(role), role.name);
    // 9 roles in the account, 7 of them under /keyless/, 2 a page.
    assert.deepEqual(calls, { getAccountAuthorizationDetails: 5, listRoles: 4 });
  });

  it('falls back to direct reads while no snapshot can be taken, and tries again after maxAge', async () => {
    const { iam, clock, calls, snapshot, role } = await worldWithAlpha();
    const allowed = iam.getAccountAuthorizationDetails.bind(iam);
    iam.getAccountAuthorizationDetails = () => Promise.reject(new CloudError('terminal', 'AccessDenied', 'GetAccountAuthorizationDetails', 'not authorized'));
    assert.equal(await snapshot.observe(role), undefined);
    clock.advance(MAX_AGE - 1);
    assert.equal(await snapshot.observe(role), undefined);
    assert.equal(calls['getAccountAuthorizationDetails'], 1, 'no retry before maxAge');
    iam.getAccountAuthorizationDetails = allowed;
    clock.advance(1);
    assert.ok(await snapshot.observe(role));
  });
});
