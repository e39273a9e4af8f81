// N workers draining one work queue into a level-based reconcile function. What happens after a reconcile
// depends only on how it ended (CONVENTIONS.md habit 5): success → resync later with jitter, 409 → silent retry,
// TerminalError → wait for a spec change (or the next resync), anything else → retry with backoff. A reconcile
// that outlives its deadline counts as an error, and a key that keeps failing is reported once per streak.
import type { Logger } from '../observability/logger.ts';
import { RECONCILE_RESULTS, type Metrics, type ReconcileResult } from '../observability/metrics.ts';
import { TerminalError, isConflict, isQuietRetry } from './errors.ts';
import { realTimers, type Timers } from './timers.ts';
import { ExponentialBackoff, WorkQueue } from './work-queue.ts';

export interface ReconcileOutcome {
  /** Reconcile again after this long instead of at the resync interval (e.g. to poll a cloud operation). */
  requeueAfterMs?: number;
}

export type ReconcileFn = (key: string) => Promise<ReconcileOutcome | void>;

/** Told once per streak that `key` failed `failures` reconciles in a row; `err` is the latest failure. */
export type RepeatedFailureHook = (key: string, err: unknown, failures: number) => Promise<void>;

const DEFAULT_STOP_TIMEOUT_MS = 30_000;
const DEFAULT_RECONCILE_TIMEOUT_MS = 300_000;
const DEFAULT_FAILURE_THRESHOLD = 5;
/** How many more expected waits (conflicts, quiet retries) than failures it takes to report a streak. */
const EXPECTED_WAIT_FACTOR = 4;

/** How a reconcile ended, as a value: the attempt never rejects, so nothing it does later goes unhandled. */
type Ended = { ok: true; outcome: ReconcileOutcome | void } | { ok: false; err: unknown };
const TIMED_OUT = Symbol('timed out');

export class Controller {
  readonly #name: string;
  readonly #reconcile: ReconcileFn;
  readonly #workers: number;
  readonly #resyncMs: number;
  readonly #resyncJitter: number;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #queue: WorkQueue;
  readonly #random: () => number;
  readonly #timers: Timers;
  readonly #reconcileTimeoutMs: number;
  readonly #failureThreshold: number;
  readonly #onRepeatedFailure: RepeatedFailureHook | undefined;
  /** The last terminal error message per key, so an unchanged terminal failure is warned about once. */
  readonly #terminal = new Map<string, string>();
  /** Consecutive failed reconciles per key; a success or a terminal error ends the streak. */
  readonly #failures = new Map<string, { failures: number; loud: boolean; reported: boolean }>();
  /** Reconciles given up on after their deadline, each releasing its key once it settles. */
  readonly #abandoned = new Set<Promise<void>>();
  #running: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;
  #markStopped: () => void = () => {};

