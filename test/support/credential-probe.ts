// A stand-in for an application in a pod: run as a child process with exactly the environment the pod would have,
// it asks one cloud SDK's own credential chain for credentials and prints one JSON line with what came back (or the
// error the chain surfaced). Nothing is configured in code that a pod would configure through its environment,
// except `disableInstanceDiscovery` for Azure (see test/emulators/azure/entra.ts).
//   node test/support/credential-probe.ts aws | aws-container | azure | gcp
//
//   aws            the AWS SDK's default chain (fromNodeProviderChain: env, ini, web identity, container...), then
//                  GetCallerIdentity with the credentials at KEYLESS_PROBE_STS_ENDPOINT: the identity is the ARN.
//   aws-container  the container credentials provider alone (fromHttp), which the default chain uses for EKS Pod
//                  Identity; alone, its errors keep the agent's HTTP status instead of "Could not load credentials".
//   azure          @azure/identity WorkloadIdentityCredential; the identity is the access token's appid claim.
//   gcp            google-auth-library with GOOGLE_APPLICATION_CREDENTIALS (external_account); the access token.
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { fromHttp, fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { WorkloadIdentityCredential } from '@azure/identity';
import { GoogleAuth } from 'google-auth-library';

export interface ProbeResult {
  ok: boolean;
  /** AWS: the caller ARN; Azure: the client id (appid) of the token; GCP: the access token itself. */
  identity?: string;
  claims?: Record<string, unknown>;
  /** The error's class, code and message as the SDK surfaced them. */
  name?: string;
  code?: string;
  status?: number;
  message?: string;
}

async function aws(provider: ReturnType<typeof fromNodeProviderChain>): Promise<ProbeResult> {
  const credentials = await provider();
  const sts = new STSClient({ endpoint: process.env['KEYLESS_PROBE_STS_ENDPOINT'], credentials, maxAttempts: 1 });
  const me = await sts.send(new GetCallerIdentityCommand({}));
  return { ok: true, identity: me.Arn ?? '' };
}

async function azure(): Promise<ProbeResult> {
  const credential = new WorkloadIdentityCredential({ disableInstanceDiscovery: true });
  const token = await credential.getToken('https://management.azure.com/.default');
  const claims = JSON.parse(Buffer.from(token.token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
  return { ok: true, identity: String(claims['appid']), claims };
}

async function gcp(): Promise<ProbeResult> {
  const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  const client = await auth.getClient();
  const { token } = await client.getAccessToken();
  return { ok: true, identity: token ?? '' };
}

function failure(err: unknown): ProbeResult {
  const e = err as { name?: string; Code?: string; code?: unknown; status?: number; $metadata?: { httpStatusCode?: number }; response?: { status?: number; data?: { error?: { status?: string } } }; errorResponse?: { error?: string }; message?: string };
  const code = e.Code ?? e.errorResponse?.error ?? e.response?.data?.error?.status ?? (typeof e.code === 'string' ? e.code : undefined);
  const status = e.$metadata?.httpStatusCode ?? e.response?.status ?? e.status;
  return { ok: false, name: e.name ?? 'Error', ...(code ? { code } : {}), ...(status ? { status } : {}), message: e.message ?? String(err) };
}

const chains: Record<string, () => Promise<ProbeResult>> = {
  aws: () => aws(fromNodeProviderChain()),
  'aws-container': () => aws(fromHttp()),
  azure,
  gcp,
};

const chain = chains[process.argv[2] ?? ''];
if (!chain) throw new Error(`usage: credential-probe.ts ${Object.keys(chains).join(' | ')}`);
const result = await chain().catch(failure);
process.stdout.write(`${JSON.stringify(result)}\n`);
