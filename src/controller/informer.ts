// A list+watch cache over one resource, as client-go's reflector keeps it: a paged list, then a watch from its
// resourceVersion with bookmarks, resumed from the last version seen when the API server ends it or the connection
// drops, and a fresh list only when that version has expired (410 Gone). What an operator must not do is go quiet: a failed list or watch
// is retried with backoff, and a watch can stall without an error (half-open TCP connection, a proxy that stops
// forwarding), so a watchdog restarts it — a fresh list, then a fresh watch — when no activity arrives for
// `stallTimeoutMs`.
//
// Objects pass through `transform` before they are cached: an informer over 10,000 objects holds only the fields
// the reconcilers read, not every managedFields entry and status the API server returns. The cache survives
// restarts (readers never see it empty again after the first sync), and after each relist objects that vanished
// while we were not watching are reported as deleted.
import type { KubernetesObject } from '@kubernetes/client-node';
import { KubeApiError, type KubeApi, type WatchEvent } from '../kube/api.ts';
import type { Logger } from '../observability/logger.ts';
import type { InformerRestartReason, Metrics } from '../observability/metrics.ts';
import { realTimers, type Timers } from './timers.ts';
import { ExponentialBackoff } from './work-queue.ts';

export interface Cache<T> {
  get(key: string): T | undefined;
  list(): T[];
  /**
   * The objects whose `index` value (an indexer given at construction) is `value`: what client-go's Indexer does.
   * A reconcile asking for an object's siblings must not walk all 10,000 objects (and copy them into an array).
   */
  byIndex(index: string, value: string): T[];
  readonly synced: boolean;
}

/** Named functions from an object to the index values it is found under. */
export type Indexers<T> = Record<string, (obj: T) => string[]>;

/** Cache.byIndex by filtering a list: for small or fake caches. */
export function filterByIndex<T>(objects: T[], indexers: Indexers<T>, index: string, value: string): T[] {
  const indexer = indexers[index];
  if (!indexer) throw new Error(`no index named ${index}`);
  return objects.filter((o) => indexer(o).includes(value));
}

/** `namespace/name`, or `name` for a cluster-scoped object: the work queue key. */
export function objectKey(obj: KubernetesObject): string {
  const name = obj.metadata?.name ?? '';
  const namespace = obj.metadata?.namespace;
  return namespace ? `${namespace}/${name}` : name;
}

const DEFAULT_STALL_TIMEOUT_MS = 5 * 60_000;
const RESTART_BACKOFF_KEY = 'restart';
/** Objects per list page: a relist of 10,000 objects never holds more than one page of raw JSON at once. */
const LIST_PAGE_SIZE = 500;

interface ObjectList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** The watch's expiry (410 Gone / "too old resource version"): relist, as client-go's reflector does. */
class WatchExpired extends Error {}

/** Consecutive dropped watches resumed from their version before the informer relists; their first backoff, and the longest. */
const MAX_WATCH_RESUMES = 8;
const WATCH_RESUME_BASE_MS = 250;
const WATCH_RESUME_MAX_MS = 8_000;

/**
 * A watch that ended with an error the same resourceVersion can be resumed after: the connection failed (reset,
 * refused, timed out), the API server asked to come back later (429, 5xx), or it refused us (401, 403) — which a
 * kube-apiserver that has just restarted does for a few seconds while its authorizer's caches fill (the chaos run
 * sees it after every restart). A refusal that lasts ends the resumes after MAX_WATCH_RESUMES and is reported as an
 * informer failure. 410 is not resumable: the version is gone.
 */
function resumable(err: unknown): boolean {
  if (err instanceof WatchExpired) return false;
  if (err instanceof KubeApiError) return err.code === 401 || err.code === 403 || err.code === 429 || err.code >= 500;
  return err instanceof Error;
}

export class ResourceWatch<T extends KubernetesObject> implements Cache<T> {
  readonly #name: string;
  readonly #api: KubeApi;
  readonly #path: string;
  readonly #labelSelector: string | undefined;
  readonly #transform: (obj: T) => T;
  readonly #stallTimeoutMs: number;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #timers: Timers;
  readonly #backoff = new ExponentialBackoff({ baseMs: 1000, maxMs: 30_000 });

