// Pods that predate their identity: WorkloadsUpToDate is False for a Deployment's pod created before the
// ServiceAccount was annotated and True after a rollout restart; keyless.dev/restart-workloads does that restart.
// As in a real cluster, the EKS pod identity webhook injects IRSA credentials at pod creation and a node (kwok) runs
// the pods, so a rollout replaces them the way it does on EKS (test/support/peers.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { WorkloadIdentity } from '../../src/api/types.ts';
import { startAwsEmulator, TEST_ACCOUNT_ID, type AwsEmulator, createOidcProvider } from '../support/aws.ts';
import { clusterIssuer, eventually, freshNamespace, kubeConfig, kubectl, kubectlApply } from '../support/cluster.ts';
import { awsEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';
import { startPeers, type Peers } from '../support/peers.ts';

const group = { group: 'keyless.dev', version: 'v1alpha1' };

describe('WorkloadsUpToDate', () => {
  let kc: KubeConfig;
  let aws: AwsEmulator;
  let operator: RunningOperator;
  let peers: Peers;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  const account = `e2e-workloads-${randomBytes(3).toString('hex')}`;

  const condition = async (name: string) => {
    const wi = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns, name })) as WorkloadIdentity;
    return wi.status?.conditions?.find((c) => c.type === 'WorkloadsUpToDate');
  };
  const deployment = (name: string, sa: string) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { serviceAccountName: sa, containers: [{ name: 'app', image: 'registry.example/app:1' }] } },
    },
  });
  const workloadIdentity = (name: string, sa: string, annotations: Record<string, string> = {}) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns, annotations },
    spec: { serviceAccountName: sa, cloudAccountRef: { name: account }, aws: { policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::covers/*'] }] } },
  });
  const podsOf = async (app: string) => (await kubectl(['get', 'pods', '-n', ns, '-l', `app=${app}`, '-o', 'name'])).stdout.trim();

  before(async () => {
    kc = kubeConfig();
    aws = await startAwsEmulator();
    const kubeconfig = await installOperator(kc, 'workloads');
    const issuer = await clusterIssuer(kc);
    await createOidcProvider(aws.iam(), issuer);
    peers = await startPeers();
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-workloads');
    operator = await startOperator({ name: 'workloads', kubeconfig, env: { ...awsEnv(aws.endpoint), KEYLESS_RESYNC_SECONDS: '5', KEYLESS_CLUSTER_NAME: 'e2e-cluster' } });
    await kubectlApply({ apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: account }, spec: { aws: { accountId: TEST_ACCOUNT_ID, region: 'us-east-1', oidcIssuer: issuer } } });
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${account}`]);
  });

  after(async () => {
    await peers.removePods(ns);
    await dropNamespace();
    await peers.stop();
    await kubectl(['delete', 'cloudaccount', account, '--ignore-not-found']);
    await operator.stop();
    await aws.stop();
  });

  it('is False for a pod created before the annotation, with the restart to run, and True after a rollout restart', async () => {
    await kubectlApply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web-sa', namespace: ns } }, deployment('web', 'web-sa'));
    const before = await eventually('the Deployment to create its pod', async () => (await podsOf('web')) || undefined);

    await kubectlApply(workloadIdentity('web', 'web-sa'));
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', '-n', ns, 'workloadidentity/web']);
    const stale = await eventually('WorkloadsUpToDate=False', async () => {
      const c = await condition('web');
      return c?.status === 'False' ? c : undefined;
    });
    assert.equal(stale.reason, 'PodsNeedRestart');
    assert.match(stale.message, new RegExp(`${before.replace('pod/', '')} has no IRSA credentials`));
    assert.match(stale.message, new RegExp(`kubectl rollout restart -n ${ns} deployment/web`));

    await kubectl(['rollout', 'restart', '-n', ns, 'deployment/web']);
    const fresh = await eventually('WorkloadsUpToDate=True', async () => {
      const c = await condition('web');
      return c?.status === 'True' ? c : undefined;
    }, 60_000);
    assert.equal(fresh.reason, 'UpToDate');
    assert.notEqual(await podsOf('web'), before, 'a new pod replaced the old one');
  });

  it('restarts the owning Deployment once when the WorkloadIdentity asks for it', async () => {
    await kubectlApply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'api-sa', namespace: ns } }, deployment('api', 'api-sa'));
    await eventually('the Deployment to create its pod', async () => (await podsOf('api')) || undefined);
    await kubectlApply(workloadIdentity('api', 'api-sa', { 'keyless.dev/restart-workloads': 'true' }));
    await eventually('WorkloadsUpToDate=True after the restart', async () => ((await condition('api'))?.status === 'True' ? true : undefined), 60_000);
    const template = (await kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace: ns, name: 'api' })).spec?.template.metadata?.annotations ?? {};
    assert.ok(template['kubectl.kubernetes.io/restartedAt'], 'restarted the way kubectl rollout restart does');
    assert.match(template['keyless.dev/restarted-for'] ?? '', /^arn:aws:iam::123456789012:role\/keyless\/.*@1$/);
    const events = await kubectl(['get', 'events', '-n', ns, '--field-selector', 'involvedObject.name=api,reason=WorkloadsRestarted', '-o', 'jsonpath={.items[*].message}']);
    assert.match(events.stdout, /Restarted deployment\/api/);
  });
});
