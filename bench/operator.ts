// The operator under test: `node dist/main.js` (as the image runs it; BENCH_OPERATOR_ENTRY) as its own ServiceAccount (test/support/operator.ts installs the
// RBAC and writes the kubeconfig), one process per scenario so each starts from a cold cache with the
// configuration that scenario needs. What it costs is read from /proc (CPU seconds, resident memory and its
// kernel-tracked peak) and from its own /metrics.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnOperator } from '../test/support/operator.ts';

/** Linux reports utime and stime in clock ticks of 1/USER_HZ seconds; USER_HZ is 100 on every mainstream arch. */
const USER_HZ = 100;

export interface ProcStats {
  cpuSeconds: number;
  rssBytes: number;
  /** VmHWM: the peak resident set since start or since the last resetPeak(). */
  peakRssBytes: number;
}

export interface Metrics {
  /** Sum over the series of `name` whose labels include `labels`. */
  sum(name: string, labels?: Record<string, string>): number;
  /** Every series of `name` as [labels, value]. */
  series(name: string): [Record<string, string>, number][];
}

export interface Operator {
  pid: number;
  logFile: string;
  /** Milliseconds from spawn until the log said its caches were synced. */
  syncedAfterMs: number;
  metrics(): Promise<Metrics>;
  proc(): ProcStats;
  /** Restarts the kernel's peak-RSS tracking (/proc/PID/clear_refs), so the next peak is this scenario's. */
  resetPeak(): void;
  stop(): Promise<void>;
}

/** CPU seconds, resident memory and its peak of a process, from /proc. */
export function readProc(pid: number): ProcStats {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the whole line.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { cpuSeconds: ticks / USER_HZ, rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM') };
}

export function parseMetrics(text: string): Metrics {
  const rows: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = l[2] ?? '';
    rows.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return {
    sum: (name, labels = {}) =>
      rows.filter((r) => r.name === name && Object.entries(labels).every(([k, v]) => r.labels[k] === v)).reduce((s, r) => s + r.value, 0),
    series: (name) => rows.filter((r) => r.name === name).map((r) => [r.labels, r.value]),
  };
}

export async function startOperator(opts: { name: string; kubeconfig: string; logDir: string; env: Record<string, string>; entry: string }): Promise<Operator> {
  const logFile = path.join(opts.logDir, `operator-${opts.name}.log`);
  const started = performance.now();
  const { child, port, exited } = await spawnOperator({
    kubeconfig: opts.kubeconfig,
    env: { KEYLESS_LEADER_ELECTION: 'false', KEYLESS_CLUSTER_NAME: 'bench', ...opts.env },
    logFile,
    syncTimeoutMs: 180_000,
    entry: opts.entry,
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('the operator did not start');
  const syncedAfterMs = performance.now() - started;

  return {
    pid,
    logFile,
    syncedAfterMs,
    metrics: async () => parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()),
    proc: () => readProc(pid),
    resetPeak: () => writeFileSync(`/proc/${pid}/clear_refs`, '5'),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
