// A hand-written fake for Timers and a clock, for unit tests. Time moves only when a test calls advance().
import type { Timers } from './timers.ts';

interface Scheduled {
  id: number;
  at: number;
  callback: () => void;
}

export class FakeClock implements Timers {
  #now = 0;
  #nextId = 1;
  #scheduled: Scheduled[] = [];

  now = (): number => this.#now;

  setTimeout = (callback: () => void, ms: number): unknown => {
    const id = this.#nextId++;
    this.#scheduled.push({ id, at: this.#now + Math.max(0, ms), callback });
    return id;
  };

  clearTimeout = (handle: unknown): void => {
    this.#scheduled = this.#scheduled.filter((s) => s.id !== handle);
  };

  /** Timers not yet fired. */
  get pending(): number {
    return this.#scheduled.length;
  }

  /** Moves time forward by `ms`, firing due timers in deadline order (timers they schedule fire too if due). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      const due = this.#scheduled.filter((s) => s.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.#scheduled = this.#scheduled.filter((s) => s !== due);
      this.#now = due.at;
      due.callback();
    }
    this.#now = target;
  }
}

/** Lets pending promise callbacks run (a few macrotask turns' worth of microtasks). */
export async function flushPromises(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}
