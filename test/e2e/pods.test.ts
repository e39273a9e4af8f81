// Pods on the local cluster, as on EKS and AKS: kwok's node runs a Deployment's pods, and the real upstream injection
// webhooks (hack/peers.sh) give a pod its cloud identity when it is created. No operator runs here: the tests write
// what the operator would (the ServiceAccount annotations, the Pod Identity association) and check what the webhooks
// make of it — the behaviour the operator's WorkloadsUpToDate condition and its migrations are built on.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateClusterCommand, CreatePodIdentityAssociationCommand, DeletePodIdentityAssociationCommand } from '@aws-sdk/client-eks';
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { startAwsEmulator, TEST_ACCOUNT_ID, type AwsEmulator } from '../support/aws.ts';
import { startTestAzure, TEST_TENANT, type TestAzure } from '../support/azure.ts';
import { eventually, freshNamespace, kubeConfig, kubectl } from '../support/cluster.ts';
import { startPeers, type Peers } from '../support/peers.ts';

const CLUSTER = 'e2e-pods';
const OTHER_CLUSTER = 'e2e-pods-other';
// Where Pod Identity pods would reach the Pod Identity Agent; this file only checks that the webhook injects it.
const AGENT_URI = 'http://127.0.0.1:2703/v1/credentials';
const ROLE_ARN = `arn:aws:iam::${TEST_ACCOUNT_ID}:role/e2e-pods`;
const AZURE_CLIENT_ID = '00000000-0000-0000-0000-0000000000d4';

type Env = Record<string, string | undefined>;

