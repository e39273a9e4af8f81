// The token exchanges a pod's AWS SDK performs, for CredentialsVerified: STS AssumeRoleWithWebIdentity (IRSA) and EKS
// Auth AssumeRoleForPodIdentity (what the EKS Pod Identity Agent calls for a pod). Only the identity the cloud
// answered with is returned; the credentials are dropped on the spot and never logged.
import { AssumeRoleWithWebIdentityCommand, type STSClient } from '@aws-sdk/client-sts';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { CloudCall } from '../instrument.ts';

export interface ExchangePort {
  /** The assumed role's ARN (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION). */
  assumeRoleWithWebIdentity(roleArn: string, token: string): Promise<string>;
  /** The assumed role's ARN, for the association of the token's namespace and ServiceAccount. */
  assumeRoleForPodIdentity(clusterName: string, token: string): Promise<string>;
}

/** An EKS Auth error as the API returns it (restJson1: `x-amzn-errortype`, `message`). */
class EksAuthError extends Error {
  readonly $metadata: { httpStatusCode: number };
  constructor(code: string, message: string, status: number) {
    super(message);
    // The wire code, where classifyAwsError reads it.
    this.name = code;
    this.$metadata = { httpStatusCode: status };
  }
}

/**
 * There is no @aws-sdk/client-eks-auth on the registry this project installs from, so the one EKS Auth call is made
 * here, signed with SigV4 for service `eks-auth` like the SDK would
 * (https://docs.aws.amazon.com/eks/latest/APIReference/API_auth_AssumeRoleForPodIdentity.html).
 */
async function assumeRoleForPodIdentity(
  endpoint: string,
  region: string,
  credentials: STSClient['config']['credentials'],
  clusterName: string,
  token: string,
  signal: AbortSignal,
): Promise<string> {
  const url = new URL(`${endpoint.replace(/\/+$/, '')}/clusters/${encodeURIComponent(clusterName)}/assume-role-for-pod-identity`);
  const body = JSON.stringify({ token });
  const signer = new SignatureV4({ service: 'eks-auth', region, credentials, sha256: Hash.bind(null, 'sha256') });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    headers: { host: url.host, 'content-type': 'application/json' },
    body,
  });
  const res = await fetch(url, { method: 'POST', headers: signed.headers, body, signal });
  const text = await res.text();
  const parsed = (text ? JSON.parse(text) : {}) as { assumedRoleUser?: { arn?: string }; message?: string; Message?: string; __type?: string };
  if (!res.ok) {
    const code = (res.headers.get('x-amzn-errortype') ?? parsed.__type ?? `Http${res.status}`).split(':')[0]?.split('#').pop() ?? 'Unknown';
    throw new EksAuthError(code, parsed.message ?? parsed.Message ?? text, res.status);
  }
  return parsed.assumedRoleUser?.arn ?? '';
}

export function createExchangePort(opts: { sts: STSClient; stsCall: CloudCall; eksAuthCall: CloudCall; eksAuthEndpoint: string; region: string }): ExchangePort {
  const send = opts.sts.send.bind(opts.sts);
  return {
    async assumeRoleWithWebIdentity(roleArn, token) {
      const out = await opts.stsCall('AssumeRoleWithWebIdentity', (abortSignal) =>
        send(new AssumeRoleWithWebIdentityCommand({ RoleArn: roleArn, WebIdentityToken: token, RoleSessionName: 'keyless-verification', DurationSeconds: 900 }), { abortSignal }),
      );
      return out.AssumedRoleUser?.Arn ?? '';
    },
    async assumeRoleForPodIdentity(clusterName, token) {
      return opts.eksAuthCall('AssumeRoleForPodIdentity', (signal) =>
        assumeRoleForPodIdentity(opts.eksAuthEndpoint, opts.region, opts.sts.config.credentials, clusterName, token, signal),
      );
    },
  };
}
