import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { awsPodCredentials, dependsOn } from './workload-pods.ts';

const pod = (env: string[], volumes: string[] = [], phase = 'Running'): V1Pod => ({
  spec: { containers: [{ name: 'app', env: env.map((name) => ({ name, value: 'x' })) }], volumes: volumes.map((name) => ({ name })) },
  status: { phase },
});

describe('dependsOn', () => {
  it('sees the IRSA webhook injection', () => {
    assert.ok(dependsOn(pod(['AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE'], ['aws-iam-token']), 'IRSA'));
    assert.ok(!dependsOn(pod([]), 'IRSA'));
  });

  it('counts a pod injected for both as IRSA: the SDKs prefer the web identity token', () => {
    const both = pod(['AWS_ROLE_ARN', 'AWS_CONTAINER_CREDENTIALS_FULL_URI'], ['aws-iam-token', 'eks-pod-identity-token']);
    assert.ok(dependsOn(both, 'IRSA'));
    assert.ok(!dependsOn(both, 'PodIdentity'));
    assert.ok(dependsOn(pod(['AWS_CONTAINER_CREDENTIALS_FULL_URI'], ['eks-pod-identity-token']), 'PodIdentity'));
  });

  it('counts an IRSA pod only when it points at this role', () => {
    const p = pod(['AWS_ROLE_ARN'], ['aws-iam-token']);
    assert.ok(dependsOn(p, 'IRSA', 'x'), 'the fixture sets AWS_ROLE_ARN to x');
    assert.ok(!dependsOn(p, 'IRSA', 'arn:aws:iam::123456789012:role/other'));
  });

  it('ignores finished pods', () => {
    assert.ok(!dependsOn(pod(['AWS_ROLE_ARN'], [], 'Succeeded'), 'IRSA'));
  });
});

describe('awsPodCredentials', () => {
  const role = 'arn:aws:iam::123456789012:role/keyless/r';
  const envPod = (env: Record<string, string>, phase = 'Running'): V1Pod => ({
    metadata: { name: 'p' },
    spec: { containers: [{ name: 'app', env: Object.entries(env).map(([name, value]) => ({ name, value })) }] },
    status: { phase },
  });
  const irsa = awsPodCredentials('IRSA');
  const podIdentity = awsPodCredentials('PodIdentity');

  it('IRSA: a pod without the injection, or pointed at another role, is stale', () => {
    assert.match(irsa.staleReason(envPod({}), { aws: { roleArn: role } }) ?? '', /no IRSA credentials/);
    assert.match(irsa.staleReason(envPod({ AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/old' }), { aws: { roleArn: role } }) ?? '', /uses role .*old/);
    assert.equal(irsa.staleReason(envPod({ AWS_ROLE_ARN: role }), { aws: { roleArn: role } }), undefined);
  });

  it('Pod Identity: a pod without the container credentials is stale', () => {
    assert.match(podIdentity.staleReason(envPod({}), {}) ?? '', /no Pod Identity credentials/);
    assert.equal(podIdentity.staleReason(envPod({ AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials' }), {}), undefined);
  });

  it('Pod Identity: a pod injected for both still uses IRSA, as dependsOn says', () => {
    const both = envPod({ AWS_ROLE_ARN: role, AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://169.254.170.23/v1/credentials' });
    assert.match(podIdentity.staleReason(both, {}) ?? '', /still uses IRSA/);
    assert.ok(dependsOn(both, 'IRSA'));
  });

  it('ignores finished pods', () => {
    assert.equal(irsa.staleReason(envPod({}, 'Succeeded'), {}), undefined);
  });
});
