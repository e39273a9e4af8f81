import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { V1ConfigMap, V1ManagedFieldsEntry, V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import { FINALIZER, serviceAccountFieldManager } from '../api/constants.ts';
import type { CloudAccount, WorkloadIdentity } from '../api/types.ts';
import { filterByIndex, type Indexers, type ResourceWatch } from '../controller/informer.ts';
import { IDENTITY_INDEXERS } from './indexes.ts';
import { IDENTITY_COUNT_DELAY_MS, wireTriggers } from './triggers.ts';

/** Just enough of ResourceWatch for wireTriggers: a map, and its change and delete handlers. */
class FakeWatch<T extends { metadata?: { name?: string; namespace?: string } }> {
  readonly objects = new Map<string, T>();
  readonly #changed: ((obj: T) => void)[] = [];
  readonly #deleted: ((obj: T) => void)[] = [];
  onChange(handler: (obj: T) => void): void {
    this.#changed.push(handler);
  }
  onDelete(handler: (obj: T) => void): void {
    this.#deleted.push(handler);
  }
  list(): T[] {
    return [...this.objects.values()];
  }
  get(key: string): T | undefined {
    return this.objects.get(key);
  }
  byIndex(index: string, value: string): T[] {
    return filterByIndex(this.list(), IDENTITY_INDEXERS as unknown as Indexers<T>, index, value);
  }
  set(obj: T): void {
    this.objects.set(`${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`, obj);
    for (const h of this.#changed) h(obj);
  }
  delete(obj: T): void {
    this.objects.delete(`${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`);
    for (const h of this.#deleted) h(obj);
  }
  asWatch(): ResourceWatch<T> {
    return this as unknown as ResourceWatch<T>;
  }
}

const identity = (over: Partial<WorkloadIdentity['metadata']> = {}): WorkloadIdentity => ({
  apiVersion: 'keyless.dev/v1alpha1',
  kind: 'WorkloadIdentity',
  metadata: { name: 'catalog', namespace: 'shop', generation: 1, ...over },
  spec: { serviceAccountName: 'catalog-sa', cloudAccountRef: { name: 'prod' }, aws: {} },
});

const applied = (manager: string, keys: string[]): V1ManagedFieldsEntry => ({
  manager,
  operation: 'Apply',
  fieldsType: 'FieldsV1',
  fieldsV1: { 'f:metadata': { 'f:annotations': Object.fromEntries(keys.map((k) => [`f:${k}`, {}])) } },
});

const serviceAccount = (annotations: Record<string, string>, managedFields: V1ManagedFieldsEntry[] = []): V1ServiceAccount => ({
  metadata: { name: 'catalog-sa', namespace: 'shop', uid: 'sa-uid', annotations, managedFields },
});

const ROLE_ARN = 'eks.amazonaws.com/role-arn';

describe('wireTriggers', () => {
  let identities: FakeWatch<WorkloadIdentity>;
  let serviceAccounts: FakeWatch<V1ServiceAccount>;
  let accounts: FakeWatch<CloudAccount>;
  let configMaps: FakeWatch<V1ConfigMap>;
  let enqueued: string[];
  let recounts: string[];

  beforeEach(() => {
    identities = new FakeWatch<WorkloadIdentity>();
    serviceAccounts = new FakeWatch<V1ServiceAccount>();
    accounts = new FakeWatch<CloudAccount>();
    configMaps = new FakeWatch<V1ConfigMap>();
    enqueued = [];
    recounts = [];
    wireTriggers({
      identities: identities.asWatch(),
      accounts: accounts.asWatch(),
      serviceAccounts: serviceAccounts.asWatch(),
      namespaces: new FakeWatch<V1Namespace>().asWatch(),
      configMaps: configMaps.asWatch(),
      identityController: { enqueue: (key) => enqueued.push(key) },
      accountController: { enqueue: (key) => recounts.push(`now ${key}`), enqueueAfter: (key, ms) => recounts.push(`after ${ms} ${key}`) },
    });
    identities.set(identity());
    serviceAccounts.set(serviceAccount({}));
    enqueued = [];
  });

  it('coalesces the CloudAccount recount after identities come and go, unless the account waits to be deleted', () => {
    recounts = [];
    identities.set(identity({ name: 'second' }));
    identities.delete(identity({ name: 'second' }));
    assert.deepEqual(recounts, [`after ${IDENTITY_COUNT_DELAY_MS} prod`, `after ${IDENTITY_COUNT_DELAY_MS} prod`]);
    recounts = [];
    accounts.objects.set('prod', { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: 'prod', deletionTimestamp: new Date() }, spec: {} });
    identities.delete(identity());
    assert.deepEqual(recounts, ['now prod'], 'the account finalizer waits for this count');
  });

  it('reconciles the accounts that keep an IAM OIDC provider they created, or wait to be deleted, when another account goes', () => {
    const account = (name: string, extra: Partial<CloudAccount> = {}): CloudAccount => ({ apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name }, spec: {}, ...extra });
    accounts.objects.set('/keeper', account('keeper', { status: { managedTrust: { oidcProviderArns: ['arn:aws:iam::123456789012:oidc-provider/x'] } } }));
    accounts.objects.set('/leaving', account('leaving', { metadata: { name: 'leaving', deletionTimestamp: new Date() } }));
    accounts.objects.set('/plain', account('plain'));
    recounts = [];
    accounts.delete(account('team-b'));
    assert.deepEqual(recounts.sort(), ['now keeper', 'now leaving', 'now team-b']);
  });

  it('does not reconcile again when the only change is the finalizer the operator just added', () => {
    identities.set(identity({ finalizers: [FINALIZER] }));
    assert.deepEqual(enqueued, []);
  });

  it('reconciles a live identity that lost the finalizer, and a spec change', () => {
    identities.set(identity({ finalizers: [FINALIZER] }));
    identities.set(identity({ finalizers: [] }));
    identities.set(identity({ finalizers: [FINALIZER], generation: 2 }));
    assert.deepEqual(enqueued, ['shop/catalog', 'shop/catalog']);
  });

  it('does not reconcile again when the operator applies its own ServiceAccount annotation', () => {
    serviceAccounts.set(serviceAccount({ [ROLE_ARN]: 'arn:1' }, [applied(serviceAccountFieldManager('aws'), [ROLE_ARN])]));
    serviceAccounts.set(serviceAccount({ [ROLE_ARN]: 'arn:2' }, [applied(serviceAccountFieldManager('aws'), [ROLE_ARN])]));
    assert.deepEqual(enqueued, []);
  });

  it('reconciles when someone else removes or takes over the annotation the operator owns', () => {
    const ours = [applied(serviceAccountFieldManager('aws'), [ROLE_ARN])];
    serviceAccounts.set(serviceAccount({ [ROLE_ARN]: 'arn:1' }, ours));
    serviceAccounts.set(serviceAccount({}));
    assert.deepEqual(enqueued, ['shop/catalog']);

    serviceAccounts.set(serviceAccount({ [ROLE_ARN]: 'arn:1' }, ours));
    enqueued = [];
    serviceAccounts.set(serviceAccount({ [ROLE_ARN]: 'arn:other' }, [applied('argocd-controller', [ROLE_ARN])]));
    assert.deepEqual(enqueued, ['shop/catalog']);
  });

  it('reconciles when someone else changes an annotation the operator does not own', () => {
    serviceAccounts.set(serviceAccount({ team: 'books' }));
    assert.deepEqual(enqueued, ['shop/catalog']);
  });

  it('reconciles the siblings of a ServiceAccount when one changes its spec or its record moves to another cloud', () => {
    identities.set(identity({ name: 'rival' }));
    identities.set(identity({ finalizers: [FINALIZER] }));
    enqueued = [];
    identities.set(identity({ generation: 2, finalizers: [FINALIZER] }));
    assert.deepEqual(enqueued.sort(), ['shop/catalog', 'shop/rival']);

    enqueued = [];
    identities.set({ ...identity({ generation: 2, finalizers: [FINALIZER] }), status: { provisioned: { cloud: 'aws', cloudAccount: 'prod', mechanism: 'IRSA' } } });
    assert.deepEqual(enqueued, ['shop/rival'], 'our own status write is not a reconcile of ourselves, but a rival must look again');

    enqueued = [];
    identities.set({ ...identity({ generation: 2, finalizers: [FINALIZER] }), status: { provisioned: { cloud: 'aws', cloudAccount: 'prod', mechanism: 'PodIdentity' } } });
    assert.deepEqual(enqueued, [], 'the same cloud is the same claim');
  });

  it('reconciles the owner of a ConfigMap of ours that someone edits or deletes, but not on its creation', () => {
    const owned = (data: Record<string, string>): V1ConfigMap => ({
      metadata: { name: 'catalog-gcp-credentials', namespace: 'shop', labels: { 'app.kubernetes.io/managed-by': 'keyless' }, ownerReferences: [{ apiVersion: 'keyless.dev/v1alpha1', kind: 'WorkloadIdentity', name: 'catalog', uid: 'u', controller: true }] },
      data,
    });
    configMaps.set(owned({ a: '1' }));
    assert.deepEqual(enqueued, [], 'its appearance is our own create');
    configMaps.set(owned({ a: '1' }));
    assert.deepEqual(enqueued, [], 'a resync of the same object');
    configMaps.set(owned({ a: 'edited' }));
    assert.deepEqual(enqueued, ['shop/catalog']);
    enqueued = [];
    configMaps.delete(owned({ a: 'edited' }));
    assert.deepEqual(enqueued, ['shop/catalog']);
  });
});
