// A token bucket bounding the call rate to one cloud account: `burst` calls at once, then `ratePerSec` on
// average. Waiters are served first come, first served, and a single timer wakes the head of the line.
import { monotonicNow, realTimers, type Timers } from './timers.ts';

export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #timers: Timers;
  #tokens: number;
  #refilledAt: number;
  #waiters: (() => void)[] = [];
  #timer: unknown = undefined;

  constructor(opts: { ratePerSec: number; burst: number; now?: () => number; timers?: Timers }) {
    if (!(opts.ratePerSec > 0)) throw new RangeError('token bucket ratePerSec must be > 0');
    if (!(opts.burst >= 1)) throw new RangeError('token bucket burst must be >= 1');
    this.#ratePerMs = opts.ratePerSec / 1000;
    this.#burst = opts.burst;
    this.#now = opts.now ?? monotonicNow;
    this.#timers = opts.timers ?? realTimers;
    this.#tokens = opts.burst;
    this.#refilledAt = this.#now();
  }

  /** Takes a token if one is free and nobody is waiting for one; never waits. */
  tryTake(): boolean {
    if (this.#waiters.length > 0) return false;
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Resolves once a token is ours; callers are served in the order they called. */
  take(): Promise<void> {
    if (this.tryTake()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#waiters.push(resolve);
      this.#serve();
    });
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#refilledAt) * this.#ratePerMs);
    this.#refilledAt = now;
  }

  #serve(): void {
    if (this.#timer !== undefined) return;
    this.#refill();
    while (this.#waiters.length > 0 && this.#tokens >= 1) {
      this.#tokens -= 1;
      this.#waiters.shift()?.();
    }
    if (this.#waiters.length === 0) return;
    const waitMs = Math.max(1, Math.ceil((1 - this.#tokens) / this.#ratePerMs));
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      this.#serve();
    }, waitMs);
  }
}
