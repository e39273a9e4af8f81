import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { selects } from './label-selector.ts';

describe('selects', () => {
  it('selects everything with an empty or missing selector', () => {
    assert.ok(selects(undefined, {}));
    assert.ok(selects({}, { a: 'b' }));
  });

  it('ANDs matchLabels and every expression operator', () => {
    const selector = {
      matchLabels: { team: 'books' },
      matchExpressions: [
        { key: 'env', operator: 'In' as const, values: ['prod', 'staging'] },
        { key: 'legacy', operator: 'DoesNotExist' as const },
        { key: 'tier', operator: 'NotIn' as const, values: ['untrusted'] },
        { key: 'owner', operator: 'Exists' as const },
      ],
    };
    assert.ok(selects(selector, { team: 'books', env: 'prod', owner: 'x' }));
    assert.ok(!selects(selector, { team: 'books', env: 'dev', owner: 'x' }));
    assert.ok(!selects(selector, { team: 'books', env: 'prod', owner: 'x', legacy: 'y' }));
    assert.ok(!selects(selector, { team: 'books', env: 'prod', owner: 'x', tier: 'untrusted' }));
    assert.ok(!selects(selector, { team: 'books', env: 'prod' }));
    assert.ok(!selects(selector, { team: 'music', env: 'prod', owner: 'x' }));
  });
});
