// One set of AWS clients per CloudAccount, sharing that account's call-rate limiter (DESIGN §5: a token bucket
// per cloud account bounds the call rate so bursts are absorbed here instead of surfacing as Throttling).
import { EKSClient } from '@aws-sdk/client-eks';
import { IAMClient } from '@aws-sdk/client-iam';
import { STSClient } from '@aws-sdk/client-sts';
import type { CloudAccount } from '../../api/types.ts';
import { TokenBucket } from '../../controller/token-bucket.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { instrumentedCall } from '../instrument.ts';
import { classifyAwsError } from './errors.ts';
import { createEksPort, type EksPort } from './eks-port.ts';
import { createExchangePort, type ExchangePort } from './exchange-port.ts';
import { createIamPort } from './iam-client.ts';
import type { IamPort } from './iam-port.ts';

export interface AwsAccountClients {
  iam: IamPort;
  eks: EksPort;
  exchange: ExchangePort;
}

export interface AwsClientOptions {
  metrics: Metrics;
  callsPerSecond: number;
  burst: number;
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
    // One bucket for both services: the limit is per account, the deadline message per endpoint.
    const limiter = new TokenBucket({ ratePerSec: opts.callsPerSecond, burst: opts.burst });
    const callTo = (endpoint: string) => instrumentedCall('aws', limiter, opts.metrics, classifyAwsError, { timeoutMs: opts.callTimeoutMs, endpoint });
    const clients = {
      iam: createIamPort(new IAMClient({ region, maxAttempts: opts.maxAttempts }), callTo(opts.endpoints.iam ?? 'https://iam.amazonaws.com')),
      eks: createEksPort(new EKSClient({ region, maxAttempts: opts.maxAttempts }), callTo(opts.endpoints.eks ?? `https://eks.${region}.amazonaws.com`)),
      // The regional STS endpoint, as pods use it (AWS_STS_REGIONAL_ENDPOINTS=regional).
      exchange: createExchangePort({
        sts: new STSClient({ region, maxAttempts: opts.maxAttempts }),
        stsCall: callTo(opts.endpoints.sts ?? `https://sts.${region}.amazonaws.com`),
        eksAuthEndpoint: opts.endpoints.eksAuth ?? `https://eks-auth.${region}.api.aws`,
        eksAuthCall: callTo(opts.endpoints.eksAuth ?? `https://eks-auth.${region}.api.aws`),
        region,
      }),
    };
    cache.set(account.metadata.name, { region, clients });
    return clients;
  };
}
