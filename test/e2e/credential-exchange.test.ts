// The clouds' token exchanges end to end: the real operator provisions IRSA, EKS Pod Identity, GKE Workload Identity
// (ServiceAccount and DirectPrincipal) and AKS workload identity on the emulators; pods are created on kwok's node,
// where the real EKS pod identity and Azure workload identity webhooks inject their environment and token volumes
// (test/support/peers.ts). Then, for each, a ServiceAccount token is minted as the projected volume would mint it
// (TokenRequest with the volume's audience and expiration, bound to the pod) and the cloud SDK's own credential chain
// runs in a child process with the pod's injected environment. The emulators check each exchange as the cloud does (signature against the control plane's JWKS,
// issuer, audience, expiry, subject against the trust Keyless wrote), so the right identity comes back and every
// wrong token is refused with the cloud's own error. Deleting a WorkloadIdentity revokes: the exchange fails after.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it, type TestContext } from 'node:test';
import { CreateClusterCommand, CreatePodIdentityAssociationCommand } from '@aws-sdk/client-eks';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { WorkloadIdentity } from '../../src/api/types.ts';
import { kubernetesIssuer } from '../emulators/oidc/kubernetes.ts';
import { createOidcProvider, startAwsEmulator, TEST_ACCOUNT_ID, TEST_REGION, type AwsEmulator } from '../support/aws.ts';
import { DATA_RESOURCE_GROUP, TEST_RESOURCE_GROUP, TEST_SUBSCRIPTION, TEST_TENANT, startTestAzure, type TestAzure } from '../support/azure.ts';
import { eventually, freshNamespaces, kubeConfig, kubectl, kubectlApply } from '../support/cluster.ts';
import { forgeToken, mintToken, podEnvironment, probe, scratchDir, writeFile, type ProbeResult } from '../support/exchange.ts';
import { startGcpTestEmulator, type GcpTestEmulator } from '../support/gcp.ts';
import { awsEnv, azureEnv, gcpEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';
import { startPeers, type Peers } from '../support/peers.ts';

const group = { group: 'keyless.dev', version: 'v1alpha1' };
const suffix = randomBytes(3).toString('hex');
const CLUSTER = 'e2e-exchange';
const PROJECT = `e2e-exchange-${suffix}`;
const PROJECT_NUMBER = String(randomInt(100_000_000, 999_999_999));
const POOL = `${PROJECT}.svc.id.goog`;
/** The identity provider GKE's metadata server names after the pool in the STS audience. */
const GKE_PROVIDER = `https://container.googleapis.com/v1/projects/${PROJECT}/locations/us-central1/clusters/${CLUSTER}`;
const AUDIENCE = { irsa: 'sts.amazonaws.com', podIdentity: 'pods.eks.amazonaws.com', azure: 'api://AzureADTokenExchange', gke: POOL };
/** What the EKS pod identity webhook asks the kubelet for; the Azure and GKE projections use an hour. */
const DAY = 86400;
/** The shortest token TokenRequest issues; the expiry cases then move the emulated cloud's clock past it. */
const SHORTEST = 600;
const account = { aws: `e2e-exchange-aws-${suffix}`, gcp: `e2e-exchange-gcp-${suffix}`, azure: `e2e-exchange-azure-${suffix}` };

interface Refusal {
  what: string;
  /** The error the chain surfaces: its code (or class) and a pattern of its message. */
  code: string;
  message: RegExp;
  run: () => Promise<ProbeResult>;
}

describe('Token exchanges through the SDKs’ own credential chains', () => {
  let kc: KubeConfig;
  let issuer: string;
  let aws: AwsEmulator;
  let gcp: GcpTestEmulator;
  let azure: TestAzure;
  let operator: RunningOperator;
  let peers: Peers;
  let ns: string;
  let otherNs: string;
  let dropNamespaces: () => Promise<void>;
  let dir: string;
  let dropDir: () => void;
  /** Pods whose tokens the tests mint, by ServiceAccount; `early` was created before IRSA annotated irsa-sa. */
  const pods = new Map<string, V1Pod>();

  const core = () => kc.makeApiClient(CoreV1Api);
  const getWI = async (name: string) => (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns, name })) as WorkloadIdentity;
  const serviceAccount = (namespace: string, name: string) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } });
  const workloadIdentity = (name: string, sa: string, cloudAccount: string, spec: object) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns },
    spec: { serviceAccountName: sa, cloudAccountRef: { name: cloudAccount }, ...spec },
  });
  /** A pod of `sa`; the Azure webhook acts only on pods labelled for it, as on AKS. */
  const podOf = (namespace: string, name: string, sa: string): V1Pod => ({
    metadata: { name, namespace, labels: sa === 'aks-sa' ? { 'azure.workload.identity/use': 'true' } : {} },
    spec: { serviceAccountName: sa, containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
  });
  const createPod = async (namespace: string, name: string, sa: string) => core().createNamespacedPod({ namespace, body: podOf(namespace, name, sa) });
  /** Waits until a pod of `sa` created now gets `variable` from the webhooks (a server-side dry run goes through them). */
  const injects = (sa: string, variable: string) =>
    eventually(`the webhooks to inject ${variable} for ${sa}`, async () => {
      const pod = await core().createNamespacedPod({ namespace: ns, body: podOf(ns, `${sa}-probe`, sa), dryRun: 'All' });
      return pod.spec?.containers[0]?.env?.some((e) => e.name === variable) ? true : undefined;
    });
  /** A token of `namespace/sa` bound to its pod when the test made one, written to a file. */
  const tokenFile = async (namespace: string, sa: string, audience: string, expirationSeconds: number, transform: (t: string) => string = (t) => t) => {
    const pod = namespace === ns ? pods.get(sa) : undefined;
    return writeFile(dir, transform(await mintToken(kc, namespace, sa, { audience, expirationSeconds, ...(pod ? { pod } : {}) })));
  };
  const refused = async (t: TestContext, refusal: Refusal) => {
    const result = await refusal.run();
    t.diagnostic(`${refusal.what}: ${JSON.stringify(result)}`);
    assert.equal(result.ok, false, `${refusal.what} must not get credentials (got ${result.identity ?? ''})`);
    assert.ok(result.code === refusal.code || result.name === refusal.code || result.message?.includes(refusal.code), `${refusal.what}: expected ${refusal.code}, got ${JSON.stringify(result)}`);
    assert.match(result.message ?? '', refusal.message);
  };
  /** Runs `fn` with every emulated cloud's clock `seconds` ahead, as if that much time had passed. */
  const later = async <T>(seconds: number, fn: () => Promise<T>): Promise<T> => {
    aws.tokens.setClockOffset(seconds);
    azure.emulator.entra.clockOffsetSeconds = seconds;
    await gcp.setClock(seconds);
    try {
      return await fn();
    } finally {
      aws.tokens.setClockOffset(0);
      azure.emulator.entra.clockOffsetSeconds = 0;
      await gcp.setClock(0);
    }
  };
  const deleteIdentity = (name: string) => kubectl(['delete', '-n', ns, `workloadidentity/${name}`, '--wait=true', '--timeout=60s']);

  before(async () => {
    kc = kubeConfig();
    const source = await kubernetesIssuer(kc);
    issuer = source.issuer;
    [dir, dropDir] = scratchDir();
    aws = await startAwsEmulator({ issuers: [source], clusters: [{ name: CLUSTER, issuer }], podIdentityAgent: CLUSTER });
    await aws.eks().send(new CreateClusterCommand({ name: CLUSTER, roleArn: `arn:aws:iam::${TEST_ACCOUNT_ID}:role/eks`, resourcesVpcConfig: { subnetIds: ['subnet-1'] } }));
    await createOidcProvider(aws.iam(), issuer);
    gcp = await startGcpTestEmulator({ issuers: [source], pools: [{ pool: POOL, issuer, identityProvider: GKE_PROVIDER }] });
    await gcp.addProject(PROJECT, PROJECT_NUMBER);
    azure = await startTestAzure({}, [source]);

    const operatorKubeconfig = await installOperator(kc, 'credential-exchange');
    peers = await startPeers({
      podIdentity: { emulator: aws.eksEndpoint, cluster: CLUSTER },
      containerCredentialsFullUri: aws.tokens.agentUri ?? '',
      azureTenantId: TEST_TENANT,
      azureAuthorityHost: azure.emulator.endpoint,
    });
    let namespaces: string[];
    [namespaces, dropNamespaces] = await freshNamespaces(kc, 'e2e-exchange', 'e2e-exchange-other');
    [ns = '', otherNs = ''] = namespaces;
    operator = await startOperator({
      name: 'credential-exchange',
      kubeconfig: operatorKubeconfig,
      env: {
        ...awsEnv(aws.endpoint),
        AWS_ENDPOINT_URL_EKS_AUTH: aws.endpoint,
        ...gcpEnv(gcp.endpoint),
        ...azureEnv(azure.emulator.endpoint, azure.caFile),
        KEYLESS_RESYNC_SECONDS: '5',
        KEYLESS_CLUSTER_NAME: CLUSTER,
      },
    });
    // Operators of suites running beside this one share the leader Lease: wait for our turn.
    await eventually('the operator to lead', async () => ((await operator.metric('keyless_leader')) === 1 ? true : undefined), 600_000);

    await kubectlApply(
      { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: account.aws }, spec: { aws: { accountId: TEST_ACCOUNT_ID, region: TEST_REGION, clusterName: CLUSTER, oidcIssuer: issuer } } },
      { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: account.gcp }, spec: { gcp: { projectId: PROJECT, projectNumber: PROJECT_NUMBER, mechanism: 'ServiceAccount' } } },
      {
        apiVersion: 'keyless.dev/v1alpha1',
        kind: 'CloudAccount',
        metadata: { name: account.azure },
        spec: { azure: { subscriptionId: TEST_SUBSCRIPTION, tenantId: TEST_TENANT, resourceGroup: TEST_RESOURCE_GROUP, location: 'eastus', oidcIssuer: issuer } },
      },
    );
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', ...Object.values(account).map((a) => `cloudaccount/${a}`)]);

    const names = ['irsa-sa', 'pod-sa', 'gsa-sa', 'direct-sa', 'aks-sa', 'other-sa', 'intruder-sa'];
    await kubectlApply(...names.map((n) => serviceAccount(ns, n)), ...names.map((n) => serviceAccount(otherNs, n)));
    // A pod that started before Keyless annotated its ServiceAccount: the EKS webhook had nothing to inject.
    pods.set('early', await createPod(ns, 'early', 'irsa-sa'));
    const policy = [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::your-org-book-covers/*'] }];
    await kubectlApply(
      workloadIdentity('irsa-app', 'irsa-sa', account.aws, { aws: { policy } }),
      workloadIdentity('pod-app', 'pod-sa', account.aws, { aws: { mechanism: 'PodIdentity', policy } }),
      workloadIdentity('gsa-app', 'gsa-sa', account.gcp, { gcp: { roles: [{ role: 'roles/cloudtrace.agent' }] } }),
      workloadIdentity('direct-app', 'direct-sa', account.gcp, { gcp: { mechanism: 'DirectPrincipal', roles: [{ role: 'roles/cloudtrace.agent' }] } }),
      workloadIdentity('aks-app', 'aks-sa', account.azure, { azure: { roleAssignments: [{ role: 'Reader', scope: `/subscriptions/${TEST_SUBSCRIPTION}/resourceGroups/${DATA_RESOURCE_GROUP}` }] } }),
    );
    await kubectl(['wait', '--for=condition=Ready', '--timeout=90s', '-n', ns, ...['irsa-app', 'pod-app', 'gsa-app', 'direct-app', 'aks-app'].map((n) => `workloadidentity/${n}`)]);
    // Pods of every ServiceAccount, created once the webhooks have caught up with the annotations and the association,
    // so their tokens are bound as a projected volume's are.
    await injects('irsa-sa', 'AWS_ROLE_ARN');
    await injects('pod-sa', 'AWS_CONTAINER_CREDENTIALS_FULL_URI');
    await injects('aks-sa', 'AZURE_CLIENT_ID');
    for (const sa of names) pods.set(sa, await createPod(ns, `${sa}-pod`, sa));
  });

  after(async () => {
    // The namespaces first, while the operator runs, so every WorkloadIdentity's finalizer is honoured; their pods
    // before them, while kwok (the kubelet here) runs.
    await peers.removePods(ns);
    await peers.removePods(otherNs);
    await dropNamespaces();
    await peers.stop();
    await kubectl(['delete', 'cloudaccount', ...Object.values(account), '--ignore-not-found']);
    await operator.stop();
    await aws.stop();
    await gcp.stop();
    await azure.stop();
    dropDir();
  });

  describe('IRSA: STS AssumeRoleWithWebIdentity through the default chain', () => {
    const roleArn = async () => (await getWI('irsa-app')).status?.aws?.roleArn ?? '';
    const stsEnv = () => ({ AWS_ENDPOINT_URL_STS: aws.tokens.endpoint, AWS_REGION: TEST_REGION, KEYLESS_PROBE_STS_ENDPOINT: aws.tokens.endpoint });
    const withToken = async (namespace: string, sa: string, audience: string, expiration = DAY, transform?: (t: string) => string) =>
      probe('aws', { ...stsEnv(), AWS_ROLE_ARN: await roleArn(), AWS_WEB_IDENTITY_TOKEN_FILE: await tokenFile(namespace, sa, audience, expiration, transform) }, dir);

    it('gives a pod created after the annotation the role, from the env and token its webhook and kubelet provide', async () => {
      const pod = pods.get('irsa-sa');
      assert.ok(pod);
      const env = await podEnvironment(kc, pod, dir);
      assert.equal(env['AWS_ROLE_ARN'], await roleArn(), 'the webhook injected the annotated role');
      const result = await probe('aws', { ...stsEnv(), ...env }, dir);
      assert.equal(result.ok, true, JSON.stringify(result));
      const roleName = (await getWI('irsa-app')).status?.aws?.roleName ?? '';
      assert.match(result.identity ?? '', new RegExp(`^arn:aws:sts::${TEST_ACCOUNT_ID}:assumed-role/${roleName}/`));
    });

    it('leaves a pod created before the annotation without these credentials: no AWS_ROLE_ARN, nothing in the chain', async (t) => {
      const pod = pods.get('early');
      assert.ok(pod);
      const env = await podEnvironment(kc, pod, dir);
      assert.equal(env['AWS_ROLE_ARN'], undefined);
      await refused(t, { what: 'a pod from before the annotation', code: 'CredentialsProviderError', message: /Could not load credentials from any providers/, run: () => probe('aws', { ...stsEnv(), ...env }, dir) });
    });

    const refusals: Refusal[] = [
      { what: 'another ServiceAccount of the namespace', code: 'AccessDenied', message: /^Not authorized to perform sts:AssumeRoleWithWebIdentity$/, run: () => withToken(ns, 'other-sa', AUDIENCE.irsa) },
      { what: 'the same ServiceAccount name in another namespace', code: 'AccessDenied', message: /^Not authorized to perform sts:AssumeRoleWithWebIdentity$/, run: () => withToken(otherNs, 'irsa-sa', AUDIENCE.irsa) },
      { what: 'a token for another audience', code: 'InvalidIdentityToken', message: /^Incorrect token audience$/, run: () => withToken(ns, 'irsa-sa', AUDIENCE.azure) },
      { what: 'a token the issuer never signed', code: 'InvalidIdentityToken', message: /^Couldn't retrieve verification key from your identity provider/, run: () => withToken(ns, 'irsa-sa', AUDIENCE.irsa, DAY, forgeToken) },
      {
        what: 'an expired token',
        code: 'ExpiredTokenException',
        message: /^Token expired: current date\/time \d+ must be before the expiration date\/time \d+$/,
        run: async () => {
          const file = await tokenFile(ns, 'irsa-sa', AUDIENCE.irsa, SHORTEST);
          const env = { ...stsEnv(), AWS_ROLE_ARN: await roleArn(), AWS_WEB_IDENTITY_TOKEN_FILE: file };
          return later(SHORTEST + 60, () => probe('aws', env, dir));
        },
      },
    ];
    for (const refusal of refusals) it(`refuses ${refusal.what} with ${refusal.code}`, (t) => refused(t, refusal));
  });

  const agentEnv = (tokenPath: string) => ({ AWS_CONTAINER_CREDENTIALS_FULL_URI: aws.tokens.agentUri ?? '', AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenPath, AWS_REGION: TEST_REGION, KEYLESS_PROBE_STS_ENDPOINT: aws.tokens.endpoint });
  /** The container provider alone keeps the agent's status; the agent's own line names EKS Auth's error code. */
  const viaAgent = async (namespace: string, sa: string, audience: string, expiration = DAY, transform?: (t: string) => string): Promise<ProbeResult> => {
    const file = await tokenFile(namespace, sa, audience, expiration, transform);
    const result = await probe('aws-container', agentEnv(file), dir);
    const agent = await fetch(aws.tokens.agentUri ?? '', { headers: { authorization: readFileSync(file, 'utf8') } });
    return { ...result, message: `${result.message ?? ''} | agent ${agent.status}: ${(await agent.text()).trim()}` };
  };

  describe('EKS Pod Identity: the agent and EKS Auth AssumeRoleForPodIdentity through the container provider', () => {
    it('gives the pod of the associated ServiceAccount the role through the default chain, from what its webhook injected', async () => {
      const pod = pods.get('pod-sa');
      assert.ok(pod);
      const env = await podEnvironment(kc, pod, dir);
      assert.equal(env['AWS_CONTAINER_CREDENTIALS_FULL_URI'], aws.tokens.agentUri, 'the webhook injected the Pod Identity Agent');
      assert.equal(env['AWS_ROLE_ARN'], undefined, 'Pod Identity, not IRSA');
      const result = await probe('aws', { ...env, KEYLESS_PROBE_STS_ENDPOINT: aws.tokens.endpoint }, dir);
      assert.equal(result.ok, true, JSON.stringify(result));
      const roleName = (await getWI('pod-app')).status?.aws?.roleName ?? '';
      assert.match(result.identity ?? '', new RegExp(`^arn:aws:sts::${TEST_ACCOUNT_ID}:assumed-role/${roleName}/eks-${CLUSTER}-pod-sa-pod-`));
    });

    const refusals: Refusal[] = [
      { what: 'another ServiceAccount, which has no association', code: 'ResourceNotFoundException', message: /status: 404 \| agent 404: \[[\w-]+\]: \(ResourceNotFoundException\): .*, fault: client$/, run: () => viaAgent(ns, 'other-sa', AUDIENCE.podIdentity) },
      {
        what: 'another ServiceAccount that someone associated with the same role',
        code: 'AccessDeniedException',
        message: /status: 400 \| agent 400: \[[\w-]+\]: \(AccessDeniedException\): Unauthorized Exception! EKS does not have permissions to assume the associated role\., fault: client$/,
        run: async () => {
          const roleArn = (await getWI('pod-app')).status?.aws?.roleArn ?? '';
          await aws.eks().send(new CreatePodIdentityAssociationCommand({ clusterName: CLUSTER, namespace: ns, serviceAccount: 'intruder-sa', roleArn }));
          return viaAgent(ns, 'intruder-sa', AUDIENCE.podIdentity);
        },
      },
      { what: 'the same ServiceAccount name in another namespace', code: 'ResourceNotFoundException', message: /status: 404 \| agent 404: .*\(ResourceNotFoundException\)/, run: () => viaAgent(otherNs, 'pod-sa', AUDIENCE.podIdentity) },
      { what: 'a token for another audience', code: 'InvalidTokenException', message: /status: 400 \| agent 400: .*\(InvalidTokenException\)/, run: () => viaAgent(ns, 'pod-sa', AUDIENCE.irsa) },
      { what: 'a token the issuer never signed', code: 'InvalidTokenException', message: /status: 400 \| agent 400: .*\(InvalidTokenException\)/, run: () => viaAgent(ns, 'pod-sa', AUDIENCE.podIdentity, DAY, forgeToken) },
      {
        what: 'an expired token',
        code: 'CredentialsProviderError',
        message: /status: 400 \| agent 400: Service account token failed basic claim validations: token has invalid claims: token is expired$/,
        run: () => later(SHORTEST + 60, async () => viaAgent(ns, 'pod-sa', AUDIENCE.podIdentity, SHORTEST)),
      },
    ];
    for (const refusal of refusals) it(`refuses ${refusal.what} with ${refusal.code}`, (t) => refused(t, refusal));
  });

  /** An external_account credential configuration, as a fleet or GKE workload would be handed. */
  const gcpConfig = (tokenPath: string, opts: { impersonate?: string; provider?: string } = {}) =>
    writeFile(
      dir,
      JSON.stringify({
        type: 'external_account',
        audience: `identitynamespace:${POOL}:${opts.provider ?? GKE_PROVIDER}`,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_url: `${gcp.endpoint}/v1/token`,
        ...(opts.impersonate ? { service_account_impersonation_url: `${gcp.endpoint}/v1/projects/-/serviceAccounts/${opts.impersonate}:generateAccessToken` } : {}),
        // The library resolves the project named in the audience through Resource Manager.
        cloud_resource_manager_url: `${gcp.endpoint}/v1/projects/`,
        credential_source: { file: tokenPath },
      }),
    );
  const gcpProbe = async (namespace: string, sa: string, opts: { impersonate?: string; provider?: string; audience?: string; expiration?: number; transform?: (t: string) => string } = {}) =>
    probe('gcp', { GOOGLE_APPLICATION_CREDENTIALS: gcpConfig(await tokenFile(namespace, sa, opts.audience ?? AUDIENCE.gke, opts.expiration ?? 3600, opts.transform), opts) }, dir);

  describe('GKE Workload Identity, ServiceAccount mode: STS exchange, then generateAccessToken', () => {
    const email = async () => (await getWI('gsa-app')).status?.gcp?.serviceAccountEmail ?? '';
    const as = async (namespace: string, sa: string, opts: Parameters<typeof gcpProbe>[2] = {}) => gcpProbe(namespace, sa, { impersonate: await email(), ...opts });

    it('gives the annotated ServiceAccount a token of its Google service account', async () => {
      const annotated = (await core().readNamespacedServiceAccount({ namespace: ns, name: 'gsa-sa' })).metadata?.annotations?.['iam.gke.io/gcp-service-account'];
      assert.equal(annotated, await email());
      const result = await as(ns, 'gsa-sa');
      assert.equal(result.ok, true, JSON.stringify(result));
      assert.equal((await gcp.accessToken(result.identity ?? ''))?.principal, `serviceAccount:${await email()}`);
    });

    const denied = /^Permission 'iam\.serviceAccounts\.getAccessToken' denied on resource \(or it may not exist\)\.$/;
    const refusals: Refusal[] = [
      { what: 'another ServiceAccount of the namespace', code: 'PERMISSION_DENIED', message: denied, run: () => as(ns, 'other-sa') },
      { what: 'the same ServiceAccount name in another namespace', code: 'PERMISSION_DENIED', message: denied, run: () => as(otherNs, 'gsa-sa') },
      { what: 'a token for another audience', code: 'invalid_grant', message: /^Error code invalid_grant: The audience in ID Token \[sts\.amazonaws\.com\] does not match the expected audience/, run: () => as(ns, 'gsa-sa', { audience: AUDIENCE.irsa }) },
      { what: 'a token the issuer never signed', code: 'invalid_grant', message: /^Error code invalid_grant: Invalid JWT signature\.$/, run: () => as(ns, 'gsa-sa', { transform: forgeToken }) },
      { what: 'a cluster the workload pool does not know', code: 'invalid_target', message: /^Error code invalid_target: The target service indicated by the "audience" parameters is invalid/, run: () => as(ns, 'gsa-sa', { provider: GKE_PROVIDER.replace(/clusters\/.*$/, 'clusters/other') }) },
      { what: 'an expired token', code: 'invalid_grant', message: /^Error code invalid_grant: ID Token issued at \d+ is stale to sign-in\.$/, run: () => later(SHORTEST + 60, () => as(ns, 'gsa-sa', { expiration: SHORTEST })) },
    ];
    for (const refusal of refusals) it(`refuses ${refusal.what} with ${refusal.code}`, (t) => refused(t, refusal));
  });

  describe('GKE Workload Identity, DirectPrincipal: the STS exchange alone', () => {
    const member = async () => (await getWI('direct-app')).status?.gcp?.member ?? '';

    it('gives the ServiceAccount a federated token of exactly the principal Keyless granted the roles to', async () => {
      const result = await gcpProbe(ns, 'direct-sa');
      assert.equal(result.ok, true, JSON.stringify(result));
      const principal = `principal://iam.googleapis.com/projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/${POOL}/subject/ns/${ns}/sa/direct-sa`;
      assert.equal(await member(), principal);
      assert.equal((await gcp.accessToken(result.identity ?? ''))?.principal, principal);
    });

    it('gives another ServiceAccount a principal of its own, which holds none of those roles', async () => {
      const result = await gcpProbe(ns, 'other-sa');
      assert.equal(result.ok, true, 'the pool trusts every ServiceAccount of the cluster, as GKE does');
      const principal = (await gcp.accessToken(result.identity ?? ''))?.principal ?? '';
      assert.match(principal, /\/subject\/ns\/[^/]+\/sa\/other-sa$/);
      const policy = await gcp.client.getIamPolicy({ kind: 'project', project: PROJECT });
      const members = (policy.bindings ?? []).flatMap((b) => b.members);
      assert.ok(members.includes(await member()));
      assert.ok(!members.includes(principal));
    });

    const refusals: Refusal[] = [
      { what: 'a token for another audience', code: 'invalid_grant', message: /^Error code invalid_grant: The audience in ID Token/, run: () => gcpProbe(ns, 'direct-sa', { audience: AUDIENCE.podIdentity }) },
      { what: 'a token the issuer never signed', code: 'invalid_grant', message: /^Error code invalid_grant: Invalid JWT signature\.$/, run: () => gcpProbe(ns, 'direct-sa', { transform: forgeToken }) },
      { what: 'an expired token', code: 'invalid_grant', message: /^Error code invalid_grant: ID Token issued at \d+ is stale to sign-in\.$/, run: () => later(SHORTEST + 60, () => gcpProbe(ns, 'direct-sa', { expiration: SHORTEST })) },
    ];
    for (const refusal of refusals) it(`refuses ${refusal.what} with ${refusal.code}`, (t) => refused(t, refusal));
  });

  describe('AKS workload identity: Entra token endpoint through WorkloadIdentityCredential', () => {
    const identity = async () => {
      const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'aks-sa' });
      return { clientId: sa.metadata?.annotations?.['azure.workload.identity/client-id'] ?? '', tenantId: sa.metadata?.annotations?.['azure.workload.identity/tenant-id'] ?? TEST_TENANT };
    };
    /** What the azure-workload-identity webhook injects for a pod of the annotated ServiceAccount. */
    const azureProbe = async (namespace: string, sa: string, audience = AUDIENCE.azure, expiration = 3600, transform?: (t: string) => string) => {
      const { clientId, tenantId } = await identity();
      return probe(
        'azure',
        {
          AZURE_CLIENT_ID: clientId,
          AZURE_TENANT_ID: tenantId,
          AZURE_FEDERATED_TOKEN_FILE: await tokenFile(namespace, sa, audience, expiration, transform),
          AZURE_AUTHORITY_HOST: azure.emulator.endpoint,
          NODE_EXTRA_CA_CERTS: azure.caFile,
        },
        dir,
      );
    };

    it('gives a labelled pod of the annotated ServiceAccount a token of its managed identity, from what its webhook injected', async () => {
      const pod = pods.get('aks-sa');
      assert.ok(pod);
      const env = await podEnvironment(kc, pod, dir);
      assert.equal(env['AZURE_CLIENT_ID'], (await identity()).clientId, 'the webhook injected the annotated client id');
      assert.equal(env['AZURE_AUTHORITY_HOST'], azure.emulator.endpoint);
      const result = await probe('azure', { ...env, NODE_EXTRA_CA_CERTS: azure.caFile }, dir);
      assert.equal(result.ok, true, JSON.stringify(result));
      const status = (await getWI('aks-app')).status?.azure;
      assert.equal(result.identity, status?.clientId);
      assert.equal(result.claims?.['oid'], status?.principalId);
      assert.equal(result.claims?.['tid'], TEST_TENANT);
    });

    const refusals: Refusal[] = [
      { what: 'another ServiceAccount of the namespace', code: 'AADSTS700213', message: /AADSTS700213: No matching federated identity record found for presented assertion subject 'system:serviceaccount:[^:]+:other-sa'/, run: () => azureProbe(ns, 'other-sa') },
      { what: 'the same ServiceAccount name in another namespace', code: 'AADSTS700213', message: /AADSTS700213: No matching federated identity record found for presented assertion subject/, run: () => azureProbe(otherNs, 'aks-sa') },
      { what: 'a token for another audience', code: 'AADSTS700212', message: /AADSTS700212: No matching federated identity record found for presented assertion audience 'sts\.amazonaws\.com'/, run: () => azureProbe(ns, 'aks-sa', AUDIENCE.irsa) },
      { what: 'a token the issuer never signed', code: 'AADSTS7000272', message: /AADSTS7000272: The certificate with identifier forged-[\w-]+ used to sign the federated credential could not be found/, run: () => azureProbe(ns, 'aks-sa', AUDIENCE.azure, 3600, forgeToken) },
      { what: 'an expired token', code: 'AADSTS700024', message: /AADSTS700024: Client assertion is not within its valid time range/, run: () => later(SHORTEST + 60, () => azureProbe(ns, 'aks-sa', AUDIENCE.azure, SHORTEST)) },
    ];
    for (const refusal of refusals) it(`refuses ${refusal.what} with ${refusal.code}`, (t) => refused(t, refusal));
  });

  describe('revocation: once the WorkloadIdentity is deleted, the exchange fails', () => {
    it('IRSA: STS refuses the role', async (t) => {
      const roleArn = (await getWI('irsa-app')).status?.aws?.roleArn ?? '';
      await deleteIdentity('irsa-app');
      await refused(t, {
        what: 'the deleted role',
        code: 'AccessDenied',
        message: /^Not authorized to perform sts:AssumeRoleWithWebIdentity$/,
        run: async () => probe('aws', { AWS_ENDPOINT_URL_STS: aws.tokens.endpoint, AWS_REGION: TEST_REGION, AWS_ROLE_ARN: roleArn, AWS_WEB_IDENTITY_TOKEN_FILE: await tokenFile(ns, 'irsa-sa', AUDIENCE.irsa, DAY) }, dir),
      });
    });

    it('Pod Identity: EKS Auth finds no association', async (t) => {
      await deleteIdentity('pod-app');
      await refused(t, { what: 'the deleted association', code: 'ResourceNotFoundException', message: /status: 404 \| agent 404: .*\(ResourceNotFoundException\)/, run: () => viaAgent(ns, 'pod-sa', AUDIENCE.podIdentity) });
    });

    it('GKE ServiceAccount mode: generateAccessToken is denied', async (t) => {
      const email = (await getWI('gsa-app')).status?.gcp?.serviceAccountEmail ?? '';
      await deleteIdentity('gsa-app');
      await refused(t, { what: 'the deleted service account', code: 'PERMISSION_DENIED', message: /^Permission 'iam\.serviceAccounts\.getAccessToken' denied/, run: () => gcpProbe(ns, 'gsa-sa', { impersonate: email }) });
    });

    it('GKE DirectPrincipal: the exchange still succeeds, as GKE’s does, but the principal holds no role any more', async () => {
      const member = (await getWI('direct-app')).status?.gcp?.member ?? '';
      await deleteIdentity('direct-app');
      const result = await gcpProbe(ns, 'direct-sa');
      assert.equal(result.ok, true, JSON.stringify(result));
      const policy = await gcp.client.getIamPolicy({ kind: 'project', project: PROJECT });
      assert.ok(!(policy.bindings ?? []).some((b) => b.members.includes(member)), `${member} was removed from the project policy`);
    });

    it('AKS: Entra no longer knows the client id', async (t) => {
      const clientId = (await getWI('aks-app')).status?.azure?.clientId ?? '';
      const tenantId = TEST_TENANT;
      await deleteIdentity('aks-app');
      await refused(t, {
        what: 'the deleted managed identity',
        code: 'AADSTS700016',
        message: new RegExp(`AADSTS700016: Application with identifier '${clientId}' was not found in the directory '${tenantId}'`),
        run: async () =>
          probe(
            'azure',
            { AZURE_CLIENT_ID: clientId, AZURE_TENANT_ID: tenantId, AZURE_FEDERATED_TOKEN_FILE: await tokenFile(ns, 'aks-sa', AUDIENCE.azure, 3600), AZURE_AUTHORITY_HOST: azure.emulator.endpoint, NODE_EXTRA_CA_CERTS: azure.caFile },
            dir,
          ),
      });
    });
  });
});