const envOf = (pod: V1Pod): Env => Object.fromEntries((pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
const volume = (pod: V1Pod, name: string) => pod.spec?.volumes?.find((v) => v.name === name);
const tokenAudience = (pod: V1Pod, name: string) => volume(pod, name)?.projected?.sources?.find((s) => s.serviceAccountToken)?.serviceAccountToken?.audience;

describe('pods on the local cluster', () => {
  let kc: KubeConfig;
  let core: CoreV1Api;
  let aws: AwsEmulator;
  let azure: TestAzure;
  let peers: Peers | undefined;
  let ns: string;
  let dropNamespace: (() => Promise<void>) | undefined;

  const serviceAccount = (name: string, annotations: Record<string, string> = {}) =>
    core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name, annotations } } });
  const pod = (name: string, sa: string, labels: Record<string, string> = {}): V1Pod => ({
    metadata: { name, namespace: ns, labels },
    spec: { serviceAccountName: sa, containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  });
  const create = (body: V1Pod) => core.createNamespacedPod({ namespace: ns, body });
  // A server-side dry run goes through admission, webhooks included, and stores nothing: what a pod created now gets.
  const wouldGet = (body: V1Pod) => core.createNamespacedPod({ namespace: ns, body, dryRun: 'All' });
  const associate = (cluster: string, sa: string) =>
    aws.eks().send(new CreatePodIdentityAssociationCommand({ clusterName: cluster, namespace: ns, serviceAccount: sa, roleArn: ROLE_ARN }));

  before(async () => {
    kc = kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    aws = await startAwsEmulator();
    azure = await startTestAzure();
    for (const name of [CLUSTER, OTHER_CLUSTER]) {
      await aws.eks().send(new CreateClusterCommand({ name, roleArn: `arn:aws:iam::${TEST_ACCOUNT_ID}:role/eks`, resourcesVpcConfig: { subnetIds: ['subnet-1'] } }));
    }
    peers = await startPeers({
      podIdentity: { emulator: aws.eksEndpoint, cluster: CLUSTER },
      containerCredentialsFullUri: AGENT_URI,
      azureTenantId: TEST_TENANT,
      azureAuthorityHost: azure.emulator.endpoint,
    });
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-pods');
  });

  after(async () => {
    // Before the peers stop: kwok, as the kubelet, finishes the deletion of the pods that ran.
    await peers?.removePods(ns);
    await dropNamespace?.();
    await peers?.stop();
    await azure.stop();
    await aws.stop();
  });

  it("runs a Deployment's pods on the kwok node", async () => {
    const labels = { app: 'web' };
    await kubectl(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: ns },
      spec: { replicas: 2, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'app', image: 'registry.example/web:1' }] } } },
    }));
    await kubectl(['rollout', 'status', '-n', ns, 'deployment/web', '--timeout=60s']);
    const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' })).items;
    assert.equal(pods.length, 2);
    for (const p of pods) {
      assert.equal(p.spec?.nodeName, peers?.node);
      assert.equal(p.status?.phase, 'Running');
      assert.ok(p.status?.containerStatuses?.[0]?.state?.running, 'its container runs');
    }
  });

  it('injects IRSA into a pod created after the ServiceAccount annotation, and not into one created before', async () => {
    await serviceAccount('irsa-sa');
    const early = await create(pod('irsa-early', 'irsa-sa'));
    assert.equal(envOf(early)['AWS_ROLE_ARN'], undefined);
    assert.equal(volume(early, 'aws-iam-token'), undefined);

    await kubectl(['annotate', '-n', ns, 'serviceaccount/irsa-sa', `eks.amazonaws.com/role-arn=${ROLE_ARN}`]);
    // The webhook reads ServiceAccounts from its informer's cache, which follows the annotation within moments.
    await eventually('the webhook to see the annotation', async () => (envOf(await wouldGet(pod('irsa-probe', 'irsa-sa')))['AWS_ROLE_ARN'] ? true : undefined));
    const late = await create(pod('irsa-late', 'irsa-sa'));

    assert.equal(envOf(late)['AWS_ROLE_ARN'], ROLE_ARN);
    assert.equal(envOf(late)['AWS_WEB_IDENTITY_TOKEN_FILE'], '/var/run/secrets/eks.amazonaws.com/serviceaccount/token');
    assert.equal(tokenAudience(late, 'aws-iam-token'), 'sts.amazonaws.com');
    const earlyNow = await core.readNamespacedPod({ namespace: ns, name: 'irsa-early' });
    assert.equal(envOf(earlyNow)['AWS_ROLE_ARN'], undefined, 'a running pod never gets credentials it was created without');
  });

  it('injects EKS Pod Identity for a ServiceAccount with an association in this cluster, and not in another', async () => {
    await serviceAccount('pod-identity-sa');
    await serviceAccount('elsewhere-sa');
    // The other cluster's association first: once this cluster's shows, the webhook has seen both.
    await associate(OTHER_CLUSTER, 'elsewhere-sa');
    await associate(CLUSTER, 'pod-identity-sa');
    await eventually('the webhook to learn the association', async () =>
      (envOf(await wouldGet(pod('pod-identity-probe', 'pod-identity-sa')))['AWS_CONTAINER_CREDENTIALS_FULL_URI'] ? true : undefined));

    const associated = await create(pod('pod-identity', 'pod-identity-sa'));
    assert.equal(envOf(associated)['AWS_CONTAINER_CREDENTIALS_FULL_URI'], AGENT_URI);
    assert.equal(envOf(associated)['AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE'], '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token');
    assert.equal(tokenAudience(associated, 'eks-pod-identity-token'), 'pods.eks.amazonaws.com');
    assert.equal(envOf(associated)['AWS_ROLE_ARN'], undefined, 'Pod Identity, not IRSA');

    const elsewhere = await create(pod('elsewhere', 'elsewhere-sa'));
    assert.equal(envOf(elsewhere)['AWS_CONTAINER_CREDENTIALS_FULL_URI'], undefined);
    assert.equal(volume(elsewhere, 'eks-pod-identity-token'), undefined);
  });

  it('stops injecting EKS Pod Identity into new pods once the association is deleted', async () => {
    await serviceAccount('revoked-sa');
    const { association } = await associate(CLUSTER, 'revoked-sa');
    const injected = async () => envOf(await wouldGet(pod('revoked-probe', 'revoked-sa')))['AWS_CONTAINER_CREDENTIALS_FULL_URI'] !== undefined;
    await eventually('the webhook to learn the association', async () => ((await injected()) ? true : undefined));

    await aws.eks().send(new DeletePodIdentityAssociationCommand({ clusterName: CLUSTER, associationId: association?.associationId }));
    await eventually('the webhook to forget the association', async () => ((await injected()) ? undefined : true));
  });

  it('injects Azure workload identity into a labelled pod, and not into an unlabelled one', async () => {
    await serviceAccount('azure-sa', { 'azure.workload.identity/client-id': AZURE_CLIENT_ID });
    const labelled = await create(pod('azure-labelled', 'azure-sa', { 'azure.workload.identity/use': 'true' }));
    const env = envOf(labelled);
    assert.equal(env['AZURE_CLIENT_ID'], AZURE_CLIENT_ID);
    assert.equal(env['AZURE_TENANT_ID'], TEST_TENANT);
    assert.equal(env['AZURE_AUTHORITY_HOST'], azure.emulator.endpoint);
    const tokenFile = env['AZURE_FEDERATED_TOKEN_FILE'] ?? '';
    const mount = labelled.spec?.containers[0]?.volumeMounts?.find((m) => tokenFile.startsWith(`${m.mountPath}/`));
    assert.ok(mount, `a volume is mounted where ${tokenFile} is`);
    assert.equal(tokenAudience(labelled, mount.name), 'api://AzureADTokenExchange');

    const unlabelled = await create(pod('azure-unlabelled', 'azure-sa'));
    assert.deepEqual(Object.keys(envOf(unlabelled)).filter((name) => name.startsWith('AZURE_')), []);
  });
});
