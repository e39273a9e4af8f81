// `make dev-up` runs this in the background: the checking STS / EKS Auth front and the Pod Identity Agent.
//   node test/emulators/aws-sts/main.ts --upstream URL [--port N] [--kubeconfig PATH [--cluster NAME]...]
//     [--agent-cluster NAME [--agent-port N]]
// --kubeconfig trusts that control plane's ServiceAccount issuer (keys read with the kubeconfig's credentials) and
// binds each --cluster (an EKS cluster in moto) to it. Prints one JSON line {"endpoint","agentUri"} once it listens.
import { parseArgs } from 'node:util';
import { kubernetesIssuer } from '../oidc/kubernetes.ts';
import { startAwsTokenEmulator } from './server.ts';

const { values } = parseArgs({
  options: {
    upstream: { type: 'string' },
    port: { type: 'string', default: '0' },
    kubeconfig: { type: 'string' },
    cluster: { type: 'string', multiple: true, default: [] },
    'agent-cluster': { type: 'string' },
    'agent-port': { type: 'string', default: '0' },
  },
});
if (!values.upstream) throw new Error('--upstream is required');
const source = values.kubeconfig ? await kubernetesIssuer(values.kubeconfig) : undefined;
const agentCluster = values['agent-cluster'];
const emulator = await startAwsTokenEmulator({
  upstream: values.upstream,
  port: Number(values.port),
  issuers: source ? [source] : [],
  clusters: source ? values.cluster.map((name) => ({ name, issuer: source.issuer })) : [],
  ...(agentCluster ? { agent: { cluster: agentCluster, port: Number(values['agent-port']) } } : {}),
});
process.stdout.write(`${JSON.stringify({ endpoint: emulator.endpoint, agentUri: emulator.agentUri })}\n`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void emulator.stop().then(() => process.exit(0)));
