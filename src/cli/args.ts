// The command line of `kubectl keyless`, parsed the way kubectl parses its own: `-n NS`, `-nNS`, `--namespace NS`,
// `--namespace=NS`, `-A`; kubectl hands a plugin every argument after its name unchanged, so the plugin reads the
// connection flags (--kubeconfig, --context) itself.

export type Command = 'status' | 'explain' | 'migrate' | 'help';

export interface Args {
  command: Command;
  /** `explain`'s target, e.g. pod/catalog-7d9f or deploy/catalog. */
  target?: string;
  namespace?: string;
  allNamespaces: boolean;
  kubeconfig?: string;
  context?: string;
  /** `migrate`: only ServiceAccounts whose identity this CloudAccount can adopt. */
  cloudAccount?: string;
  /** `status -o wide`: whole messages instead of their first sentence. */
  wide: boolean;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const USAGE = `kubectl keyless: Keyless WorkloadIdentities from the command line.

Usage:
  kubectl keyless status  [-n NAMESPACE | -A] [-o wide]
      Every WorkloadIdentity with its cloud, mechanism and identity, and the first step that is not Ready and why.
  kubectl keyless explain (pod|deploy|sts|ds)/NAME [-n NAMESPACE]
      The whole chain of a running workload, each link OK or broken, with the fix: ServiceAccount, WorkloadIdentity,
      cloud identity, trust, what the webhook injected, the projected token's audience, CredentialsVerified.
  kubectl keyless migrate [-n NAMESPACE | -A] [--cloud-account NAME]
      Reads the ServiceAccounts annotated by hand (eks.amazonaws.com/role-arn, iam.gke.io/gcp-service-account,
      azure.workload.identity/client-id) and the cloud behind them, read-only, and prints the WorkloadIdentities
      that adopt those identities with the permissions they grant today; the report of what it would not migrate
      goes to stderr. Writes nothing: pipe the output to kubectl apply -f - when it reads right.

Flags:
  -n, --namespace NAME     the namespace (default: the context's, else "default")
  -A, --all-namespaces     every namespace
      --cloud-account NAME migrate: only identities this CloudAccount can adopt
  -o wide                  status: whole messages
      --kubeconfig FILE    the kubeconfig (default: $KUBECONFIG, else ~/.kube/config)
      --context NAME       the kubeconfig context (default: its current-context)
  -h, --help               this text
`;

const COMMANDS: readonly string[] = ['status', 'explain', 'migrate', 'help'];
const VALUE_FLAGS: Record<string, 'namespace' | 'kubeconfig' | 'context' | 'cloudAccount' | 'output'> = {
  '-n': 'namespace',
  '--namespace': 'namespace',
  '--kubeconfig': 'kubeconfig',
  '--context': 'context',
  '--cloud-account': 'cloudAccount',
  '-o': 'output',
  '--output': 'output',
};

export function parseArgs(argv: readonly string[]): Args {
  const args: Args = { command: 'help', allNamespaces: false, wide: false };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '-h' || arg === '--help') return { ...args, command: 'help' };
    if (arg === '-A' || arg === '--all-namespaces') {
      args.allNamespaces = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg.startsWith('-n') && arg.length > 2 && !arg.startsWith('--') ? '-n' : arg;
    const key = VALUE_FLAGS[flag];
    if (key) {
      let value: string | undefined;
      if (flag !== arg) value = arg.startsWith('--') ? arg.slice(eq + 1) : arg.slice(2);
      else value = argv[++i];
      if (value === undefined || value === '') throw new UsageError(`flag ${flag} needs a value`);
      if (key === 'output') {
        if (value !== 'wide') throw new UsageError(`-o ${value}: only -o wide is supported`);
        args.wide = true;
      } else {
        args[key] = value;
      }
      continue;
    }
    if (arg.startsWith('-')) throw new UsageError(`unknown flag ${arg}`);
    positional.push(arg);
  }
  const [command, ...rest] = positional;
  if (command === undefined) return args;
  if (!COMMANDS.includes(command)) throw new UsageError(`unknown command "${command}"; one of ${COMMANDS.join(', ')}`);
  args.command = command as Command;
  if (args.allNamespaces && args.namespace !== undefined) throw new UsageError('use either -n NAMESPACE or -A, not both');
  if (command === 'explain') {
    if (rest.length !== 1) throw new UsageError('explain takes one workload: pod/NAME, deploy/NAME, sts/NAME or ds/NAME');
    args.target = rest[0];
    if (args.allNamespaces) throw new UsageError('explain looks at one workload in one namespace: use -n NAMESPACE');
  } else if (rest.length) {
    throw new UsageError(`${command} takes no arguments (got ${rest.join(' ')})`);
  }
  if (args.cloudAccount !== undefined && command !== 'migrate') throw new UsageError('--cloud-account is a migrate flag');
  if (args.wide && command !== 'status') throw new UsageError('-o wide is a status flag');
  return args;
}
