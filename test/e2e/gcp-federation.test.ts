// Any cluster to Google Cloud, end to end: the local control plane is not GKE, so the CloudAccount names a Workload
// Identity Federation provider that trusts its issuer (created in the GCP emulator through IAM v1, read back with
// gcloud). The real operator writes each WorkloadIdentity's external_account credential configuration into a
// ConfigMap; a pod mounts it with a projected token of the provider's audience, exactly as the docs say, and
// google-auth-library's own chain, run with that pod's environment and files, gets its Google token from the
// emulator's STS (and IAM Credentials), which checks the token as Google does. Then one pod with an AWS (IRSA, injected
// by the real EKS pod identity webhook) and a GCP identity at once, from config/samples/cross-cloud.yaml: both chains
// work from the same environment.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { CloudAccount, WorkloadIdentity } from '../../src/api/types.ts';
import { kubernetesIssuer } from '../emulators/oidc/kubernetes.ts';
import { createOidcProvider, startAwsEmulator, TEST_ACCOUNT_ID, TEST_REGION, type AwsEmulator } from '../support/aws.ts';
import { eventually, freshNamespaces, kubeConfig, kubectl, kubectlApply, repoPath, statusCode } from '../support/cluster.ts';
import { mountedEnvironment, probe, scratchDir, type ProbeResult } from '../support/exchange.ts';
import { createWorkloadIdentityProvider, startGcpTestEmulator, type GcpTestEmulator } from '../support/gcp.ts';
import { awsEnv, gcpEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';
import { startPeers, type Peers } from '../support/peers.ts';

const group = { group: 'keyless.dev', version: 'v1alpha1' };
const suffix = randomBytes(3).toString('hex');
const PROJECT = `e2e-fed-${suffix}`;
const PROJECT_NUMBER = String(randomInt(100_000_000, 999_999_999));
const POOL = 'e2e-clusters';
const BUCKET = `fed-covers-${suffix}`;
/** The bucket config/samples/cross-cloud.yaml grants on. */
const SAMPLE_BUCKET = 'your-org-book-covers';
/** Where the docs (docs/any-cluster-any-cloud.md) mount the projected volume, and the file GOOGLE_APPLICATION_CREDENTIALS names. */
const MOUNT = '/var/run/secrets/keyless.dev/gcp';
const CREDENTIALS = `${MOUNT}/credential-configuration.json`;
const account = { aws: `e2e-fed-aws-${suffix}`, gcp: `e2e-fed-gcp-${suffix}` };
const denied = /^Permission 'iam\.serviceAccounts\.getAccessToken' denied on resource \(or it may not exist\)\.$/;

describe('Workload Identity Federation: GCP from a cluster that is not GKE, and one pod with two clouds', () => {
  let kc: KubeConfig;
  let issuer: string;
  let provider: string;
  let aws: AwsEmulator;
  let gcp: GcpTestEmulator;
  let operator: RunningOperator;
  let peers: Peers;
  let ns: string;
  let otherNs: string;
  let dropNamespaces: () => Promise<void>;
  let dir: string;
  let dropDir: () => void;
  let gcloudConfig: string;

  const core = () => kc.makeApiClient(CoreV1Api);
  const getWI = async (name: string, namespace = ns) => (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace, name })) as WorkloadIdentity;
  const condition = (wi: WorkloadIdentity, type: string) => wi.status?.conditions?.find((c) => c.type === type);
  const serviceAccount = (namespace: string, name: string) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } });
  const workloadIdentity = (name: string, sa: string, gcpSpec: object) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns },
    spec: { serviceAccountName: sa, cloudAccountRef: { name: account.gcp }, gcp: gcpSpec },
  });
  /** A pod of `sa` that mounts, as the docs show, the credential configuration in `configMap` and a token of `audience`. */
  const federatedPod = (namespace: string, name: string, sa: string, configMap: string, audience: string): V1Pod => ({
    metadata: { name, namespace },
    spec: {
      serviceAccountName: sa,
      containers: [{ name: 'app', image: 'registry.invalid/app:1', env: [{ name: 'GOOGLE_APPLICATION_CREDENTIALS', value: CREDENTIALS }, { name: 'GOOGLE_CLOUD_PROJECT', value: PROJECT }], volumeMounts: [{ name: 'keyless-gcp', mountPath: MOUNT, readOnly: true }] }],
      volumes: [{ name: 'keyless-gcp', projected: { sources: [{ serviceAccountToken: { audience, expirationSeconds: 3600, path: 'token' } }, { configMap: { name: configMap } }] } }],
    },
  });
  /** What google-auth-library gets in a pod of `sa` that mounts `identity`'s ConfigMap (in `namespace`, copied there if need be). */
  const podProbe = async (identity: string, sa: string, namespace = ns): Promise<ProbeResult> => {
    const wi = await getWI(identity);
    const configMap = wi.status?.gcp?.credentialConfigMap ?? '';
    const pod = await core().createNamespacedPod({ namespace, body: federatedPod(namespace, `${sa}-${randomBytes(2).toString('hex')}`, sa, configMap, wi.status?.audience ?? '') });
    return probe('gcp', await mountedEnvironment(kc, pod, dir), dir);
  };
  /** What an access token may do on the bucket, asked with the token itself (testIamPermissions). */
  const bucketPermissions = async (token: string, bucket = BUCKET) => {
    const res = await fetch(`${gcp.endpoint}/storage/v1/b/${bucket}/iam/testPermissions?permissions=storage.objects.get`, { headers: { authorization: `Bearer ${token}` } });
    return ((await res.json()) as { permissions?: string[] }).permissions ?? [];
  };
  const principal = (namespace: string, sa: string) => `principal://iam.googleapis.com/projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/${POOL}/subject/system:serviceaccount:${namespace}:${sa}`;
  const gcloud = async (...args: string[]) => {
    const { stdout } = await promisify(execFile)('gcloud', [...args, '--format=json'], {
      timeout: 60_000,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: gcloudConfig,
        CLOUDSDK_CONFIG: gcloudConfig,
        CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
        CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: '1',
        CLOUDSDK_AUTH_ACCESS_TOKEN: 'gcloud-e2e',
        CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM: `${gcp.endpoint}/`,
      },
    });
    return JSON.parse(stdout) as Record<string, unknown>;
  };
  const refused = (t: TestContext, result: ProbeResult, code: string, message: RegExp) => {
    t.diagnostic(JSON.stringify(result));
    assert.equal(result.ok, false, `must not get credentials (got ${result.identity ?? ''})`);
    assert.ok(result.code === code || result.message?.includes(code), `expected ${code}, got ${JSON.stringify(result)}`);
    assert.match(result.message ?? '', message);
  };

  before(async () => {
    kc = kubeConfig();
    const source = await kubernetesIssuer(kc);
    issuer = source.issuer;
    [dir, dropDir] = scratchDir();
    gcloudConfig = mkdtempSync(path.join(os.tmpdir(), 'keyless-gcloud-'));
    aws = await startAwsEmulator({ issuers: [source] });
    await createOidcProvider(aws.iam(), issuer);
    // The emulator fetches the issuer's keys as Google fetches a public issuer's (the control plane's JWKS).
    gcp = await startGcpTestEmulator({ issuers: [source] });
    await gcp.addProject(PROJECT, PROJECT_NUMBER);
    await gcp.addBucket(BUCKET);
    await gcp.addBucket(SAMPLE_BUCKET);
    provider = await createWorkloadIdentityProvider(gcp.endpoint, 'e2e-platform-team', { project: PROJECT, pool: POOL, provider: 'local', issuer });

    const operatorKubeconfig = await installOperator(kc, 'gcp-federation');
    await kubectl(['apply', '--server-side', '--field-manager=keyless-e2e', '-k', repoPath('config/verification')]);
    peers = await startPeers();
    let namespaces: string[];
    [namespaces, dropNamespaces] = await freshNamespaces(kc, 'e2e-fed', 'e2e-fed-other');
    [ns = '', otherNs = ''] = namespaces;
    operator = await startOperator({
      name: 'gcp-federation',
      kubeconfig: operatorKubeconfig,
      env: { ...awsEnv(aws.endpoint), ...gcpEnv(gcp.endpoint), KEYLESS_RESYNC_SECONDS: '5', KEYLESS_CLUSTER_NAME: 'e2e-federation' },
    });
    // Operators of suites running beside this one share the leader Lease: wait for our turn.
    await eventually('the operator to lead', async () => ((await operator.metric('keyless_leader')) === 1 ? true : undefined), 600_000);
    await kubectlApply(
      { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: account.aws }, spec: { aws: { accountId: TEST_ACCOUNT_ID, region: TEST_REGION, oidcIssuer: issuer } } },
      {
        apiVersion: 'keyless.dev/v1alpha1',
        kind: 'CloudAccount',
        metadata: { name: account.gcp },
        spec: { gcp: { projectId: PROJECT, projectNumber: PROJECT_NUMBER, workloadIdentityProvider: provider }, verification: { enabled: true } },
      },
    );
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', ...Object.values(account).map((a) => `cloudaccount/${a}`)]);
    const names = ['gsa-sa', 'direct-sa', 'other-sa'];
    await kubectlApply(...names.map((n) => serviceAccount(ns, n)), serviceAccount(otherNs, 'gsa-sa'));
    await kubectlApply(
      workloadIdentity('gsa-app', 'gsa-sa', { mechanism: 'ServiceAccount', roles: [{ role: 'roles/storage.objectViewer', resource: `//storage.googleapis.com/projects/_/buckets/${BUCKET}` }] }),
      workloadIdentity('direct-app', 'direct-sa', { mechanism: 'DirectPrincipal', roles: [{ role: 'roles/storage.objectViewer', resource: `//storage.googleapis.com/projects/_/buckets/${BUCKET}` }] }),
    );
    await kubectl(['wait', '--for=condition=Ready', '--timeout=90s', '-n', ns, 'workloadidentity/gsa-app', 'workloadidentity/direct-app']);
  });

  after(async () => {
    // The namespaces first, while the operator runs, so every WorkloadIdentity's finalizer is honoured; their pods
    // before them, while kwok (the kubelet here) runs.
    await peers.removePods(ns);
    await peers.removePods(otherNs);
    await dropNamespaces();
    await peers.stop();
    await kubectl(['delete', 'cloudaccount', ...Object.values(account), '--ignore-not-found']);
    await kubectl(['delete', '-k', repoPath('config/verification'), '--ignore-not-found']);
    await operator.stop();
    await aws.stop();
    await gcp.stop();
    dropDir();
    rmSync(gcloudConfig, { recursive: true, force: true });
  });

  it('makes the CloudAccount Ready with the issuer its provider trusts, which gcloud reads back', async () => {
    const ca = (await kc.makeApiClient(CustomObjectsApi).getClusterCustomObject({ ...group, plural: 'cloudaccounts', name: account.gcp })) as CloudAccount;
    assert.equal(ca.status?.issuer, issuer);
    assert.match(ca.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '', new RegExp(`through Workload Identity Federation provider ${provider.replace(/[./]/g, '\\$&')}`));
    const described = await gcloud('iam', 'workload-identity-pools', 'providers', 'describe', 'local', `--project=${PROJECT}`, '--location=global', `--workload-identity-pool=${POOL}`);
    assert.deepEqual({ name: described['name'], oidc: described['oidc'], attributeMapping: described['attributeMapping'] }, { name: provider, oidc: { issuerUri: issuer }, attributeMapping: { 'google.subject': 'assertion.sub' } });
  });

  describe('ServiceAccount mode', () => {
    it('writes the credential configuration into an owned ConfigMap, trusts exactly the principal, and annotates nothing', async () => {
      const wi = await getWI('gsa-app');
      const email = wi.status?.gcp?.serviceAccountEmail ?? '';
      assert.equal(wi.status?.audience, `https://iam.googleapis.com/${provider}`);
      assert.equal(wi.status?.gcp?.credentialConfigMap, 'gsa-app-gcp-credentials');
      const cm = await core().readNamespacedConfigMap({ namespace: ns, name: 'gsa-app-gcp-credentials' });
      assert.deepEqual(cm.metadata?.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]), [['WorkloadIdentity', 'gsa-app', wi.metadata.uid, true]]);
      assert.equal(cm.metadata?.labels?.['app.kubernetes.io/managed-by'], 'keyless');
      assert.deepEqual(JSON.parse(cm.data?.['credential-configuration.json'] ?? '{}'), {
        universe_domain: 'googleapis.com',
        type: 'external_account',
        audience: `//iam.googleapis.com/${provider}`,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_url: `${gcp.endpoint}/v1/token`,
        service_account_impersonation_url: `${gcp.endpoint}/v1/projects/-/serviceAccounts/${email}:generateAccessToken`,
        credential_source: { file: `${MOUNT}/token`, format: { type: 'text' } },
      });
      const trust = await gcp.client.getIamPolicy({ kind: 'serviceAccount', project: PROJECT, email });
      assert.deepEqual(trust.bindings?.map((b) => [b.role, b.members]), [['roles/iam.workloadIdentityUser', [principal(ns, 'gsa-sa')]]]);
      const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'gsa-sa' });
      assert.equal(sa.metadata?.annotations?.['iam.gke.io/gcp-service-account'], undefined);
      assert.match(condition(wi, 'ServiceAccountReady')?.message ?? '', new RegExp(`GOOGLE_APPLICATION_CREDENTIALS=${CREDENTIALS.replace(/[./]/g, '\\$&')}`));
      assert.equal(condition(wi, 'CredentialsVerified')?.status, 'True', condition(wi, 'CredentialsVerified')?.message);
    });

    it('gives a pod that mounts it a token of the Google service account, through google-auth-library’s own chain', async () => {
      const result = await podProbe('gsa-app', 'gsa-sa');
      assert.equal(result.ok, true, JSON.stringify(result));
      const email = (await getWI('gsa-app')).status?.gcp?.serviceAccountEmail ?? '';
      assert.equal((await gcp.accessToken(result.identity ?? ''))?.principal, `serviceAccount:${email}`);
    });

    it('refuses another ServiceAccount that mounts the same ConfigMap: its principal may not impersonate', async (t) => {
      refused(t, await podProbe('gsa-app', 'other-sa'), 'PERMISSION_DENIED', denied);
    });

    it('refuses the same ServiceAccount name in another namespace, with a copy of the configuration', async (t) => {
      const cm = await core().readNamespacedConfigMap({ namespace: ns, name: 'gsa-app-gcp-credentials' });
      await core().createNamespacedConfigMap({ namespace: otherNs, body: { metadata: { name: 'gsa-app-gcp-credentials' }, data: cm.data ?? {} } });
      refused(t, await podProbe('gsa-app', 'gsa-sa', otherNs), 'PERMISSION_DENIED', denied);
    });

    it('repairs the ConfigMap when someone edits it', async () => {
      const name = 'gsa-app-gcp-credentials';
      const original = (await core().readNamespacedConfigMap({ namespace: ns, name })).data;
      await core().patchNamespacedConfigMap({ namespace: ns, name, body: [{ op: 'replace', path: '/data/credential-configuration.json', value: '{}' }] });
      await eventually('the ConfigMap to be restored', async () => {
        const data = (await core().readNamespacedConfigMap({ namespace: ns, name })).data;
        return JSON.stringify(data) === JSON.stringify(original) ? true : undefined;
      });
    });
  });

  describe('DirectPrincipal', () => {
    it('gives a pod a federated token of exactly its principal, which holds the role on the bucket', async () => {
      const result = await podProbe('direct-app', 'direct-sa');
      assert.equal(result.ok, true, JSON.stringify(result));
      assert.equal((await gcp.accessToken(result.identity ?? ''))?.principal, principal(ns, 'direct-sa'));
      assert.deepEqual(await bucketPermissions(result.identity ?? ''), ['storage.objects.get']);
    });

    it('gives another ServiceAccount of the cluster a principal of its own, which holds nothing', async () => {
      const result = await podProbe('direct-app', 'other-sa');
      assert.equal(result.ok, true, 'the provider trusts every ServiceAccount of the issuer, as Google does');
      assert.equal((await gcp.accessToken(result.identity ?? ''))?.principal, principal(ns, 'other-sa'));
      assert.deepEqual(await bucketPermissions(result.identity ?? ''), []);
    });
  });

  describe('revocation', () => {
    it('ServiceAccount mode: deleting the WorkloadIdentity deletes the ConfigMap and the service account; the old configuration is refused', async (t) => {
      const pod = await core().createNamespacedPod({ namespace: ns, body: federatedPod(ns, 'before-delete', 'gsa-sa', 'gsa-app-gcp-credentials', `https://iam.googleapis.com/${provider}`) });
      const env = await mountedEnvironment(kc, pod, dir);
      assert.equal((await probe('gcp', env, dir)).ok, true);
      await kubectl(['delete', '-n', ns, 'workloadidentity/gsa-app', '--wait=true', '--timeout=60s']);
      const gone = await core().readNamespacedConfigMap({ namespace: ns, name: 'gsa-app-gcp-credentials' }).then(
        () => 200,
        (err: unknown) => statusCode(err),
      );
      assert.equal(gone, 404);
      refused(t, await probe('gcp', env, dir), 'PERMISSION_DENIED', denied);
    });

    it('DirectPrincipal: the exchange still succeeds, but the principal holds nothing any more', async () => {
      const before = await podProbe('direct-app', 'direct-sa');
      await kubectl(['delete', '-n', ns, 'workloadidentity/direct-app', '--wait=true', '--timeout=60s']);
      assert.deepEqual(await bucketPermissions(before.identity ?? ''), []);
    });
  });

  describe('one pod, two clouds: config/samples/cross-cloud.yaml', () => {
    let pod: V1Pod;
    before(async () => {
      // The sample as make dev applies it, with this suite's CloudAccounts, namespace and provider.
      const sample = readFileSync(repoPath('config/samples/cross-cloud.yaml'), 'utf8')
        .replace(/\blocal-gcp-federation\b/g, account.gcp)
        .replace(/\blocal-aws\b/g, account.aws)
        .replace(/\bnamespace: bookstore\b/g, `namespace: ${ns}`)
        .replace(/\bvalue: keyless-dev\b/g, `value: ${PROJECT}`)
        .replace(/projects\/123456789012\/locations\/global\/workloadIdentityPools\/local-clusters\/providers\/local-dev/g, provider);
      const docs = parseAllDocuments(sample).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
      await kubectlApply(...docs.filter((d) => d.kind === 'ServiceAccount' || d.kind === 'WorkloadIdentity'));
      await kubectl(['wait', '--for=condition=Ready', '--timeout=90s', '-n', ns, 'workloadidentity/shipping-aws', 'workloadidentity/shipping']);
      // The Deployment once the EKS webhook injects for the annotated ServiceAccount (a server-side dry run goes through it).
      await eventually('the EKS webhook to inject AWS_ROLE_ARN for shipping-sa', async () => {
        const probePod = await core().createNamespacedPod({ namespace: ns, body: { metadata: { name: 'shipping-probe' }, spec: { serviceAccountName: 'shipping-sa', containers: [{ name: 'app', image: 'registry.invalid/app:1' }] } }, dryRun: 'All' });
        return probePod.spec?.containers[0]?.env?.some((e) => e.name === 'AWS_ROLE_ARN') ? true : undefined;
      });
      await kubectlApply(...docs.filter((d) => d.kind === 'Deployment'));
      pod = await eventually('the Deployment’s pod', async () => (await core().listNamespacedPod({ namespace: ns, labelSelector: 'app=shipping' })).items[0], 60_000);
    });

    it('runs both credential chains from the same pod’s environment: the IRSA role and the Google service account', async () => {
      const env = await mountedEnvironment(kc, pod, dir);
      const roleArn = (await getWI('shipping-aws')).status?.aws?.roleArn ?? '';
      assert.equal(env['AWS_ROLE_ARN'], roleArn, 'the EKS webhook injected the annotated role');
      assert.ok(env['GOOGLE_APPLICATION_CREDENTIALS']?.endsWith(CREDENTIALS), 'the pod names the mounted configuration');
      const sts = { AWS_ENDPOINT_URL_STS: aws.tokens.endpoint, AWS_REGION: TEST_REGION, KEYLESS_PROBE_STS_ENDPOINT: aws.tokens.endpoint };
      const [awsResult, gcpResult] = await Promise.all([probe('aws', { ...env, ...sts }, dir), probe('gcp', env, dir)]);
      assert.equal(awsResult.ok, true, JSON.stringify(awsResult));
      const roleName = (await getWI('shipping-aws')).status?.aws?.roleName ?? '';
      assert.match(awsResult.identity ?? '', new RegExp(`^arn:aws:sts::${TEST_ACCOUNT_ID}:assumed-role/${roleName}/`));
      assert.equal(gcpResult.ok, true, JSON.stringify(gcpResult));
      const email = (await getWI('shipping')).status?.gcp?.serviceAccountEmail ?? '';
      assert.equal((await gcp.accessToken(gcpResult.identity ?? ''))?.principal, `serviceAccount:${email}`);
      assert.deepEqual(await bucketPermissions(gcpResult.identity ?? '', SAMPLE_BUCKET), ['storage.objects.get'], 'the role the sample grants');
    });
  });
});
