// Numbers into words: percentiles, and the table `make bench` prints next to bench/out/latest.json.

export interface Distribution {
  p50: number;
  p95: number;
  max: number;
}

/** Nearest-rank percentiles of `values` (seconds in, seconds out); zeros when empty. */
export function distribution(values: number[]): Distribution {
  if (!values.length) return { p50: 0, p95: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
  return { p50: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1] ?? 0 };
}

export const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

export const mib = (bytes: number): number => round(bytes / 2 ** 20, 1);

export interface Row {
  scenario: string;
  metric: string;
  value: string;
  target?: string;
  verdict?: 'met' | 'MISSED' | '';
}

/** A fixed-width table; long values wrap to the width of their column. */
export function table(rows: Row[]): string {
  const headers = ['scenario', 'metric', 'value', 'target', ''];
  const cells = rows.map((r) => [r.scenario, r.metric, r.value, r.target ?? '', r.verdict ?? '']);
  const widths = headers.map((h, i) => Math.min(i === 2 ? 60 : 48, Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length))));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const out = [line(headers), widths.map((w) => '-'.repeat(w)).join('  ')];
  let previous = '';
  for (const c of cells) {
    const scenario = c[0] === previous ? '' : (c[0] ?? '');
    previous = c[0] ?? '';
    out.push(line([scenario, ...c.slice(1)]));
  }
  return out.join('\n');
}

/** `{CreateRole: 1000, PutRolePolicy: 1000}` → "CreateRole 1000, PutRolePolicy 1000", largest first. */
export function byCount(counts: Record<string, number>): string {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${round(n)}`)
    .join(', ');
}
