import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Metrics, type ReconcileResult } from '../observability/metrics.ts';
import { Controller, type ReconcileOutcome, type RepeatedFailureHook } from './controller.ts';
import { TerminalError } from './errors.ts';
import { FakeClock, flushPromises } from './fake-clock.ts';
import { ExponentialBackoff, WorkQueue } from './work-queue.ts';

const RESYNC_MS = 60_000;
const BACKOFF_BASE_MS = 500;
const RECONCILE_TIMEOUT_MS = 10_000;

interface LogLine {
  level: number;
  msg: string;
  key?: string;
  controller?: string;
  err?: { message: string };
}

type Step = ReconcileOutcome | void | Error | (() => Promise<ReconcileOutcome | void>);

/** A controller on a fake clock whose reconcile plays `steps` in order (then succeeds), recording each call. */
function harness(steps: Step[] = [], workers = 1, opts: { failureThreshold?: number; onRepeatedFailure?: RepeatedFailureHook } = {}) {
  const clock = new FakeClock();
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  const metrics = new Metrics();
  const backoff = new ExponentialBackoff({ baseMs: BACKOFF_BASE_MS, random: () => 0.5 });
  const queue = new WorkQueue({ rateLimiter: backoff, timers: clock, now: clock.now });
  const calls: string[] = [];
  const controller = new Controller({
    name: 'test',
    workers,
    resyncMs: RESYNC_MS,
    logger,
    metrics,
    queue,
    random: () => 0.5, // resync jitter factor exactly 1
    timers: clock,
    now: clock.now,
    reconcileTimeoutMs: RECONCILE_TIMEOUT_MS,
    ...opts,
    reconcile: async (key) => {
      calls.push(key);
      const step = steps.shift();
      if (step instanceof Error) throw step;
      if (typeof step === 'function') return step();
      return step;
    },
  });
  const running = controller.run();
  const count = async (result: ReconcileResult) =>
    (await metrics.reconcileTotal.get()).values.find((v) => v.labels.result === result)?.value;
  const at = (level: number) => lines.filter((l) => l.level === level);
  return { clock, lines, metrics, backoff, controller, running, calls, count, at };
}

const conflict = () => Object.assign(new Error('the object has been modified'), { code: 409 });

/** A reconcile step that runs until the test settles it, counting how many run at once. */
function pending() {
  const state = { running: 0, maxRunning: 0, settle: (_err?: Error) => {} };
  const step = async () => {
    state.running++;
    state.maxRunning = Math.max(state.maxRunning, state.running);
    try {
      await new Promise<void>((resolve, reject) => (state.settle = (err) => (err ? reject(err) : resolve())));
    } finally {
      state.running--;
    }
  };
  return { state, step };
}

/** A controller whose one reconcile of ns/a never settles on its own, past its deadline. */
async function timedOut(steps: (slow: ReturnType<typeof pending>) => Step[], workers = 1) {
  const slow = pending();
  const h = harness(steps(slow), workers);
  h.controller.enqueue('ns/a');
  await flushPromises();
  h.clock.advance(RECONCILE_TIMEOUT_MS);
  await flushPromises();
  return { slow, h };
}

/** Fires the pending backoff of `key` and lets the retry run (the harness's backoff has no jitter). */
async function retry(h: ReturnType<typeof harness>, key: string): Promise<void> {
  h.clock.advance(BACKOFF_BASE_MS * 2 ** (h.backoff.retries(key) - 1));
  await flushPromises();
}

