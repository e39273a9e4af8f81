// Durations as the API writes them ("1h", "90m", "1h30m", "3600s"): the subset of Go's time.ParseDuration that
// the CRD's CEL `duration()` accepts for session lengths.
const unitSeconds: Record<string, number> = { h: 3600, m: 60, s: 1 };

/** Seconds in a duration string, or undefined when it is not one. */
export function parseDurationSeconds(value: string): number | undefined {
  if (!/^(\d+(\.\d+)?[hms])+$/.test(value)) return undefined;
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+(?:\.\d+)?)([hms])/g)) {
    total += Number(amount) * (unitSeconds[unit ?? 's'] ?? 1);
  }
  return Math.round(total);
}
