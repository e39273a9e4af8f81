// One scenario's bill: what the cloud saw (the proxy), what the operator says it did (its metrics) and what it
// cost the operator process (/proc), as the difference between a snapshot at the start and one at the end.
import { countsBetween, type CloudProxy, type OperationCount, type ProxyCounts } from './cloud-proxy.ts';
import type { Metrics, Operator } from './operator.ts';
import { mib, round } from './report.ts';

export interface Bill {
  seconds: number;
  cloud: {
    /** Every request the cloud answered (SDK retries included), by operation. */
    byOperation: Record<string, OperationCount>;
    reads: number;
    writes: number;
    /** Throttling answers the cloud gave. */
    throttledResponses: number;
    /** Writes that lost to a concurrent writer (409 ABORTED on a stale etag, ...) and were answered so. */
    conflicts: number;
    /** Every error answer of the cloud but throttling, by `operation status code`. */
    errors: Record<string, number>;
  };
  operator: {
    /** Cloud calls as the operator counts them (after the SDK's own retries), by operation and result code. */
    cloudCalls: Record<string, number>;
    /** Calls that still failed with a throttling code after the SDK's retries: these reach the reconciler. */
    throttledCalls: number;
    reconciles: Record<string, number>;
    kubernetesWrites: Record<string, number>;
    cpuSeconds: number;
    peakRssMiB: number;
    rssMiB: number;
  };
}

interface Snapshot {
  at: number;
  cloud: ProxyCounts;
  metrics: Metrics;
  cpuSeconds: number;
}

const THROTTLED_CODES = new Set(['Throttling', 'ThrottlingException', 'TooManyRequests', 'RequestLimitExceeded', 'RESOURCE_EXHAUSTED']);

function seriesDelta(before: Metrics, after: Metrics, name: string, keyOf: (labels: Record<string, string>) => string, filter: (labels: Record<string, string>) => boolean = () => true): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [labels, value] of after.series(name)) {
    if (!filter(labels)) continue;
    const k = keyOf(labels);
    out[k] = (out[k] ?? 0) + value;
  }
  for (const [labels, value] of before.series(name)) {
    if (!filter(labels)) continue;
    const k = keyOf(labels);
    out[k] = (out[k] ?? 0) - value;
  }
  for (const [k, v] of Object.entries(out)) if (v === 0) delete out[k];
  return out;
}

export class Meter {
  readonly #proxy: CloudProxy;
  readonly #operator: Operator;
  #start: Snapshot | undefined;

  constructor(proxy: CloudProxy, operator: Operator) {
    this.#proxy = proxy;
    this.#operator = operator;
  }

  async #snapshot(): Promise<Snapshot> {
    return { at: performance.now(), cloud: this.#proxy.snapshot(), metrics: await this.#operator.metrics(), cpuSeconds: this.#operator.proc().cpuSeconds };
  }

  /**
   * Starts the bill; the peak RSS counts from here. With `fromProcessStart`, CPU and peak RSS count from the
   * operator's start instead (its first list of every object included).
   */
  async start(opts: { fromProcessStart?: boolean } = {}): Promise<void> {
    if (!opts.fromProcessStart) this.#operator.resetPeak();
    const snapshot = await this.#snapshot();
    this.#start = opts.fromProcessStart ? { ...snapshot, cpuSeconds: 0 } : snapshot;
  }

  async stop(): Promise<Bill> {
    const start = this.#start;
    if (!start) throw new Error('Meter.stop before start');
    const end = await this.#snapshot();
    const proc = this.#operator.proc();
    const cloud = countsBetween(start.cloud, end.cloud);
    const cloudCalls = seriesDelta(start.metrics, end.metrics, 'keyless_cloud_api_calls_total', (l) => `${l['operation'] ?? ''}:${l['code'] ?? ''}`);
    return {
      seconds: round((end.at - start.at) / 1000, 1),
      cloud: { byOperation: cloud.byOperation, reads: cloud.reads, writes: cloud.writes, throttledResponses: cloud.throttled, conflicts: cloud.conflicts, errors: cloud.errors },
      operator: {
        cloudCalls,
        throttledCalls: Object.entries(cloudCalls)
          .filter(([k]) => THROTTLED_CODES.has(k.slice(k.indexOf(':') + 1)))
          .reduce((s, [, n]) => s + n, 0),
        reconciles: seriesDelta(start.metrics, end.metrics, 'keyless_reconcile_total', (l) => l['result'] ?? '', (l) => l['controller'] === 'workloadidentity'),
        kubernetesWrites: seriesDelta(start.metrics, end.metrics, 'keyless_kubernetes_writes_total', (l) => `${l['resource'] ?? ''} ${l['verb'] ?? ''}`),
        cpuSeconds: round(proc.cpuSeconds - start.cpuSeconds, 1),
        peakRssMiB: mib(proc.peakRssBytes),
        rssMiB: mib(proc.rssBytes),
      },
    };
  }
}

export const total = (counts: Record<string, number>): number => Object.values(counts).reduce((s, n) => s + n, 0);

/** Calls per operation divided by `n` (per identity, or per identity per resync). */
export function perUnit(byOperation: Record<string, OperationCount>, n: number): Record<string, number> {
  return Object.fromEntries(Object.entries(byOperation).map(([op, c]) => [op, round(c.calls / n, 2)]));
}
