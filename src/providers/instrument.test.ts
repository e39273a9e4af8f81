import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock, flushPromises } from '../controller/fake-clock.ts';
import { Metrics } from '../observability/metrics.ts';
import { CloudError } from './cloud-error.ts';
import { instrumentedCall, isReadOperation, type CallLimiter } from './instrument.ts';

const TIMEOUT_MS = 30_000;
const ENDPOINT = 'https://iam.example.test';

/** A limiter that lets calls through only when the test says so. */
function gate(): CallLimiter & { open(): void } {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { take: () => opened, open: () => open() };
}

const always: CallLimiter = { take: () => Promise.resolve() };

function harness(limiter: CallLimiter = always, writes: CallLimiter = limiter) {
  const clock = new FakeClock();
  const metrics = new Metrics();
  const classify = (operation: string, err: unknown) => new CloudError('retryable', 'Classified', operation, String(err));
  const call = instrumentedCall('aws', { read: limiter, write: writes }, metrics, classify, { timeoutMs: TIMEOUT_MS, endpoint: ENDPOINT, timers: clock });
  const count = async (code: string) => (await metrics.cloudApiCalls.get()).values.find((v) => v.labels.code === code)?.value ?? 0;
  return { clock, call, count };
}

/** A call that never answers, remembering the signal it was given. */
function hanging() {
  const seen: { signal?: AbortSignal } = {};
  const fn = (signal: AbortSignal) => {
    seen.signal = signal;
    return new Promise<never>(() => {});
  };
  return { fn, seen };
}

/** Settles `p` into a value the test can look at without awaiting a promise that may never settle. */
function observe<T>(p: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  p.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

describe('instrumentedCall', () => {
  it('rejects a call that does not answer in time with a retryable Timeout naming the operation and endpoint', async () => {
    const h = harness();
    const { fn } = hanging();
    const outcome = observe(h.call('GetRole', fn));
    await flushPromises();
    h.clock.advance(TIMEOUT_MS);
    await flushPromises();
    assert.ok(outcome.error instanceof CloudError);
    assert.equal(outcome.error.kind, 'retryable');
    assert.equal(outcome.error.code, 'Timeout');
    assert.equal(outcome.error.operation, 'GetRole');
    assert.equal(outcome.error.retryQuietly, false);
    assert.equal(outcome.error.message, `GetRole at ${ENDPOINT} did not answer within 30s`);
  });

  it('aborts the signal of a call that does not answer in time', async () => {
    const h = harness();
    const { fn, seen } = hanging();
    observe(h.call('GetRole', fn));
    await flushPromises();
    assert.equal(seen.signal?.aborted, false);
    h.clock.advance(TIMEOUT_MS);
    assert.equal(seen.signal?.aborted, true);
  });

  it('reports a timeout rather than the error the SDK throws when its request is aborted', async () => {
    const h = harness();
    const outcome = observe(
      h.call('GetRole', (signal) => new Promise<never>((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('AbortError'))))),
    );
    await flushPromises();
    h.clock.advance(TIMEOUT_MS);
    await flushPromises();
    assert.equal((outcome.error as CloudError).code, 'Timeout');
  });

  it('counts a timed-out call under code Timeout', async () => {
    const h = harness();
    observe(h.call('GetRole', hanging().fn));
    await flushPromises();
    h.clock.advance(TIMEOUT_MS);
    await flushPromises();
    assert.equal(await h.count('Timeout'), 1);
  });

  it('leaves a call that answers in time untouched, its signal not aborted and no timer left behind', async () => {
    const h = harness();
    let given: AbortSignal | undefined;
    const result = await h.call('GetRole', (signal) => {
      given = signal;
      return Promise.resolve('role');
    });
    assert.equal(result, 'role');
    assert.equal(given?.aborted, false);
    assert.equal(h.clock.pending, 0);
    assert.equal(await h.count('OK'), 1);
    assert.equal(await h.count('Timeout'), 0);
  });

  it('still classifies a call that fails in time', async () => {
    const h = harness();
    await assert.rejects(
      h.call('GetRole', () => Promise.reject(new Error('boom'))),
      (err: unknown) => err instanceof CloudError && err.code === 'Classified',
    );
    assert.equal(h.clock.pending, 0);
  });

  it('starts the deadline only once the rate limiter lets the call through', async () => {
    const limiter = gate();
    const h = harness(limiter);
    const outcome = observe(h.call('GetRole', hanging().fn));
    h.clock.advance(2 * TIMEOUT_MS);
    await flushPromises();
    assert.equal(outcome.settled, false, 'waiting for a token is not waiting for the cloud');
    limiter.open();
    await flushPromises();
    h.clock.advance(TIMEOUT_MS - 1);
    await flushPromises();
    assert.equal(outcome.settled, false);
    h.clock.advance(1);
    await flushPromises();
    assert.equal((outcome.error as CloudError).code, 'Timeout');
  });

  it('takes a write token for a write and a read token for a read, so reads never wait behind paced writes', async () => {
    const writes = gate();
    const h = harness(always, writes);
    const write = observe(h.call('CreateRole', () => Promise.resolve('created')));
    const read = observe(h.call('GetRole', () => Promise.resolve('role')));
    await flushPromises();
    assert.deepEqual(read, { settled: true, value: 'role' });
    assert.equal(write.settled, false, 'the write waits for its own budget');
    writes.open();
    await flushPromises();
    assert.deepEqual(write, { settled: true, value: 'created' });
  });
});

describe('isReadOperation', () => {
  const reads = ['GetRole', 'ListRolePolicies', 'ListAttachedRolePolicies', 'GetAccountAuthorizationDetails', 'DescribePodIdentityAssociation', 'ListOpenIDConnectProviders',
    'projects.getIamPolicy', 'buckets.getIamPolicy', 'GetServiceAccount', 'UserAssignedIdentities_Get', 'UserAssignedIdentities_ListByResourceGroup', 'RoleAssignments_ListForScope',
    'FederatedIdentityCredentials_List', 'AssumeRoleWithWebIdentity', 'AssumeRoleForPodIdentity', 'ExchangeToken'];
  const writes = ['CreateRole', 'PutRolePolicy', 'DeleteRolePolicy', 'UpdateAssumeRolePolicy', 'TagRole', 'AttachRolePolicy', 'DetachRolePolicy', 'RemoveRoleFromInstanceProfile',
    'CreatePodIdentityAssociation', 'UpdatePodIdentityAssociation', 'projects.setIamPolicy', 'topics.setIamPolicy', 'CreateServiceAccount', 'PatchServiceAccount', 'DeleteServiceAccount',
    'UserAssignedIdentities_CreateOrUpdate', 'UserAssignedIdentities_Delete', 'FederatedIdentityCredentials_CreateOrUpdate', 'RoleAssignments_Create', 'RoleAssignments_Delete', 'SomethingNew'];
  for (const op of reads) it(`${op} is a read`, () => assert.equal(isReadOperation(op), true));
  for (const op of writes) it(`${op} is a write`, () => assert.equal(isReadOperation(op), false));
});
