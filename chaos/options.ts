// `make chaos` flags: CHAOS_* environment variables, or the same names as `CHAOS_N=100` / `--n=100` arguments.

export interface ChaosOptions {
  /** WorkloadIdentities in the population, across every mechanism (population.ts has the shares). */
  n: number;
  /** Share of cloud requests that meet a fault while faults are on, 0..1. */
  faultRate: number;
  /** SIGKILLs of the leading operator replica over the whole run. */
  kills: number;
  /** kube-apiserver restarts, the first of them with every watch expired (etcd compacted before it). */
  apiserverRestarts: number;
  /** Share of the population edited during the churn phase, and share deleted (new identities replace them). */
  churnEdits: number;
  churnDeletes: number;
  /** How long everything may take to converge once faults stop (Ready, or gone after the delete), seconds. */
  convergeTimeoutSeconds: number;
  /** The operator's cloud call deadline (KEYLESS_CLOUD_CALL_TIMEOUT_SECONDS); a `timeout` fault hangs longer. */
  callTimeoutSeconds: number;
  /** Seed of the run's random choices (which identities, when to kill); faults draw from Math.random. */
  seed: number;
  /** Where the JSON report goes. */
  out: string;
}

const DEFAULTS: ChaosOptions = {
  n: 1000,
  faultRate: 0.2,
  kills: 20,
  apiserverRestarts: 1,
  churnEdits: 0.2,
  churnDeletes: 0.05,
  convergeTimeoutSeconds: 900,
  callTimeoutSeconds: 5,
  seed: Date.now() % 1_000_000,
  out: 'chaos/out/latest.json',
};

const FLAGS: Record<keyof ChaosOptions, string> = {
  n: 'CHAOS_N',
  faultRate: 'CHAOS_FAULT_RATE',
  kills: 'CHAOS_KILLS',
  apiserverRestarts: 'CHAOS_APISERVER_RESTARTS',
  churnEdits: 'CHAOS_CHURN_EDITS',
  churnDeletes: 'CHAOS_CHURN_DELETES',
  convergeTimeoutSeconds: 'CHAOS_CONVERGE_TIMEOUT_SECONDS',
  callTimeoutSeconds: 'CHAOS_CALL_TIMEOUT_SECONDS',
  seed: 'CHAOS_SEED',
  out: 'CHAOS_OUT',
};

export function parseChaosOptions(argv: string[], env: NodeJS.ProcessEnv, overrides: Partial<ChaosOptions> = {}): ChaosOptions {
  const given = new Map<string, string>();
  for (const [k, v] of Object.entries(env)) if (k.startsWith('CHAOS_') && v !== undefined && v !== '') given.set(k, v);
  for (const arg of argv) {
    const m = /^(?:--)?([A-Za-z_-]+)=(.*)$/.exec(arg);
    if (!m) throw new Error(`chaos: cannot read argument ${arg} (expected NAME=value)`);
    const name = (m[1] ?? '').replace(/-/g, '_').toUpperCase();
    given.set(name.startsWith('CHAOS_') ? name : `CHAOS_${name}`, m[2] ?? '');
  }
  const known = new Set(Object.values(FLAGS));
  for (const name of given.keys()) if (!known.has(name)) throw new Error(`chaos: unknown flag ${name}; known: ${[...known].join(', ')}`);

  const opts: ChaosOptions = { ...DEFAULTS, ...overrides };
  for (const [key, flag] of Object.entries(FLAGS) as [keyof ChaosOptions, string][]) {
    const raw = given.get(flag);
    if (raw === undefined) continue;
    if (key === 'out') {
      opts.out = raw;
      continue;
    }
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0) throw new Error(`chaos: ${flag} must be a number ≥ 0, got ${raw}`);
    opts[key] = value;
  }
  if (opts.faultRate > 1 || opts.churnEdits > 1 || opts.churnDeletes > 1) throw new Error('chaos: rates and shares are between 0 and 1');
  if (!Number.isInteger(opts.n) || opts.n < 5) throw new Error('chaos: CHAOS_N must be an integer ≥ 5 (one identity per mechanism at least)');
  if (opts.callTimeoutSeconds < 1) throw new Error('chaos: CHAOS_CALL_TIMEOUT_SECONDS must be ≥ 1');
  return opts;
}

/** A small deterministic generator (mulberry32), so a seed replays the run's choices. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
