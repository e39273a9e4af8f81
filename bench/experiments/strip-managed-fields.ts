// Experiment, not part of the operator: preloaded into the operator process (BENCH_OPERATOR_NODE_OPTIONS=
// "--import ./bench/experiments/strip-managed-fields.ts") to measure what docs/benchmarks.md proposes.
//
// managedFields are ~40% of a cached WorkloadIdentity (1.8 of 4.8 KB as JSON) and the operator reads them only on
// ServiceAccounts, and there only its own server-side-apply entries (keyless-aws, keyless-gcp, keyless-azure; see
// src/reconciler/service-account.ts). This drops every other entry from each object before it reaches the caches — what controller-runtime does with
// cache.TransformStripManagedFields, and what ResourceWatch would do with a `transform` option set in main.ts.
import { CoreV1Api, CustomObjectsApi, Watch, type KubernetesObject } from '@kubernetes/client-node';
import { FIELD_MANAGER } from '../../src/api/constants.ts';

function strip<T>(obj: T): T {
  const meta = (obj as KubernetesObject | undefined)?.metadata;
  const ours = (manager: string | undefined) => manager === FIELD_MANAGER || manager?.startsWith(`${FIELD_MANAGER}-`);
  if (meta?.managedFields) meta.managedFields = meta.managedFields.filter((e) => ours(e.manager) && e.operation === 'Apply');
  return obj;
}

type Callback = (phase: string, obj: unknown, watchObj?: unknown) => void;
const watchProto = Watch.prototype as unknown as { watch: (path: string, query: unknown, callback: Callback, done: (err: unknown) => void) => Promise<AbortController> };
const watch = watchProto.watch;
watchProto.watch = function stripped(this: Watch, path, query, callback, done) {
  return watch.call(this, path, query, (phase, obj, watchObj) => callback(phase, strip(obj), watchObj), done);
};

function stripLists(proto: object, methods: string[]): void {
  const p = proto as Record<string, (...args: unknown[]) => Promise<{ items?: unknown[] }>>;
  for (const name of methods) {
    const original = p[name];
    if (!original) throw new Error(`no ${name} to wrap`);
    p[name] = async function listed(this: unknown, ...args: unknown[]) {
      const list = await original.apply(this, args);
      list.items?.forEach(strip);
      return list;
    };
  }
}
stripLists(CustomObjectsApi.prototype, ['listClusterCustomObject']);
stripLists(CoreV1Api.prototype, ['listServiceAccountForAllNamespaces', 'listNamespace']);
