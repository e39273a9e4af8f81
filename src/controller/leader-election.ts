// Lease-based leader election with client-go's semantics (k8s.io/client-go/tools/leaderelection): a candidate
// takes the Lease when its holder has not renewed it for a whole lease duration as measured on OUR clock (so
// clock skew between replicas does not matter), the leader renews every retry period and steps down when it has
// not managed to renew within the renew deadline, and every write carries the resourceVersion it read, so of two
// candidates racing for the same Lease exactly one wins (the other gets 409 Conflict).
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeApi } from '../kube/api.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { isConflict, isNotFound } from './errors.ts';
import { monotonicNow } from './timers.ts';

export interface LeaderCallbacks {
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

/** client-go's JitterFactor for the acquire loop: candidates retry at retryPeriod × [1, 2.2). */
const ACQUIRE_JITTER = 1.2;

/** A MicroTime as the API server writes it: RFC 3339 with exactly six fractional digits. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** A coordination.k8s.io/v1 Lease, with its times as the JSON strings the API server sends. */
interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
interface V1Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

export class LeaderElector {
  readonly #api: KubeApi;
  readonly #namespace: string;
  readonly #name: string;
  readonly #identity: string;
  readonly #leaseDurationSec: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #abort = new AbortController();

  /** The Lease as last read or written by us; its resourceVersion guards our next write. */
  #lease: V1Lease | undefined;
  /** The last distinct lease record we saw, and when (on our monotonic clock) we first saw it. */
  #observed: { record: string; holder: string; durationSec: number; at: number } | undefined;
  #leading = false;
  #stopping = false;
  #running: Promise<void> | undefined;

  constructor(opts: {
    api: KubeApi;
    namespace: string;
    name: string;
    identity: string;
    leaseDurationSec?: number;
    renewDeadlineSec?: number;
    retryPeriodSec?: number;
    logger: Logger;
    metrics: Metrics;
  }) {
    this.#api = opts.api;
    this.#namespace = opts.namespace;
    this.#name = opts.name;
    this.#identity = opts.identity;
    this.#leaseDurationSec = opts.leaseDurationSec ?? 15;
    const renewDeadlineSec = opts.renewDeadlineSec ?? 10;
    const retryPeriodSec = opts.retryPeriodSec ?? 2;
    // The same invariants client-go enforces: otherwise a leader could lose the lease while still acting.
    if (!opts.identity) throw new RangeError('leader election needs a non-empty identity');
    if (!(this.#leaseDurationSec > renewDeadlineSec)) {
      throw new RangeError('leaseDurationSec must be greater than renewDeadlineSec');
    }
    if (!(renewDeadlineSec > ACQUIRE_JITTER * retryPeriodSec)) {
      throw new RangeError('renewDeadlineSec must be greater than 1.2 × retryPeriodSec');
    }
    if (!(retryPeriodSec > 0)) throw new RangeError('retryPeriodSec must be > 0');
    this.#renewDeadlineMs = renewDeadlineSec * 1000;
    this.#retryPeriodMs = retryPeriodSec * 1000;
    this.#logger = opts.logger.child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
    this.#metrics = opts.metrics;
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  /**
   * Campaigns for the Lease until `stop`: onStartedLeading when it is won, onStoppedLeading when it is lost or
   * released, then campaigns again.
   */
  run(callbacks: LeaderCallbacks): Promise<void> {
    if (this.#running) throw new Error('leader elector is already running');
    this.#running = this.#campaign(callbacks);
    return this.#running;
  }

  /**
   * Stops campaigning; if leading, releases the Lease so a successor takes over at once instead of waiting for it
   * to expire. Call it after the work guarded by the Lease has stopped.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#abort.abort();
    await this.#running;
  }

  async #campaign(callbacks: LeaderCallbacks): Promise<void> {
    while (!this.#stopping) {
      if (!(await this.#acquire())) break;
      if (this.#stopping) {
        // Won the Lease just as we were told to stop: hand it straight back without starting any work.
        await this.#release();
        break;
      }
      this.#setLeading(true);
      this.#logger.info('acquired leadership');
      this.#call(callbacks.onStartedLeading, 'onStartedLeading');
      await this.#renew();
      if (this.#stopping) await this.#release();
      else this.#logger.warn({ renewDeadlineMs: this.#renewDeadlineMs }, 'lost leadership');
      this.#setLeading(false);
      this.#call(callbacks.onStoppedLeading, 'onStoppedLeading');
    }
  }

  /** Resolves true once we hold the Lease, false when stopped first. */
  async #acquire(): Promise<boolean> {
    this.#logger.debug('campaigning for leadership');
    while (!this.#stopping) {
      if (await this.#tryAcquireOrRenew(this.#renewDeadlineMs)) return true;
      await this.#sleep(this.#retryPeriodMs * (1 + Math.random() * ACQUIRE_JITTER));
    }
    return false;
  }

  /** Renews every retry period; returns when stopped, or when a renewal did not succeed within the renew deadline. */
  async #renew(): Promise<void> {
    for (;;) {
      await this.#sleep(this.#retryPeriodMs);
      if (this.#stopping) return;
      const deadline = monotonicNow() + this.#renewDeadlineMs;
      for (;;) {
        const remaining = deadline - monotonicNow();
        if (remaining <= 0) return;
        if (await this.#tryAcquireOrRenew(remaining)) break;
        // Someone else holds it now (we were partitioned past the lease duration): stop acting at once.
        if (this.#observed && this.#observed.holder !== this.#identity) return;
        if (this.#stopping) return;
        await this.#sleep(Math.min(this.#retryPeriodMs, deadline - monotonicNow()));
      }
    }
  }

  async #tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    // A hung request must not outlive the renew deadline.
    const timeout = { timeoutMs: Math.max(1, Math.round(timeoutMs)) };
    const name = this.#name;
    const namespace = this.#namespace;
    let lease: V1Lease;
    try {
      lease = await this.#api.request<V1Lease>('GET', this.#leasePath(name), timeout);
    } catch (err) {
      if (!isNotFound(err)) {
        this.#logger.warn({ err }, 'reading the leader election lease failed');
        return false;
      }
      try {
        const created = await this.#api.request<V1Lease>('POST', this.#leasePath(), {
          ...timeout,
          body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: this.#record(undefined) },
        });
        this.#accepted(created);
        return true;
      } catch (createErr) {
        if (isConflict(createErr)) this.#logger.debug('another candidate created the lease first');
        else this.#logger.warn({ err: createErr }, 'creating the leader election lease failed');
        return false;
      }
    }

    this.#observe(lease);
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== '' && holder !== this.#identity && !this.#observedExpired()) return false;

    try {
      const updated = await this.#api.request<V1Lease>('PUT', this.#leasePath(name), { ...timeout, body: { ...lease, spec: this.#record(lease.spec) } });
      this.#accepted(updated);
      return true;
    } catch (err) {
      if (isConflict(err)) this.#logger.debug('lease changed while we wrote it; another candidate won this round');
      else this.#logger.warn({ err }, 'updating the leader election lease failed');
      return false;
    }
  }

  /** The record we write: a renewal keeps acquireTime and the transition count; a takeover bumps the count. */
  #record(current: LeaseSpec | undefined): LeaseSpec {
    const now = microTime(Date.now());
    const renewing = current?.holderIdentity === this.#identity;
    const transitions = current?.leaseTransitions ?? 0;
    return {
      holderIdentity: this.#identity,
      leaseDurationSeconds: this.#leaseDurationSec,
      acquireTime: renewing && current.acquireTime ? current.acquireTime : now,
      renewTime: now,
      leaseTransitions: current === undefined ? 0 : renewing ? transitions : transitions + 1,
    };
  }

  #accepted(lease: V1Lease): void {
    this.#lease = lease;
    this.#observe(lease);
  }

  #observe(lease: V1Lease): void {
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const durationSec = spec.leaseDurationSeconds ?? this.#leaseDurationSec;
    const record = JSON.stringify([
      holder,
      durationSec,
      spec.acquireTime ?? '',
      spec.renewTime ?? '',
      spec.leaseTransitions ?? 0,
    ]);
    if (this.#observed?.record !== record) this.#observed = { record, holder, durationSec, at: monotonicNow() };
  }

  #observedExpired(): boolean {
    const observed = this.#observed;
    return observed === undefined || observed.at + observed.durationSec * 1000 <= monotonicNow();
  }

