import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../controller/fake-clock.ts';
import { SharedReads, sharedReadMaxAgeMs } from './shared-reads.ts';

const MAX_AGE = 1_000;

/** A cloud whose answers the test releases one by one, counting the requests it got. */
function cloud<T>() {
  const pending: { resolve: (v: T) => void; reject: (e: unknown) => void }[] = [];
  let requests = 0;
  return {
    fetch: () => {
      requests++;
      return new Promise<T>((resolve, reject) => pending.push({ resolve, reject }));
    },
    answer(value: T) {
      const next = pending.shift();
      if (!next) throw new Error('no request is waiting');
      next.resolve(value);
    },
    fail(err: unknown) {
      const next = pending.shift();
      if (!next) throw new Error('no request is waiting');
      next.reject(err);
    },
    get requests() {
      return requests;
    },
  };
}

function setup() {
  const clock = new FakeClock();
  const reads = new SharedReads<{ v: number }>({ maxAgeMs: MAX_AGE, now: clock.now });
  return { clock, reads, cloud: cloud<{ v: number }>() };
}

describe('SharedReads', () => {
  it('sends one request for concurrent readers of one key and gives each the same answer', async () => {
    const { reads, cloud } = setup();
    const all = Promise.all([1, 2, 3].map(() => reads.read('project/p', cloud.fetch)));
    cloud.answer({ v: 1 });
    assert.deepEqual(await all, [{ v: 1 }, { v: 1 }, { v: 1 }]);
    assert.equal(cloud.requests, 1);
  });

  it('shares a failed request with every reader waiting on it, and keeps nothing of it', async () => {
    const { reads, cloud } = setup();
    const both = Promise.allSettled([reads.read('k', cloud.fetch), reads.read('k', cloud.fetch)]);
    cloud.fail(new Error('throttled'));
    assert.deepEqual((await both).map((r) => (r.status === 'rejected' ? String(r.reason) : r.status)), ['Error: throttled', 'Error: throttled']);
    const c = reads.read('k', cloud.fetch);
    cloud.answer({ v: 2 });
    assert.deepEqual(await c, { v: 2 });
    assert.equal(cloud.requests, 2, 'the next reader asks again');
  });

  it('hands out the kept copy while it is younger than the max age, then reads again', async () => {
    const { clock, reads, cloud } = setup();
    const first = reads.read('k', cloud.fetch);
    cloud.answer({ v: 1 });
    await first;
    clock.advance(MAX_AGE - 1);
    assert.deepEqual(await reads.read('k', cloud.fetch), { v: 1 });
    assert.equal(cloud.requests, 1);
    clock.advance(1);
    const again = reads.read('k', cloud.fetch);
    cloud.answer({ v: 2 });
    assert.deepEqual(await again, { v: 2 });
    assert.equal(cloud.requests, 2);
  });

  it('counts a copy’s age from when its request was sent, not from the answer', async () => {
    const { clock, reads, cloud } = setup();
    const first = reads.read('k', cloud.fetch);
    clock.advance(MAX_AGE); // a slow answer (or a long wait for the read budget)
    cloud.answer({ v: 1 });
    await first;
    const second = reads.read('k', cloud.fetch);
    assert.equal(cloud.requests, 2, 'a copy read at the start of the max age is already too old');
    cloud.answer({ v: 2 });
    await second;
  });

  it('keeps separate copies per key', async () => {
    const { reads, cloud } = setup();
    const a = reads.read('a', cloud.fetch);
    const b = reads.read('b', cloud.fetch);
    cloud.answer({ v: 1 });
    cloud.answer({ v: 2 });
    assert.deepEqual([await a, await b], [{ v: 1 }, { v: 2 }]);
    assert.equal(cloud.requests, 2);
  });

  it('applies Keyless’s own write to the kept copy, which keeps the age of its read', async () => {
    const { clock, reads, cloud } = setup();
    const first = reads.read('k', cloud.fetch);
    cloud.answer({ v: 1 });
    await first;
    clock.advance(MAX_AGE / 2);
    reads.update('k', (copy) => ({ v: copy.v + 10 }));
    assert.deepEqual(await reads.read('k', cloud.fetch), { v: 11 });
    assert.equal(cloud.requests, 1);
    clock.advance(MAX_AGE / 2);
    const again = reads.read('k', cloud.fetch);
    assert.equal(cloud.requests, 2, 'the write does not make the rest of the copy any fresher');
    cloud.answer({ v: 11 });
    await again;
  });

  it('never keeps an answer to a request in flight when Keyless wrote, nor lets a later reader join it', async () => {
    const { reads, cloud } = setup();
    const before = reads.read('k', cloud.fetch);
    reads.update('k', (copy) => ({ v: copy.v + 10 }));
    // A reconcile that starts after the write does not join the request sent before it.
    const after = reads.read('k', cloud.fetch);
    assert.equal(cloud.requests, 2);
    cloud.answer({ v: 1 }); // read before the write
    cloud.answer({ v: 11 }); // read after it
    assert.deepEqual(await before, { v: 1 }, 'whoever asked before the write gets what was read');
    assert.deepEqual(await after, { v: 11 });
    assert.deepEqual(await reads.read('k', cloud.fetch), { v: 11 }, 'the pre-write answer was not kept');
    assert.equal(cloud.requests, 2);
  });

  it('amends the kept copy with a direct read, and still keeps the answer of a request in flight', async () => {
    const { clock, reads, cloud } = setup();
    const first = reads.read('k', cloud.fetch);
    cloud.answer({ v: 1 });
    await first;
    reads.amend('k', () => ({ v: 2 }));
    assert.deepEqual(await reads.read('k', cloud.fetch), { v: 2 });
    clock.advance(MAX_AGE);
    const next = reads.read('k', cloud.fetch);
    reads.amend('k', () => ({ v: 3 }));
    cloud.answer({ v: 4 });
    await next;
    assert.deepEqual(await reads.read('k', cloud.fetch), { v: 4 });
    assert.equal(cloud.requests, 2);
  });

  it('drops the copy when a write failed: the next reader asks the cloud', async () => {
    const { reads, cloud } = setup();
    const first = reads.read('k', cloud.fetch);
    cloud.answer({ v: 1 });
    await first;
    reads.drop('k');
    const next = reads.read('k', cloud.fetch);
    assert.equal(cloud.requests, 2);
    cloud.answer({ v: 2 });
    assert.deepEqual(await next, { v: 2 });
  });

  it('updates and drops every key a write names', async () => {
    const { reads, cloud } = setup();
    const read = Promise.all(['sub/a', 'sub/a/rg', 'sub/b'].map((k) => reads.read(k, cloud.fetch)));
    for (const v of [1, 2, 3]) cloud.answer({ v });
    await read;
    reads.updateWhere((k) => k.startsWith('sub/a'), (copy) => ({ v: copy.v * 10 }));
    assert.deepEqual(await Promise.all(['sub/a', 'sub/a/rg', 'sub/b'].map((k) => reads.read(k, cloud.fetch))), [{ v: 10 }, { v: 20 }, { v: 3 }]);
    reads.dropWhere((k) => k === 'sub/b');
    const b = reads.read('sub/b', cloud.fetch);
    cloud.answer({ v: 4 });
    assert.deepEqual(await b, { v: 4 });
    assert.equal(cloud.requests, 4);
  });

  it('fresh always asks the cloud, and its answer replaces a kept copy', async () => {
    const { reads, cloud } = setup();
    const first = reads.read('k', cloud.fetch);
    cloud.answer({ v: 1 });
    await first;
    const fresh = reads.fresh('k', cloud.fetch);
    assert.equal(cloud.requests, 2, 'a read-modify-write after a stale etag never builds on the copy');
    cloud.answer({ v: 2 });
    assert.deepEqual(await fresh, { v: 2 });
    assert.deepEqual(await reads.read('k', cloud.fetch), { v: 2 });
    assert.equal(cloud.requests, 2);
  });

  it('an older request answering after a fresher one never overwrites it', async () => {
    const { reads, cloud } = setup();
    const old = reads.read('k', cloud.fetch);
    const fresh = reads.fresh('k', cloud.fetch);
    cloud.answer({ v: 1 });
    cloud.answer({ v: 2 });
    await Promise.all([old, fresh]);
    assert.deepEqual(await reads.read('k', cloud.fetch), { v: 2 });
  });

  it('hands out frozen copies: no caller can change what the others read', async () => {
    const { reads, cloud } = setup();
    const first = reads.read('k', () => Promise.resolve({ v: 1, list: [{ a: 1 }] } as unknown as { v: number }));
    const copy = (await first) as unknown as { list: { a: number }[] };
    assert.throws(() => copy.list.push({ a: 2 }), TypeError);
    assert.throws(() => {
      (copy.list[0] as { a: number }).a = 3;
    }, TypeError);
    assert.equal(cloud.requests, 0);
  });

  it('forgets copies nobody read for a max age', async () => {
    const { clock, reads, cloud } = setup();
    const all = Promise.all(['a', 'b'].map((k) => reads.read(k, cloud.fetch)));
    cloud.answer({ v: 1 });
    cloud.answer({ v: 2 });
    await all;
    assert.equal(reads.size, 2);
    clock.advance(MAX_AGE);
    const c = reads.read('c', cloud.fetch);
    cloud.answer({ v: 3 });
    await c;
    assert.equal(reads.size, 1);
  });

  it('with a max age of 0 shares only requests in flight', async () => {
    const clock = new FakeClock();
    const reads = new SharedReads<number>({ maxAgeMs: 0, now: clock.now });
    const c = cloud<number>();
    const both = Promise.all([reads.read('k', c.fetch), reads.read('k', c.fetch)]);
    c.answer(1);
    await both;
    const again = reads.read('k', c.fetch);
    c.answer(2);
    assert.equal(await again, 2);
    assert.equal(c.requests, 2);
  });

  it('ties the max age to half the resync interval', () => {
    assert.equal(sharedReadMaxAgeMs(600_000), 300_000);
  });
});
