import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock, flushPromises } from './fake-clock.ts';
import { TokenBucket } from './token-bucket.ts';

function newBucket(ratePerSec: number, burst: number) {
  const clock = new FakeClock();
  const bucket = new TokenBucket({ ratePerSec, burst, now: clock.now, timers: clock });
  return { clock, bucket };
}

describe('TokenBucket', () => {
  it('allows a burst, then refuses until tokens refill', () => {
    const { clock, bucket } = newBucket(2, 3);
    assert.deepEqual([1, 2, 3, 4].map(() => bucket.tryTake()), [true, true, true, false]);
    clock.advance(499);
    assert.equal(bucket.tryTake(), false);
    clock.advance(1);
    assert.equal(bucket.tryTake(), true);
  });

  it('never holds more than burst tokens however long it idles', () => {
    const { clock, bucket } = newBucket(10, 2);
    clock.advance(60_000);
    assert.deepEqual([1, 2, 3].map(() => bucket.tryTake()), [true, true, false]);
  });

  it('serves waiting take()s in call order at the configured rate', async () => {
    const { clock, bucket } = newBucket(10, 1);
    const served: number[] = [];
    await bucket.take();
    const waiting = [1, 2, 3].map((n) => bucket.take().then(() => served.push(n)));
    await flushPromises();
    assert.deepEqual(served, []);
    clock.advance(100);
    await flushPromises();
    assert.deepEqual(served, [1]);
    clock.advance(100);
    await flushPromises();
    assert.deepEqual(served, [1, 2]);
    clock.advance(100);
    await Promise.all(waiting);
    assert.deepEqual(served, [1, 2, 3]);
  });

  it('keeps a single timer for any number of waiters (no busy loop)', async () => {
    const { clock, bucket } = newBucket(1, 1);
    bucket.tryTake();
    const waiting = Array.from({ length: 5 }, () => bucket.take());
    assert.equal(clock.pending, 1);
    clock.advance(5000);
    await Promise.all(waiting);
    assert.equal(clock.pending, 0);
  });

  it('does not let tryTake jump ahead of waiting take()s', async () => {
    const { clock, bucket } = newBucket(1, 1);
    bucket.tryTake();
    const waiter = bucket.take();
    clock.advance(1000);
    assert.equal(bucket.tryTake(), false, 'the refilled token belongs to the waiter');
    await waiter;
  });

  it('rejects a zero rate or an empty burst', () => {
    assert.throws(() => new TokenBucket({ ratePerSec: 0, burst: 1 }), RangeError);
    assert.throws(() => new TokenBucket({ ratePerSec: 1, burst: 0 }), RangeError);
  });
});