  readonly #objects = new Map<string, T>();
  readonly #indexers: Indexers<T>;
  /** index name → index value → keys of the objects found under it. */
  readonly #indices = new Map<string, Map<string, Set<string>>>();
  readonly #changeHandlers: ((obj: T) => void)[] = [];
  readonly #deleteHandlers: ((obj: T) => void)[] = [];

  /** Aborts the current list+watch; a new one gets a new controller, so late events of an old one are ignored. */
  #abort: AbortController | undefined;
  #running = false;
  #synced = false;
  readonly #syncedPromise: Promise<void>;
  #markSynced: () => void = () => {};
  #watchdog: unknown = undefined;
  #restartTimer: unknown = undefined;

  /**
   * `name` labels logs and metrics; `path` is the collection URL listed and watched (with `labelSelector`).
   * `start()` resolves only once a list has succeeded, so a missing RBAC grant shows as a never-ready operator
   * with warnings in the log.
   */
  constructor(opts: {
    name: string;
    api: KubeApi;
    path: string;
    labelSelector?: string;
    /** Applied to every object before it is cached or handed to a handler; must not mutate its argument's metadata identity. */
    transform?: (obj: T) => T;
    /** Secondary indices kept up to date with the cache, for byIndex. */
    indexers?: Indexers<T>;
    stallTimeoutMs?: number;
    logger: Logger;
    metrics: Metrics;
    timers?: Timers;
  }) {
    this.#name = opts.name;
    this.#api = opts.api;
    this.#path = opts.path;
    this.#labelSelector = opts.labelSelector;
    this.#transform = opts.transform ?? ((obj) => obj);
    this.#indexers = opts.indexers ?? {};
    for (const name of Object.keys(this.#indexers)) this.#indices.set(name, new Map());
    this.#stallTimeoutMs = opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    this.#logger = opts.logger.child({ informer: opts.name });
    this.#metrics = opts.metrics;
    this.#timers = opts.timers ?? realTimers;
    this.#syncedPromise = new Promise((resolve) => (this.#markSynced = resolve));
    for (const reason of ['error', 'stall', 'expired'] as const) this.#metrics.informerRestarts.inc({ resource: opts.name, reason }, 0);
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

  byIndex(index: string, value: string): T[] {
    const values = this.#indices.get(index);
    if (!values) throw new Error(`informer ${this.#name} has no index named ${index}`);
    const out: T[] = [];
    for (const key of values.get(value) ?? []) {
      const obj = this.#objects.get(key);
      if (obj) out.push(obj);
    }
    return out;
  }

  /** Files `key` under `obj`'s index values, or takes it out of them when `obj` is undefined. */
  #index(key: string, old: T | undefined, obj: T | undefined): void {
    for (const [name, indexer] of Object.entries(this.#indexers)) {
      const values = this.#indices.get(name);
      if (!values) continue;
      for (const v of old ? indexer(old) : []) {
        const keys = values.get(v);
        keys?.delete(key);
        if (keys?.size === 0) values.delete(v);
      }
      for (const v of obj ? indexer(obj) : []) {
        let keys = values.get(v);
        if (!keys) values.set(v, (keys = new Set()));
        keys.add(key);
      }
    }
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

  stop(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    this.#running = false;
    this.#clearTimer('watchdog');
    this.#clearTimer('restart');
    this.#abort?.abort();
    this.#abort = undefined;
    this.#markSynced();
    this.#logger.info('informer stopped');
    return Promise.resolve();
  }

  #launch(): void {
    const abort = new AbortController();
    this.#abort = abort;
    this.#armWatchdog();
    this.#listAndWatch(abort.signal).catch((err: unknown) => {
      if (abort.signal.aborted) return;
      // An expired resourceVersion comes as an ERROR event in the stream, or as the watch request's own 410.
      if (err instanceof WatchExpired || (err instanceof KubeApiError && err.code === 410)) {
        this.#logger.info('watch expired (410 Gone); relisting');
        this.#restart('expired');
      } else {
        this.#failed(err);
      }
    });
  }

  /**
   * One list, then watches resumed from the last resourceVersion seen for as long as they are not expired. A watch
   * dropped by the network or by an API server going away (reset, refused, 401/403 while it warms up, 429, 5xx) is
   * resumed from that version too, after a short backoff, as client-go's reflector does: relisting 10,000 objects
   * because an API server restarted is what the resourceVersion is there to avoid. Only 410 Gone (the version was
   * compacted away), another refusal, or too many drops in a row fall back to a fresh list.
   */
  async #listAndWatch(signal: AbortSignal): Promise<void> {
    let version = await this.#listAll(signal);
    let drops = 0;
    while (!signal.aborted) {
      // Ended by the API server before the watchdog would fire, so a quiet collection never looks stalled; the
      // spread keeps many informers from reconnecting at the same moment.
      const timeoutSeconds = Math.floor((this.#stallTimeoutMs / 1000) * (0.5 + Math.random() * 0.3));
      try {
        await this.#api.watch<T>(
          this.#path,
          { resourceVersion: version, allowWatchBookmarks: true, labelSelector: this.#labelSelector, ...(timeoutSeconds >= 1 ? { timeoutSeconds } : {}) },
          (event) => {
            if (signal.aborted) return;
            version = this.#apply(event) ?? version;
            drops = 0;
          },
          signal,
        );
      } catch (err) {
        if (signal.aborted || !resumable(err) || ++drops > MAX_WATCH_RESUMES) throw err;
        const delayMs = Math.min(WATCH_RESUME_BASE_MS * 2 ** (drops - 1), WATCH_RESUME_MAX_MS);
        if (drops === 1) this.#logger.info({ err, resourceVersion: version }, 'watch dropped; resuming from the last resourceVersion');
        await new Promise<void>((resolve) => {
          const timer = this.#timers.setTimeout(resolve, delayMs);
          signal.addEventListener('abort', () => {
            this.#timers.clearTimeout(timer);
            resolve();
          });
        });
        continue;
      }
      // A (re)connect is activity.
      if (!signal.aborted) this.#armWatchdog();
    }
  }

  async #listAll(signal: AbortSignal): Promise<string> {
    const items: T[] = [];
    let page: ObjectList<T>;
    let cont: string | undefined;
    do {
      page = await this.#api.request<ObjectList<T>>('GET', this.#path, { query: { limit: LIST_PAGE_SIZE, continue: cont, labelSelector: this.#labelSelector }, signal });
      for (const item of page.items) items.push(this.#transform(item));
      cont = page.metadata?.continue || undefined;
    } while (cont);
    if (!signal.aborted) this.#replace(items);
    return page.metadata?.resourceVersion ?? '';
  }

  /** Applies one watch event to the cache; returns the resourceVersion it carries. */
  #apply(event: WatchEvent<T>): string | undefined {
    if (event.type === 'ERROR') {
      const status = event.object as { code?: number; message?: string };
      if (status.code === 410) throw new WatchExpired(status.message);
      throw new KubeApiError('WATCH', this.#path, status.code ?? 500, status);
    }
    this.#armWatchdog();
    const version = event.object.metadata?.resourceVersion;
    if (event.type === 'BOOKMARK') return version;
    const obj = this.#transform(event.object);
    if (event.type === 'DELETED') this.#remove(obj);
    else this.#upsert(obj);
    return version;
  }

  #restart(reason: InformerRestartReason): void {
    this.#abort?.abort();
    this.#metrics.informerRestarts.inc({ resource: this.#name, reason });
    this.#launch();
  }

  #failed(err: unknown): void {
    this.#clearTimer('watchdog');
    this.#abort?.abort();
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
    this.#api.dropIdleConnections();
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
        this.#index(key, old, undefined);
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
    this.#index(key, known, obj);
    this.#emit(this.#changeHandlers, obj);
  }

  #remove(obj: T): void {
    this.#armWatchdog();
    this.#backoff.forget(RESTART_BACKOFF_KEY);
    const key = objectKey(obj);
    const known = this.#objects.get(key);
    if (!known) return;
    this.#objects.delete(key);
    this.#index(key, known, undefined);
    this.#emit(this.#deleteHandlers, obj);
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
