import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadAzureConfig } from './config.ts';

describe('loadAzureConfig', () => {
  it('defaults to public ARM with DefaultAzureCredential', () => {
    assert.deepEqual(loadAzureConfig({}), { endpoint: 'https://management.azure.com', authorityHost: 'https://login.microsoftonline.com', credential: 'default', maxRetries: 2 });
  });

  it('takes an emulator endpoint and the static credential', () => {
    const config = loadAzureConfig({ KEYLESS_AZURE_ENDPOINT: 'https://127.0.0.1:8443/', KEYLESS_AZURE_AUTHORITY_HOST: 'https://127.0.0.1:8443/', KEYLESS_AZURE_CREDENTIAL: 'static', KEYLESS_AZURE_MAX_RETRIES: '0' });
    assert.deepEqual(config, { endpoint: 'https://127.0.0.1:8443', authorityHost: 'https://127.0.0.1:8443', credential: 'static', maxRetries: 0 });
  });

  it('refuses a plain-http endpoint, naming the variable', () => {
    assert.throws(() => loadAzureConfig({ KEYLESS_AZURE_ENDPOINT: 'http://127.0.0.1:8443' }), /KEYLESS_AZURE_ENDPOINT: must be an https/);
  });
});
