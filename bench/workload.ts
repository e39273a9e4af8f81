// What the benchmark puts into the cluster and how it watches the result: namespaces, one ServiceAccount per
// WorkloadIdentity, WorkloadIdentities created at a bounded concurrency, and a watch that records for every
// WorkloadIdentity when it became Ready (by the bench's clock and by the condition's lastTransitionTime), every
// failing condition it ever showed, and when it disappeared.
import { CoreV1Api, CustomObjectsApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import type { WorkloadIdentity } from '../src/api/types.ts';

const GROUP = { group: 'keyless.dev', version: 'v1alpha1' };
const PLURAL = 'workloadidentities';

export interface Tracked {
  /** metadata.creationTimestamp, ms since the epoch (second resolution). */
  createdMs: number;
  /** Bench clock (Date.now()) when the watch first saw Ready=True. */
  readyAtMs?: number;
  /** Ready's lastTransitionTime when first seen True, ms since the epoch (second resolution). */
  readyTransitionMs?: number;
  /** reason → message of every condition seen with status False. */
  failures: Map<string, string>;
  /** Some condition message mentioned throttling. */
  throttlingSurfaced: boolean;
  deletedAtMs?: number;
}

const key = (wi: WorkloadIdentity) => `${wi.metadata.namespace ?? ''}/${wi.metadata.name}`;

/** Runs `fn` over `items` with at most `concurrency` in flight. */
export async function forEachLimit<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** Retries an API call a few times: a loaded control plane answers 429 or resets connections now and then. */
async function retried<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 409) throw err;
      if (attempt >= 8) {
        const cause = (err as { cause?: unknown }).cause;
        throw new Error(`gave up after ${attempt} attempts: ${String(err)}${cause instanceof Error ? ` (${cause.message})` : ''}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

export class Workload {
  readonly #kc: KubeConfig;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly tracked = new Map<string, Tracked>();
  #abort: AbortController | undefined;
  #running = false;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#custom = kc.makeApiClient(CustomObjectsApi);
  }

  async namespace(name: string): Promise<void> {
    await retried(() => this.#core.createNamespace({ body: { metadata: { name } } })).catch((err: unknown) => {
      if ((err as { code?: unknown }).code !== 409) throw err;
    });
  }

  async serviceAccounts(namespace: string, names: string[], concurrency: number): Promise<void> {
    await forEachLimit(names, concurrency, (name) =>
      retried(() => this.#core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } })).then(() => undefined),
    );
  }

  async workloadIdentities(namespace: string, items: { name: string; spec: Record<string, unknown> }[], concurrency: number): Promise<void> {
    await forEachLimit(items, concurrency, ({ name, spec }) =>
      retried(() =>
        this.#custom.createNamespacedCustomObject({
          ...GROUP,
          plural: PLURAL,
          namespace,
          body: { apiVersion: 'keyless.dev/v1alpha1', kind: 'WorkloadIdentity', metadata: { name, namespace }, spec },
        }),
      ).then(() => undefined),
    );
  }

  /**
   * JSON sizes of one WorkloadIdentity and its ServiceAccount as the operator caches them, and how much of that is
   * managedFields and status: what each identity costs in the operator's informer caches.
   */
  async objectSizes(namespace: string, wi: string, sa: string): Promise<Record<string, number>> {
    const identity = (await this.#custom.getNamespacedCustomObject({ ...GROUP, plural: PLURAL, namespace, name: wi })) as WorkloadIdentity;
    const account = await this.#core.readNamespacedServiceAccount({ namespace, name: sa });
    const bytes = (v: unknown) => JSON.stringify(v ?? null).length;
    return {
      workloadIdentityBytes: bytes(identity),
      workloadIdentityManagedFieldsBytes: bytes(identity.metadata.managedFields),
      workloadIdentityStatusBytes: bytes(identity.status),
      serviceAccountBytes: bytes(account),
      serviceAccountManagedFieldsBytes: bytes(account.metadata?.managedFields),
    };
  }

  /** Deletes every WorkloadIdentity in `namespace` with one deletecollection call; finalizers keep them until revoked. */
  async deleteAll(namespace: string): Promise<void> {
    await retried(() => this.#custom.deleteCollectionNamespacedCustomObject({ ...GROUP, plural: PLURAL, namespace }));
  }

  /** The tracked WorkloadIdentities in `namespaces` that still exist. */
  live(namespaces: string[]): Tracked[] {
    return [...this.tracked.entries()].filter(([k, t]) => namespaces.includes(k.slice(0, k.indexOf('/'))) && t.deletedAtMs === undefined).map(([, t]) => t);
  }

  /** How many WorkloadIdentities exist in the whole cluster. */
  liveCount(): number {
    return [...this.tracked.values()].filter((t) => t.deletedAtMs === undefined).length;
  }

  /** Every WorkloadIdentity in `namespaces` the watch has seen, deleted ones included. */
  in(namespaces: string[]): Tracked[] {
    return [...this.tracked.entries()].filter(([k]) => namespaces.includes(k.slice(0, k.indexOf('/')))).map(([, t]) => t);
  }

  /** Lists and watches every WorkloadIdentity until stop(); a dropped watch lists again and resumes. */
  async start(): Promise<void> {
    this.#running = true;
    await this.#listAndWatch();
  }

  stop(): void {
    this.#running = false;
    this.#abort?.abort();
  }

  async #listAndWatch(): Promise<void> {
    const list = (await retried(() => this.#custom.listClusterCustomObject({ ...GROUP, plural: PLURAL }))) as { items: WorkloadIdentity[]; metadata: { resourceVersion: string } };
    const present = new Set(list.items.map(key));
    for (const [k, t] of this.tracked) if (!present.has(k) && t.deletedAtMs === undefined) t.deletedAtMs = Date.now();
    for (const wi of list.items) this.#observe('ADDED', wi);
    const restart = () => {
      if (!this.#running) return;
      setTimeout(() => {
        this.#listAndWatch().catch(restart);
      }, 500);
    };
    this.#abort = await new Watch(this.#kc).watch(
      `/apis/keyless.dev/v1alpha1/${PLURAL}`,
      { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true },
      (phase: string, obj: WorkloadIdentity) => this.#observe(phase, obj),
      restart,
    );
  }

  #observe(phase: string, wi: WorkloadIdentity): void {
    if (phase === 'BOOKMARK' || phase === 'ERROR' || !wi.metadata?.name) return;
    const k = key(wi);
    let t = this.tracked.get(k);
    if (!t) {
      t = { createdMs: new Date(wi.metadata.creationTimestamp ?? 0).getTime(), failures: new Map(), throttlingSurfaced: false };
      this.tracked.set(k, t);
    }
    if (phase === 'DELETED') {
      t.deletedAtMs ??= Date.now();
      return;
    }
    for (const c of wi.status?.conditions ?? []) {
      if (c.status === 'False') t.failures.set(c.reason, c.message);
      // AWS Throttling "Rate exceeded", Google RESOURCE_EXHAUSTED "Quota exceeded for quota metric", ARM TooManyRequests.
      if (/throttl|rate exceeded|quota exceeded for quota metric|resource_exhausted|too ?many ?requests/i.test(c.message)) t.throttlingSurfaced = true;
      if (c.type === 'Ready' && c.status === 'True' && t.readyAtMs === undefined) {
        t.readyAtMs = Date.now();
        t.readyTransitionMs = Date.parse(c.lastTransitionTime);
      }
    }
  }
}

/** Polls `check` every `everyMs` until it returns true; false when `timeoutMs` passed first. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
