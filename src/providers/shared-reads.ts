// Reads whose answer is the same for every identity of a CloudAccount — a resource's IAM policy, the role
// assignments in a subscription, the service accounts of a project, the managed identities of a resource group —
// made once for all of them instead of once per identity per resync (issue 14).
//
// Freshness. `read` hands out the copy kept from an earlier request while it is younger than the max age (counted
// from when that request was sent), and otherwise sends one request that every caller asking meanwhile shares.
// With a max age of half the resync interval R, a change made by hand is repaired at worst
//     max age + the longest gap between two resyncs of the identity it concerns
//   = R/2 + R·(1 + jitter)                        (jitter 0.1: 1.6 R, plus one reconcile's own duration)
// — the change can land just after the copy was read and the identity resync just before the copy expires, so only
// its next resync sees it. Without sharing it is R·(1 + jitter). Each shared thing is read about twice per resync
// interval (never twice within a max age), whatever the number of identities using it; the CloudAccount verdict has
// the same TTL.
//
// Keyless's own writes. The provider's ports apply every write Keyless makes to the copy it touches (`update`) or,
// when the write failed and its outcome is unknown, drop that copy (`drop`). A request already in flight when the
// write happened is neither joined nor kept afterwards: its answer may predate the write. So a reconcile that starts
// after a write never judges from a copy older than that write. Copies are frozen: a caller that changed one would
// change it for everyone.
import { monotonicNow } from '../controller/timers.ts';
import { CloudError } from './cloud-error.ts';

/**
 * Runs one of Keyless's own writes: its answer goes into the copies it touches (`written`), or, when it failed and may
 * have happened anyway, those copies are dropped (`failed`).
 */
export async function ownWrite<R>(write: () => Promise<R>, written: (result: R) => void, failed: () => void): Promise<R> {
  let result: R;
  try {
    result = await write();
  } catch (err) {
    failed();
    throw err;
  }
  written(result);
  return result;
}

/**
 * For an object of one identity known from a shared list: `check` reads the object itself, once, before the first
 * write that relies on the copy, so a copy older than a change (the object deleted and replaced by someone else's of
 * the same name) never leads to a write on the wrong object. A converged identity writes nothing and never pays it.
 */
export function beforeFirstWrite(check: () => Promise<void>): () => Promise<void> {
  let checked: Promise<void> | undefined;
  return () => (checked ??= check());
}

/** What a `beforeFirstWrite` check throws when the object is not what the list said: retried quietly, from the direct read. */
export function changedSinceListed(operation: string, what: string): CloudError {
  return new CloudError('retryable', 'ChangedSinceListed', operation, `${what} changed since it was listed; looking again`, { quiet: true });
}

/** The max age of a shared copy for an operator resyncing every `resyncMs` (see the drift bound above). */
export function sharedReadMaxAgeMs(resyncMs: number): number {
  return resyncMs / 2;
}

export interface SharedReadsOptions {
  /** How long a copy may be handed out after its request was sent; 0 shares only requests in flight. */
  maxAgeMs: number;
  /** Milliseconds on a monotonic clock (a FakeClock's `now` in tests). */
  now?: () => number;
}

interface Kept<T> {
  value: T;
  /** When the request that read it was sent (an update keeps the time of the read it applies to). */
  readAt: number;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** One kind of shared read (policies, say), by key. Errors are never kept; a request in flight shares its error. */
export class SharedReads<T> {
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  readonly #kept = new Map<string, Kept<T>>();
  readonly #flights = new Map<string, Promise<T>>();
  #sweptAt: number;

  constructor(opts: SharedReadsOptions) {
    if (!(opts.maxAgeMs >= 0)) throw new RangeError('shared read maxAgeMs must be >= 0');
    this.#maxAgeMs = opts.maxAgeMs;
    this.#now = opts.now ?? monotonicNow;
    this.#sweptAt = this.#now();
  }

  /** The kept copy while it is younger than the max age; else one request for every caller asking meanwhile. */
  read(key: string, fetch: () => Promise<T>): Promise<T> {
    this.#sweep();
    const kept = this.#kept.get(key);
    if (kept && this.#now() - kept.readAt < this.#maxAgeMs) return Promise.resolve(kept.value);
    return this.#flights.get(key) ?? this.#start(key, fetch);
  }

  /**
   * A new request whatever is kept or in flight, for a read that must be current (a read-modify-write after a stale
   * etag); its answer is kept like any other.
   */
  fresh<R extends T>(key: string, fetch: () => Promise<R>): Promise<R> {
    this.#sweep();
    return this.#start(key, fetch);
  }

  /** Keyless wrote `key`: `apply` gives the kept copy with the write in it (the copy keeps the age of its read). */
  update(key: string, apply: (copy: T) => T): void {
    this.#flights.delete(key);
    this.amend(key, apply);
  }

  /**
   * A direct read of one item of what `key` lists (an identity's GET), newer than the copy: applied to the kept copy.
   * Unlike a write it leaves a request in flight alone: that one is no older than the copy the freshness rule allows.
   */
  amend(key: string, apply: (copy: T) => T): void {
    const kept = this.#kept.get(key);
    if (kept) this.#kept.set(key, { value: deepFreeze(apply(kept.value)), readAt: kept.readAt });
  }

  /** `update` for every key `affected` names (one write that shows in several kept lists). */
  updateWhere(affected: (key: string) => boolean, apply: (copy: T) => T): void {
    for (const key of new Set([...this.#kept.keys(), ...this.#flights.keys()])) if (affected(key)) this.update(key, apply);
  }

  /** A Keyless write to `key` failed and may or may not have happened: the next read asks the cloud. */
  drop(key: string): void {
    this.#flights.delete(key);
    this.#kept.delete(key);
  }

  dropWhere(affected: (key: string) => boolean): void {
    for (const key of new Set([...this.#kept.keys(), ...this.#flights.keys()])) if (affected(key)) this.drop(key);
  }

  /** Copies kept (fresh or not yet swept), for tests: the cache must not grow without bound. */
  get size(): number {
    return this.#kept.size;
  }

  #start<R extends T>(key: string, fetch: () => Promise<R>): Promise<R> {
    const readAt = this.#now();
    const flight: Promise<R> = fetch().then(
      (value) => {
        const frozen = deepFreeze(value);
        // Superseded by a write or a fresher request meanwhile: this answer may be older than what they know.
        if (this.#flights.get(key) === flight) {
          this.#flights.delete(key);
          this.#kept.set(key, { value: frozen, readAt });
        }
        return frozen;
      },
      (err: unknown) => {
        if (this.#flights.get(key) === flight) this.#flights.delete(key);
        throw err;
      },
    );
    this.#flights.set(key, flight);
    return flight;
  }

  /** Forgets expired copies once per max age, so keys nobody reads any more do not stay. */
  #sweep(): void {
    const now = this.#now();
    if (now - this.#sweptAt < this.#maxAgeMs) return;
    this.#sweptAt = now;
    for (const [key, kept] of this.#kept) if (now - kept.readAt >= this.#maxAgeMs) this.#kept.delete(key);
  }
}