describe('Controller', () => {
  it('says once when a pass over every key no longer fits in the resync interval, and once when it fits again', async () => {
    let slowMs = 5_000;
    const h = harness(Array.from({ length: 1000 }, () => () => new Promise<void>((resolve) => h.clock.setTimeout(resolve, slowMs))));
    // Twenty keys at 5 s each on one worker: a pass takes 100 s, while a key comes due 60 s after its last reconcile
    // ended (65 s after it started), so each resync starts later than the one before.
    for (let i = 0; i < 20; i++) h.controller.enqueue(`k${i}`);
    const behind = async () => (await h.metrics.resyncBehind.get()).values[0]?.value;
    const warnings = () => h.lines.filter((l) => l.msg.startsWith('resyncs start half an interval late'));
    const run = async (steps: number, until?: () => Promise<boolean>, stepMs = 5_000) => {
      for (let t = 0; t < steps && !(await until?.()); t++) {
        h.clock.advance(stepMs);
        await flushPromises();
      }
    };
    await run(200, async () => (await behind()) === 1);
    assert.equal(await behind(), 1);
    assert.equal(warnings().length, 1);
    assert.ok((await h.metrics.resyncLag.get()).values[0]!.value >= RESYNC_MS / 2000);
    await run(30);
    assert.equal(warnings().length, 1, 'said once, however long it lasts');
    slowMs = 1;
    await run(500, async () => (await behind()) === 0, 1_000);
    assert.equal(await behind(), 0);
    assert.equal(h.lines.filter((l) => l.msg === 'resyncs are on time again').length, 1);
    const stopping = h.controller.stop();
    h.clock.advance(slowMs); // the reconcile in flight
    await stopping;
    await h.running;
  });

  it('requeues a successful key at the resync interval and forgets its backoff', async () => {
    const h = harness([new Error('boom')]);
    h.controller.enqueue('ns/a');
    await flushPromises();
    assert.equal(h.backoff.retries('ns/a'), 1);
    h.clock.advance(BACKOFF_BASE_MS);
    await flushPromises();
    assert.equal(h.calls.length, 2);
    assert.equal(h.backoff.retries('ns/a'), 0, 'success forgets the failure history');
    h.clock.advance(RESYNC_MS - 1);
    await flushPromises();
    assert.equal(h.calls.length, 2);
    h.clock.advance(1);
    await flushPromises();
    assert.equal(h.calls.length, 3, 'resynced');
    assert.equal(await h.count('success'), 2);
    await h.controller.stop();
    await h.running;
  });

  it('spreads the resync by ± resyncJitter', async () => {
    const clock = new FakeClock();
    const queue = new WorkQueue({ rateLimiter: new ExponentialBackoff(), timers: clock, now: clock.now });
    const calls: string[] = [];
    const controller = new Controller({
      name: 'jitter',
      workers: 1,
      resyncMs: 1000,
      resyncJitter: 0.1,
      logger: pino({ level: 'silent' }),
      metrics: new Metrics(),
      queue,
      random: () => 0, // the earliest possible resync: 1000 × 0.9
      reconcile: (key) => {
        calls.push(key);
        return Promise.resolve();
      },
    });
    const running = controller.run();
    controller.enqueue('a');
    await flushPromises();
    clock.advance(899);
    await flushPromises();
    assert.equal(calls.length, 1);
    clock.advance(1);
    await flushPromises();
    assert.equal(calls.length, 2);
    await controller.stop();
    await running;
  });

  it('honours requeueAfterMs instead of the resync interval', async () => {
    const h = harness([{ requeueAfterMs: 5000 }]);
    h.controller.enqueue('ns/a');
    await flushPromises();
    h.clock.advance(5000);
    await flushPromises();
    assert.equal(h.calls.length, 2);
    await h.controller.stop();
  });

  it('requeues a 409 Conflict with backoff, silently', async () => {
    const h = harness([conflict()]);
    h.controller.enqueue('ns/a');
    await flushPromises();
    assert.equal(await h.count('conflict'), 1);
    assert.equal(h.at(40).length + h.at(50).length, 0, 'no warn or error line for a conflict');
    assert.ok(h.at(20).some((l) => l.msg.includes('conflict') && l.key === 'ns/a'));
    h.clock.advance(BACKOFF_BASE_MS);
    await flushPromises();
    assert.equal(h.calls.length, 2);
    await h.controller.stop();
  });

  it('does not retry a TerminalError before the resync, and warns once per distinct error', async () => {
    const h = harness([new TerminalError('bad spec'), new TerminalError('bad spec')]);
    h.controller.enqueue('ns/a');
    await flushPromises();
    assert.equal(h.backoff.retries('ns/a'), 0);
    h.clock.advance(RESYNC_MS - 1);
    await flushPromises();
    assert.equal(h.calls.length, 1, 'no retry before the resync');
    h.clock.advance(1);
    await flushPromises();
    assert.equal(h.calls.length, 2);
    assert.equal(await h.count('terminal'), 2);
    const warnings = h.at(40);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.err?.message, 'bad spec');
    assert.equal(warnings[0]?.key, 'ns/a');
    await h.controller.stop();
  });

  it('logs other errors with the error and retries with growing backoff', async () => {
    const h = harness([new Error('cloud down'), new Error('cloud down')]);
    h.controller.enqueue('ns/a');
    await flushPromises();
    h.clock.advance(BACKOFF_BASE_MS);
    await flushPromises();
    assert.equal(h.calls.length, 2);
    h.clock.advance(2 * BACKOFF_BASE_MS - 1);
    await flushPromises();
    assert.equal(h.calls.length, 2, 'the second retry waits twice as long');
    h.clock.advance(1);
    await flushPromises();
    assert.equal(h.calls.length, 3);
    const errors = h.at(50);
    assert.equal(errors.length, 2);
    assert.deepEqual(
      errors.map((l) => [l.controller, l.key, l.err?.message]),
      [
        ['test', 'ns/a', 'cloud down'],
        ['test', 'ns/a', 'cloud down'],
      ],
    );
    assert.equal(await h.count('error'), 2);
    const retries = (await h.metrics.queueRetries.get()).values[0]?.value;
    assert.equal(retries, 2);
    await h.controller.stop();
  });

  it('never reconciles one key on two workers at once', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let release: () => void = () => {};
    const slow = async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise<void>((resolve) => (release = resolve));
      inFlight--;
    };
    const h = harness([slow, slow], 4);
    h.controller.enqueue('ns/a');
    await flushPromises();
    h.controller.enqueue('ns/a');
    await flushPromises();
    assert.equal(h.calls.length, 1);
    release();
    await flushPromises();
    assert.equal(h.calls.length, 2, 'the key added during processing runs again afterwards');
    release();
    await flushPromises();
    assert.equal(maxInFlight, 1);
    await h.controller.stop();
  });

  it('stop waits for the reconcile in flight, then run resolves', async () => {
    let release: () => void = () => {};
    let finished = false;
    const h = harness([
      async () => {
        await new Promise<void>((resolve) => (release = resolve));
        finished = true;
      },
    ]);
    h.controller.enqueue('ns/a');
    await flushPromises();
    const stopping = h.controller.stop();
    h.controller.enqueue('ns/b');
    await flushPromises();
    assert.equal(finished, false);
    release();
    await stopping;
    await h.running;
    assert.equal(finished, true);
    assert.deepEqual(h.calls, ['ns/a'], 'no new key is taken after stop');
  });

  it('stop gives up on a reconcile that does not finish within the timeout', async () => {
    const h = harness([() => new Promise<void>(() => {})]);
    h.controller.enqueue('ns/a');
    await flushPromises();
    await h.controller.stop(5);
    await h.running;
    assert.ok(h.at(40).some((l) => l.msg.includes('in flight')));
  });
  describe('reconcile deadline', () => {
    it('counts a reconcile that outlives the deadline as an error, logged once with its key', async () => {
      const h = harness([pending().step]);
      h.controller.enqueue('ns/a');
      await flushPromises();
      h.clock.advance(RECONCILE_TIMEOUT_MS - 1);
      await flushPromises();
      assert.equal(await h.count('error'), 0);
      h.clock.advance(1);
      await flushPromises();
      assert.equal(await h.count('error'), 1);
      const errors = h.at(50);
      assert.deepEqual(errors.map((l) => [l.msg, l.key]), [['reconcile timed out', 'ns/a']]);
      assert.equal(h.backoff.retries('ns/a'), 1, 'retried with backoff');
      await h.controller.stop(5);
    });

    it('frees the worker for other keys while the timed-out reconcile still runs', async () => {
      const h = harness([pending().step]);
      h.controller.enqueue('ns/a');
      await flushPromises();
      h.clock.advance(RECONCILE_TIMEOUT_MS);
      await flushPromises();
      h.controller.enqueue('ns/b');
      await flushPromises();
      assert.deepEqual(h.calls, ['ns/a', 'ns/b']);
      await h.controller.stop(5);
    });

    it('hands the key out again only after the timed-out reconcile has settled', async () => {
      const { slow, h } = await timedOut((s) => [s.step, s.step], 4);
      await retry(h, 'ns/a');
      h.controller.enqueue('ns/a');
      await flushPromises();
      assert.equal(h.calls.length, 1, 'the backoff is over, but the first reconcile is still running');
      slow.state.settle();
      await flushPromises();
      assert.equal(h.calls.length, 2);
      assert.equal(slow.state.maxRunning, 1);
      slow.state.settle();
      await h.controller.stop();
    });

    it('neither counts nor logs again a timed-out reconcile that fails later, and leaves no unhandled rejection', async () => {
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => void unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const { slow, h } = await timedOut((s) => [s.step]);
        slow.state.settle(new Error('late failure'));
        await flushPromises();
        assert.deepEqual(unhandled, []);
        assert.equal(await h.count('error'), 1);
        assert.equal(h.at(50).length, 1);
        assert.equal(h.calls.length, 1, 'the late failure does not requeue the key by itself');
        await h.controller.stop();
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
    });

    it('stop waits for a timed-out reconcile that is still running', async () => {
      const { slow, h } = await timedOut((s) => [s.step]);
      let stopped = false;
      const stopping = h.controller.stop().then(() => (stopped = true));
      await flushPromises();
      assert.equal(stopped, false);
      slow.state.settle();
      await stopping;
      await h.running;
      assert.ok(h.at(30).some((l) => l.msg === 'controller stopped'));
    });
  });

  describe('repeated failures', () => {
    function recorder() {
      const seen: [string, string, number][] = [];
      const hook: RepeatedFailureHook = (key, err, failures) => {
        seen.push([key, (err as Error).message, failures]);
        return Promise.resolve();
      };
      return { seen, hook };
    }

    it('calls the hook and warns once when errors and conflicts reach the threshold', async () => {
      const r = recorder();
      const h = harness([new Error('one'), conflict(), new Error('three'), new Error('four')], 1, { failureThreshold: 3, onRepeatedFailure: r.hook });
      h.controller.enqueue('ns/a');
      await flushPromises();
      await retry(h, 'ns/a');
      assert.deepEqual(r.seen, []);
      await retry(h, 'ns/a');
      assert.deepEqual(r.seen, [['ns/a', 'three', 3]]);
      const warnings = h.at(40).filter((l) => l.msg === 'reconcile keeps failing');
      assert.deepEqual(warnings.map((l) => [l.key, l.err?.message]), [['ns/a', 'three']]);
      await retry(h, 'ns/a');
      assert.equal(h.calls.length, 4);
      assert.equal(r.seen.length, 1, 'not again while the streak lasts');
      assert.equal(h.at(40).filter((l) => l.msg === 'reconcile keeps failing').length, 1);
      await h.controller.stop();
    });

    it('starts a new streak after a success', async () => {
      const r = recorder();
      const h = harness([new Error('a'), new Error('b'), undefined, new Error('c'), new Error('d')], 1, { failureThreshold: 2, onRepeatedFailure: r.hook });
      h.controller.enqueue('ns/a');
      await flushPromises();
      await retry(h, 'ns/a');
      await retry(h, 'ns/a');
      assert.equal(h.calls.length, 3, 'succeeded');
      h.clock.advance(RESYNC_MS);
      await flushPromises();
      await retry(h, 'ns/a');
      assert.deepEqual(r.seen, [
        ['ns/a', 'b', 2],
        ['ns/a', 'd', 2],
      ]);
      await h.controller.stop();
    });

    it('reports a streak of expected waits (quiet retries, conflicts) only after four times the threshold', async () => {
      const r = recorder();
      const quiet = () => Object.assign(new Error('not replicated yet'), { retryQuietly: true });
      const h = harness([quiet(), conflict(), quiet(), quiet(), quiet(), quiet(), quiet(), quiet()], 1, { failureThreshold: 2, onRepeatedFailure: r.hook });
      h.controller.enqueue('ns/a');
      await flushPromises();
      for (let i = 0; i < 6; i++) await retry(h, 'ns/a');
      assert.deepEqual(r.seen, [], 'seven expected waits are below 2 x 4');
      await retry(h, 'ns/a');
      assert.deepEqual(r.seen, [['ns/a', 'not replicated yet', 8]]);
      await h.controller.stop();
    });

    it('does not count a terminal error, which ends the streak', async () => {
      const r = recorder();
      const h = harness([new Error('a'), new TerminalError('bad spec'), new Error('b')], 1, { failureThreshold: 2, onRepeatedFailure: r.hook });
      h.controller.enqueue('ns/a');
      await flushPromises();
      await retry(h, 'ns/a');
      h.clock.advance(RESYNC_MS);
      await flushPromises();
      assert.equal(h.calls.length, 3);
      assert.deepEqual(r.seen, []);
      await h.controller.stop();
    });

    it('counts a timed-out reconcile as a failure', async () => {
      const r = recorder();
      const h = harness([new Error('a'), pending().step], 1, { failureThreshold: 2, onRepeatedFailure: r.hook });
      h.controller.enqueue('ns/a');
      await flushPromises();
      await retry(h, 'ns/a');
      h.clock.advance(RECONCILE_TIMEOUT_MS);
      await flushPromises();
      assert.equal(r.seen.length, 1);
      assert.match(r.seen[0]?.[1] ?? '', /did not finish within 10s/);
      await h.controller.stop(5);
    });

    it('logs a failing hook at warn and keeps reconciling', async () => {
      const h = harness([new Error('a'), new Error('b')], 1, { failureThreshold: 1, onRepeatedFailure: () => Promise.reject(new Error('events unavailable')) });
      h.controller.enqueue('ns/a');
      await flushPromises();
      const warning = h.at(40).find((l) => l.msg === 'repeated-failure hook failed');
      assert.equal(warning?.err?.message, 'events unavailable');
      assert.equal(warning?.key, 'ns/a');
      await retry(h, 'ns/a');
      assert.equal(h.calls.length, 2);
      await h.controller.stop();
    });
  });
});
