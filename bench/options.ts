// Benchmark flags: BENCH_* environment variables, or the same names as `BENCH_N=100` / `--n=100` arguments.
import { readFileSync } from 'node:fs';
import type { V1Deployment } from '@kubernetes/client-node';
import { parse } from 'yaml';

export const SCENARIOS = [
  'create',
  'steady',
  'delete',
  'podidentity',
  'gke-sa-create',
  'gke-sa-steady',
  'gke-sa-delete',
  'gke-dp-create',
  'gke-dp-steady',
  'gke-dp-delete',
  'aks-create',
  'aks-steady',
  'aks-delete',
  'scale',
] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** The mechanisms with a create, steady and delete scenario each, by the prefix of those scenarios' names. */
export const PHASED = { irsa: '', gkeServiceAccount: 'gke-sa-', gkeDirectPrincipal: 'gke-dp-', aks: 'aks-' } as const;

/** Flags that are gone, with what replaced them: a run that sets one must not silently ignore it. */
const REPLACED: Record<string, string> = {
  BENCH_OPERATOR_CALLS_PER_SECOND: 'BENCH_OPERATOR_WRITES_PER_SECOND and BENCH_OPERATOR_READS_PER_SECOND',
  BENCH_OPERATOR_CALL_BURST: 'BENCH_OPERATOR_WRITE_BURST',
};

export interface Options {
  scenarios: Scenario[];
  /** Create burst (IRSA): how many WorkloadIdentities. */
  n: number;
  /** Emulator latency added to every cloud call, ms. */
  latencyMs: number;
  /** Cloud write rate limit, writes/s per service. */
  writeRate: number;
  /** Writes the cloud lets through at once after a quiet spell. */
  writeBurst: number;
  /** Steady state: resync cycles measured, and the operator's resync interval for them. */
  resyncs: number;
  resyncSeconds: number;
  /** Scale scenario size, and whether it also deletes them all (and checks nothing is left). */
  scaleN: number;
  scaleDelete: boolean;
  /** Pod Identity create scenario size. */
  podN: number;
  /** GKE create burst size, each mode. */
  gcpN: number;
  /** AKS create burst size. */
  azureN: number;
  /**
   * The operator's write and read budgets per CloudAccount (KEYLESS_CLOUD_WRITES_PER_SECOND, _WRITE_BURST,
   * KEYLESS_CLOUD_READS_PER_SECOND) in the rate-limited scenarios: writes at the cloud's write rate with a burst of 1
   * (a larger one lets a quiet bucket send writes faster than the cloud refills), reads generously (never limited).
   */
  operatorWritesPerSecond: number;
  operatorWriteBurst: number;
  operatorReadsPerSecond: number;
  /** KEYLESS_WORKERS. */
  workers: number;
  /** NODE_OPTIONS for the operator process: by default the shipped Deployment's (config/manager/deployment.yaml). */
  operatorNodeOptions: string;
  /** The operator's entry point: by default the compiled dist/main.js the image runs (bench.sh builds it). */
  operatorEntry: string;
  /** More environment for the operator, `NAME=value,NAME=value`. */
  operatorEnv: Record<string, string>;
  /** How many objects the bench creates at once. */
  createConcurrency: number;
  out: string;
}

function raw(argv: string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('BENCH_') && v !== undefined && v !== '') values[k] = v;
  for (const arg of argv) {
    const m = /^(?:--)?([A-Za-z_-]+)=(.*)$/.exec(arg);
    if (!m) throw new Error(`unknown argument ${arg}; use NAME=value, e.g. BENCH_N=100`);
    const name = (m[1] ?? '').replace(/-/g, '_').toUpperCase();
    values[name.startsWith('BENCH_') ? name : `BENCH_${name}`] = m[2] ?? '';
  }
  return values;
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  const v = raw(argv, env);
  const num = (name: string, fallback: number, min = 0) => {
    const value = v[name] === undefined ? fallback : Number(v[name]);
    if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number >= ${min}, got ${v[name]}`);
    return value;
  };
  for (const [name, instead] of Object.entries(REPLACED)) if (v[name] !== undefined) throw new Error(`${name} is gone: the operator has separate write and read budgets now; use ${instead}`);
  const scenarios = (v['BENCH_SCENARIOS'] ?? SCENARIOS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of scenarios) if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`BENCH_SCENARIOS: unknown scenario ${s}; known: ${SCENARIOS.join(', ')}`);
  for (const prefix of Object.values(PHASED)) {
    if (scenarios.some((s) => s === `${prefix}steady` || s === `${prefix}delete`) && !scenarios.includes(`${prefix}create`)) {
      throw new Error(`BENCH_SCENARIOS: ${prefix}steady and ${prefix}delete run on the identities ${prefix}create makes; include ${prefix}create`);
    }
  }
  const writeRate = num('BENCH_WRITE_RATE', 10, 0.1);
  return {
    scenarios: scenarios as Scenario[],
    n: num('BENCH_N', 1000, 1),
    latencyMs: num('BENCH_LATENCY_MS', 50),
    writeRate,
    writeBurst: num('BENCH_WRITE_BURST', writeRate, 1),
    resyncs: num('BENCH_RESYNCS', 3, 1),
    resyncSeconds: num('BENCH_RESYNC_SECONDS', 15, 5),
    scaleN: num('BENCH_SCALE_N', 10000, 1),
    scaleDelete: (v['BENCH_SCALE_DELETE'] ?? 'false') === 'true',
    podN: num('BENCH_POD_N', 50, 1),
    gcpN: num('BENCH_GCP_N', 100, 1),
    azureN: num('BENCH_AZURE_N', 100, 1),
    operatorWritesPerSecond: num('BENCH_OPERATOR_WRITES_PER_SECOND', writeRate, 0.1),
    operatorWriteBurst: num('BENCH_OPERATOR_WRITE_BURST', 1, 1),
    operatorReadsPerSecond: num('BENCH_OPERATOR_READS_PER_SECOND', 100, 0.1),
    workers: num('BENCH_WORKERS', 4, 1),
    operatorNodeOptions: v['BENCH_OPERATOR_NODE_OPTIONS'] ?? shippedNodeOptions(),
    operatorEntry: v['BENCH_OPERATOR_ENTRY'] ?? 'dist/main.js',
    operatorEnv: Object.fromEntries(
      (v['BENCH_OPERATOR_ENV'] ?? '')
        .split(',')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    ),
    createConcurrency: num('BENCH_CREATE_CONCURRENCY', 16, 1),
    out: v['BENCH_OUT'] ?? 'bench/out/latest.json',
  };
}

/** The NODE_OPTIONS the shipped Deployment sets, so the bench measures the operator the way the image runs it. */
export function shippedNodeOptions(deployment = new URL('../config/manager/deployment.yaml', import.meta.url)): string {
  const manifest = parse(readFileSync(deployment, 'utf8')) as V1Deployment;
  return manifest.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
}
