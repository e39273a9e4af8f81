import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig({}, 'host');
    assert.equal(c.workers, 4);
    assert.equal(c.resyncMs, 600_000);
    assert.equal(c.clusterName, undefined);
    assert.equal(c.leaderElection.namespace, 'keyless-system');
    assert.match(c.leaderElection.identity, /^host-\d+$/);
    assert.equal(c.cloudCallTimeoutMs, 30_000);
    assert.equal(c.reconcileTimeoutMs, 300_000);
    assert.deepEqual(c.awsEndpoints, { iam: undefined, eks: undefined, sts: undefined, eksAuth: undefined });
  });

  it('reads the timeouts in seconds', () => {
    const c = loadConfig({ KEYLESS_CLOUD_CALL_TIMEOUT_SECONDS: '1', KEYLESS_RECONCILE_TIMEOUT_SECONDS: '5' }, 'h');
    assert.equal(c.cloudCallTimeoutMs, 1000);
    assert.equal(c.reconcileTimeoutMs, 5000);
  });

  it('prefers the service-specific AWS endpoint over AWS_ENDPOINT_URL, as the SDK does', () => {
    const c = loadConfig({ AWS_ENDPOINT_URL: 'http://all:5000', AWS_ENDPOINT_URL_EKS: 'http://eks:5001', AWS_ENDPOINT_URL_EKS_AUTH: 'http://auth:5002' }, 'h');
    assert.deepEqual(c.awsEndpoints, { iam: 'http://all:5000', eks: 'http://eks:5001', sts: 'http://all:5000', eksAuth: 'http://auth:5002' });
  });

  it('names the variable that is wrong', () => {
    assert.throws(() => loadConfig({ KEYLESS_WORKERS: 'many' }, 'h'), /KEYLESS_WORKERS/);
    assert.throws(() => loadConfig({ KEYLESS_LEADER_ELECTION: 'yes' }, 'h'), /KEYLESS_LEADER_ELECTION/);
    assert.throws(() => loadConfig({ KEYLESS_CLOUD_CALL_TIMEOUT_SECONDS: '0' }, 'h'), /KEYLESS_CLOUD_CALL_TIMEOUT_SECONDS/);
    assert.throws(() => loadConfig({ KEYLESS_RECONCILE_TIMEOUT_SECONDS: '4' }, 'h'), /KEYLESS_RECONCILE_TIMEOUT_SECONDS/);
  });

  it('reads the read and write budgets, and reports every bad variable in one message', () => {
    assert.deepEqual(loadConfig({}, 'h').cloudBudget, { writesPerSecond: 10, writeBurst: 1, readsPerSecond: 100 });
    const c = loadConfig({ KEYLESS_CLOUD_WRITES_PER_SECOND: '2.5', KEYLESS_CLOUD_WRITE_BURST: '3', KEYLESS_CLOUD_READS_PER_SECOND: '40' }, 'h');
    assert.deepEqual(c.cloudBudget, { writesPerSecond: 2.5, writeBurst: 3, readsPerSecond: 40 });
    assert.throws(
      () => loadConfig({ KEYLESS_CLOUD_WRITES_PER_SECOND: '0', KEYLESS_CLOUD_WRITE_BURST: '1.5', KEYLESS_LOG_LEVEL: 'loud' }, 'h'),
      (err: Error) =>
        /KEYLESS_CLOUD_WRITES_PER_SECOND: must be greater than 0/.test(err.message) &&
        /KEYLESS_CLOUD_WRITE_BURST: must be a whole number/.test(err.message) &&
        /KEYLESS_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace/.test(err.message),
    );
  });
});
