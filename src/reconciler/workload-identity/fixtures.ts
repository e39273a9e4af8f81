// Fixture builders and a harness for the WorkloadIdentity reconciler's tests: objects that read like the spec
// (`aWorkloadIdentity('catalog').aws(['s3:GetObject'])`), and the reconciler wired to the in-memory cluster with the
// providers a test chooses.
import { pino } from 'pino';
import type { AwsMechanism, CloudAccount, CloudAccountSpec, GcpMechanism, WorkloadIdentity, WorkloadIdentitySpec } from '../../api/types.ts';
import { TerminalError } from '../../controller/errors.ts';
import { FakeCluster, FakeWorkloads } from '../../kube/fake/cluster.ts';
import { iamDataCatalogue } from '../../providers/aws/action-catalogue.ts';
import type { ProviderRegistry } from '../../providers/registry.ts';
import { WorkloadIdentityReconciler } from './reconciler.ts';

export const CLUSTER = 'c1';
export const ISSUER = 'https://issuer.example.com';

const catalogue = iamDataCatalogue();

class WorkloadIdentityBuilder {
  readonly #metadata: WorkloadIdentity['metadata'];
  #spec: WorkloadIdentitySpec;

  constructor(name: string, namespace: string) {
    this.#metadata = { name, namespace, annotations: {} };
    this.#spec = { serviceAccountName: `${name}-sa`, cloudAccountRef: { name: 'prod-aws' } };
  }

  forServiceAccount(name: string): this {
    this.#spec = { ...this.#spec, serviceAccountName: name };
    return this;
  }

  inAccount(name: string): this {
    this.#spec = { ...this.#spec, cloudAccountRef: { name } };
    return this;
  }

  /** The spec without any cloud section, for the one a builder method sets. */
  #base(): WorkloadIdentitySpec {
    const { serviceAccountName, cloudAccountRef, deletionPolicy } = this.#spec;
    return { serviceAccountName, cloudAccountRef, ...(deletionPolicy ? { deletionPolicy } : {}) };
  }

  aws(actions: string[], mechanism?: AwsMechanism): this {
    this.#spec = { ...this.#base(), aws: { policy: [{ effect: 'Allow', actions, resources: ['arn:aws:s3:::your-org-book-covers/*'] }], ...(mechanism ? { mechanism } : {}) } };
    return this;
  }

  gcp(roles: string[], mechanism?: GcpMechanism): this {
    this.#spec = { ...this.#base(), gcp: { roles: roles.map((role) => ({ role })), ...(mechanism ? { mechanism } : {}) } };
    return this;
  }

  azure(roles: string[], scope = '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/data'): this {
    this.#spec = { ...this.#base(), azure: { roleAssignments: roles.map((role) => ({ role, scope })) } };
    return this;
  }

  withSpec(change: (spec: WorkloadIdentitySpec) => WorkloadIdentitySpec): this {
    this.#spec = change(this.#spec);
    return this;
  }

  annotated(key: string, value: string): this {
    this.#metadata.annotations = { ...this.#metadata.annotations, [key]: value };
    return this;
  }

  withFinalizer(finalizer: string): this {
    this.#metadata.finalizers = [...(this.#metadata.finalizers ?? []), finalizer];
    return this;
  }

  build(): Pick<WorkloadIdentity, 'metadata' | 'spec'> {
    return { metadata: structuredClone(this.#metadata), spec: structuredClone(this.#spec) };
  }
}

export function aWorkloadIdentity(name: string, namespace = 'shop'): WorkloadIdentityBuilder {
  return new WorkloadIdentityBuilder(name, namespace);
}

/** A CloudAccount whose issuer check passed (what the CloudAccount reconciler would have written). */
export function aReadyAccount(name: string, spec: CloudAccountSpec, status: CloudAccount['status'] = {}): CloudAccount {
  return {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name },
    spec,
    status: { issuer: ISSUER, conditions: [{ type: 'Ready', status: 'True', reason: 'Ready', message: 'ok', lastTransitionTime: '2026-01-01T00:00:00Z' }], ...status },
  };
}

export interface Harness {
  cluster: FakeCluster;
  reconciler: WorkloadIdentityReconciler;
  /** Moves the reconciler's clock forward. */
  advance(ms: number): void;
  /** One reconcile; what it returned, or the error it threw. */
  reconcile(key: string): Promise<{ requeueAfterMs?: number | undefined; error?: unknown }>;
  /**
   * Reconciles until the key settles: no requeue soon, or a terminal error (which waits for a change). Any other
   * error is retried, up to `max` reconciles; the last outcome is returned.
   */
  settle(key: string, max?: number): Promise<{ requeueAfterMs?: number | undefined; error?: unknown }>;
}

export function harness(providers: ProviderRegistry, cluster = new FakeCluster()): Harness {
  let now = new Date('2026-06-01T00:00:00Z').getTime();
  const reconciler = new WorkloadIdentityReconciler({
    cluster: CLUSTER,
    identities: cluster.identities,
    accounts: cluster.accounts,
    serviceAccounts: cluster.serviceAccounts,
    configMaps: cluster.configMaps,
    namespaces: cluster.namespaces,
    workloads: new FakeWorkloads(),
    providers,
    catalogue,
    kube: cluster,
    logger: pino({ level: 'silent' }),
    now: () => new Date(now),
  });
  type Result = { requeueAfterMs?: number | undefined; error?: unknown };
  const reconcile = async (key: string): Promise<Result> => {
    try {
      const outcome = await reconciler.reconcile(key);
      return { requeueAfterMs: outcome?.requeueAfterMs };
    } catch (error) {
      return { error };
    }
  };
  return {
    cluster,
    reconciler,
    advance: (ms) => {
      now += ms;
    },
    reconcile,
    async settle(key, max = 20) {
      let last: Result = {};
      for (let i = 0; i < max; i++) {
        last = await reconcile(key);
        if (last.error instanceof TerminalError) return last;
        if (last.error === undefined && last.requeueAfterMs === undefined) return last;
      }
      return last;
    },
  };
}
