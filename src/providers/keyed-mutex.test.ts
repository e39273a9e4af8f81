import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyedMutex } from './keyed-mutex.ts';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('KeyedMutex', () => {
  it('runs work for one key one at a time, in arrival order, even when some of it fails', async () => {
    const mutex = new KeyedMutex();
    let running = 0;
    let maxRunning = 0;
    const order: number[] = [];
    const job = (i: number) =>
      mutex.run('identity-a', async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await tick();
        order.push(i);
        running--;
        if (i === 2) throw new Error('boom');
        return i;
      });
    const results = await Promise.allSettled([0, 1, 2, 3, 4].map(job));
    assert.equal(maxRunning, 1);
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    assert.equal(mutex.size, 0, 'no key is kept once its queue drains');
  });

  it('lets different keys run concurrently', async () => {
    const mutex = new KeyedMutex();
    let running = 0;
    let maxRunning = 0;
    await Promise.all(
      ['a', 'b', 'c'].map((key) =>
        mutex.run(key, async () => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await tick();
          running--;
        }),
      ),
    );
    assert.equal(maxRunning, 3);
  });
});
