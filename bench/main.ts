// `make bench`: runs the scenarios of issue 9 on the control plane bench/bench.sh started (KEYLESS_TEST_KUBECONFIG)
// and on local AWS emulators, prints a table and writes bench/out/latest.json. It never asserts a timing.
//
//   operator ──► cloud proxy (latency, write limit, counts) ──► Pod Identity emulator ──► moto (IAM, EKS clusters)
//                                                          └──► in-bench IAM (scale scenario only)
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateOpenIDConnectProviderCommand } from '@aws-sdk/client-iam';
import { CreateClusterCommand } from '@aws-sdk/client-eks';
import { startAwsEmulator, TEST_ACCOUNT_ID } from '../test/support/aws.ts';
import { kubeConfig, kubectl, rawGet } from '../test/support/cluster.ts';
import { awsEnv, installOperator } from '../test/support/operator.ts';
import { startCloudProxy } from './cloud-proxy.ts';
import { startIamEmulator } from './iam-emulator.ts';
import { startOperator } from './operator.ts';
import { parseOptions } from './options.ts';
import { rows } from './summary.ts';
import { table } from './report.ts';
import { ACCOUNT, CLUSTER_NAME, createBurst, deleteAll, operatorEnv, scale, steadyState, type Context } from './scenarios.ts';
import { Workload } from './workload.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = path.join(root, '.bench');

async function main(): Promise<boolean> {
  const opts = parseOptions(process.argv.slice(2), process.env);
  const began = Date.now();
  const log = (message: string) => process.stderr.write(`[bench ${String(Math.round((Date.now() - began) / 1000)).padStart(4)}s] ${message}\n`);
  mkdirSync(benchDir, { recursive: true });

  const kc = kubeConfig();
  const operatorKubeconfig = await installOperator(kc, 'bench', path.join(benchDir, 'operator'));
  const { issuer } = JSON.parse((await rawGet(kc, '/.well-known/openid-configuration')).body) as { issuer: string };
  const providerArn = `arn:aws:iam::${TEST_ACCOUNT_ID}:oidc-provider/${issuer.replace(/^https:\/\//, '')}`;

  const aws = await startAwsEmulator();
  await aws.iam().send(new CreateOpenIDConnectProviderCommand({ Url: issuer, ClientIDList: ['sts.amazonaws.com'], ThumbprintList: ['9e99a48a9960b14926bb7f3b02e22da2b0ab7280'] }));
  await aws.eks().send(new CreateClusterCommand({ name: CLUSTER_NAME, roleArn: `arn:aws:iam::${TEST_ACCOUNT_ID}:role/eks`, resourcesVpcConfig: { subnetIds: ['subnet-1'] } }));
  const scaleIam = await startIamEmulator({ accountId: TEST_ACCOUNT_ID, oidcProviderArns: [providerArn] });
  const proxy = await startCloudProxy({ latencyMs: opts.latencyMs, writeRate: opts.writeRate, writeBurst: opts.writeBurst, upstream: aws.eksEndpoint });
  const workload = new Workload(kc);
  await workload.start();

  const accounts = [
    { name: ACCOUNT.irsa, aws: { mechanism: 'IRSA' } },
    { name: ACCOUNT.pod, aws: { mechanism: 'PodIdentity', clusterName: CLUSTER_NAME } },
    { name: ACCOUNT.scale, aws: { mechanism: 'IRSA' } },
  ];
  await kubectl(
    ['apply', '-f', '-'],
    accounts
      .map(({ name, aws: spec }) =>
        JSON.stringify({ apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name }, spec: { aws: { accountId: TEST_ACCOUNT_ID, region: 'us-east-1', oidcIssuer: issuer, ...spec } } }),
      )
      .join('\n'),
  );

  const ctx: Context = {
    opts,
    kc,
    proxy,
    motoIam: aws.iam(),
    eks: aws.eks(),
    motoUpstream: aws.eksEndpoint,
    scaleIam,
    workload,
    log,
    startOperator: (name, env) => startOperator({ name, kubeconfig: operatorKubeconfig, logDir: benchDir, env: { ...awsEnv(proxy.endpoint), ...env } }),
  };
  const accountsReady = () => kubectl(['wait', '--for=condition=Ready', '--timeout=120s', ...accounts.map((a) => `cloudaccount/${a.name}`)]);

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
  try {
    const limitedEnv = operatorEnv(opts);
    if (opts.scenarios.includes('create')) {
      await run('create', async () => {
        let operator = await ctx.startOperator('create', limitedEnv);
        try {
          await accountsReady();
          results['create'] = await createBurst(ctx, 'IRSA', operator, limitedEnv);
          if (opts.scenarios.includes('steady')) {
            await operator.stop();
            results['steady'] = await steadyState(ctx);
            if (opts.scenarios.includes('delete')) operator = await ctx.startOperator('delete', limitedEnv);
          }
          if (opts.scenarios.includes('delete')) results['delete'] = await deleteAll(ctx, 'IRSA', operator);
        } finally {
          await operator.stop();
        }
      });
    }
    if (opts.scenarios.includes('podidentity')) {
      await run('podidentity', async () => {
        const operator = await ctx.startOperator('podidentity', limitedEnv);
        try {
          await accountsReady();
          const created = await createBurst(ctx, 'PodIdentity', operator, limitedEnv);
          const deleted = await deleteAll(ctx, 'PodIdentity', operator);
          results['podIdentity'] = { create: created, delete: deleted };
        } finally {
          await operator.stop();
        }
      });
    }
    if (opts.scenarios.includes('scale')) await run('scale', async () => void (results['scale'] = await scale(ctx)));
  } finally {
    workload.stop();
    await proxy.stop();
    await scaleIam.stop();
    await aws.stop();
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
