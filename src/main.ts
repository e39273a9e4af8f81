// Composition root: the only place that reads configuration and builds things (DESIGN §5). Everything else
// receives its dependencies.
import os from 'node:os';
import type { V1ConfigMap, V1Namespace, V1ServiceAccount } from '@kubernetes/client-node';
import { CLOUD_ACCOUNT_PLURAL, GROUP, serviceAccountFieldManager, VERSION, WORKLOAD_IDENTITY_PLURAL } from './api/constants.ts';
import type { CloudAccount, WorkloadIdentity } from './api/types.ts';
import { loadConfig } from './config/config.ts';
import { Controller } from './controller/controller.ts';
import { ResourceWatch, type Indexers } from './controller/informer.ts';
import { LeaderElector } from './controller/leader-election.ts';
import { KubeApi } from './kube/api.ts';
import { createKubePort } from './kube/client.ts';
import { loadKubeConnection } from './kube/kubeconfig.ts';
import { slimmer } from './kube/slim.ts';
import { createWorkloadPods } from './kube/workload-pods.ts';
import { createWorkloads } from './kube/workloads.ts';
import { createLogger } from './observability/logger.ts';
import { Metrics } from './observability/metrics.ts';
import { startHttpServer } from './observability/server.ts';
import { checkAzureAccount } from './providers/aks-workload-identity/account-check.ts';
import { azureClientCache } from './providers/aks-workload-identity/clients.ts';
import { loadAzureConfig } from './providers/aks-workload-identity/config.ts';
import { AksWorkloadIdentityProvider } from './providers/aks-workload-identity/provider.ts';
import { checkAwsAccount } from './providers/aws/account-check.ts';
import { iamDataCatalogue } from './providers/aws/action-catalogue.ts';
import { awsClientCache } from './providers/aws/clients.ts';
import { releaseOidcProviders } from './providers/aws/oidc-provider.ts';
import { AwsProvider } from './providers/aws/provider.ts';
import { checkGcpAccount } from './providers/gke-workload-identity/account-check.ts';
import { gcpClientCache, gcpClientEnv } from './providers/gke-workload-identity/clients.ts';
import { releaseWorkloadIdentityProviders } from './providers/gke-workload-identity/managed-provider.ts';
import { GkeWorkloadIdentityProvider } from './providers/gke-workload-identity/provider.ts';
import { anonymousGet } from './providers/issuer/anonymous-get.ts';
import { providerRegistry } from './providers/registry.ts';
import { CloudAccountReconciler } from './reconciler/cloud-account.ts';
import { IDENTITY_INDEXERS } from './reconciler/indexes.ts';
import { wireTriggers } from './reconciler/triggers.ts';
import { MANAGED_CONFIG_MAPS_SELECTOR } from './reconciler/workload-identity/config-map.ts';
import { WorkloadIdentityReconciler } from './reconciler/workload-identity/reconciler.ts';

