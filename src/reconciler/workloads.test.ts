import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { staleReason } from './workloads.ts';

const pod = (env: Record<string, string>, labels: Record<string, string> = {}, phase = 'Running'): V1Pod => ({
  metadata: { name: 'p', labels },
  spec: { containers: [{ name: 'app', env: Object.entries(env).map(([name, value]) => ({ name, value })) }] },
  status: { phase },
});

describe('staleReason', () => {
  const role = 'arn:aws:iam::123456789012:role/keyless/r';
  it('IRSA: a pod without the injection or with another role is stale', () => {
    assert.match(staleReason(pod({}), 'aws', 'IRSA', { aws: { roleArn: role } }) ?? '', /no IRSA credentials/);
    assert.match(staleReason(pod({ AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/old' }), 'aws', 'IRSA', { aws: { roleArn: role } }) ?? '', /uses role .*old/);
    assert.equal(staleReason(pod({ AWS_ROLE_ARN: role }), 'aws', 'IRSA', { aws: { roleArn: role } }), undefined);
  });
  it('Pod Identity: a pod without the container credentials is stale', () => {
    assert.match(staleReason(pod({}), 'aws', 'PodIdentity', {}) ?? '', /no Pod Identity credentials/);
    assert.equal(staleReason(pod({ AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials' }), 'aws', 'PodIdentity', {}), undefined);
  });
  it('Azure: the label and the client id', () => {
    assert.match(staleReason(pod({ AZURE_CLIENT_ID: 'c' }), 'azure', 'WorkloadIdentity', { azure: { clientId: 'c' } }) ?? '', /label azure.workload.identity\/use/);
    assert.match(staleReason(pod({}, { 'azure.workload.identity/use': 'true' }), 'azure', 'WorkloadIdentity', { azure: { clientId: 'c' } }) ?? '', /no workload identity credentials/);
    assert.equal(staleReason(pod({ AZURE_CLIENT_ID: 'c' }, { 'azure.workload.identity/use': 'true' }), 'azure', 'WorkloadIdentity', { azure: { clientId: 'c' } }), undefined);
  });
  it('ignores finished pods and GKE, which injects nothing', () => {
    assert.equal(staleReason(pod({}, {}, 'Succeeded'), 'aws', 'IRSA', {}), undefined);
    assert.equal(staleReason(pod({}), 'gcp', 'ServiceAccount', {}), undefined);
  });
});
