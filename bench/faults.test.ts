// Which fault a request meets: none below the rate, each kind by its weight, never a kind weighted 0; and the
// eventual-consistency window of a created object.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_WEIGHTS, FAULT_KINDS, pickFault, RecentlyCreated, type FaultSettings } from './faults.ts';

const settings = (over: Partial<FaultSettings> = {}): FaultSettings => ({ rate: 0.2, weights: DEFAULT_WEIGHTS, hangMs: 1, slowMs: 1, invisibleMs: 0, ...over });

/** A generator that returns the given values in turn. */
const sequence = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length] ?? 0;
};

describe('pickFault', () => {
  it('faults nothing without settings, at rate 0, or when the roll is at or above the rate', () => {
    assert.equal(pickFault(undefined), undefined);
    assert.equal(pickFault(settings({ rate: 0 }), sequence(0)), undefined);
    assert.equal(pickFault(settings(), sequence(0.2, 0)), undefined);
  });
  it('picks by weight among the kinds that have one', () => {
    const only = settings({ weights: { lost: 1, reset: 1 } });
    assert.equal(pickFault(only, sequence(0, 0.25)), 'reset');
    assert.equal(pickFault(only, sequence(0, 0.75)), 'lost');
  });
  it('meets every kind of the default mix, at about the rate asked', () => {
    const seen = new Map<string, number>();
    let faulted = 0;
    for (let i = 0; i < 20_000; i++) {
      const kind = pickFault(settings());
      if (!kind) continue;
      faulted++;
      seen.set(kind, (seen.get(kind) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), [...FAULT_KINDS].sort());
    assert.ok(faulted > 20_000 * 0.17 && faulted < 20_000 * 0.23, `faulted ${faulted} of 20000 at rate 0.2`);
  });
});

describe('RecentlyCreated', () => {
  it('hides an object for the window after its creation, then forgets it', () => {
    const recent = new RecentlyCreated();
    recent.created('role-a', 1000);
    assert.equal(recent.hidden('role-a', 500, 1400), true);
    assert.equal(recent.hidden('role-a', 500, 1500), false);
    assert.equal(recent.hidden('role-a', 500, 1000), false, 'forgotten once the window passed');
    assert.equal(recent.hidden('role-b', 500, 1000), false);
  });
});
