// Composition root of `kubectl keyless` (plugins/kubectl-keyless starts it): reads the kubeconfig the way kubectl
// does, builds the readers, runs one command, and prints. Status and explain read the cluster; migrate reads the
// cluster and the clouds. Nothing is written anywhere.
import { KubeApi } from '../kube/api.ts';
import { loadKubeConnection } from '../kube/kubeconfig.ts';
import { parseArgs, USAGE, UsageError, type Args } from './args.ts';
import { clusterReader, type WorkloadKind } from './cluster.ts';
import { explain, renderExplain } from './explain.ts';
import { renderStatus } from './status.ts';

const KINDS: Record<string, WorkloadKind> = {
  pod: 'pod',
  pods: 'pod',
  po: 'pod',
  deploy: 'deployment',
  deployment: 'deployment',
  deployments: 'deployment',
  sts: 'statefulset',
  statefulset: 'statefulset',
  statefulsets: 'statefulset',
  ds: 'daemonset',
  daemonset: 'daemonset',
  daemonsets: 'daemonset',
};

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

async function run(args: Args, io: Output): Promise<void> {
  if (args.command === 'help') {
    io.out(USAGE);
    return;
  }
  const connection = loadKubeConnection(process.env, { kubeconfig: args.kubeconfig, context: args.context });
  const api = new KubeApi(connection);
  const cluster = clusterReader(api);
  const namespace = args.namespace ?? connection.namespace ?? 'default';
  try {
    switch (args.command) {
      case 'status': {
        const identities = await cluster.workloadIdentities(args.allNamespaces ? undefined : namespace);
        if (!identities.length) io.err(args.allNamespaces ? 'No WorkloadIdentities found.\n' : `No WorkloadIdentities found in namespace ${namespace}.\n`);
        else io.out(renderStatus(identities, { allNamespaces: args.allNamespaces, wide: args.wide }));
        return;
      }
      case 'explain': {
        const target = args.target ?? '';
        const [kindName, name] = target.includes('/') ? (target.split('/', 2) as [string, string]) : ['pod', target];
        const kind = KINDS[kindName.toLowerCase()];
        if (!kind || !name) throw new UsageError(`cannot explain "${target}": use pod/NAME, deploy/NAME, sts/NAME or ds/NAME`);
        const workload = await cluster.workload(namespace, kind, name);
        if (!workload) throw new Error(`${kind} ${name} not found in namespace ${namespace}`);
        const [serviceAccount, identities, webhooks] = await Promise.all([cluster.serviceAccount(namespace, workload.serviceAccountName), cluster.workloadIdentities(namespace), cluster.mutatingWebhooks()]);
        const input = { namespace, workload: { kind, name }, pods: workload.pods, serviceAccountName: workload.serviceAccountName, serviceAccount, identities, webhooks };
        io.out(renderExplain(input, explain(input)));
        return;
      }
      case 'migrate': {
        // Loaded only for migrate, one module at a time (parallel imports of CommonJS dependencies race in Node).
        const { migrate } = await import('./migrate/migrate.ts');
        const { renderManifests, renderReport } = await import('./migrate/render.ts');
        const { cloudReaders } = await import('./migrate/clouds.ts');
        const { iamDataCatalogue } = await import('../providers/aws/action-catalogue.ts');
        const migration = await migrate({ cluster, clouds: cloudReaders(process.env), catalogue: iamDataCatalogue() }, { namespace: args.allNamespaces ? undefined : namespace, cloudAccount: args.cloudAccount });
        io.out(renderManifests(migration));
        io.err(renderReport(migration));
        return;
      }
    }
  } finally {
    api.close();
  }
}

/** Runs the command line; resolves to the exit code. */
export async function main(argv: readonly string[], io: Output): Promise<number> {
  try {
    await run(parseArgs(argv), io);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}\nSee kubectl keyless --help.\n`);
      return 1;
    }
    io.err(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2), { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
// Open keep-alive sockets or SDK timers must not hold the command after it has answered.
process.exitCode = code;
process.stdout.end(() => process.exit(code));
