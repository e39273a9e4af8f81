// One GcpPort per CloudAccount, sharing that account's read and write budgets and the reads its identities have in
// common (shared-port.ts).
// Production authenticates with Application Default Credentials (on GKE: the operator's own Workload Identity);
// an emulator endpoint switches every client to it with a fixed access token and no credential lookup.
import type { AuthClient, GoogleAuth } from 'google-auth-library';
import type { CloudAccount } from '../../api/types.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { callBudget, instrumentedCall, type BudgetRates } from '../instrument.ts';
import { lazyPort } from '../lazy-port.ts';
import { sharedReadMaxAgeMs } from '../shared-reads.ts';
import { classifyGcpError } from './errors.ts';
import type { GcpExchangePort } from './exchange-port.ts';
import { GOOGLE_EXCHANGE_URLS, type ExchangeUrls } from './federation.ts';
import type { FederationPort } from './federation-port.ts';
import type { RootUrls } from './gcp-client.ts';
import type { GcpPort, SharedGcpPort } from './gcp-port.ts';
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
  /** The pool and provider reads of the CloudAccount check (Workload Identity Federation). */
  federation: FederationPort;
  /** Where pods exchange their tokens: what the credential configurations Keyless writes name. */
  exchangeUrls: ExchangeUrls;
}

/** Environment variables of the GCP provider, documented in docs/gke-workload-identity.md. */
export function gcpClientEnv(env: Record<string, string | undefined>): Pick<GcpClientOptions, 'endpoint' | 'accessToken'> {
  const endpoint = env['KEYLESS_GCP_ENDPOINT'] || undefined;
  if (endpoint && !/^https?:\/\/[^/]+/.test(endpoint)) throw new Error(`KEYLESS_GCP_ENDPOINT: "${endpoint}" is not an http(s) URL`);
  return { endpoint, accessToken: env['KEYLESS_GCP_ACCESS_TOKEN'] || 'keyless-emulator' };
}

/** Application Default Credentials, or the fixed token of an emulator endpoint (kubectl keyless migrate uses it too). */
export async function authFor(opts: Pick<GcpClientOptions, 'endpoint' | 'accessToken'>): Promise<AuthClient | GoogleAuth> {
  const { GoogleAuth, OAuth2Client } = await import('google-auth-library');
  if (!opts.endpoint) return new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  const client = new OAuth2Client();
  client.setCredentials({ access_token: opts.accessToken, expiry_date: Date.now() + 100 * 365 * 24 * 3600 * 1000 });
  return client;
}

/** The Google clients load (with google-auth-library and the @googleapis packages) on the first call of a GCP account. */
export function gcpClientCache(opts: GcpClientOptions): (account: CloudAccount) => GcpAccountClients {
  let auth: Promise<AuthClient | GoogleAuth> | undefined;
  const root = opts.endpoint?.replace(/\/*$/, '/');
  // In production each API has its own host; the operation in a timeout message says which one.
  const endpoint = opts.endpoint ?? 'https://*.googleapis.com';
  const cache = new Map<string, GcpAccountClients>();
  const exchangeUrls: ExchangeUrls = root ? { sts: root, iamcredentials: root } : GOOGLE_EXCHANGE_URLS;
  return (account) => {
    const cached = cache.get(account.metadata.name);
    if (cached) return cached;
    const call = instrumentedCall('gcp', callBudget(opts.budget), opts.metrics, classifyGcpError, { timeoutMs: opts.callTimeoutMs, endpoint });
    const clients = {
      gcp: shareGcpReads(
        lazyPort<GcpPort>(async () => {
          const { createGcpPort, DEFAULT_ROOT_URLS } = await import('./gcp-client.ts');
          const rootUrls: RootUrls = root ? { iam: root, cloudresourcemanager: root, storage: root, secretmanager: root, pubsub: root } : DEFAULT_ROOT_URLS;
          return createGcpPort(await (auth ??= authFor(opts)), call, rootUrls);
        }),
        { maxAgeMs: sharedReadMaxAgeMs(opts.resyncMs) },
      ),
      exchange: lazyPort<GcpExchangePort>(async () => {
        const { createGcpExchangePort } = await import('./exchange-port.ts');
        return createGcpExchangePort(call, exchangeUrls);
      }),
      federation: lazyPort<FederationPort>(async () => {
        const { createFederationPort, DEFAULT_ROOT_URLS } = await import('./gcp-client.ts');
        return createFederationPort(await (auth ??= authFor(opts)), call, root ?? DEFAULT_ROOT_URLS.iam);
      }),
      exchangeUrls,
    };
    cache.set(account.metadata.name, clients);
    return clients;
  };
}