  /** Hands the Lease back (empty holder, 1 s duration), as client-go does with ReleaseOnCancel. */
  async #release(): Promise<void> {
    for (let attempt = 0; attempt < 2 && this.#lease; attempt++) {
      const lease: V1Lease = this.#lease;
      if (lease.spec?.holderIdentity !== this.#identity) return;
      const now = microTime(Date.now());
      try {
        await this.#api.request('PUT', this.#leasePath(this.#name), {
          timeoutMs: this.#renewDeadlineMs,
          body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now } },
        });
        this.#lease = undefined;
        this.#logger.info('released leadership');
        return;
      } catch (err) {
        if (!isConflict(err) || attempt > 0) {
          this.#logger.warn({ err }, 'releasing the lease failed; a successor waits for it to expire');
          return;
        }
        // A renewal we gave up on may have landed after all: read the current version and try once more.
        try {
          this.#lease = await this.#api.request<V1Lease>('GET', this.#leasePath(this.#name), { timeoutMs: this.#renewDeadlineMs });
        } catch (readErr) {
          this.#logger.warn({ err: readErr }, 'releasing the lease failed; a successor waits for it to expire');
          return;
        }
      }
    }
  }

  #leasePath(name?: string): string {
    const collection = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.#namespace)}/leases`;
    return name === undefined ? collection : `${collection}/${encodeURIComponent(name)}`;
  }

  #setLeading(leading: boolean): void {
    this.#leading = leading;
    this.#metrics.isLeader.set(leading ? 1 : 0);
  }

  #call(callback: () => void, which: string): void {
    try {
      callback();
    } catch (err) {
      this.#logger.error({ err, callback: which }, 'leader election callback failed');
    }
  }

  /** Waits `ms`, or less if stop() is called meanwhile. */
  async #sleep(ms: number): Promise<void> {
    if (ms <= 0) return;
    await sleep(ms, undefined, { signal: this.#abort.signal }).catch(() => undefined);
  }
}
