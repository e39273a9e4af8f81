// config/verification against the real API server: without it the operator may not request ServiceAccount tokens at
// all; with it, only tokens a cloud exchange uses — one cloud audience, at most 600 s — and never one for the API
// server's own audience. Other users are not affected.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { eventually, freshNamespace, kubeConfig, kubeConfigWithToken, kubectl, repoPath, statusCode } from '../support/cluster.ts';
import { installOperator } from '../support/operator.ts';

describe('the token-request RBAC and admission policy of config/verification', () => {
  let admin: KubeConfig;
  let operator: KubeConfig;
  let ns: string;
  let dropNamespace: () => Promise<void>;

  const request = (kc: KubeConfig, spec: { audiences?: string[]; expirationSeconds?: number }) =>
    kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({ namespace: ns, name: 'app', body: { spec: spec } });
  const refusal = async (kc: KubeConfig, spec: { audiences?: string[]; expirationSeconds?: number }) => {
    try {
      await request(kc, spec);
    } catch (err) {
      return { code: statusCode(err), body: String((err as { body?: unknown }).body ?? err) };
    }
    return undefined;
  };

  before(async () => {
    admin = kubeConfig();
    const file = await installOperator(admin, 'verification-policy');
    const token = (JSON.parse(readFileSync(file, 'utf8')) as { users: { user: { token: string } }[] }).users[0]?.user.token ?? '';
    operator = kubeConfigWithToken(admin, token);
    [ns, dropNamespace] = await freshNamespace(admin, 'verify-policy');
    await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'app' } } });
  });

  after(async () => {
    await kubectl(['delete', '-k', repoPath('config/verification'), '--ignore-not-found']);
    await dropNamespace();
  });

  it('gives the operator no token requests without it', async () => {
    await kubectl(['delete', '-k', repoPath('config/verification'), '--ignore-not-found']);
    await eventually('the RBAC to be gone', async () => ((await refusal(operator, { audiences: ['sts.amazonaws.com'], expirationSeconds: 600 }))?.code === 403 ? true : undefined), 30_000);
  });

  it('lets the operator request a cloud-audience token of 600 s, and refuses every other request of it', async () => {
    await kubectl(['apply', '--server-side', '--field-manager=keyless-tests', '-k', repoPath('config/verification')]);
    // RBAC and the policy take effect within moments of being created.
    await eventually('the policy to refuse an API server token', async () => ((await refusal(operator, { expirationSeconds: 600 }))?.code === 422 ? true : undefined), 30_000);
    const federation = 'https://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/my-clusters/providers/prod';
    for (const audience of ['sts.amazonaws.com', 'pods.eks.amazonaws.com', 'api://AzureADTokenExchange', 'my-project.svc.id.goog', federation]) {
      const answer = await eventually(`a ${audience} token`, () => request(operator, { audiences: [audience], expirationSeconds: 600 }));
      assert.ok(answer.status?.token, audience);
    }
    const apiServer = await refusal(operator, { expirationSeconds: 600 });
    assert.equal(apiServer?.code, 422);
    assert.match(apiServer?.body ?? '', /only for one cloud audience/);
    assert.equal((await refusal(operator, { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 600 }))?.code, 422);
    assert.equal((await refusal(operator, { audiences: ['https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x/../../evil'], expirationSeconds: 600 }))?.code, 422);
    assert.equal((await refusal(operator, { audiences: ['sts.amazonaws.com', 'api://AzureADTokenExchange'], expirationSeconds: 600 }))?.code, 422);
    const long = await refusal(operator, { audiences: ['sts.amazonaws.com'], expirationSeconds: 3600 });
    assert.equal(long?.code, 422);
    assert.match(long?.body ?? '', /at most 600 seconds/);
  });

  it('leaves everyone else alone', async () => {
    const answer = await request(admin, { expirationSeconds: 3600 });
    assert.ok(answer.status?.token);
  });
});
