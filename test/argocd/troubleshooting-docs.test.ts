// docs/troubleshooting.md has a row for every condition reason Keyless defines (src/api/constants.ts), and each
// row's Argo CD column agrees with the health check in config/argocd/health-checks.yaml. A new reason without a
// row fails here, with the reason's name. Relative links between the guides resolve.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { REASON } from '../../src/api/constants.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const docs = path.join(root, 'docs');
const troubleshooting = readFileSync(path.join(docs, 'troubleshooting.md'), 'utf8');

/** The rows of the reasons table (the "Every reason" section): reason, where it appears, Argo CD health, cause, fix. */
const reasonsSection = /^## Every reason\n([\s\S]*?)^#{2,3} /m.exec(troubleshooting)?.[1] ?? '';
const rows = reasonsSection
  .split('\n')
  .filter((line) => /^\| `\w+` \|/.test(line))
  .map((line) => {
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    return { reason: (cells[0] ?? '').replace(/`/g, ''), health: cells[2] ?? '', cause: cells[3] ?? '', fix: cells[4] ?? '', cells };
  });

/** The reasons each health check turns Degraded: the keys of its `terminal` table. */
function terminalReasons(): Set<string> {
  const cm = parse(readFileSync(path.join(root, 'config/argocd/health-checks.yaml'), 'utf8')) as { data: Record<string, string> };
  const sets = Object.values(cm.data).map((script) => {
    const table = /local terminal = \{([^}]*)\}/.exec(script)?.[1] ?? '';
    return [...table.matchAll(/(\w+) = true/g)].map((m) => m[1] ?? '').sort();
  });
  assert.ok(sets.length === 2 && JSON.stringify(sets[0]) === JSON.stringify(sets[1]), 'both health checks share one terminal set');
  return new Set(sets[0]);
}

describe('docs/troubleshooting.md', () => {
  it('has a row for every reason in src/api/constants.ts', () => {
    const documented = new Set(rows.map((r) => r.reason));
    const missing = Object.values(REASON).filter((reason) => !documented.has(reason));
    assert.deepEqual(missing, [], `add a row to the reasons table in docs/troubleshooting.md for: ${missing.join(', ')}`);
  });

  it('documents no reason that does not exist, and each once', () => {
    const known = new Set<string>(Object.values(REASON));
    for (const { reason } of rows) assert.ok(known.has(reason), `docs/troubleshooting.md documents ${reason}, which src/api/constants.ts does not define`);
    assert.equal(new Set(rows.map((r) => r.reason)).size, rows.length, 'each reason has one row');
  });

  it('gives every row a place, an Argo CD health, a cause and a fix', () => {
    for (const row of rows) {
      assert.equal(row.cells.length, 5, `${row.reason}: five columns`);
      assert.ok(row.cells[1], `${row.reason}: where it appears`);
      assert.ok(row.cause.length > 10, `${row.reason}: cause`);
      assert.ok(row.fix.length > 3, `${row.reason}: fix`);
    }
  });

  it('agrees with the Argo CD health check on which reasons are Degraded', () => {
    const terminal = terminalReasons();
    for (const { reason, health } of rows) {
      if (health === '—') continue;
      const expected = reason === REASON.Ready ? 'Healthy' : terminal.has(reason) ? 'Degraded' : 'Progressing';
      assert.equal(health, expected, `${reason}: the table says ${health}, the health check says ${expected}`);
    }
  });

  it('covers the classic runtime failures: issuer, subject and audience mismatches, restarts, stuck finalizers, throttling', () => {
    for (const heading of ['Pods that predate the identity', 'Issuer mismatch', 'Subject mismatch', 'Audience mismatch', 'A WorkloadIdentity will not go away', 'The cloud keeps failing or throttling', 'NotOwned']) {
      assert.match(troubleshooting, new RegExp(`^#+ .*${heading}`, 'm'), heading);
    }
    assert.match(troubleshooting, /kubectl rollout restart/);
    assert.match(troubleshooting, /deletionPolicy":"Orphan"/);
  });
});

describe('docs/ links', () => {
  // Written with their mechanisms (issues 5 and 6); the index links to them already.
  const pending = new Set(['gke-workload-identity.md', 'aks-workload-identity.md']);

  for (const file of readdirSync(docs).filter((f) => f.endsWith('.md'))) {
    it(`${file}: relative links and anchors resolve`, () => {
      const text = readFileSync(path.join(docs, file), 'utf8');
      for (const [, target = ''] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        const [target_path = '', anchor] = target.split('#');
        const resolved = target_path ? path.resolve(docs, target_path) : path.join(docs, file);
        if (pending.has(path.basename(resolved)) && !existsSync(resolved)) continue;
        assert.ok(existsSync(resolved), `${file} links to ${target}, which does not exist`);
        if (anchor && resolved.endsWith('.md')) {
          const headings = readFileSync(resolved, 'utf8')
            .split('\n')
            .filter((l) => /^#+ /.test(l))
            .map((l) => githubAnchor(l.replace(/^#+ /, '')));
          assert.ok(headings.includes(anchor), `${file} links to #${anchor} in ${path.basename(resolved)}, which has no such heading`);
        }
      }
    });
  }
});

/** GitHub's heading anchor: lowercase, punctuation dropped, spaces to hyphens. */
function githubAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}
