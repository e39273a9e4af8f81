// The figures of a chaos run as the table `make chaos` prints (and docs/reliability.md quotes), and the verdict.
import type { ChaosReport } from './run.ts';

const list = (items: string[], max = 10) => (items.length ? `\n${items.slice(0, max).map((i) => `      - ${i}`).join('\n')}${items.length > max ? `\n      … and ${items.length - max} more` : ''}` : '');

export function summary(r: ChaosReport): string {
  const c = r.checks;
  const byCause = (cause: string) => r.process.exits.filter((e) => e.cause === cause).length;
  const kills = r.process.kills;
  const leaked = Object.entries(c.leaked).map(([k, v]) => `${k} ${v}`).join(', ');
  const mark = (ok: boolean) => (ok ? 'ok  ' : 'FAIL');
  const faulted = Object.entries(r.faults.injected).filter(([k]) => k !== 'invisible').reduce((s, [, v]) => s + v, 0);
  return [
    `Chaos run, seed ${r.options.seed}: ${r.options.n} identities, fault rate ${r.options.faultRate}, ${r.durationSeconds}s`,
    `  population   ${Object.entries(r.population.initial).map(([k, v]) => `${k} ${v}`).join(', ')}; edits ${Object.entries(r.population.edits).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}; ${r.population.deleted} deleted, ${r.population.added} added; ${r.population.accountDeleted} deleted with their CloudAccount's identities`,
    `  faults       ${faulted} of ${r.faults.requestsUnderFaults} cloud requests while faults were on (${r.faults.cloudRequests} in all): ${Object.entries(r.faults.injected).filter(([k]) => k !== 'invisible').map(([k, v]) => `${k} ${v}`).join(', ')}; ${r.faults.injected['invisible'] ?? 0} point reads of a just-created role answered NoSuchEntity; ${r.faults.conflicts} write conflicts; ${r.faults.concurrentEditorEdits} edits by a concurrent policy editor`,
    `  process      ${kills.length} SIGKILLs (${kills.filter((k) => k.mode === 'afterWrite').length} right after a cloud write; ${['build', 'churn', 'account', 'teardown'].map((p) => `${p} ${kills.filter((k) => k.phase === p).length}`).join(', ')}), ${r.process.leaderChanges} leader changes, ${r.process.apiserverRestarts} API server restarts, ${r.process.expiredRelists} relists on an expired watch; exits: ${byCause('killed')} killed, ${byCause('steppedDown')} stepped down, ${byCause('stopped')} stopped, ${byCause('crashed')} crashed; peak RSS ${r.process.peakRssMiB} MiB`,
    `  times        converged ${r.convergeSeconds ?? 'never'}s after faults stopped; all gone ${r.teardownSeconds ?? 'never'}s after the delete`,
    `  checks`,
    `    ${mark(c.notConverged.length === 0)} converged: ${c.notConverged.length} identities not Ready or not gone${list(c.notConverged)}`,
    `    ${mark(c.duplicates.length === 0)} duplicates: ${c.duplicates.length}${list(c.duplicates)}`,
    `    ${mark(c.mismatches.length === 0)} clouds match the specs: ${c.mismatches.length} differences${list(c.mismatches)}`,
    `    ${mark(c.broaderTrust.violations.length === 0)} no broader trust: ${c.broaderTrust.violations.length} violations in ${c.broaderTrust.samples} samples${list(c.broaderTrust.violations)}`,
    `    ${mark(c.releasedEarly.violations.length === 0)} finalizer only after the cloud: ${c.releasedEarly.violations.length} early of ${c.releasedEarly.checked} releases (${c.releasedEarly.missedByWatch} seen at a relist)${list(c.releasedEarly.violations)}`,
    `    ${mark(Object.values(c.leaked).every((v) => v === 0))} nothing leaked: ${leaked}`,
    `    ${mark(c.foreignChanged.length === 0)} foreign objects unchanged: ${c.foreignChanged.length} changed${list(c.foreignChanged)}`,
    `    ${mark(c.crashes.length === 0)} no crash: ${c.crashes.length}${list(c.crashes.map((e) => `${e.name} exited ${e.code ?? e.signal}: ${e.tail ?? ''}`), 3)}`,
    r.passed ? 'PASSED' : 'FAILED',
  ].join('\n');
}
