// What `kubectl keyless migrate` prints: the manifests on stdout, ready for `kubectl apply -f -` (each headed by a
// comment saying what it adopts and what changes), and the report on stderr — one line per hand-made identity, then
// why each one left out is left out, and what changes for each one migrated.
import { dump } from 'js-yaml';
import { table } from '../table.ts';
import { blockersOf, type Migration } from './migrate.ts';
import { shortIdentity } from './plan.ts';

export function renderManifests(migration: Migration): string {
  return migration.manifests
    .map(({ plan, workloadIdentity }) => {
      const head = [
        `# ServiceAccount ${plan.source.namespace}/${plan.source.serviceAccount}: adopts ${plan.cloud?.adopt ?? ''} through CloudAccount ${plan.account ?? ''}`,
        ...(plan.cloud?.notes ?? []).map((n) => `#   note: ${n}`),
      ];
      return `---\n${head.join('\n')}\n${dump(workloadIdentity, { lineWidth: -1, noRefs: true })}`;
    })
    .join('');
}

export function renderReport(migration: Migration): string {
  const migrated = new Map(migration.manifests.map(({ plan, workloadIdentity }) => [plan, `${workloadIdentity.metadata.namespace ?? ''}/${workloadIdentity.metadata.name}`]));
  const waiting = new Set(migration.waiting.map(({ plan }) => plan));
  const rows = migration.plans.map((p) => [
    migrated.has(p) ? 'yes' : waiting.has(p) ? 'later' : 'no',
    `${p.source.namespace}/${p.source.serviceAccount}`,
    p.source.cloud,
    shortIdentity(p),
    p.account ?? '-',
    migrated.get(p) ?? '-',
  ]);
  const out: string[] = [];
  if (!migration.plans.length) out.push('No ServiceAccount carries an identity made by hand: nothing to migrate.\n');
  else out.push(table(['MIGRATE', 'SERVICEACCOUNT', 'CLOUD', 'IDENTITY', 'CLOUDACCOUNT', 'WORKLOADIDENTITY'], rows));
  const closed = [...new Set(migration.plans.filter((p) => p.adoptionNotAllowed).map((p) => p.account ?? ''))];
  if (closed.length) {
    out.push(`\nCloudAccount ${closed.join(', ')} ${closed.length === 1 ? 'does' : 'do'} not allow adoption (spec.guardrails.allowAdoption): nothing of ${closed.length === 1 ? 'it' : 'theirs'} can be migrated until the platform team allows it.\n`);
    if (migration.waiting.length) out.push(`Ready once ${closed.length === 1 ? 'it does' : 'they do'} (${migration.waiting.length}): ${migration.waiting.map(({ plan }) => `${plan.source.namespace}/${plan.source.serviceAccount}`).join(', ')}.\n`);
  }
  const left = migration.plans.filter((p) => !migrated.has(p) && !waiting.has(p) && blockersOf(p).length);
  if (left.length) {
    out.push(`\nNot migrated (${left.length}): nothing changes for them.\n`);
    for (const p of left) out.push(`  ${p.source.namespace}/${p.source.serviceAccount} (${p.source.cloud} ${shortIdentity(p)}):\n${blockersOf(p).map((b) => `    - ${b}\n`).join('')}`);
  }
  const noted = [...migration.manifests, ...migration.waiting].filter(({ plan }) => plan.cloud?.notes.length);
  if (noted.length) {
    out.push('\nWhat adoption changes:\n');
    for (const { plan } of noted) out.push(`  ${plan.source.namespace}/${plan.source.serviceAccount}:\n${(plan.cloud?.notes ?? []).map((n) => `    - ${n}\n`).join('')}`);
  }
  if (migration.managed.length) out.push(`\nAlready managed by a WorkloadIdentity: ${migration.managed.join(', ')}.\n`);
  for (const w of migration.warnings) out.push(`\nWarning: ${w}.\n`);
  if (migration.manifests.length) {
    out.push(`\n${migration.manifests.length} WorkloadIdentit${migration.manifests.length === 1 ? 'y' : 'ies'} on stdout. Nothing was written. To migrate: kubectl keyless migrate ... | kubectl apply -f -\n`);
  }
  return out.join('');
}
