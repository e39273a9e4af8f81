// Operator settings for Azure, parsed from the environment main.ts hands over (src/config/config.ts reads the
// cloud-neutral ones). Validated once at start; a bad value stops the process with a message naming the variable.
import { z } from 'zod';

const schema = z.object({
  /** The ARM endpoint; another cloud's (management.usgovcloudapi.net) or a local emulator's. */
  KEYLESS_AZURE_ENDPOINT: z.url({ protocol: /^https$/, error: 'must be an https:// URL (ARM bearer tokens are refused over http)' }).default('https://management.azure.com'),
  /**
   * `default`: DefaultAzureCredential (in a cluster: the operator's own workload identity). `static`: a fixed,
   * meaningless bearer token, only for the local ARM emulator (make dev, the end-to-end tests).
   */
  KEYLESS_AZURE_CREDENTIAL: z.enum(['default', 'static']).default('default'),
  /** Microsoft Entra, for CredentialsVerified's token exchange; another cloud's or a local emulator's. */
  KEYLESS_AZURE_AUTHORITY_HOST: z.url({ protocol: /^https$/, error: 'must be an https:// URL' }).default('https://login.microsoftonline.com'),
  /** SDK retries per call: they honour Retry-After on 429; everything else backs off in the work queue. */
  KEYLESS_AZURE_MAX_RETRIES: z.coerce.number().int().min(0).max(5).default(2),
});

export interface AzureConfig {
  endpoint: string;
  authorityHost: string;
  credential: 'default' | 'static';
  maxRetries: number;
}

export function loadAzureConfig(env: NodeJS.ProcessEnv): AzureConfig {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  return { endpoint: e.KEYLESS_AZURE_ENDPOINT.replace(/\/+$/, ''), authorityHost: e.KEYLESS_AZURE_AUTHORITY_HOST.replace(/\/+$/, ''), credential: e.KEYLESS_AZURE_CREDENTIAL, maxRetries: e.KEYLESS_AZURE_MAX_RETRIES };
}
