// The API server's view of the run, recorded by a watch of our own (not the operator's logs): the latest version of
// every WorkloadIdentity, every record (status.provisioned) each ever carried, and the moment each went away —
// which is the moment its last finalizer was removed. At that moment `onReleased` asks the clouds what of it is
// still there.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { GROUP, VERSION, WORKLOAD_IDENTITY_PLURAL } from '../src/api/constants.ts';
import type { WorkloadIdentity } from '../src/api/types.ts';

const keyOf = (wi: WorkloadIdentity) => `${wi.metadata.namespace ?? ''}/${wi.metadata.name}`;

export class Observer {
  readonly #kc: KubeConfig;
  readonly #custom: CustomObjectsApi;
  readonly latest = new Map<string, WorkloadIdentity>();
  /** Every distinct version of what an identity recorded, with the status fields that locate its objects. */
  readonly history = new Map<string, WorkloadIdentity[]>();
  /** Identities that went away while the watch was down, noticed at the relist after it. */
  missedReleases = 0;
  relists = 0;
  #abort: AbortController | undefined;
  #running = false;
  readonly #onReleased: (key: string, versions: WorkloadIdentity[]) => void;

  constructor(kc: KubeConfig, onReleased: (key: string, versions: WorkloadIdentity[]) => void) {
    this.#kc = kc;
    this.#custom = kc.makeApiClient(CustomObjectsApi);
    this.#onReleased = onReleased;
  }

  async start(): Promise<void> {
    this.#running = true;
    // A fresh API server answers 429 "storage is (re)initializing" for a new CRD's first requests.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#listAndWatch();
        return;
      } catch (err) {
        if (attempt >= 30) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  stop(): void {
    this.#running = false;
    this.#abort?.abort();
  }

  /** Ready=True for the current generation. */
  static ready(wi: WorkloadIdentity | undefined): boolean {
    if (!wi) return false;
    const ready = wi.status?.conditions?.find((c) => c.type === 'Ready');
    return ready?.status === 'True' && wi.status?.observedGeneration === wi.metadata.generation;
  }

  /** Ready=False with `reason`, for the current generation: an expected refusal. */
  static refused(wi: WorkloadIdentity | undefined, reason: string): boolean {
    if (!wi) return false;
    const ready = wi.status?.conditions?.find((c) => c.type === 'Ready');
    return ready?.status === 'False' && ready.reason === reason && wi.status?.observedGeneration === wi.metadata.generation;
  }

  async #listAndWatch(): Promise<void> {
    const list = (await this.#custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: WORKLOAD_IDENTITY_PLURAL })) as { items: WorkloadIdentity[]; metadata: { resourceVersion: string } };
    this.relists++;
    const present = new Set(list.items.map(keyOf));
    for (const k of [...this.latest.keys()]) {
      if (present.has(k)) continue;
      this.missedReleases++;
      this.#release(k);
    }
    for (const wi of list.items) this.#seen(wi);
    const restart = () => {
      if (!this.#running) return;
      setTimeout(() => void this.#listAndWatch().catch(restart), 500);
    };
    this.#abort = await new Watch(this.#kc).watch(
      `/apis/${GROUP}/${VERSION}/${WORKLOAD_IDENTITY_PLURAL}`,
      { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true },
      (phase: string, wi: WorkloadIdentity) => {
        if (phase === 'BOOKMARK' || phase === 'ERROR' || !wi.metadata?.name) return;
        this.#seen(wi);
        if (phase === 'DELETED') this.#release(keyOf(wi));
      },
      restart,
    );
  }

  #seen(wi: WorkloadIdentity): void {
    const k = keyOf(wi);
    const previous = this.latest.get(k);
    // A new object under an old name (deleted and created again) starts a new history.
    if (previous && previous.metadata.uid !== wi.metadata.uid) this.#release(k);
    this.latest.set(k, wi);
    if (!wi.status?.provisioned) return;
    const versions = this.history.get(k) ?? [];
    const locate = (v: WorkloadIdentity) => JSON.stringify([v.status?.provisioned, v.status?.aws?.associationId, v.status?.azure?.principalId]);
    if (!versions.some((v) => locate(v) === locate(wi))) versions.push(wi);
    this.history.set(k, versions);
  }

  #release(k: string): void {
    const versions = this.history.get(k) ?? [];
    this.latest.delete(k);
    this.history.delete(k);
    this.#onReleased(k, versions);
  }
}
