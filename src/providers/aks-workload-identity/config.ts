// Operator settings for Azure, parsed from the environment main.ts hands over (src/config/config.ts reads the
// cloud-neutral ones). Validated once at start; a bad value stops the process with a message naming the variable.
import { EnvReader } from '../../config/env.ts';

export interface AzureConfig {
  endpoint: string;
  authorityHost: string;
  credential: 'default' | 'static';
  maxRetries: number;
}

export function loadAzureConfig(env: NodeJS.ProcessEnv): AzureConfig {
  const e = new EnvReader(env);
  const config: AzureConfig = {
    // The ARM endpoint; another cloud's (management.usgovcloudapi.net) or a local emulator's.
    endpoint: e.httpsUrl('KEYLESS_AZURE_ENDPOINT', 'https://management.azure.com', 'must be an https:// URL (ARM bearer tokens are refused over http)'),
    // Microsoft Entra, for CredentialsVerified's token exchange; another cloud's or a local emulator's.
    authorityHost: e.httpsUrl('KEYLESS_AZURE_AUTHORITY_HOST', 'https://login.microsoftonline.com'),
    // `default`: DefaultAzureCredential (in a cluster: the operator's own workload identity). `static`: a fixed,
    // meaningless bearer token, only for the local ARM emulator (make dev, the end-to-end tests).
    credential: e.oneOf('KEYLESS_AZURE_CREDENTIAL', ['default', 'static'], 'default'),
    // SDK retries per call: they honour Retry-After on 429; everything else backs off in the work queue.
    maxRetries: e.number('KEYLESS_AZURE_MAX_RETRIES', 2, { int: true, min: 0, max: 5 }),
  };
  e.done();
  return config;
}
