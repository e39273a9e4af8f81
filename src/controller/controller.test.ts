import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Metrics, type ReconcileResult } from '../observability/metrics.ts';
import { Controller, type ReconcileOutcome } from './controller.ts';
import { TerminalError } from './errors.ts';
import { FakeClock, flushPromises } from './fake-clock.ts';
import { ExponentialBackoff, WorkQueue } from './work-queue.ts';

const RESYNC_MS = 60_000;
const BACKOFF_BASE_MS = 500;

interface LogLine {
  level: number;
  msg: string;
  key?: string;
  controller?: string;
  err?: { message: string };
}

type Step = ReconcileOutcome | void | Error | (() => Promise<ReconcileOutcome | void>);

/** A controller on a fake clock whose reconcile plays `steps` in order (then succeeds), recording each call. */
function harness(steps: Step[] = [], workers = 1) {
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

describe('Controller', () => {
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
});
