// One set of AWS clients per CloudAccount, each service with its own read and write budget (DESIGN §5: token buckets
// per cloud account bound the call rate so bursts are absorbed here instead of surfacing as Throttling). IAM and EKS
// throttle independently, so a Pod Identity association never spends IAM's write budget.
import type { CloudAccount } from '../../api/types.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { callBudget, instrumentedCall, type BudgetRates } from '../instrument.ts';
import { classifyAwsError } from './errors.ts';
import { lazyPort } from '../lazy-port.ts';
import type { EksPort } from './eks-port.ts';
import type { ExchangePort } from './exchange-port.ts';
import type { IamPort } from './iam-port.ts';

export interface AwsAccountClients {
  iam: IamPort;
  eks: EksPort;
  exchange: ExchangePort;
}

export interface AwsClientOptions {
  metrics: Metrics;
  /** The account's read and write budgets (one pair per CloudAccount). */
  budget: BudgetRates;
  maxAttempts: number;
  /** The deadline of one call (the SDK's own retries included). */
  callTimeoutMs: number;
  /** AWS_ENDPOINT_URL_IAM / _EKS as the SDK will use them (config.ts); undefined means AWS's public endpoints. */
  endpoints: { iam: string | undefined; eks: string | undefined; sts: string | undefined; eksAuth: string | undefined };
}

export function awsClientCache(opts: AwsClientOptions): (account: CloudAccount) => AwsAccountClients {
  const cache = new Map<string, { region: string; clients: AwsAccountClients }>();
  return (account) => {
    const region = account.spec.aws?.region ?? 'us-east-1';
    const cached = cache.get(account.metadata.name);
    if (cached?.region === region) return cached.clients;
    const callTo = (endpoint: string) => instrumentedCall('aws', callBudget(opts.budget), opts.metrics, classifyAwsError, { timeoutMs: opts.callTimeoutMs, endpoint });
    // Each SDK loads on its port's first call: EKS only with Pod Identity, STS only with verification.
    const iamCall = callTo(opts.endpoints.iam ?? 'https://iam.amazonaws.com');
    const eksCall = callTo(opts.endpoints.eks ?? `https://eks.${region}.amazonaws.com`);
    // The regional STS endpoint, as pods use it (AWS_STS_REGIONAL_ENDPOINTS=regional).
    const stsCall = callTo(opts.endpoints.sts ?? `https://sts.${region}.amazonaws.com`);
    const eksAuthEndpoint = opts.endpoints.eksAuth ?? `https://eks-auth.${region}.api.aws`;
    const eksAuthCall = callTo(eksAuthEndpoint);
    const clients = {
      iam: lazyPort<IamPort>(async () => {
        const [{ IAMClient }, { createIamPort }] = await Promise.all([import('@aws-sdk/client-iam'), import('./iam-client.ts')]);
        return createIamPort(new IAMClient({ region, maxAttempts: opts.maxAttempts }), iamCall);
      }),
      eks: lazyPort<EksPort>(async () => {
        const [{ EKSClient }, { createEksPort }] = await Promise.all([import('@aws-sdk/client-eks'), import('./eks-port.ts')]);
        return createEksPort(new EKSClient({ region, maxAttempts: opts.maxAttempts }), eksCall);
      }),
      exchange: lazyPort<ExchangePort>(async () => {
        const [{ STSClient }, { createExchangePort }] = await Promise.all([import('@aws-sdk/client-sts'), import('./exchange-port.ts')]);
        return createExchangePort({ sts: new STSClient({ region, maxAttempts: opts.maxAttempts }), stsCall, eksAuthEndpoint, eksAuthCall, region });
      }),
    };
    cache.set(account.metadata.name, { region, clients });
    return clients;
  };
}
