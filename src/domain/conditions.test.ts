import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deepEqual, mergeConditions } from './conditions.ts';

const t0 = new Date('2026-01-01T00:00:00.123Z');
const t1 = new Date('2026-01-01T01:00:00Z');

describe('mergeConditions', () => {
  it('stamps new conditions with the generation and a second-precision time', () => {
    const [c] = mergeConditions(undefined, [{ type: 'Ready', status: 'False', reason: 'Pending', message: 'm' }], 3, t0);
    assert.deepEqual(c, { type: 'Ready', status: 'False', reason: 'Pending', message: 'm', observedGeneration: 3, lastTransitionTime: '2026-01-01T00:00:00Z' });
  });

  it('keeps lastTransitionTime when only reason or message change', () => {
    const first = mergeConditions(undefined, [{ type: 'Ready', status: 'False', reason: 'A', message: 'a' }], 1, t0);
    const [c] = mergeConditions(first, [{ type: 'Ready', status: 'False', reason: 'B', message: 'b' }], 2, t1);
    assert.equal(c?.lastTransitionTime, '2026-01-01T00:00:00Z');
    assert.equal(c?.reason, 'B');
  });

  it('moves lastTransitionTime when status flips', () => {
    const first = mergeConditions(undefined, [{ type: 'Ready', status: 'False', reason: 'A', message: 'a' }], 1, t0);
    const [c] = mergeConditions(first, [{ type: 'Ready', status: 'True', reason: 'Ready', message: 'ok' }], 1, t1);
    assert.equal(c?.lastTransitionTime, '2026-01-01T01:00:00Z');
  });

  it('is a fixed point: merging the same input twice yields equal conditions', () => {
    const input = [{ type: 'Ready', status: 'True' as const, reason: 'Ready', message: 'ok' }];
    const first = mergeConditions(undefined, input, 1, t0);
    assert.ok(deepEqual(first, mergeConditions(first, input, 1, t1)));
  });
});

describe('message bounds', () => {
  it('truncates a message past the bound, marking it', () => {
    const [c] = mergeConditions(undefined, [{ type: 'Ready', status: 'False', reason: 'X', message: 'x'.repeat(10_000) }], 1, t0);
    assert.equal(c?.message.length, 4096);
    assert.match(c?.message ?? '', /\.\.\.\(truncated\)$/);
  });
});

describe('deepEqual', () => {
  it('ignores key order and undefined members', () => {
    assert.ok(deepEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined }));
    assert.ok(!deepEqual({ a: [1, 2] }, { a: [2, 1] }));
  });
});
