import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from './logger.ts';

describe('createLogger', () => {
  it('honours the level and the name', () => {
    const logger = createLogger({ level: 'warn', name: 'keyless' });
    assert.equal(logger.level, 'warn');
    assert.equal(logger.isLevelEnabled('info'), false);
    assert.deepEqual(logger.bindings(), { name: 'keyless' });
  });

  it('rejects an unknown level', () => {
    assert.throws(() => createLogger({ level: 'verbose' }));
  });
});
