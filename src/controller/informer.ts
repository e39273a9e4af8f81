// A list+watch cache over one resource, wrapping client-node's informer (makeInformer) with what it lacks for an
// operator that must not go quiet: client-node's informer stops for good after an `error` event, so we restart it
// with backoff; and a watch can stall without an error (half-open TCP connection, a proxy that stops forwarding),
// so a watchdog restarts it — a fresh list, then a fresh watch — when no activity arrives for `stallTimeoutMs`.
//
// The cache is ours, not the informer's: it survives restarts (readers never see it empty again after the first
// sync), and after each relist objects that vanished while we were not watching are reported as deleted.
import {
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.ts';
import type { InformerRestartReason, Metrics } from '../observability/metrics.ts';
import { realTimers, type Timers } from './timers.ts';
import { ExponentialBackoff } from './work-queue.ts';

export interface Cache<T> {
  get(key: string): T | undefined;
  list(): T[];
  readonly synced: boolean;
}

/** `namespace/name`, or `name` for a cluster-scoped object: the work queue key. */
export function objectKey(obj: KubernetesObject): string {
  const name = obj.metadata?.name ?? '';
  const namespace = obj.metadata?.namespace;
  return namespace ? `${namespace}/${name}` : name;
}

const DEFAULT_STALL_TIMEOUT_MS = 5 * 60_000;
const RESTART_BACKOFF_KEY = 'restart';

export class ResourceWatch<T extends KubernetesObject> implements Cache<T> {
  readonly #name: string;
  readonly #kc: KubeConfig;
  readonly #path: string;
  readonly #list: () => Promise<KubernetesListObject<T>>;
  readonly #labelSelector: string | undefined;
  readonly #stallTimeoutMs: number;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #timers: Timers;
  readonly #backoff = new ExponentialBackoff({ baseMs: 1000, maxMs: 30_000 });

  readonly #objects = new Map<string, T>();
  readonly #changeHandlers: ((obj: T) => void)[] = [];
  readonly #deleteHandlers: ((obj: T) => void)[] = [];

  #informer: Informer<T> | undefined;
  /** Bumped whenever an informer is discarded; events from older informers are ignored. */
  #generation = 0;
  #running = false;
  #synced = false;
  readonly #syncedPromise: Promise<void>;
  #markSynced: () => void = () => {};
  #watchdog: unknown = undefined;
  #restartTimer: unknown = undefined;

  /**
   * `name` labels logs and metrics; `path` is the collection URL watched; `list` must return the same collection
   * (with the same label selector) — its resourceVersion is where the watch starts. `start()` resolves only once a
   * list has succeeded, so a missing RBAC grant shows as a never-ready operator with warnings in the log.
   */
  constructor(opts: {
    name: string;
    kc: KubeConfig;
    path: string;
    list: () => Promise<KubernetesListObject<T>>;
    labelSelector?: string;
    stallTimeoutMs?: number;
    logger: Logger;
    metrics: Metrics;
    timers?: Timers;
  }) {
    this.#name = opts.name;
    this.#kc = opts.kc;
    this.#path = opts.path;
    this.#list = opts.list;
    this.#labelSelector = opts.labelSelector;
    this.#stallTimeoutMs = opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    this.#logger = opts.logger.child({ informer: opts.name });
    this.#metrics = opts.metrics;
    this.#timers = opts.timers ?? realTimers;
    this.#syncedPromise = new Promise((resolve) => (this.#markSynced = resolve));
    this.#metrics.informerRestarts.inc({ resource: opts.name, reason: 'error' }, 0);
    this.#metrics.informerRestarts.inc({ resource: opts.name, reason: 'stall' }, 0);
  }

  get synced(): boolean {
    return this.#synced;
  }

  get(key: string): T | undefined {
    return this.#objects.get(key);
  }

  list(): T[] {
    return [...this.#objects.values()];
  }

  /** Called for every object that appears or changes, and for every object after a relist that changed meanwhile. */
  onChange(handler: (obj: T) => void): void {
    this.#changeHandlers.push(handler);
  }

  /** Called with the last known state of an object that is gone. */
  onDelete(handler: (obj: T) => void): void {
    this.#deleteHandlers.push(handler);
  }

  /** Starts listing and watching; resolves once the first list is in the cache (or when stopped before that). */
  start(): Promise<void> {
    if (!this.#running) {
      this.#running = true;
      this.#launch();
    }
    return this.#syncedPromise;
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#clearTimer('watchdog');
    this.#clearTimer('restart');
    const informer = this.#detach();
    this.#markSynced();
    // client-node reports the abort of its watch request as an `error` event; #detach made us deaf to it.
    await informer?.stop();
    this.#logger.info('informer stopped');
  }

  #launch(): void {
    const generation = ++this.#generation;
    const current = () => this.#running && generation === this.#generation;
    const list = async () => {
      const result = await this.#list();
      if (current()) this.#replace(result.items);
      return result;
    };
    const informer = makeInformer<T>(this.#kc, this.#path, list, this.#labelSelector);
    informer.on('add', (obj) => {
      if (current()) this.#upsert(obj);
    });
    informer.on('update', (obj) => {
      if (current()) this.#upsert(obj);
    });
    informer.on('delete', (obj) => {
      if (current()) this.#remove(obj);
    });
    // A (re)connect is activity: client-node reconnects a quiet watch itself after its inactivity timeout.
    informer.on('connect', () => {
      if (current()) this.#armWatchdog();
    });
    informer.on('error', (err: unknown) => {
      if (current()) this.#failed(err);
    });
    this.#informer = informer;
    this.#armWatchdog();
    informer.start().catch((err: unknown) => {
      if (current()) this.#failed(err);
    });
  }

  /** Forgets the current informer (its late events are ignored from now on) and returns it for stopping. */
  #detach(): Informer<T> | undefined {
    const informer = this.#informer;
    this.#informer = undefined;
    this.#generation++;
    return informer;
  }

  #restart(reason: InformerRestartReason): void {
    const old = this.#detach();
    old?.stop().catch((err: unknown) => this.#logger.debug({ err }, 'stopping the replaced informer failed'));
    this.#metrics.informerRestarts.inc({ resource: this.#name, reason });
    this.#launch();
  }

  #failed(err: unknown): void {
    this.#clearTimer('watchdog');
    const old = this.#detach();
    old?.stop().catch((stopErr: unknown) => this.#logger.debug({ err: stopErr }, 'stopping the failed informer failed'));
    const delayMs = this.#backoff.when(RESTART_BACKOFF_KEY);
    this.#logger.warn({ err, delayMs }, 'informer failed; restarting after backoff');
    this.#restartTimer = this.#timers.setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#running) this.#restart('error');
    }, delayMs);
  }

  #stalled(): void {
    this.#watchdog = undefined;
    if (!this.#running) return;
    this.#logger.warn({ stallTimeoutMs: this.#stallTimeoutMs }, 'no watch activity; restarting informer');
    this.#restart('stall');
  }

  #armWatchdog(): void {
    this.#clearTimer('watchdog');
    this.#watchdog = this.#timers.setTimeout(() => this.#stalled(), this.#stallTimeoutMs);
  }

  #clearTimer(which: 'watchdog' | 'restart'): void {
    if (which === 'watchdog' && this.#watchdog !== undefined) {
      this.#timers.clearTimeout(this.#watchdog);
      this.#watchdog = undefined;
    }
    if (which === 'restart' && this.#restartTimer !== undefined) {
      this.#timers.clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
    }
  }

  /** A fresh list: the complete truth at its resourceVersion. */
  #replace(items: T[]): void {
    this.#armWatchdog();
    const listed = new Set(items.map(objectKey));
    for (const [key, old] of this.#objects) {
      if (!listed.has(key)) {
        this.#objects.delete(key);
        this.#emit(this.#deleteHandlers, old);
      }
    }
    for (const obj of items) this.#upsert(obj);
    this.#backoff.forget(RESTART_BACKOFF_KEY);
    if (!this.#synced) {
      this.#synced = true;
      this.#logger.info({ objects: this.#objects.size }, 'informer synced');
      this.#markSynced();
    }
  }

  #upsert(obj: T): void {
    this.#armWatchdog();
    this.#backoff.forget(RESTART_BACKOFF_KEY);
    const key = objectKey(obj);
    const known = this.#objects.get(key);
    const version = obj.metadata?.resourceVersion;
    if (known && version !== undefined && known.metadata?.resourceVersion === version) return;
    this.#objects.set(key, obj);
    this.#emit(this.#changeHandlers, obj);
  }

  #remove(obj: T): void {
    this.#armWatchdog();
    this.#backoff.forget(RESTART_BACKOFF_KEY);
    const key = objectKey(obj);
    if (this.#objects.delete(key)) this.#emit(this.#deleteHandlers, obj);
  }

  #emit(handlers: ((obj: T) => void)[], obj: T): void {
    for (const handler of handlers) {
      try {
        handler(obj);
      } catch (err) {
        this.#logger.error({ err, object: objectKey(obj) }, 'informer event handler failed');
      }
    }
  }
}
