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
  });

  it('names the variable that is wrong', () => {
    assert.throws(() => loadConfig({ KEYLESS_WORKERS: 'many' }, 'h'), /KEYLESS_WORKERS/);
    assert.throws(() => loadConfig({ KEYLESS_LEADER_ELECTION: 'yes' }, 'h'), /KEYLESS_LEADER_ELECTION/);
  });
});
