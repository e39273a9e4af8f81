// `make bench`: runs the scenarios of issues 9 and 14 on the control plane bench/bench.sh started
// (KEYLESS_TEST_KUBECONFIG) and on local cloud emulators, prints a table and writes bench/out/latest.json. It never
// asserts a timing. Each cloud starts only when a scenario needs it.
//
//   operator ──► cloud proxy (latency, write limit, counts) ──► Pod Identity emulator ──► moto (IAM, EKS clusters)
//            │                                             └──► in-bench IAM (scale scenario only)
//            ├─► cloud proxy ──► GCP emulator (test/emulators/gcp)
//            └─► cloud proxy (HTTPS) ──► ARM emulator (test/emulators/azure, HTTPS)
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubeConfig, kubectl, rawGet } from '../test/support/cluster.ts';
import { installOperator } from '../test/support/operator.ts';
import { startAws, startAzure, startGcp, type Cloud, type Mechanism } from './clouds.ts';
import { startOperator } from './operator.ts';
import { parseOptions, PHASED, type Scenario } from './options.ts';
import { rows } from './summary.ts';
import { table } from './report.ts';
import { operatorEnv, phases, scale, type Context } from './scenarios.ts';
import { Workload } from './workload.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = path.join(root, '.bench');

async function main(): Promise<boolean> {
  const opts = parseOptions(process.argv.slice(2), process.env);
  const began = Date.now();
  const log = (message: string) => process.stderr.write(`[bench ${String(Math.round((Date.now() - began) / 1000)).padStart(4)}s] ${message}\n`);
  mkdirSync(benchDir, { recursive: true });
  const wants = (...scenarios: Scenario[]) => scenarios.some((s) => opts.scenarios.includes(s));

  const kc = kubeConfig();
  const operatorKubeconfig = await installOperator(kc, 'bench', path.join(benchDir, 'operator'));
  const { issuer } = JSON.parse((await rawGet(kc, '/.well-known/openid-configuration')).body) as { issuer: string };
  const clouds: Cloud[] = [];
  /** Started and remembered at once, so that whatever fails later, it is stopped again. */
  const started = async <C extends Cloud>(start: () => Promise<C>): Promise<C> => {
    const cloud = await start();
    clouds.push(cloud);
    return cloud;
  };
  const workload = new Workload(kc);
  const ctx: Context = {
    opts,
    kc,
    workload,
    log,
    startOperator: (name, env) => startOperator({ name, kubeconfig: operatorKubeconfig, logDir: benchDir, entry: opts.operatorEntry, env: Object.assign({}, ...clouds.map((c) => c.operatorEnv), env) as Record<string, string> }),
    accountsReady: async () => void (await kubectl(['wait', '--for=condition=Ready', '--timeout=120s', ...clouds.flatMap((c) => c.accounts).map((a) => `cloudaccount/${a}`)])),
  };

  const results: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  /** A failed scenario is reported, and the ones after it still run. */
  const run = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      errors[name] = err instanceof Error ? (err.stack ?? err.message) : String(err);
      log(`${name} failed: ${errors[name]}`);
    }
  };
  /** A mechanism's create, steady-state and delete scenarios, those of them asked for. */
  const runPhases = (m: Mechanism | undefined, prefix: string) =>
    m && opts.scenarios.includes(`${prefix}create` as Scenario)
      ? run(m.key, async () => {
          results[m.key] = await phases(ctx, m, { steady: opts.scenarios.includes(`${prefix}steady` as Scenario), delete: opts.scenarios.includes(`${prefix}delete` as Scenario) }, operatorEnv(opts));
        })
      : Promise.resolve();
  try {
    const aws = wants('create', 'podidentity', 'scale') ? await started(() => startAws(opts, issuer)) : undefined;
    const gcp = wants('gke-sa-create', 'gke-dp-create') ? await started(() => startGcp(opts)) : undefined;
    const azure = wants('aks-create') ? await started(() => startAzure(opts, issuer)) : undefined;
    await workload.start();
    await runPhases(aws?.irsa, PHASED.irsa);
    if (aws && opts.scenarios.includes('podidentity')) await run('podIdentity', async () => void (results['podIdentity'] = await phases(ctx, aws.podIdentity, { steady: false, delete: true }, operatorEnv(opts))));
    await runPhases(gcp?.serviceAccount, PHASED.gkeServiceAccount);
    await runPhases(gcp?.directPrincipal, PHASED.gkeDirectPrincipal);
    await runPhases(azure?.aks, PHASED.aks);
    // Last: without BENCH_SCALE_DELETE its thousands of identities stay, and every later resync would cover them.
    if (aws && opts.scenarios.includes('scale')) await run('scale', async () => void (results['scale'] = await scale(ctx, aws)));
  } finally {
    workload.stop();
    for (const cloud of clouds) await cloud.stop();
  }

  const report = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    options: opts,
    durationSeconds: Math.round((Date.now() - began) / 1000),
    results,
    errors,
  };
  const out = path.resolve(root, opts.out);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\n${table(rows(results))}\n\nFull report: ${path.relative(root, out)} (${report.durationSeconds}s)\n`);
  const failed = Object.keys(errors);
  if (failed.length) process.stdout.write(`Failed: ${failed.join(', ')} (see the log above and the report's errors)\n`);
  return failed.length === 0;
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
