// make chaos's flags: defaults, CHAOS_* variables and NAME=value arguments, and refusals that name the flag.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChaosOptions, seededRandom } from './options.ts';
import { initialPopulation, KINDS } from './population.ts';

describe('chaos options', () => {
  it('defaults to 1,000 identities, 20% faults and 20 kills', () => {
    const o = parseChaosOptions([], {});
    assert.deepEqual([o.n, o.faultRate, o.kills, o.apiserverRestarts], [1000, 0.2, 20, 1]);
  });
  it('reads variables and arguments, arguments last', () => {
    const o = parseChaosOptions(['--n=100', 'KILLS=3'], { CHAOS_N: '50', CHAOS_FAULT_RATE: '0.5' });
    assert.deepEqual([o.n, o.kills, o.faultRate], [100, 3, 0.5]);
  });
  it('refuses unknown flags and impossible values, naming them', () => {
    assert.throws(() => parseChaosOptions(['--killz=3'], {}), /unknown flag CHAOS_KILLZ/);
    assert.throws(() => parseChaosOptions([], { CHAOS_FAULT_RATE: '2' }), /between 0 and 1/);
    assert.throws(() => parseChaosOptions([], { CHAOS_N: '3' }), /CHAOS_N/);
  });
});

describe('chaos population', () => {
  it('has exactly n identities and every mechanism', () => {
    for (const n of [5, 60, 1000]) {
      const members = initialPopulation(n);
      assert.equal(members.length, n);
      for (const kind of KINDS) assert.ok(members.some((m) => m.kind === kind), `${kind} missing at n=${n}`);
      assert.equal(new Set(members.map((m) => m.name)).size, n);
    }
  });
  it('replays a seed', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    assert.deepEqual([a(), a(), a()], [b(), b(), b()]);
  });
});
