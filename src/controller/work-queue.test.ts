import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock, flushPromises } from './fake-clock.ts';
import { ExponentialBackoff, WorkQueue, type RateLimiter } from './work-queue.ts';

/** A rate limiter with a fixed delay that records what the queue asked of it. */
class FixedDelay implements RateLimiter {
  readonly delayMs: number;
  readonly forgotten: string[] = [];
  readonly failures = new Map<string, number>();
  constructor(delayMs: number) {
    this.delayMs = delayMs;
  }
  when(key: string): number {
    this.failures.set(key, this.retries(key) + 1);
    return this.delayMs;
  }
  forget(key: string): void {
    this.forgotten.push(key);
    this.failures.delete(key);
  }
  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

function newQueue(delayMs = 1000) {
  const clock = new FakeClock();
  const limiter = new FixedDelay(delayMs);
  const queue = new WorkQueue({ rateLimiter: limiter, timers: clock, now: clock.now });
  return { clock, limiter, queue };
}

describe('WorkQueue', () => {
  it('collapses duplicate adds of a waiting key into one', async () => {
    const { queue } = newQueue();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    assert.equal(queue.length, 2);
    assert.equal(await queue.get(), 'a');
    assert.equal(await queue.get(), 'b');
    assert.equal(queue.length, 0);
  });

  it('does not hand a key to a second worker while the first is processing it', async () => {
    const { queue } = newQueue();
    queue.add('a');
    assert.equal(await queue.get(), 'a');
    queue.add('a');
    let second: string | undefined;
    void queue.get().then((key) => (second = key));
    await flushPromises();
    assert.equal(second, undefined, 'a key being processed must not be handed out again');
    assert.equal(queue.length, 0);
    queue.done('a');
    await flushPromises();
    assert.equal(second, 'a');
  });

  it('re-queues a key added during processing once done is called, and only once', async () => {
    const { queue } = newQueue();
    queue.add('a');
    await queue.get();
    queue.add('a');
    queue.add('a');
    queue.done('a');
    assert.equal(queue.length, 1);
    assert.equal(await queue.get(), 'a');
    queue.done('a');
    assert.equal(queue.length, 0);
  });

  it('does not re-queue a key that was not added again during processing', async () => {
    const { queue } = newQueue();
    queue.add('a');
    await queue.get();
    queue.done('a');
    assert.equal(queue.length, 0);
  });

  it('hands a key added later to a worker already waiting in get()', async () => {
    const { queue } = newQueue();
    const next = queue.get();
    queue.add('a');
    assert.equal(await next, 'a');
  });

  it('adds a key after the delay of addAfter', () => {
    const { clock, queue } = newQueue();
    queue.addAfter('a', 500);
    clock.advance(499);
    assert.equal(queue.length, 0);
    clock.advance(1);
    assert.equal(queue.length, 1);
  });

  it('keeps the earliest deadline when addAfter is called twice for one key', () => {
    const { clock, queue } = newQueue();
    queue.addAfter('late-then-early', 1000);
    queue.addAfter('late-then-early', 100);
    queue.addAfter('early-then-late', 100);
    queue.addAfter('early-then-late', 1000);
    assert.equal(clock.pending, 2, 'one timer per key');
    clock.advance(100);
    assert.equal(queue.length, 2);
  });

  it('adds at once when addAfter gets a delay of zero', () => {
    const { queue } = newQueue();
    queue.addAfter('a', 0);
    assert.equal(queue.length, 1);
  });

  it('delays addRateLimited by the rate limiter and forgets through it', () => {
    const { clock, limiter, queue } = newQueue(250);
    queue.addRateLimited('a');
    assert.equal(limiter.retries('a'), 1);
    clock.advance(249);
    assert.equal(queue.length, 0);
    clock.advance(1);
    assert.equal(queue.length, 1);
    queue.forget('a');
    assert.deepEqual(limiter.forgotten, ['a']);
  });

  it('resolves pending and later get()s with undefined after shutDown, and drops delayed keys', async () => {
    const { clock, queue } = newQueue();
    const waiting = [queue.get(), queue.get()];
    queue.addAfter('a', 100);
    queue.shutDown();
    assert.deepEqual(await Promise.all(waiting), [undefined, undefined]);
    assert.equal(clock.pending, 0);
    queue.add('b');
    assert.equal(await queue.get(), undefined);
  });
});

describe('ExponentialBackoff', () => {
  const middle = () => 0.5; // jitter factor 1 + j·(2·0.5 − 1) = 1

  it('doubles the delay with every failure of a key', () => {
    const backoff = new ExponentialBackoff({ baseMs: 100, maxMs: 100_000, random: middle });
    assert.deepEqual([1, 2, 3, 4].map(() => backoff.when('a')), [100, 200, 400, 800]);
    assert.equal(backoff.retries('a'), 4);
  });

  it('counts failures per key', () => {
    const backoff = new ExponentialBackoff({ baseMs: 100, random: middle });
    backoff.when('a');
    backoff.when('a');
    assert.equal(backoff.when('b'), 100);
    assert.equal(backoff.retries('b'), 1);
  });

  it('caps the delay at maxMs', () => {
    const backoff = new ExponentialBackoff({ baseMs: 100, maxMs: 1000, random: middle });
    const delays = Array.from({ length: 60 }, () => backoff.when('a'));
    assert.deepEqual(delays.slice(0, 5), [100, 200, 400, 800, 1000]);
    assert.ok(delays.every((d) => d <= 1000));
  });

  it('spreads the delay by at most ± jitter and never past maxMs', () => {
    const low = new ExponentialBackoff({ baseMs: 1000, maxMs: 10_000, jitter: 0.2, random: () => 0 });
    const high = new ExponentialBackoff({ baseMs: 1000, maxMs: 10_000, jitter: 0.2, random: () => 0.999999 });
    assert.equal(low.when('a'), 800);
    assert.equal(high.when('a'), 1200);
    for (let i = 0; i < 10; i++) high.when('a');
    assert.equal(high.when('a'), 10_000);
  });

  it('starts over from baseMs after forget', () => {
    const backoff = new ExponentialBackoff({ baseMs: 100, random: middle });
    backoff.when('a');
    backoff.when('a');
    backoff.forget('a');
    assert.equal(backoff.retries('a'), 0);
    assert.equal(backoff.when('a'), 100);
  });

  it('defaults to 500 ms base and 300 s cap', () => {
    const backoff = new ExponentialBackoff({ random: middle });
    assert.equal(backoff.when('a'), 500);
    for (let i = 0; i < 20; i++) backoff.when('a');
    assert.equal(backoff.when('a'), 300_000);
  });
});
