// Every Prometheus instrument the operator exposes. Label values come from closed sets (controller names,
// outcome names, cloud operation names, HTTP status codes), never from object names or error messages, so the
// series count stays bounded however many WorkloadIdentities a cluster has.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type ReconcileResult = 'success' | 'error' | 'conflict' | 'terminal';
export const RECONCILE_RESULTS: readonly ReconcileResult[] = ['success', 'error', 'conflict', 'terminal'];

export type InformerRestartReason = 'error' | 'stall' | 'expired';

export class Metrics {
  readonly registry: Registry;
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileDuration: Histogram<'controller'>;
  readonly queueDepth: Gauge<'controller'>;
  readonly queueRetries: Counter<'controller'>;
  readonly informerRestarts: Counter<'resource' | 'reason'>;
  readonly isLeader: Gauge;
  readonly cloudApiCalls: Counter<'cloud' | 'operation' | 'code'>;
  readonly cloudApiDuration: Histogram<'cloud' | 'operation'>;
  readonly k8sWrites: Counter<'resource' | 'verb'>;

  constructor() {
    const registry = new Registry();
    this.registry = registry;
    collectDefaultMetrics({ register: registry });
    const registers = [registry];

    this.reconcileTotal = new Counter({
      name: 'keyless_reconcile_total',
      help: 'Reconciles finished, by controller and result (success, error, conflict, terminal).',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'keyless_reconcile_duration_seconds',
      help: 'Wall time of one reconcile, cloud calls included.',
      labelNames: ['controller'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'keyless_workqueue_depth',
      help: 'Keys waiting in the work queue (not counting keys waiting for a backoff or resync timer).',
      labelNames: ['controller'],
      registers,
    });
    this.queueRetries = new Counter({
      name: 'keyless_workqueue_retries_total',
      help: 'Keys put back on the work queue with backoff after a failed reconcile.',
      labelNames: ['controller'],
      registers,
    });
    this.informerRestarts = new Counter({
      name: 'keyless_informer_restarts_total',
      help: 'Informer restarts (fresh list and watch), by resource and reason (error, stall, expired).',
      labelNames: ['resource', 'reason'],
      registers,
    });
    this.isLeader = new Gauge({
      name: 'keyless_leader',
      help: '1 while this replica holds the leader election lease, else 0.',
      registers,
    });
    this.cloudApiCalls = new Counter({
      name: 'keyless_cloud_api_calls_total',
      help: 'Calls to cloud APIs, by cloud, operation and result code.',
      labelNames: ['cloud', 'operation', 'code'],
      registers,
    });
    this.cloudApiDuration = new Histogram({
      name: 'keyless_cloud_api_call_duration_seconds',
      help: 'Latency of cloud API calls, by cloud and operation.',
      labelNames: ['cloud', 'operation'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.k8sWrites = new Counter({
      name: 'keyless_kubernetes_writes_total',
      help: 'Writes to the Kubernetes API, by resource and verb.',
      labelNames: ['resource', 'verb'],
      registers,
    });
    this.isLeader.set(0);
  }
}
