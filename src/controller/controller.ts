// N workers draining one work queue into a level-based reconcile function. What happens after a reconcile
// depends only on how it ended (CONVENTIONS.md habit 5): success → resync later with jitter, 409 → silent retry,
// TerminalError → wait for a spec change (or the next resync), anything else → retry with backoff.
import type { Logger } from '../observability/logger.ts';
import { RECONCILE_RESULTS, type Metrics, type ReconcileResult } from '../observability/metrics.ts';
import { TerminalError, isConflict, isQuietRetry } from './errors.ts';
import { ExponentialBackoff, WorkQueue } from './work-queue.ts';

export interface ReconcileOutcome {
  /** Reconcile again after this long instead of at the resync interval (e.g. to poll a cloud operation). */
  requeueAfterMs?: number;
}

export type ReconcileFn = (key: string) => Promise<ReconcileOutcome | void>;

const DEFAULT_STOP_TIMEOUT_MS = 30_000;

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
  /** The last terminal error message per key, so an unchanged terminal failure is warned about once. */
  readonly #terminal = new Map<string, string>();
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
  }) {
    if (!(Number.isInteger(opts.workers) && opts.workers >= 1)) throw new RangeError('controller needs workers >= 1');
    if (!(opts.resyncMs > 0)) throw new RangeError('controller resyncMs must be > 0');
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

  /** Stops handing out keys and waits up to `timeoutMs` for reconciles in flight to finish. */
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
    const finished = await Promise.race([this.#running.then(() => false), timedOut]);
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
      try {
        await this.#process(key);
      } finally {
        this.#queue.done(key);
        this.#updateDepth();
      }
    }
  }

  async #process(key: string): Promise<void> {
    const log = this.#logger.child({ key });
    const endTimer = this.#metrics.reconcileDuration.startTimer({ controller: this.#name });
    let result: ReconcileResult;
    try {
      const outcome = await this.#reconcile(key);
      result = 'success';
      this.#terminal.delete(key);
      this.#queue.forget(key);
      const requeueAfterMs = outcome?.requeueAfterMs;
      this.#queue.addAfter(key, requeueAfterMs ?? this.#resyncDelay());
      log.debug({ requeueAfterMs }, 'reconcile succeeded');
    } catch (err) {
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
    endTimer();
    this.#metrics.reconcileTotal.inc({ controller: this.#name, result });
  }

  #resyncDelay(): number {
    return Math.round(this.#resyncMs * (1 + this.#resyncJitter * (2 * this.#random() - 1)));
  }

  #updateDepth(): void {
    this.#metrics.queueDepth.set({ controller: this.#name }, this.#queue.length);
  }
}
