import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { AZURE_POD_CREDENTIALS } from './pods.ts';

const pod = (env: Record<string, string>, labels: Record<string, string> = {}, phase = 'Running'): V1Pod => ({
  metadata: { name: 'p', labels },
  spec: { containers: [{ name: 'app', env: Object.entries(env).map(([name, value]) => ({ name, value })) }] },
  status: { phase },
});
const status = { azure: { clientId: 'c' } };
const USE = { 'azure.workload.identity/use': 'true' };

describe('AZURE_POD_CREDENTIALS', () => {
  it('a pod without the label gets nothing from the webhook', () => {
    assert.match(AZURE_POD_CREDENTIALS.staleReason(pod({ AZURE_CLIENT_ID: 'c' }), status) ?? '', /label azure.workload.identity\/use/);
  });

  it('a labelled pod started before the annotation has no credentials', () => {
    assert.match(AZURE_POD_CREDENTIALS.staleReason(pod({}, USE), status) ?? '', /no workload identity credentials/);
  });

  it('a labelled pod with another client id is stale; with ours it is current', () => {
    assert.match(AZURE_POD_CREDENTIALS.staleReason(pod({ AZURE_CLIENT_ID: 'old' }, USE), status) ?? '', /uses client id old/);
    assert.equal(AZURE_POD_CREDENTIALS.staleReason(pod({ AZURE_CLIENT_ID: 'c' }, USE), status), undefined);
  });

  it('ignores finished pods', () => {
    assert.equal(AZURE_POD_CREDENTIALS.staleReason(pod({}, {}, 'Failed'), status), undefined);
  });
});
