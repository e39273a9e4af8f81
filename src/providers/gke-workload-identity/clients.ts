// One GcpPort per CloudAccount, sharing that account's read and write budgets and the reads its identities have in
// common (shared-port.ts).
// Production authenticates with Application Default Credentials (on GKE: the operator's own Workload Identity);
// an emulator endpoint switches every client to it with a fixed access token and no credential lookup.
import { GoogleAuth, OAuth2Client, type AuthClient } from 'google-auth-library';
import type { CloudAccount } from '../../api/types.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { callBudget, instrumentedCall, type BudgetRates } from '../instrument.ts';
import { sharedReadMaxAgeMs } from '../shared-reads.ts';
import { classifyGcpError } from './errors.ts';
import { createGcpPort, DEFAULT_ROOT_URLS, type RootUrls } from './gcp-client.ts';
import { createGcpExchangePort, DEFAULT_EXCHANGE_URLS, type GcpExchangePort } from './exchange-port.ts';
import type { SharedGcpPort } from './gcp-port.ts';
import { shareGcpReads } from './shared-port.ts';

export interface GcpClientOptions {
  metrics: Metrics;
  /** The account's read and write budgets (one pair per CloudAccount). */
  budget: BudgetRates;
  /** The deadline of one call. */
  callTimeoutMs: number;
  /** The operator's resync interval: what the identities share is read again after half of it. */
  resyncMs: number;
  /** Serve every Google API from this root URL (an emulator); undefined in production. */
  endpoint: string | undefined;
  /** The bearer token sent to `endpoint`. */
  accessToken: string;
}

export interface GcpAccountClients {
  gcp: SharedGcpPort;
  exchange: GcpExchangePort;
}

/** Environment variables of the GCP provider, documented in docs/gke-workload-identity.md. */
export function gcpClientEnv(env: Record<string, string | undefined>): Pick<GcpClientOptions, 'endpoint' | 'accessToken'> {
  const endpoint = env['KEYLESS_GCP_ENDPOINT'] || undefined;
  if (endpoint && !/^https?:\/\/[^/]+/.test(endpoint)) throw new Error(`KEYLESS_GCP_ENDPOINT: "${endpoint}" is not an http(s) URL`);
  return { endpoint, accessToken: env['KEYLESS_GCP_ACCESS_TOKEN'] || 'keyless-emulator' };
}

function authFor(opts: GcpClientOptions): AuthClient | GoogleAuth {
  if (!opts.endpoint) return new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  const client = new OAuth2Client();
  client.setCredentials({ access_token: opts.accessToken, expiry_date: Date.now() + 100 * 365 * 24 * 3600 * 1000 });
  return client;
}

export function gcpClientCache(opts: GcpClientOptions): (account: CloudAccount) => GcpAccountClients {
  const auth = authFor(opts);
  const root = opts.endpoint?.replace(/\/*$/, '/');
  const rootUrls: RootUrls = root ? { iam: root, cloudresourcemanager: root, storage: root, secretmanager: root, pubsub: root } : DEFAULT_ROOT_URLS;
  const exchangeUrls = root ? { sts: root, iamcredentials: root } : DEFAULT_EXCHANGE_URLS;
  // In production each API has its own host; the operation in a timeout message says which one.
  const endpoint = opts.endpoint ?? 'https://*.googleapis.com';
  const cache = new Map<string, GcpAccountClients>();
  return (account) => {
    const cached = cache.get(account.metadata.name);
    if (cached) return cached;
    const call = instrumentedCall('gcp', callBudget(opts.budget), opts.metrics, classifyGcpError, { timeoutMs: opts.callTimeoutMs, endpoint });
    const gcp = shareGcpReads(createGcpPort(auth, call, rootUrls), { maxAgeMs: sharedReadMaxAgeMs(opts.resyncMs) });
    const clients = { gcp, exchange: createGcpExchangePort(call, exchangeUrls) };
    cache.set(account.metadata.name, clients);
    return clients;
  };
}
