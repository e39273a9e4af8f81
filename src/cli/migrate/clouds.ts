// The cloud clients of `kubectl keyless migrate`, built from each CloudAccount the way the operator builds its own
// (src/providers/*/clients.ts), with the person's own credentials from the SDKs' default chains and the same endpoint
// overrides (AWS_ENDPOINT_URL_*, KEYLESS_GCP_ENDPOINT, KEYLESS_AZURE_ENDPOINT). Every reader is typed down to the
// reads migrate makes: nothing here can write to a cloud.
import type { CloudAccount } from '../../api/types.ts';
import { Metrics } from '../../observability/metrics.ts';
import { azureClientCache, azureCredential } from '../../providers/aks-workload-identity/clients.ts';
import { loadAzureConfig } from '../../providers/aks-workload-identity/config.ts';
import { classifyAzureError } from '../../providers/aks-workload-identity/errors.ts';
import { awsClientCache } from '../../providers/aws/clients.ts';
import { authFor, gcpClientCache, gcpClientEnv } from '../../providers/gke-workload-identity/clients.ts';
import { classifyGcpError } from '../../providers/gke-workload-identity/errors.ts';
import { DEFAULT_ROOT_URLS, type RootUrls } from '../../providers/gke-workload-identity/gcp-client.ts';
import { lazyPort } from '../../providers/lazy-port.ts';
import { callBudget, instrumentedCall } from '../../providers/instrument.ts';
import type { AwsReader } from './aws.ts';
import type { AzureInventory, AzureReader } from './azure.ts';
import type { GcpInventory, GcpReader } from './gcp.ts';

export interface CloudReaders {
  aws(account: CloudAccount): AwsReader;
  gcp(account: CloudAccount): GcpReader;
  azure(account: CloudAccount): AzureReader;
  azureInventory: AzureInventory;
}

/** A person's one-off scan: a modest read rate, and writes that never happen. */
const BUDGET = { writesPerSecond: 1, writeBurst: 1, readsPerSecond: 20 };
const CALL_TIMEOUT_MS = 30_000;
/** How long shared reads are kept: a scan reads each thing once, well within it. */
const RESYNC_MS = 600_000;

export function cloudReaders(env: NodeJS.ProcessEnv): CloudReaders {
  const metrics = new Metrics();
  const endpoint = (service: string) => env[`AWS_ENDPOINT_URL_${service}`] || env['AWS_ENDPOINT_URL'] || undefined;
  const aws = awsClientCache({ metrics, budget: BUDGET, maxAttempts: 3, callTimeoutMs: CALL_TIMEOUT_MS, resyncMs: RESYNC_MS, endpoints: { iam: endpoint('IAM'), eks: endpoint('EKS'), sts: endpoint('STS'), eksAuth: endpoint('EKS_AUTH') } });
  const google = gcpClientEnv(env);
  const gcp = gcpClientCache({ metrics, budget: BUDGET, callTimeoutMs: CALL_TIMEOUT_MS, resyncMs: RESYNC_MS, ...google });
  const root = google.endpoint?.replace(/\/*$/, '/');
  const rootUrls: RootUrls = root ? { iam: root, cloudresourcemanager: root, storage: root, secretmanager: root, pubsub: root } : DEFAULT_ROOT_URLS;
  const gcpCall = instrumentedCall('gcp', callBudget(BUDGET), metrics, classifyGcpError, { timeoutMs: CALL_TIMEOUT_MS, endpoint: google.endpoint ?? 'https://*.googleapis.com' });
  const gcpInventory = lazyPort<GcpInventory>(async () => {
    const { createGcpInventory } = await import('./gcp-inventory.ts');
    return createGcpInventory(await authFor(google), gcpCall, rootUrls);
  });

  const azureConfig = loadAzureConfig(env);
  const azure = azureClientCache({ metrics, budget: BUDGET, callTimeoutMs: CALL_TIMEOUT_MS, resyncMs: RESYNC_MS, config: azureConfig });
  const azureCall = instrumentedCall('azure', callBudget(BUDGET), metrics, classifyAzureError, { timeoutMs: CALL_TIMEOUT_MS, endpoint: azureConfig.endpoint });
  const azureInventory = lazyPort<AzureInventory>(async () => {
    // One at a time: the two Azure SDKs share CommonJS dependencies that Node cannot load for both at once
    // (ERR_REQUIRE_ESM_RACE_CONDITION).
    const { ManagedServiceIdentityClient } = await import('@azure/arm-msi');
    const { AuthorizationManagementClient } = await import('@azure/arm-authorization');
    const { createAzureInventory } = await import('./azure-inventory.ts');
    const credential = await azureCredential(azureConfig);
    const options = { endpoint: azureConfig.endpoint, retryOptions: { maxRetries: azureConfig.maxRetries }, userAgentOptions: { userAgentPrefix: 'kubectl-keyless' } };
    return createAzureInventory(
      (subscriptionId) => Promise.resolve({ msi: new ManagedServiceIdentityClient(credential, subscriptionId, options), authorization: new AuthorizationManagementClient(credential, subscriptionId, options) }),
      azureCall,
    );
  });

  return {
    aws: (account) => aws(account).iam,
    gcp: (account) => {
      const port = gcp(account).gcp;
      return {
        getServiceAccount: (project, email) => port.getServiceAccount(project, email),
        getIamPolicy: (target) => port.getIamPolicy(target),
        listServiceAccounts: (project) => gcpInventory.listServiceAccounts(project),
        listBuckets: (project) => gcpInventory.listBuckets(project),
        listTopics: (project) => gcpInventory.listTopics(project),
        listSecrets: (project) => gcpInventory.listSecrets(project),
      };
    },
    azure: (account) => azure(account),
    azureInventory,
  };
}
