// The bounded chaos run inside `make test` (issue 15; `make chaos` runs the full one): 60 identities across every
// mechanism, 20% of cloud requests faulted, 5 SIGKILLs of the leading replica of two, one API server restart with
// every watch expired, spec churn, one CloudAccount's identities deleted under faults, then everything deleted.
// Each check is its own test, so a failure names what broke; the figures are printed for the log.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseChaosOptions } from '../../chaos/options.ts';
import { summary } from '../../chaos/report.ts';
import { runChaos, type ChaosReport } from '../../chaos/run.ts';
import { NAMESPACES } from '../../chaos/population.ts';
import { kubectl } from '../support/cluster.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('chaos: faults, kills, an API server restart and churn over 60 identities', { timeout: 40 * 60_000 }, () => {
  let report: ChaosReport;

  before(async () => {
    const state = process.env['KEYLESS_TEST_CONTROLPLANE_STATE'];
    assert.ok(state, 'KEYLESS_TEST_CONTROLPLANE_STATE must name the control plane state directory (hack/test.sh sets it)');
    const opts = parseChaosOptions([], {}, { n: 60, kills: 5, apiserverRestarts: 1, convergeTimeoutSeconds: 600, out: '' });
    report = await runChaos(opts, { controlplaneState: state, dir: path.join(root, '.test', 'chaos'), log: (m) => process.stderr.write(`[chaos] ${m}\n`) });
    process.stderr.write(`${summary(report)}\n`);
  });

  after(async () => {
    // The run's namespaces and CloudAccounts go, so later files start from a cluster without them.
    await kubectl(['delete', 'namespace', ...NAMESPACES, '--ignore-not-found', '--wait=false']);
    for (const account of ['bench-irsa', 'bench-pod', 'bench-scale', 'bench-gcp', 'bench-azure']) {
      await kubectl(['patch', 'cloudaccount', account, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']).catch(() => undefined);
      await kubectl(['delete', 'cloudaccount', account, '--ignore-not-found', '--wait=false']);
    }
  });

  it('really injected faults of every kind, killed the leader and expired the watches', () => {
    for (const kind of ['error', 'throttle', 'throttleRetryAfter', 'reset', 'timeout', 'slow', 'lost']) assert.ok((report.faults.injected[kind] ?? 0) > 0, `no ${kind} fault injected: ${JSON.stringify(report.faults.injected)}`);
    assert.equal(report.process.kills.length, 5, JSON.stringify(report.process.kills));
    assert.ok(report.process.kills.some((k) => k.mode === 'afterWrite'), 'no kill right after a cloud write');
    assert.ok(report.process.kills.some((k) => k.phase === 'teardown'), 'no kill during teardown');
    assert.ok(report.process.leaderChanges >= 5, `leader changes: ${report.process.leaderChanges}`);
    assert.equal(report.process.apiserverRestarts, 1);
    assert.ok(report.process.expiredRelists > 0, 'no informer relisted on an expired watch after the restart');
  });
  it('converges once faults stop', () => {
    assert.deepEqual(report.checks.notConverged, []);
    assert.ok(report.convergeSeconds !== undefined && report.teardownSeconds !== undefined);
  });
  it('creates no duplicates', () => assert.deepEqual(report.checks.duplicates, []));
  it('leaves the clouds exactly as the specs ask', () => assert.deepEqual(report.checks.mismatches, []));
  it('never grants trust broader than the exact ServiceAccount', () => {
    assert.ok(report.checks.broaderTrust.samples > 0);
    assert.deepEqual(report.checks.broaderTrust.violations, []);
  });
  it('removes a finalizer only once the cloud no longer has what it recorded', () => {
    assert.ok(report.checks.releasedEarly.checked >= 60, `releases checked: ${report.checks.releasedEarly.checked}`);
    assert.deepEqual(report.checks.releasedEarly.violations, []);
  });
  it('leaks nothing after everything is deleted', () => {
    for (const [what, count] of Object.entries(report.checks.leaked)) assert.equal(count, 0, `${what} left: ${count}`);
  });
  it('leaves objects it does not own byte for byte as they were', () => assert.deepEqual(report.checks.foreignChanged, []));
  it('never crashes: every exit was a kill, a lost Lease or the final stop', () => assert.deepEqual(report.checks.crashes, []));
});
