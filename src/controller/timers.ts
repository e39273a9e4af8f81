// The timer seam of the controller runtime: production passes nothing and gets the global timers; unit tests pass
// a FakeClock and advance time by hand, so nothing in a test waits on the wall clock.

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Milliseconds on a monotonic clock; wall-clock jumps must not shorten or stretch a backoff. */
export const monotonicNow = (): number => performance.now();
