// Benchmark flags: BENCH_* environment variables, or the same names as `BENCH_N=100` / `--n=100` arguments.

export const SCENARIOS = ['create', 'steady', 'delete', 'podidentity', 'scale'] as const;
export type Scenario = (typeof SCENARIOS)[number];

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
  /**
   * The operator's own limiter (KEYLESS_CLOUD_CALLS_PER_SECOND / _BURST) in the rate-limited scenarios. One bucket
   * paces reads and writes alike, so the default is the fastest setting that never exceeds the cloud's write limit:
   * the write rate ÷ the highest write share of any operation mix (an IRSA create: 2 of 3 calls) = 1.5 × rate.
   */
  operatorCallsPerSecond: number;
  operatorCallBurst: number;
  /** KEYLESS_WORKERS. */
  workers: number;
  /** NODE_OPTIONS for the operator process (e.g. --max-old-space-size=128, --cpu-prof). */
  operatorNodeOptions: string;
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
  const scenarios = (v['BENCH_SCENARIOS'] ?? SCENARIOS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of scenarios) if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`BENCH_SCENARIOS: unknown scenario ${s}; known: ${SCENARIOS.join(', ')}`);
  if (scenarios.some((s) => s === 'steady' || s === 'delete') && !scenarios.includes('create')) {
    throw new Error('BENCH_SCENARIOS: steady and delete run on the identities the create scenario makes; include create');
  }
  const writeRate = num('BENCH_WRITE_RATE', 10, 0.1);
  return {
    scenarios: scenarios as Scenario[],
    n: num('BENCH_N', 500, 1),
    latencyMs: num('BENCH_LATENCY_MS', 50),
    writeRate,
    writeBurst: num('BENCH_WRITE_BURST', writeRate, 1),
    resyncs: num('BENCH_RESYNCS', 3, 1),
    resyncSeconds: num('BENCH_RESYNC_SECONDS', 15, 5),
    scaleN: num('BENCH_SCALE_N', 5000, 1),
    scaleDelete: (v['BENCH_SCALE_DELETE'] ?? 'false') === 'true',
    podN: num('BENCH_POD_N', 50, 1),
    operatorCallsPerSecond: num('BENCH_OPERATOR_CALLS_PER_SECOND', writeRate * 1.5, 0.1),
    operatorCallBurst: num('BENCH_OPERATOR_CALL_BURST', 1, 1),
    workers: num('BENCH_WORKERS', 4, 1),
    operatorNodeOptions: v['BENCH_OPERATOR_NODE_OPTIONS'] ?? '',
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
