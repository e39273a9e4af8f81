// What a managed cluster has and the test control plane lacks, for one end-to-end file (hack/peers.sh): kwok with
// the fake node `kwok-node`, so a Deployment's pods are scheduled and reach Running, and the real upstream injection
// webhooks behind MutatingWebhookConfigurations — the EKS pod identity webhook (IRSA, and EKS Pod Identity for the
// associations of one cluster in the EKS emulator) and the Azure workload identity webhook.
//
// Start them once per file, in `before`, and stop them in `after` once the file's namespaces are gone: kwok plays the
// kubelet, so a pod that was scheduled is only deleted while kwok runs. Stopping removes the node and the webhook
// configurations, so the files that follow see the bare control plane again.
import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { kubeconfigPath, kubectl, repoPath } from './cluster.ts';

export interface PeersOptions {
  /** EKS Pod Identity: inject for the ServiceAccounts with an association in `cluster` of this EKS emulator. */
  podIdentity?: { emulator: string; cluster: string };
  /** AWS_CONTAINER_CREDENTIALS_FULL_URI of Pod Identity pods, the Pod Identity Agent (default: its EKS address). */
  containerCredentialsFullUri?: string;
  /** AZURE_TENANT_ID for ServiceAccounts that name none. */
  azureTenantId?: string;
  /** AZURE_AUTHORITY_HOST, where pods exchange their token with Entra ID (default: Azure public cloud's). */
  azureAuthorityHost?: string;
}

export interface Peers {
  /** The name of the node kwok plays. */
  node: string;
  /**
   * Deletes the workloads and pods of `namespace` and waits until kwok has seen them go. Call it before deleting a
   * namespace whose pods ran: the namespace controller, finding pods still terminating, waits half their grace
   * period (15 seconds by default) before it looks again.
   */
  removePods(namespace: string): Promise<void>;
  stop(): Promise<void>;
}

const script = repoPath('hack/peers.sh');

export async function startPeers(options: PeersOptions = {}): Promise<Peers> {
  const kubeconfig = kubeconfigPath();
  // Beside the control plane's own state, so the logs outlive a failed run.
  const state = path.join(path.dirname(path.resolve(kubeconfig)), 'peers');
  const flags = [
    ...(options.podIdentity ? ['--pod-identity-emulator', options.podIdentity.emulator, '--pod-identity-cluster', options.podIdentity.cluster] : []),
    ...(options.containerCredentialsFullUri ? ['--container-credentials-full-uri', options.containerCredentialsFullUri] : []),
    ...(options.azureTenantId ? ['--azure-tenant-id', options.azureTenantId] : []),
    ...(options.azureAuthorityHost ? ['--azure-authority-host', options.azureAuthorityHost] : []),
  ];
  // The script finds node (for its free ports and the Pod Identity sync) on PATH: this one.
  const env = { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env['PATH'] ?? ''}` };
  // A process that dies before its `after` must not leave webhooks registered with the cluster.
  const stopNow = () => execFileSync(script, ['down', state], { env, stdio: 'ignore', timeout: 60_000 });
  process.once('exit', stopNow);
  // Builds first if the binaries are not cached yet (`make test` builds them before any test runs).
  await promisify(execFile)(script, ['up', state, kubeconfig, ...flags], { env, timeout: 20 * 60_000 });
  return {
    node: 'kwok-node',
    removePods: async (namespace) => {
      await kubectl(['delete', 'deployments,statefulsets,daemonsets,replicasets,pods', '--all', '-n', namespace, '--cascade=foreground', '--wait=true', '--timeout=60s']);
    },
    stop: async () => {
      process.removeListener('exit', stopNow);
      await promisify(execFile)(script, ['down', state], { env, timeout: 60_000 });
    },
  };
}
