// LeaderElector against the real API server: two candidates on one Lease, exactly one leads; stopping the leader
// releases the Lease so the other takes over long before the Lease would have expired; a leader that finds the
// Lease taken from it steps down.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoordinationV1Api, V1MicroTime } from '@kubernetes/client-node';
import pino from 'pino';
import { LeaderElector } from '../../src/controller/leader-election.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { eventually, freshNamespace, kubeApi, kubeConfig } from '../support/cluster.ts';

const logger = pino({ level: process.env['KEYLESS_TEST_LOG_LEVEL'] ?? 'silent' });

/** `eventually` for a synchronous check of local state. */
function waitFor<T>(what: string, check: () => T | undefined, timeoutMs?: number): Promise<T> {
  return eventually(what, () => Promise.resolve(check()), timeoutMs);
}
// Long enough that "the other one took over" can only mean the Lease was released, not that it expired.
const LEASE_DURATION_SEC = 60;

interface Candidate {
  identity: string;
  elector: LeaderElector;
  metrics: Metrics;
  events: string[];
  running: Promise<void>;
}

describe('LeaderElector', { timeout: 120_000 }, () => {
  const kc = kubeConfig();
  const leases = kc.makeApiClient(CoordinationV1Api);
  let namespace: string;
  let deleteNamespace: () => Promise<void>;

  before(async () => {
    [namespace, deleteNamespace] = await freshNamespace(kc, 'election');
  });
  after(() => deleteNamespace());

  function candidate(identity: string, leaseName: string): Candidate {
    const metrics = new Metrics();
    const elector = new LeaderElector({
      api: kubeApi(),
      namespace,
      name: leaseName,
      identity,
      leaseDurationSec: LEASE_DURATION_SEC,
      renewDeadlineSec: 3,
      retryPeriodSec: 1,
      logger,
      metrics,
    });
    const events: string[] = [];
    const running = elector.run({
      onStartedLeading: () => events.push('started'),
      onStoppedLeading: () => events.push('stopped'),
    });
    return { identity, elector, metrics, events, running };
  }

  async function leaderGauge(c: Candidate): Promise<number | undefined> {
    return (await c.metrics.isLeader.get()).values[0]?.value;
  }

  it('elects exactly one of two candidates and hands over when the leader stops', async (t) => {
    const a = candidate('candidate-a', 'handover');
    const b = candidate('candidate-b', 'handover');
    t.after(async () => {
      await a.elector.stop();
      await b.elector.stop();
    });

    const leader = await waitFor('a leader', () => (a.elector.isLeader ? a : b.elector.isLeader ? b : undefined));
    const follower = leader === a ? b : a;
    // Watch both for several renew rounds: never two leaders, and the leader keeps the Lease.
    for (let i = 0; i < 30; i++) {
      assert.equal(a.elector.isLeader && b.elector.isLeader, false, 'two leaders at once');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(leader.elector.isLeader, true);
    assert.equal(follower.elector.isLeader, false);
    assert.deepEqual(leader.events, ['started']);
    assert.deepEqual(follower.events, []);
    assert.equal(await leaderGauge(leader), 1);
    assert.equal(await leaderGauge(follower), 0);
    const held = await leases.readNamespacedLease({ name: 'handover', namespace });
    assert.equal(held.spec?.holderIdentity, leader.identity);

    await leader.elector.stop();
    await leader.running;
    assert.equal(leader.elector.isLeader, false);
    assert.deepEqual(leader.events, ['started', 'stopped']);
    assert.equal(await leaderGauge(leader), 0);

    await waitFor('the follower to take over', () => (follower.elector.isLeader ? true : undefined), 20_000);
    assert.deepEqual(follower.events, ['started']);
    const taken = await leases.readNamespacedLease({ name: 'handover', namespace });
    assert.equal(taken.spec?.holderIdentity, follower.identity);
    assert.equal(taken.spec?.leaseTransitions, 1);
  });

  it('steps down when another holder has taken the Lease', async (t) => {
    const a = candidate('candidate-a', 'usurped');
    t.after(() => a.elector.stop());
    await waitFor('leadership', () => (a.elector.isLeader ? true : undefined));

    // What a partition looks like from the leader's side: someone else now holds a fresh Lease.
    // The leader renews every second, so our write may lose a round (409) and is simply tried again.
    await eventually('the usurper to take the Lease', async () => {
      const lease = await leases.readNamespacedLease({ name: 'usurped', namespace });
      const now = new V1MicroTime(Date.now());
      return leases.replaceNamespacedLease({
        name: 'usurped',
        namespace,
        body: { ...lease, spec: { ...lease.spec, holderIdentity: 'usurper', acquireTime: now, renewTime: now } },
      });
    });

    await waitFor('the leader to step down', () => (a.elector.isLeader ? undefined : true), 20_000);
    assert.deepEqual(a.events, ['started', 'stopped']);
    const after = await leases.readNamespacedLease({ name: 'usurped', namespace });
    assert.equal(after.spec?.holderIdentity, 'usurper', 'a valid Lease held by another is not taken');
  });
});