async function main(): Promise<void> {
  const config = loadConfig(process.env, os.hostname());
  const logger = createLogger({ level: config.logLevel, name: 'keyless' });
  const metrics = new Metrics();
  const api = new KubeApi(loadKubeConnection(process.env));

  // The ownership marker must be stable for the cluster's lifetime; the kube-system namespace UID is.
  const cluster = config.clusterName ?? (await api.request<V1Namespace>('GET', '/api/v1/namespaces/kube-system')).metadata?.uid ?? 'unknown';
  logger.info({ cluster, server: api.server, workers: config.workers, resyncMs: config.resyncMs }, 'starting');

  const watchOf = <T extends { metadata?: object }>(name: string, path: string, transform: (obj: T) => T, indexers?: Indexers<T>, labelSelector?: string) =>
    new ResourceWatch<T>({ name, api, path, transform, ...(indexers ? { indexers } : {}), ...(labelSelector ? { labelSelector } : {}), logger, metrics });
  const identities = watchOf<WorkloadIdentity>(WORKLOAD_IDENTITY_PLURAL, `/apis/${GROUP}/${VERSION}/${WORKLOAD_IDENTITY_PLURAL}`, slimmer(), IDENTITY_INDEXERS);
  const accounts = watchOf<CloudAccount>(CLOUD_ACCOUNT_PLURAL, `/apis/${GROUP}/${VERSION}/${CLOUD_ACCOUNT_PLURAL}`, slimmer());
  // Namespaces are read for their labels (namespaceSelector) only.
  const namespaces = watchOf<V1Namespace>('namespaces', '/api/v1/namespaces', slimmer({ drop: ['spec', 'status'] }));
  // Of a ServiceAccount's managedFields, Keyless reads only its own per-cloud apply entries (which annotations it owns).
  const ownManagers = new Set((['aws', 'gcp', 'azure'] as const).map(serviceAccountFieldManager));
  const serviceAccounts = watchOf<V1ServiceAccount>(
    'serviceaccounts',
    '/api/v1/serviceaccounts',
    slimmer({ keepManagedFields: (e) => e.operation === 'Apply' && ownManagers.has(e.manager ?? ''), drop: ['secrets', 'imagePullSecrets'] }),
  );
  // Only the ConfigMaps Keyless writes (credential configurations for Workload Identity Federation's pods).
  const configMaps = watchOf<V1ConfigMap>('configmaps', '/api/v1/configmaps', slimmer(), undefined, MANAGED_CONFIG_MAPS_SELECTOR);

  const kube = createKubePort(api, metrics, config.leaderElection.identity);
  const aws = awsClientCache({ metrics, budget: config.cloudBudget, maxAttempts: config.awsMaxAttempts, callTimeoutMs: config.cloudCallTimeoutMs, endpoints: config.awsEndpoints, resyncMs: config.resyncMs });
  const azure = azureClientCache({ metrics, budget: config.cloudBudget, callTimeoutMs: config.cloudCallTimeoutMs, resyncMs: config.resyncMs, config: loadAzureConfig(process.env) });
  const workloads = createWorkloads(api, metrics);
  const pods = createWorkloadPods(workloads);
  const gcp = gcpClientCache({ metrics, budget: config.cloudBudget, callTimeoutMs: config.cloudCallTimeoutMs, resyncMs: config.resyncMs, ...gcpClientEnv(process.env) });
  const gcpOptions = (account: CloudAccount) => ({ urls: gcp(account).exchangeUrls, federated: Boolean(account.spec.gcp?.workloadIdentityProvider) });
  const providers = providerRegistry({
    'aws/IRSA': (account) => new AwsProvider('IRSA', { ...aws(account), pods }),
    'aws/PodIdentity': (account) => new AwsProvider('PodIdentity', { ...aws(account), pods }),
    'azure/WorkloadIdentity': (account) => new AksWorkloadIdentityProvider(azure(account)),
    'gcp/ServiceAccount': (account) => new GkeWorkloadIdentityProvider('ServiceAccount', gcp(account).gcp, gcp(account).exchange, gcpOptions(account)),
    'gcp/DirectPrincipal': (account) => new GkeWorkloadIdentityProvider('DirectPrincipal', gcp(account).gcp, gcp(account).exchange, gcpOptions(account)),
  });

  const identityReconciler = new WorkloadIdentityReconciler({
    cluster,
    identities,
    accounts,
    serviceAccounts,
    configMaps,
    namespaces,
    workloads,
    providers,
    catalogue: iamDataCatalogue(),
    kube,
    logger,
    verificationGraceMs: config.verificationGraceMs,
  });
  const accountReconciler = new CloudAccountReconciler({
    accounts,
    identities,
    checks: { aws: (account, ctx) => checkAwsAccount(aws(account), account, ctx), azure: (account) => checkAzureAccount(azure(account).msi, account), gcp: (account, ctx) => checkGcpAccount(gcp(account).gcp, account, gcp(account).federation, ctx) },
    releases: {
      aws: (account, ctx) => releaseOidcProviders(aws(account).iam, account, ctx),
      gcp: (account, ctx) => releaseWorkloadIdentityProviders(gcp(account).federation, account, ctx),
    },
    issuerGet: anonymousGet(),
    cluster,
    kube,
    logger,
    verdictTtlMs: config.resyncMs / 2,
  });
  const identityController = new Controller({
    name: 'workloadidentity',
    reconcile: (key) => identityReconciler.reconcile(key),
    onRepeatedFailure: (key, err, failures) => identityReconciler.reportRepeatedFailure(key, err, failures),
    workers: config.workers,
    resyncMs: config.resyncMs,
    reconcileTimeoutMs: config.reconcileTimeoutMs,
    logger,
    metrics,
  });
  const accountController = new Controller({
    name: 'cloudaccount',
    reconcile: (key) => accountReconciler.reconcile(key),
    workers: 1,
    resyncMs: config.resyncMs,
    reconcileTimeoutMs: config.reconcileTimeoutMs,
    logger,
    metrics,
  });
  wireTriggers({ identities, accounts, serviceAccounts, namespaces, configMaps, identityController, accountController });

  const watches = [identities, accounts, serviceAccounts, namespaces, configMaps];
  const server = await startHttpServer({
    port: config.httpPort,
    metrics,
    logger,
    healthy: () => true,
    ready: () => watches.every((w) => w.synced),
  });
  await Promise.all(watches.map((w) => w.start()));
  logger.info({ port: server.port }, 'caches synced');

  const controllers = [accountController, identityController];
  const runControllers = () => {
    for (const c of controllers) {
      c.run().catch((err: unknown) => {
        logger.fatal({ err }, 'controller failed');
        process.exit(1);
      });
    }
  };

  const elector = config.leaderElection.enabled
    ? new LeaderElector({ api, ...config.leaderElection, logger, metrics })
    : undefined;

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await Promise.all(controllers.map((c) => c.stop(20_000)));
    await elector?.stop();
    await Promise.all(watches.map((w) => w.stop()));
    await server.close();
    logger.info('stopped');
    process.exit(0);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => void shutdown(signal));
  }

  if (elector) {
    await elector.run({
      onStartedLeading: () => {
        logger.info('became leader');
        runControllers();
      },
      onStoppedLeading: () => {
        if (stopping) return;
        // Another replica may already be reconciling; stopping here is the only way to be sure we do not.
        logger.fatal('lost leadership');
        process.exit(1);
      },
    });
  } else {
    runControllers();
  }
}

main().catch((err: unknown) => {
  // The logger may not exist yet (bad configuration), so this one goes straight to stderr as JSON.
  process.stderr.write(`${JSON.stringify({ level: 'fatal', msg: 'startup failed', err: err instanceof Error ? err.message : String(err) })}\n`);
  process.exit(1);
});
