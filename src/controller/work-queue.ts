// A work queue with client-go's semantics (k8s.io/client-go/util/workqueue): keys are deduplicated while they wait,
// a key is never handed to two workers at once, a key added while it is being processed runs again once `done`
// is called, and failed keys come back after a per-key exponential backoff with jitter.
import { monotonicNow, realTimers, type Timers } from './timers.ts';

export interface RateLimiter {
  /** How long to wait before the next retry of `key`; counts one more failure. */
  when(key: string): number;
  /** Clears the failure history of `key` (after a success). */
  forget(key: string): void;
  /** Failures counted for `key` since the last `forget`. */
  retries(key: string): number;
}

/** base * 2^failures, capped at max, spread by ± jitter so keys that failed together do not retry together. */
export class ExponentialBackoff implements RateLimiter {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #jitter: number;
  readonly #random: () => number;
  readonly #failures = new Map<string, number>();

  constructor(opts: { baseMs?: number; maxMs?: number; jitter?: number; random?: () => number } = {}) {
    this.#baseMs = opts.baseMs ?? 500;
    this.#maxMs = opts.maxMs ?? 300_000;
    this.#jitter = opts.jitter ?? 0.2;
    this.#random = opts.random ?? Math.random;
    if (!(this.#baseMs > 0) || !(this.#maxMs >= this.#baseMs)) throw new RangeError('backoff needs 0 < baseMs <= maxMs');
    if (!(this.#jitter >= 0 && this.#jitter < 1)) throw new RangeError('backoff jitter must be in [0, 1)');
  }

  when(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const delay = Math.min(this.#baseMs * 2 ** failures, this.#maxMs);
    const spread = 1 + this.#jitter * (2 * this.#random() - 1);
    return Math.min(Math.round(delay * spread), this.#maxMs);
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  retries(key: string): number {
    return this.#failures.get(key) ?? 0;
  }
}

interface Delayed {
  deadline: number;
  handle: unknown;
}

export class WorkQueue {
  readonly #rateLimiter: RateLimiter;
  readonly #timers: Timers;
  readonly #now: () => number;
  /** Keys ready to hand out, in order. */
  #queue: string[] = [];
  /** Keys that need processing: queued ones, and processing ones that were added again meanwhile. */
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #delayed = new Map<string, Delayed>();
  #waiters: ((key: string | undefined) => void)[] = [];
  #shuttingDown = false;

  /** `now` reads the clock that `timers` run on; both are injected together in tests. */
  constructor(opts: { rateLimiter: RateLimiter; timers?: Timers; now?: () => number }) {
    this.#rateLimiter = opts.rateLimiter;
    this.#timers = opts.timers ?? realTimers;
    this.#now = opts.now ?? monotonicNow;
  }

  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return; // re-queued by done()
    this.#queue.push(key);
    this.#dispatch();
  }

  /** Adds `key` after `ms`. One timer per key: a later deadline than the pending one is dropped, an earlier one wins. */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const deadline = this.#now() + ms;
    const pending = this.#delayed.get(key);
    if (pending) {
      if (pending.deadline <= deadline) return;
      this.#timers.clearTimeout(pending.handle);
    }
    const handle = this.#timers.setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, ms);
    this.#delayed.set(key, { deadline, handle });
  }

  addRateLimited(key: string): void {
    this.addAfter(key, this.#rateLimiter.when(key));
  }

  forget(key: string): void {
    this.#rateLimiter.forget(key);
  }

  /** The next key to process, marked as processing until `done(key)`; undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    const key = this.#take();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key) && !this.#shuttingDown) {
      this.#queue.push(key);
      this.#dispatch();
    }
  }

  /** Stops handing out keys: pending and future `get()`s resolve undefined, delayed adds are dropped. */
  shutDown(): void {
    this.#shuttingDown = true;
    for (const { handle } of this.#delayed.values()) this.#timers.clearTimeout(handle);
    this.#delayed.clear();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve(undefined);
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Keys ready to be handed out (keys waiting on a timer or being processed are not counted). */
  get length(): number {
    return this.#queue.length;
  }

  #take(): string | undefined {
    const key = this.#queue.shift();
    if (key === undefined) return undefined;
    this.#dirty.delete(key);
    this.#processing.add(key);
    return key;
  }

  #dispatch(): void {
    while (this.#waiters.length > 0 && this.#queue.length > 0) {
      const resolve = this.#waiters.shift();
      resolve?.(this.#take());
    }
  }
}
