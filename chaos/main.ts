// `make chaos`: one chaos run (run.ts) on the control plane chaos/chaos.sh started (KEYLESS_TEST_KUBECONFIG), the
// figures on stdout and in chaos/out/latest.json. Exits 1 when a check failed. Flags: chaos/options.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseChaosOptions } from './options.ts';
import { summary } from './report.ts';
import { runChaos } from './run.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function main(): Promise<boolean> {
  const opts = parseChaosOptions(process.argv.slice(2), process.env);
  const state = process.env['KEYLESS_CHAOS_STATE'];
  if (!state) throw new Error('KEYLESS_CHAOS_STATE (the control plane state directory) is not set; run make chaos');
  const began = Date.now();
  const report = await runChaos(opts, {
    controlplaneState: path.join(state, 'controlplane'),
    dir: path.join(state, 'run'),
    log: (m) => process.stderr.write(`[chaos ${String(Math.round((Date.now() - began) / 1000)).padStart(4)}s] ${m}\n`),
  });
  const out = path.resolve(root, opts.out);
  mkdirSync(path.dirname(out), { recursive: true });
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version };
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine, ...report }, null, 2)}\n`);
  process.stdout.write(`\n${summary(report)}\n\nFull report: ${path.relative(root, out)}; operator logs in ${path.relative(root, path.join(state, 'run'))}/\n`);
  return report.passed;
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (err: unknown) => {
    process.stderr.write(`chaos failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
