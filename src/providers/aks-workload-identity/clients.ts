// One set of ARM clients per CloudAccount, sharing that account's read and write budgets (DESIGN §5), its role-name
// cache, the reads its identities have in common (shared-port.ts), and — across all accounts — the per-identity
// queue for federated-credential writes.
import type { TokenCredential } from '@azure/core-auth';
import type { CloudAccount } from '../../api/types.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { callBudget, instrumentedCall, type BudgetRates } from '../instrument.ts';
import { lazyPort } from '../lazy-port.ts';
import { sharedReadMaxAgeMs } from '../shared-reads.ts';
import type { AuthorizationPort, MsiPort, SharedAuthorizationPort, SharedMsiPort } from './arm-port.ts';
import type { AzureConfig } from './config.ts';
import { classifyAzureError } from './errors.ts';
import type { AzureExchangePort } from './exchange-port.ts';
import { KeyedMutex } from '../keyed-mutex.ts';
import { shareArmReads } from './shared-port.ts';

export interface AzureAccountClients {
  msi: SharedMsiPort;
  authorization: SharedAuthorizationPort;
  exchange: AzureExchangePort;
  credentialWrites: KeyedMutex;
  roleIds: Map<string, string>;
}

export interface AzureClientOptions {
  metrics: Metrics;
  /** The account's read and write budgets (one pair per CloudAccount). */
  budget: BudgetRates;
  /** The deadline of one call, the SDK's own retries included. */
  callTimeoutMs: number;
  /** The operator's resync interval: what the identities share is read again after half of it. */
  resyncMs: number;
  config: AzureConfig;
}

/** For the local ARM emulator only: it wants a bearer token, any token. */
const staticCredential: TokenCredential = {
  getToken: () => Promise.resolve({ token: 'keyless-local-emulator', expiresOnTimestamp: Date.now() + 3_600_000 }),
};

/** The credential ARM calls carry: DefaultAzureCredential, or the local emulator's static token (KEYLESS_AZURE_CREDENTIAL). */
export async function azureCredential(config: Pick<AzureConfig, 'credential'>): Promise<TokenCredential> {
  return config.credential === 'static' ? staticCredential : new (await import('@azure/identity')).DefaultAzureCredential();
}

export function azureClientCache(opts: AzureClientOptions): (account: CloudAccount) => AzureAccountClients {
  const cache = new Map<string, { key: string; clients: AzureAccountClients }>();
  const credentialWrites = new KeyedMutex();
  let credential: Promise<TokenCredential> | undefined;
  // Built on first use, so an operator without Azure accounts never loads the SDK or probes for Azure credentials.
  const credentialFor = () => azureCredential(opts.config);
  return (account) => {
    const spec = account.spec.azure;
    if (!spec) throw new Error(`CloudAccount ${account.metadata.name} has no spec.azure`);
    const key = `${spec.subscriptionId}/${spec.resourceGroup}`.toLowerCase();
    const cached = cache.get(account.metadata.name);
    if (cached?.key === key) return cached.clients;
    const clientOptions = {
      endpoint: opts.config.endpoint,
      // 429 with Retry-After is retried by the SDK; 429 without it is not (cloud-apis.md §5) and reaches the
      // classifier as throttled, so the work queue backs off instead.
      retryOptions: { maxRetries: opts.config.maxRetries },
      userAgentOptions: { userAgentPrefix: 'keyless' },
    };
    const call = instrumentedCall('azure', callBudget(opts.budget), opts.metrics, classifyAzureError, { timeoutMs: opts.callTimeoutMs, endpoint: opts.config.endpoint });
    const shared = shareArmReads(
      lazyPort<MsiPort>(async () => {
        const [{ ManagedServiceIdentityClient }, { createMsiPort }] = await Promise.all([import('@azure/arm-msi'), import('./arm-client.ts')]);
        return createMsiPort(new ManagedServiceIdentityClient(await (credential ??= credentialFor()), spec.subscriptionId, clientOptions), spec.resourceGroup, call);
      }),
      lazyPort<AuthorizationPort>(async () => {
        const [{ AuthorizationManagementClient }, { createAuthorizationPort }] = await Promise.all([import('@azure/arm-authorization'), import('./arm-client.ts')]);
        return createAuthorizationPort(new AuthorizationManagementClient(await (credential ??= credentialFor()), spec.subscriptionId, clientOptions), call);
      }),
      { maxAgeMs: sharedReadMaxAgeMs(opts.resyncMs) },
    );
    const clients: AzureAccountClients = {
      ...shared,
      exchange: lazyPort<AzureExchangePort>(async () => (await import('./exchange-port.ts')).createAzureExchangePort(call, opts.config.authorityHost)),
      credentialWrites,
      roleIds: new Map(),
    };
    cache.set(account.metadata.name, { key, clients });
    return clients;
  };
}
