// An in-memory Kubernetes for reconciler unit and property tests: the KubePort the reconcilers write through and the
// caches they read, over one store. It keeps the API rules the reconcilers depend on — resourceVersion preconditions
// (409), writes to a deleted object (404), finalizers holding a deleted object, and server-side apply's field
// ownership of ServiceAccount annotations (shared ownership of equal values, conflicts on different ones unless
// forced, an Update taking a changed field over). Integration tests use the real control plane instead.
import type { V1ConfigMap, V1ManagedFieldsEntry, V1Namespace, V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import type { CloudAccount, CloudAccountStatus, WorkloadIdentity, WorkloadIdentityStatus } from '../../api/types.ts';
import { filterByIndex, type Cache, type Indexers } from '../../controller/informer.ts';
import { IDENTITY_INDEXERS } from '../../reconciler/indexes.ts';
import { FieldConflictError, type EventTarget, type KubePort } from '../client.ts';
import type { WorkloadRef, Workloads } from '../workloads.ts';
import { fakeToken } from '../../providers/fake/token.ts';

/** What client-node throws for a failed call: enough for isConflict and isNotFound. */
export class FakeApiError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

interface Annotation {
  value: string;
  /** Field managers owning the key, with how they wrote it. */
  owners: Map<string, 'Apply' | 'Update'>;
}

interface StoredServiceAccount {
  namespace: string;
  name: string;
  uid: string;
  annotations: Map<string, Annotation>;
}

export interface RecordedEvent {
  namespace: string;
  name: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

class MapCache<T> implements Cache<T> {
  readonly #read: () => Map<string, T>;
  readonly #onRead: (key: string) => void;
  readonly #indexers: Indexers<T>;
  /** Objects the informer still shows as they were (a watch that lags behind the API server). */
  readonly lagging = new Map<string, T>();
  /** Objects the informer does not show yet (their creation is still on its way). */
  readonly hidden = new Set<string>();
  constructor(read: () => Map<string, T>, onRead: (key: string) => void = () => undefined, indexers: Indexers<T> = {}) {
    this.#read = read;
    this.#onRead = onRead;
    this.#indexers = indexers;
  }
  get(key: string): T | undefined {
    if (this.hidden.has(key)) return undefined;
    const lagging = this.lagging.get(key);
    if (lagging === undefined) this.#onRead(key);
    const value = lagging ?? this.#read().get(key);
    return value === undefined ? undefined : structuredClone(value);
  }
  list(): T[] {
    const current = new Map(this.#read());
    for (const k of current.keys()) if (!this.lagging.has(k)) this.#onRead(k);
    for (const k of this.hidden) current.delete(k);
    for (const [k, v] of this.lagging) current.set(k, v);
    return [...current.values()].map((v) => structuredClone(v));
  }
  byIndex(index: string, value: string): T[] {
    return filterByIndex(this.list(), this.#indexers, index, value);
  }
  get synced(): boolean {
    return true;
  }
}

export class FakeCluster implements KubePort {
  readonly #identities = new Map<string, WorkloadIdentity>();
  readonly #accounts = new Map<string, CloudAccount>();
  readonly #namespaces = new Map<string, V1Namespace>();
  readonly #serviceAccounts = new Map<string, StoredServiceAccount>();
  readonly #configMaps = new Map<string, V1ConfigMap>();
  readonly events: RecordedEvent[] = [];
  /** The issuer of the ServiceAccount tokens this cluster mints. */
  issuer = 'https://issuer.example.com';
  /** Set to refuse TokenRequests as the API server does without the RBAC for serviceaccounts/token. */
  tokenRequestsForbidden = false;
  /** Every version each WorkloadIdentity went through, oldest first, `null` once deleted: what an informer replays. */
  readonly versions = new Map<string, (WorkloadIdentity | null)[]>();
  /** How far the informer has read each object's versions: it lags, but never goes back. */
  readonly #position = new Map<string, number>();
  /** Every write, as `verb:resource/key`. */
  readonly writes: string[] = [];
  #version = 0;
  #uid = 0;
  #clock = 0;

  readonly #identityCache = new MapCache(
    () => this.#identities,
    (key) => this.#position.set(key, (this.versions.get(key)?.length ?? 1) - 1),
    IDENTITY_INDEXERS,
  );
  readonly identities: Cache<WorkloadIdentity> = this.#identityCache;
  readonly accounts: Cache<CloudAccount> = new MapCache(() => this.#accounts);
  readonly namespaces: Cache<V1Namespace> = new MapCache(() => this.#namespaces);
  readonly serviceAccounts: Cache<V1ServiceAccount> = new MapCache(() => new Map([...this.#serviceAccounts].map(([k, sa]) => [k, this.#render(sa)])));
  /** What the operator's informer sees: only ConfigMaps labelled app.kubernetes.io/managed-by=keyless. */
  readonly configMaps: Cache<V1ConfigMap> = new MapCache(() => new Map([...this.#configMaps].filter(([, cm]) => cm.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'keyless')));

  #nextVersion(): string {
    this.#version += 1;
    return String(this.#version);
  }

  /** Creation timestamps one second apart, in the order objects are created (the conflict rule reads them). */
  #timestamp(): string {
    this.#clock += 1;
    return new Date(Date.UTC(2026, 0, 1, 0, 0, this.#clock)).toISOString();
  }

  // --- what users and platform teams do -------------------------------------------------------------------------

  /** kubectl apply of a WorkloadIdentity: creates it, or replaces its spec (and annotations) bumping the generation. */
  applyIdentity(wi: Pick<WorkloadIdentity, 'metadata' | 'spec'>): WorkloadIdentity {
    const key = `${wi.metadata.namespace ?? ''}/${wi.metadata.name}`;
    const existing = this.#identities.get(key);
    if (existing?.metadata.deletionTimestamp) throw new FakeApiError(409, `${key} is being deleted`);
    const next: WorkloadIdentity = existing
      ? {
          ...existing,
          metadata: { ...existing.metadata, annotations: wi.metadata.annotations ?? {}, generation: (existing.metadata.generation ?? 1) + (JSON.stringify(existing.spec) === JSON.stringify(wi.spec) ? 0 : 1), resourceVersion: this.#nextVersion() },
          spec: structuredClone(wi.spec),
        }
      : {
          apiVersion: 'keyless.dev/v1alpha1',
          kind: 'WorkloadIdentity',
          metadata: { annotations: {}, finalizers: [], ...structuredClone(wi.metadata), uid: `uid-${++this.#uid}`, generation: 1, resourceVersion: this.#nextVersion(), creationTimestamp: this.#timestamp() as unknown as Date },
          spec: structuredClone(wi.spec),
        };
    this.#identities.set(key, next);
    this.#recordVersion(key);
    return structuredClone(next);
  }

  /** kubectl delete: a finalizer holds the object with a deletionTimestamp; without one it is gone at once. */
  deleteIdentity(key: string): void {
    const wi = this.#identities.get(key);
    if (!wi) return;
    if ((wi.metadata.finalizers ?? []).length === 0) {
      this.#identities.delete(key);
      this.#recordVersion(key);
      return;
    }
    wi.metadata.deletionTimestamp ??= this.#timestamp() as unknown as Date;
    wi.metadata.resourceVersion = this.#nextVersion();
    this.#recordVersion(key);
  }

  #recordVersion(key: string): void {
    const wi = this.#identities.get(key);
    this.versions.set(key, [...(this.versions.get(key) ?? []), wi ? structuredClone(wi) : null]);
  }

  /** The informer keeps showing the object as it is now, whatever happens to it, until `catchUp`. */
  lag(key: string): void {
    const wi = this.#identities.get(key);
    if (wi) this.#identityCache.lagging.set(key, structuredClone(wi));
  }

  /**
   * The informer falls up to `back` versions behind on this object, but never behind what it already showed (a watch
   * lags, it does not go back in time); until `catchUp`. Returns whether it shows an older version than the latest.
   */
  lagBy(key: string, back: number): boolean {
    const versions = this.versions.get(key) ?? [];
    const latest = versions.length - 1;
    const index = Math.max(this.#position.get(key) ?? 0, latest - back);
    const view = versions[index];
    this.#position.set(key, index);
    if (index === latest || view === undefined) return false;
    if (view === null) this.#identityCache.hidden.add(key);
    else this.#identityCache.lagging.set(key, structuredClone(view));
    return true;
  }

  /** A restarted operator lists everything afresh: its informer starts at the latest versions. */
  relist(): void {
    for (const [key, versions] of this.versions) this.#position.set(key, versions.length - 1);
  }

  catchUp(): void {
    this.#identityCache.lagging.clear();
    this.#identityCache.hidden.clear();
  }

  identity(key: string): WorkloadIdentity | undefined {
    const wi = this.#identities.get(key);
    return wi && structuredClone(wi);
  }

  putAccount(account: CloudAccount): void {
    const existing = this.#accounts.get(account.metadata.name);
    const changed = JSON.stringify(existing?.spec) !== JSON.stringify(account.spec);
    this.#accounts.set(account.metadata.name, {
      ...structuredClone(account),
      metadata: { ...account.metadata, generation: (existing?.metadata.generation ?? 0) + (changed || !existing ? 1 : 0), resourceVersion: this.#nextVersion() },
    });
  }

  removeAccount(name: string): void {
    this.#accounts.delete(name);
  }

  /** A namespace with these labels; `terminating`: its deletion has begun (the namespace controller empties it). */
  putNamespace(name: string, labels: Record<string, string> = {}, terminating = false): void {
    this.#namespaces.set(name, { metadata: { name, labels, ...(terminating ? { deletionTimestamp: new Date(Date.UTC(2026, 0, 1)) } : {}) } });
  }

  createServiceAccount(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    if (!this.#serviceAccounts.has(key)) this.#serviceAccounts.set(key, { namespace, name, uid: `sa-${++this.#uid}`, annotations: new Map() });
  }

  deleteServiceAccount(namespace: string, name: string): void {
    this.#serviceAccounts.delete(`${namespace}/${name}`);
  }

  /** `kubectl annotate` (an Update by `manager`): the field changes hands when its value changes. */
  annotate(namespace: string, name: string, key: string, value: string | undefined, manager = 'kubectl-annotate'): void {
    const sa = this.#serviceAccounts.get(`${namespace}/${name}`);
    if (!sa) throw new FakeApiError(404, `serviceaccount ${namespace}/${name} not found`);
    if (value === undefined) {
      sa.annotations.delete(key);
      return;
    }
    const current = sa.annotations.get(key);
    if (current?.value === value) current.owners.set(manager, 'Update');
    else sa.annotations.set(key, { value, owners: new Map([[manager, 'Update']]) });
  }

  /** `kubectl apply` of a ConfigMap by someone else (or a replacement of one, keeping its uid). */
  putConfigMap(configMap: V1ConfigMap): void {
    const key = `${configMap.metadata?.namespace ?? ''}/${configMap.metadata?.name ?? ''}`;
    const existing = this.#configMaps.get(key);
    this.#configMaps.set(key, { ...structuredClone(configMap), metadata: { ...structuredClone(configMap.metadata), uid: existing?.metadata?.uid ?? `cm-${++this.#uid}`, resourceVersion: this.#nextVersion() } });
  }

  /** `kubectl delete configmap`. */
  removeConfigMap(namespace: string, name: string): void {
    this.#configMaps.delete(`${namespace}/${name}`);
  }

  configMap(namespace: string, name: string): V1ConfigMap | undefined {
    const cm = this.#configMaps.get(`${namespace}/${name}`);
    return cm && structuredClone(cm);
  }

  serviceAccountAnnotations(namespace: string, name: string): Record<string, string> | undefined {
    const sa = this.#serviceAccounts.get(`${namespace}/${name}`);
    return sa && Object.fromEntries([...sa.annotations].map(([k, a]) => [k, a.value]));
  }

  #render(sa: StoredServiceAccount): V1ServiceAccount {
    const byManager = new Map<string, { operation: 'Apply' | 'Update'; keys: string[] }>();
    for (const [key, a] of sa.annotations) {
      for (const [manager, operation] of a.owners) {
        const entry = byManager.get(manager) ?? { operation, keys: [] };
        entry.keys.push(key);
        byManager.set(manager, entry);
      }
    }
    const managedFields: V1ManagedFieldsEntry[] = [...byManager].map(([manager, { operation, keys }]) => ({
      manager,
      operation,
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:metadata': { 'f:annotations': Object.fromEntries(keys.map((k) => [`f:${k}`, {}])) } },
    }));
    return {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: sa.name, namespace: sa.namespace, uid: sa.uid, annotations: Object.fromEntries([...sa.annotations].map(([k, a]) => [k, a.value])), managedFields },
    };
  }

  // --- KubePort -------------------------------------------------------------------------------------------------

  async replaceWorkloadIdentityStatus(wi: WorkloadIdentity, status: WorkloadIdentityStatus): Promise<void> {
    const key = `${wi.metadata.namespace ?? ''}/${wi.metadata.name}`;
    const stored = this.#identities.get(key);
    if (!stored) throw new FakeApiError(404, `workloadidentities ${key} not found`);
    this.writes.push(`status:workloadidentities/${key}`);
    stored.status = structuredClone(status);
    stored.metadata.resourceVersion = this.#nextVersion();
    this.#recordVersion(key);
  }

  async setWorkloadIdentityFinalizers(wi: WorkloadIdentity, finalizers: string[]): Promise<WorkloadIdentity> {
    const key = `${wi.metadata.namespace ?? ''}/${wi.metadata.name}`;
    const stored = this.#identities.get(key);
    if (!stored) throw new FakeApiError(404, `workloadidentities ${key} not found`);
    if (wi.metadata.resourceVersion !== undefined && wi.metadata.resourceVersion !== stored.metadata.resourceVersion) {
      throw new FakeApiError(409, `the object has been modified; please apply your changes to the latest version and try again`);
    }
    this.writes.push(`finalizers:workloadidentities/${key}`);
    stored.metadata.finalizers = [...finalizers];
    stored.metadata.resourceVersion = this.#nextVersion();
    if (stored.metadata.deletionTimestamp && finalizers.length === 0) this.#identities.delete(key);
    this.#recordVersion(key);
    return structuredClone(stored);
  }

  async replaceCloudAccountStatus(account: CloudAccount, status: CloudAccountStatus): Promise<void> {
    const stored = this.#accounts.get(account.metadata.name);
    if (!stored) throw new FakeApiError(404, `cloudaccounts ${account.metadata.name} not found`);
    stored.status = structuredClone(status);
  }

  async setCloudAccountFinalizers(account: CloudAccount, finalizers: string[]): Promise<void> {
    const stored = this.#accounts.get(account.metadata.name);
    if (!stored) throw new FakeApiError(404, `cloudaccounts ${account.metadata.name} not found`);
    stored.metadata.finalizers = [...finalizers];
  }

  async applyServiceAccountAnnotations(sa: V1ServiceAccount, annotations: Record<string, string>, fieldManager: string, opts?: { force?: boolean }): Promise<void> {
    const key = `${sa.metadata?.namespace ?? ''}/${sa.metadata?.name ?? ''}`;
    const stored = this.#serviceAccounts.get(key);
    if (!stored || stored.uid !== sa.metadata?.uid) throw new FakeApiError(409, `Precondition failed: UID in precondition: ${sa.metadata?.uid ?? ''}`);
    const conflicts = Object.entries(annotations).flatMap(([k, v]) => {
      const current = stored.annotations.get(k);
      if (!current || current.value === v) return [];
      return [...current.owners.keys()].filter((m) => m !== fieldManager).map((manager) => ({ manager, field: `.metadata.annotations.${k}` }));
    });
    if (conflicts.length && !opts?.force) throw new FieldConflictError(conflicts);
    this.writes.push(`apply:serviceaccounts/${key}`);
    for (const [k, a] of stored.annotations) {
      if (k in annotations || !a.owners.has(fieldManager)) continue;
      a.owners.delete(fieldManager);
      if (a.owners.size === 0) stored.annotations.delete(k);
    }
    for (const [k, v] of Object.entries(annotations)) {
      const current = stored.annotations.get(k);
      if (current && current.value === v) current.owners.set(fieldManager, 'Apply');
      else stored.annotations.set(k, { value: v, owners: new Map([[fieldManager, 'Apply']]) });
    }
  }

  async getConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined> {
    return this.configMap(namespace, name);
  }

  async createConfigMap(configMap: V1ConfigMap): Promise<void> {
    const key = `${configMap.metadata?.namespace ?? ''}/${configMap.metadata?.name ?? ''}`;
    if (this.#configMaps.has(key)) throw new FakeApiError(409, `configmaps "${configMap.metadata?.name ?? ''}" already exists`);
    this.writes.push(`create:configmaps/${key}`);
    this.putConfigMap(configMap);
  }

  async replaceConfigMap(configMap: V1ConfigMap): Promise<void> {
    const key = `${configMap.metadata?.namespace ?? ''}/${configMap.metadata?.name ?? ''}`;
    const stored = this.#configMaps.get(key);
    if (!stored) throw new FakeApiError(404, `configmaps "${configMap.metadata?.name ?? ''}" not found`);
    if (configMap.metadata?.resourceVersion !== stored.metadata?.resourceVersion) throw new FakeApiError(409, 'the object has been modified; please apply your changes to the latest version and try again');
    this.writes.push(`update:configmaps/${key}`);
    this.putConfigMap(configMap);
  }

  async deleteConfigMap(namespace: string, name: string, uid: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const stored = this.#configMaps.get(key);
    if (!stored || stored.metadata?.uid !== uid) return;
    this.writes.push(`delete:configmaps/${key}`);
    this.#configMaps.delete(key);
  }

  async requestServiceAccountToken(namespace: string, name: string, audience: string): Promise<string> {
    if (this.tokenRequestsForbidden) throw new FakeApiError(403, `serviceaccounts "${name}" is forbidden: cannot create resource "serviceaccounts/token"`);
    if (!this.#serviceAccounts.has(`${namespace}/${name}`)) throw new FakeApiError(404, `serviceaccounts "${name}" not found`);
    return fakeToken({ iss: this.issuer, sub: `system:serviceaccount:${namespace}:${name}`, aud: audience });
  }

  async recordEvent(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    this.events.push({ namespace: target.metadata.namespace ?? '', name: target.metadata.name, type, reason, message });
  }
}

/** Pods of ServiceAccounts, for WorkloadsUpToDate; none unless a test adds them. */
export class FakeWorkloads implements Workloads {
  readonly pods: V1Pod[] = [];
  async podsOf(namespace: string, serviceAccount: string): Promise<V1Pod[]> {
    return this.pods.filter((p) => p.metadata?.namespace === namespace && p.spec?.serviceAccountName === serviceAccount);
  }
  async ownerOf(): Promise<WorkloadRef | undefined> {
    return undefined;
  }
  async restartedFor(): Promise<string | undefined> {
    return undefined;
  }
  async restart(): Promise<void> {}
}
