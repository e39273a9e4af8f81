import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDurationSeconds } from './duration.ts';

describe('parseDurationSeconds', () => {
  it('reads hours, minutes, seconds and combinations', () => {
    assert.equal(parseDurationSeconds('1h'), 3600);
    assert.equal(parseDurationSeconds('90m'), 5400);
    assert.equal(parseDurationSeconds('1h30m'), 5400);
    assert.equal(parseDurationSeconds('43200s'), 43200);
    assert.equal(parseDurationSeconds('1.5h'), 5400);
  });

  it('rejects what is not a duration', () => {
    for (const bad of ['', '1', 'h', '1d', '-1h', '1h ', 'PT1H']) assert.equal(parseDurationSeconds(bad), undefined, bad);
  });
});
