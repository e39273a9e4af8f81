// Faults the cloud proxy (cloud-proxy.ts) can inject in front of an emulator, for `make chaos` (chaos/): the ways a
// cloud API fails a caller in production, each answered in that cloud's own wire format (cloud-dialects.ts).
//
//   error              a 5xx answer (AWS ServiceFailure / ServerException, Google UNAVAILABLE, ARM InternalServerError)
//   throttle           the cloud's throttling answer without Retry-After
//   throttleRetryAfter the same with Retry-After (only ARM's SDK honours it; the others must back off themselves)
//   reset              the connection closed before any answer; the request never reached the cloud
//   timeout            the cloud applied the request and never answered: the caller's own deadline must end it
//   slow               the cloud applied it and answered late, but within the caller's deadline
//   lost               the cloud applied it; the answer was lost (a reset or a 5xx instead of it)
//
// `lost` and `timeout` are what make retries dangerous: the write happened, the caller saw a failure, and the next
// attempt meets the object it created (EntityAlreadyExists, a stale etag, a 409) and must recognise it as its own.
// Eventual consistency is a separate, always-on effect while faults are on: see `invisibleMs`.

export const FAULT_KINDS = ['error', 'throttle', 'throttleRetryAfter', 'reset', 'timeout', 'slow', 'lost'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultSettings {
  /** Share of requests that meet a fault, 0..1. */
  rate: number;
  /** Relative weight of each kind among the faulted requests; a kind left out never happens. */
  weights: Partial<Record<FaultKind, number>>;
  /** How long a `timeout` withholds the answer before it drops the connection: longer than the caller's deadline. */
  hangMs: number;
  /** How late a `slow` answer comes: within the caller's deadline. */
  slowMs: number;
  /**
   * AWS IAM: how long a role stays invisible to point reads (GetRole and friends answer NoSuchEntity) after it was
   * created. IAM is eventually consistent: "changes are not always immediately visible"
   * (docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
   * Google and ARM have their own in the emulators (service account propagation, principal replication).
   */
  invisibleMs: number;
}

/** The default mix: every kind, writes' worst cases (`lost`, `timeout`) as often as plain errors. */
export const DEFAULT_WEIGHTS: Record<FaultKind, number> = { error: 3, throttle: 2, throttleRetryAfter: 2, reset: 2, timeout: 1, slow: 2, lost: 3 };

/** The fault a request meets, if any: `random()` decides whether, then which kind by weight. */
export function pickFault(faults: FaultSettings | undefined, random: () => number = Math.random): FaultKind | undefined {
  if (!faults || faults.rate <= 0 || random() >= faults.rate) return undefined;
  const weighted = FAULT_KINDS.map((k) => [k, faults.weights[k] ?? 0] as const).filter(([, w]) => w > 0);
  const total = weighted.reduce((s, [, w]) => s + w, 0);
  if (total <= 0) return undefined;
  let roll = random() * total;
  for (const [kind, weight] of weighted) {
    roll -= weight;
    if (roll < 0) return kind;
  }
  return weighted[weighted.length - 1]?.[0];
}

/** Roles created recently, by name, and when: what the AWS dialect hides from point reads for `invisibleMs`. */
export class RecentlyCreated {
  readonly #at = new Map<string, number>();

  created(key: string, now = performance.now()): void {
    this.#at.set(key, now);
  }

  /** True while `key` was created less than `windowMs` ago; older entries are forgotten as they are met. */
  hidden(key: string, windowMs: number, now = performance.now()): boolean {
    const at = this.#at.get(key);
    if (at === undefined) return false;
    if (now - at < windowMs) return true;
    this.#at.delete(key);
    return false;
  }
}