  constructor(opts: {
    name: string;
    reconcile: ReconcileFn;
    workers: number;
    resyncMs: number;
    resyncJitter?: number;
    logger: Logger;
    metrics: Metrics;
    queue?: WorkQueue;
    random?: () => number;
    /** Clock for the reconcile deadline; the queue's timers are injected with the queue. */
    timers?: Timers;
    /** A reconcile still running after this long counts as an error and its key is retried with backoff. */
    reconcileTimeoutMs?: number;
    /** Consecutive failures of one key after which `onRepeatedFailure` is called and a warning logged. */
    failureThreshold?: number;
    onRepeatedFailure?: RepeatedFailureHook;
  }) {
    if (!(Number.isInteger(opts.workers) && opts.workers >= 1)) throw new RangeError('controller needs workers >= 1');
    if (!(opts.resyncMs > 0)) throw new RangeError('controller resyncMs must be > 0');
    this.#reconcileTimeoutMs = opts.reconcileTimeoutMs ?? DEFAULT_RECONCILE_TIMEOUT_MS;
    if (!(this.#reconcileTimeoutMs > 0)) throw new RangeError('controller reconcileTimeoutMs must be > 0');
    this.#failureThreshold = opts.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD;
    if (!(Number.isInteger(this.#failureThreshold) && this.#failureThreshold >= 1)) throw new RangeError('controller needs failureThreshold >= 1');
    this.#onRepeatedFailure = opts.onRepeatedFailure;
    this.#timers = opts.timers ?? realTimers;
    this.#name = opts.name;
    this.#reconcile = opts.reconcile;
    this.#workers = opts.workers;
    this.#resyncMs = opts.resyncMs;
    this.#resyncJitter = opts.resyncJitter ?? 0.1;
    this.#logger = opts.logger.child({ controller: opts.name });
    this.#metrics = opts.metrics;
    this.#random = opts.random ?? Math.random;
    this.#queue = opts.queue ?? new WorkQueue({ rateLimiter: new ExponentialBackoff({ random: this.#random }) });
    // Zero series for every result, so rate() and alerts see the counter before its first increment.
    for (const result of RECONCILE_RESULTS) this.#metrics.reconcileTotal.inc({ controller: this.#name, result }, 0);
    this.#metrics.queueRetries.inc({ controller: this.#name }, 0);
    this.#updateDepth();
  }

  enqueue(key: string): void {
    this.#queue.add(key);
    this.#updateDepth();
  }

  /** Reconciles `key` after `ms`; further calls before then add nothing, so a burst of triggers is one reconcile. */
  enqueueAfter(key: string, ms: number): void {
    this.#queue.addAfter(key, ms);
  }

  get queueLength(): number {
    return this.#queue.length;
  }

  /** Starts the workers; resolves once `stop` has finished. */
  async run(): Promise<void> {
    if (this.#running) throw new Error(`controller ${this.#name} is already running`);
    if (this.#queue.shuttingDown) return;
    this.#stopped = new Promise((resolve) => (this.#markStopped = resolve));
    const workers = Promise.all(Array.from({ length: this.#workers }, () => this.#work()));
    this.#running = workers.then(() => undefined);
    this.#logger.info({ workers: this.#workers }, 'controller started');
    await this.#stopped;
  }

  /** Stops handing out keys and waits up to `timeoutMs` for reconciles in flight, timed-out ones included, to finish. */
  async stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    this.#queue.shutDown();
    if (!this.#running) {
      this.#markStopped();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    });
    // Once the workers are done no more reconciles are given up on; those given up on earlier may still be running.
    const drained = this.#running.then(() => Promise.all(this.#abandoned)).then(() => false);
    const finished = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (finished) this.#logger.warn({ timeoutMs }, 'controller stopped with reconciles still in flight');
    else this.#logger.info('controller stopped');
    this.#markStopped();
  }

  async #work(): Promise<void> {
    for (;;) {
      const key = await this.#queue.get();
      if (key === undefined) return;
      this.#updateDepth();
      const endTimer = this.#metrics.reconcileDuration.startTimer({ controller: this.#name });
      const attempt = this.#attempt(key);
      const ended = await this.#withDeadline(attempt);
      endTimer();
      // The work queue must never run one key twice at once: a key given up on stays processing until its
      // reconcile has really finished, while this worker moves on.
      if (ended === TIMED_OUT) this.#abandon(key, attempt);
      try {
        await this.#record(key, ended);
      } finally {
        if (ended !== TIMED_OUT) this.#release(key);
      }
    }
  }

  async #attempt(key: string): Promise<Ended> {
    try {
      return { ok: true, outcome: await this.#reconcile(key) };
    } catch (err) {
      return { ok: false, err };
    }
  }

  async #withDeadline(attempt: Promise<Ended>): Promise<Ended | typeof TIMED_OUT> {
    let timer: unknown;
    const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = this.#timers.setTimeout(() => resolve(TIMED_OUT), this.#reconcileTimeoutMs);
    });
    try {
      return await Promise.race([attempt, deadline]);
    } finally {
      this.#timers.clearTimeout(timer);
    }
  }

  /** Releases `key` once the reconcile given up on settles; how it ended no longer counts (it was counted as timed out). */
  #abandon(key: string, attempt: Promise<Ended>): void {
    const settled: Promise<void> = attempt.then((ended) => {
      this.#abandoned.delete(settled);
      this.#release(key);
      this.#logger.debug({ key, ...(ended.ok ? {} : { err: ended.err }) }, 'timed-out reconcile finished');
    });
    this.#abandoned.add(settled);
  }

  #release(key: string): void {
    this.#queue.done(key);
    this.#updateDepth();
  }

  /** Decides what happens next from how the reconcile ended; counts, logs and requeues it. */
  async #record(key: string, ended: Ended | typeof TIMED_OUT): Promise<void> {
    const log = this.#logger.child({ key });
    let result: ReconcileResult;
    let failure: unknown;
    if (ended === TIMED_OUT) {
      result = 'error';
      failure = new Error(`reconcile did not finish within ${this.#reconcileTimeoutMs / 1000}s`);
      this.#terminal.delete(key);
      this.#queue.addRateLimited(key);
      this.#metrics.queueRetries.inc({ controller: this.#name });
      log.error({ timeoutMs: this.#reconcileTimeoutMs }, 'reconcile timed out');
    } else if (ended.ok) {
      result = 'success';
      this.#terminal.delete(key);
      this.#queue.forget(key);
      const requeueAfterMs = ended.outcome?.requeueAfterMs;
      this.#queue.addAfter(key, requeueAfterMs ?? this.#resyncDelay());
      log.debug({ requeueAfterMs }, 'reconcile succeeded');
    } else {
      const err = ended.err;
      failure = err;
      if (err instanceof TerminalError) {
        result = 'terminal';
        this.#queue.forget(key);
        this.#queue.addAfter(key, this.#resyncDelay());
        if (this.#terminal.get(key) !== err.message) {
          this.#terminal.set(key, err.message);
          log.warn({ err }, 'reconcile failed permanently; waiting for a spec change');
        } else {
          log.debug('reconcile failed permanently again');
        }
      } else if (isConflict(err)) {
        result = 'conflict';
        this.#queue.addRateLimited(key);
        this.#metrics.queueRetries.inc({ controller: this.#name });
        log.debug('reconcile hit a conflict; requeued');
      } else {
        result = 'error';
        this.#terminal.delete(key);
        this.#queue.addRateLimited(key);
        this.#metrics.queueRetries.inc({ controller: this.#name });
        if (isQuietRetry(err)) log.debug({ err }, 'reconcile waits on the cloud; retrying with backoff');
        else log.error({ err }, 'reconcile failed; retrying with backoff');
      }
    }
    this.#metrics.reconcileTotal.inc({ controller: this.#name, result });
    await this.#countStreak(key, result, failure, log);
  }

  /**
   * Errors and conflicts extend a key's streak of failures, which a success ends. A terminal error ends it too: it
   * is a verdict, not a loop — it is warned about once, its condition tells the user what to fix, and the key waits
   * for a spec change instead of retrying — so the next failures after it start a new streak. Expected waits (a
   * conflict, a quiet retry: propagation, throttling) are reported only after EXPECTED_WAIT_FACTOR times as many,
   * so a healthy new identity waiting on replication raises no alarm while one stuck there still does.
   */
  async #countStreak(key: string, result: ReconcileResult, err: unknown, log: Logger): Promise<void> {
    if (result === 'success' || result === 'terminal') {
      this.#failures.delete(key);
      return;
    }
    const streak = this.#failures.get(key) ?? { failures: 0, loud: false, reported: false };
    streak.failures += 1;
    streak.loud ||= result === 'error' && !isQuietRetry(err);
    this.#failures.set(key, streak);
    const threshold = streak.loud ? this.#failureThreshold : this.#failureThreshold * EXPECTED_WAIT_FACTOR;
    // Once per streak, however long it lasts.
    if (streak.reported || streak.failures < threshold) return;
    streak.reported = true;
    log.warn({ err, failures: streak.failures }, 'reconcile keeps failing');
    if (!this.#onRepeatedFailure) return;
    try {
      await this.#onRepeatedFailure(key, err, streak.failures);
    } catch (hookErr) {
      log.warn({ err: hookErr }, 'repeated-failure hook failed');
    }
  }

  #resyncDelay(): number {
    return Math.round(this.#resyncMs * (1 + this.#resyncJitter * (2 * this.#random() - 1)));
  }

  #updateDepth(): void {
    this.#metrics.queueDepth.set({ controller: this.#name }, this.#queue.length);
  }
}
