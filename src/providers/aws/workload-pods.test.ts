import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { dependsOn } from './workload-pods.ts';

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
