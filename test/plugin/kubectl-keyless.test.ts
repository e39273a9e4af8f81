// `kubectl keyless` through the real kubectl, against the local control plane, the real operator, moto and the GCP
// and Azure emulators, with pods on kwok's node injected by the real EKS and Azure webhooks.
//
// migrate: a cluster with three identities made by hand — an IRSA role, a Google service account, an AKS managed
// identity, each with a running workload — and four it must leave alone (a role shared by two ServiceAccounts, a
// wildcard trust, a service account two ServiceAccounts impersonate, a managed identity trusted by another cluster
// too). Its output is applied as is; meanwhile the ServiceAccounts are watched and each workload's token exchange runs
// again and again, through its SDK's own credential chain, from what its webhook injected.
// status and explain: a Ready identity, a broken one, a pod injected and pods that are not (created before the
// annotation; without the Azure label), and a ServiceAccount with an identity made by hand.
import assert from 'node:assert/strict';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AttachRolePolicyCommand, CreatePolicyCommand, CreateRoleCommand, GetRoleCommand, ListAttachedRolePoliciesCommand, ListRolePoliciesCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1ServiceAccount } from '@kubernetes/client-node';
import { loadAll } from 'js-yaml';
import type { WorkloadIdentity } from '../../src/api/types.ts';
import type { IamPolicy } from '../../src/providers/gke-workload-identity/policy.ts';
import { kubernetesIssuer } from '../emulators/oidc/kubernetes.ts';
import { createOidcProvider, isWrite, startAwsEmulator, TEST_ACCOUNT_ID, TEST_CREDENTIALS, TEST_REGION, type AwsEmulator } from '../support/aws.ts';
import { DATA_RESOURCE_GROUP, TEST_RESOURCE_GROUP, TEST_SUBSCRIPTION, TEST_TENANT, startTestAzure, type TestAzure } from '../support/azure.ts';
import { eventually, freshNamespace, kubeApi, kubeConfig, kubectl, kubectlApply, repoPath } from '../support/cluster.ts';
import { mintToken, podEnvironment, probe, scratchDir, writeFile, type ProbeResult } from '../support/exchange.ts';
import { startGcpTestEmulator, type GcpTestEmulator } from '../support/gcp.ts';
import { awsEnv, azureEnv, gcpEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';
import { startPeers, type Peers } from '../support/peers.ts';
import { kubectlKeyless, parseTable } from '../support/plugin.ts';
import type { PolicyTarget } from '../../src/providers/gke-workload-identity/resources.ts';

const suffix = randomBytes(3).toString('hex');
const CLUSTER = 'e2e-plugin';
const PROJECT = `e2e-plugin-${suffix}`;
const PROJECT_NUMBER = String(randomInt(100_000_000, 999_999_999));
const POOL = `${PROJECT}.svc.id.goog`;
const GKE_PROVIDER = `https://container.googleapis.com/v1/projects/${PROJECT}/locations/us-central1/clusters/${CLUSTER}`;
const account = { aws: `e2e-plugin-aws-${suffix}`, gcp: `e2e-plugin-gcp-${suffix}`, azure: `e2e-plugin-azure-${suffix}` };
const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
const DATA_SCOPE = `/subscriptions/${TEST_SUBSCRIPTION}/resourceGroups/${DATA_RESOURCE_GROUP}`;
/** The plugin's own token at the GCP emulator, so its calls are told apart from the operator's. */
const PLUGIN_GCP_TOKEN = 'kubectl-keyless';
const AZURE_LABEL = { 'azure.workload.identity/use': 'true' };

describe('kubectl keyless', () => {
  let kc: KubeConfig;
  let issuer: string;
  let aws: AwsEmulator;
  let gcp: GcpTestEmulator;
  let azure: TestAzure;
  let peers: Peers;
  let operator: RunningOperator;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  let dir: string;
  let dropDir: () => void;

  const core = () => kc.makeApiClient(CoreV1Api);
  const getWI = async (name: string) => (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: 'keyless.dev', version: 'v1alpha1', plural: 'workloadidentities', namespace: ns, name })) as WorkloadIdentity;
  const serviceAccount = (name: string, annotations: Record<string, string> = {}): V1ServiceAccount => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns, annotations } });
  const deployment = (name: string, sa: string, labels: Record<string, string> = {}) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns },
    spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name, ...labels } }, spec: { serviceAccountName: sa, containers: [{ name: 'app', image: 'registry.invalid/app:1' }] } } },
  });
  const workloadIdentity = (name: string, sa: string, cloudAccount: string, spec: object) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns },
    spec: { serviceAccountName: sa, cloudAccountRef: { name: cloudAccount }, ...spec },
  });
  const podsOf = async (app: string) => (await core().listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items.filter((p) => !p.metadata?.deletionTimestamp);
  /** Waits until a pod of `sa` created now gets `variable` from the webhooks (a server-side dry run goes through them). */
  const injects = (sa: string, variable: string, labels: Record<string, string> = {}) =>
    eventually(`the webhooks to inject ${variable} for ${sa}`, async () => {
      const pod = await core().createNamespacedPod({ namespace: ns, dryRun: 'All', body: { metadata: { name: `${sa}-probe`, labels }, spec: { serviceAccountName: sa, containers: [{ name: 'app', image: 'registry.invalid/app:1' }] } } });
      return pod.spec?.containers[0]?.env?.some((e) => e.name === variable) ? true : undefined;
    });
  /** The plugin's environment: the clouds' endpoints with credentials of its own, like a person's shell. */
  const pluginEnv = () => ({
    AWS_ENDPOINT_URL_IAM: aws.endpoint,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    AWS_REGION: TEST_REGION,
    KEYLESS_GCP_ENDPOINT: gcp.endpoint,
    KEYLESS_GCP_ACCESS_TOKEN: PLUGIN_GCP_TOKEN,
    KEYLESS_AZURE_ENDPOINT: azure.emulator.endpoint,
    KEYLESS_AZURE_CREDENTIAL: 'static',
    NODE_EXTRA_CA_CERTS: azure.caFile,
  });
  const addBinding = async (target: PolicyTarget, role: string, members: string[]) => {
    const policy: IamPolicy = await gcp.client.getIamPolicy(target);
    await gcp.client.setIamPolicy(target, { ...policy, version: 3, bindings: [...(policy.bindings ?? []), { role, members }] });
  };
  /** A trust policy as people write them by hand (eksctl, Terraform modules): the subject, and the audience. */
  const irsaTrust = (subjects: string[], operator: 'StringEquals' | 'StringLike' = 'StringEquals') => {
    const host = issuer.replace(/^https:\/\//, '');
    const sub = { [`${host}:sub`]: subjects.length === 1 ? subjects[0] : subjects };
    const aud = { [`${host}:aud`]: 'sts.amazonaws.com' };
    return JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Federated: `arn:aws:iam::${TEST_ACCOUNT_ID}:oidc-provider/${host}` },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: operator === 'StringEquals' ? { StringEquals: { ...sub, ...aud } } : { StringLike: sub, StringEquals: aud },
        },
      ],
    });
  };
  const subject = (sa: string) => `system:serviceaccount:${ns}:${sa}`;
  const handMadeIdentity = async (name: string, credentials: { name: string; issuer: string; subject: string }[]) => {
    const identity = await azure.msi().userAssignedIdentities.createOrUpdate(TEST_RESOURCE_GROUP, name, { location: 'eastus', tags: { team: 'billing' } });
    for (const c of credentials) await azure.msi().federatedIdentityCredentials.createOrUpdate(TEST_RESOURCE_GROUP, name, c.name, { issuer: c.issuer, subject: c.subject, audiences: ['api://AzureADTokenExchange'] });
    return identity;
  };

  before(async () => {
    kc = kubeConfig();
    const source = await kubernetesIssuer(kc);
    issuer = source.issuer;
    [dir, dropDir] = scratchDir();
    aws = await startAwsEmulator({ issuers: [source], clusters: [{ name: CLUSTER, issuer }] });
    await createOidcProvider(aws.iam(), issuer);
    gcp = await startGcpTestEmulator({ issuers: [source], pools: [{ pool: POOL, issuer, identityProvider: GKE_PROVIDER }] });
    await gcp.addProject(PROJECT, PROJECT_NUMBER);
    await gcp.addTopic(PROJECT, 'orders');
    azure = await startTestAzure({}, [source]);

    const operatorKubeconfig = await installOperator(kc, 'kubectl-keyless');
    await kubectl(['apply', '--server-side', '--field-manager=keyless-e2e', '-k', repoPath('config/verification')]);
    peers = await startPeers({ azureTenantId: TEST_TENANT, azureAuthorityHost: azure.emulator.endpoint });
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-plugin');
    operator = await startOperator({
      name: 'kubectl-keyless',
      kubeconfig: operatorKubeconfig,
      env: { ...awsEnv(aws.endpoint), ...gcpEnv(gcp.endpoint), ...azureEnv(azure.emulator.endpoint, azure.caFile), KEYLESS_RESYNC_SECONDS: '5', KEYLESS_CLUSTER_NAME: CLUSTER },
    });
    await eventually('the operator to lead', async () => ((await operator.metric('keyless_leader')) === 1 ? true : undefined), 600_000);
    const guardrails = { allowAdoption: true };
    // The hand-made catalog role has a customer managed policy: this account allows those of its team.
    const awsGuardrails = { ...guardrails, aws: { allowedManagedPolicyArns: [`arn:aws:iam::${TEST_ACCOUNT_ID}:policy/list-covers-*`] } };
    const verification = { enabled: true };
    await kubectlApply(
      { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: account.aws }, spec: { aws: { accountId: TEST_ACCOUNT_ID, region: TEST_REGION, oidcIssuer: issuer, mechanism: 'IRSA' }, guardrails: awsGuardrails, verification } },
      { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: account.gcp }, spec: { gcp: { projectId: PROJECT, projectNumber: PROJECT_NUMBER }, guardrails, verification } },
      {
        apiVersion: 'keyless.dev/v1alpha1',
        kind: 'CloudAccount',
        metadata: { name: account.azure },
        spec: { azure: { subscriptionId: TEST_SUBSCRIPTION, tenantId: TEST_TENANT, resourceGroup: TEST_RESOURCE_GROUP, location: 'eastus', oidcIssuer: issuer }, guardrails, verification },
      },
    );
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', ...Object.values(account).map((a) => `cloudaccount/${a}`)]);
  });

  after(async () => {
    await peers.removePods(ns);
    await dropNamespace();
    await peers.stop();
    await kubectl(['delete', 'cloudaccount', ...Object.values(account), '--ignore-not-found']);
    await kubectl(['delete', '-k', repoPath('config/verification'), '--ignore-not-found']);
    await operator.stop();
    await Promise.all([aws.stop(), gcp.stop(), azure.stop()]);
    dropDir();
  });

  describe('migrate', () => {
    const ROLE_ARN = `arn:aws:iam::${TEST_ACCOUNT_ID}:role/catalog-reader`;
    const GSA = `orders-writer@${PROJECT}.iam.gserviceaccount.com`;
    const MIGRATED = ['catalog-sa', 'orders-sa', 'billing-sa'];
    let billingIdentityId = '';
    let billingClientId = '';
    let run: { code: number; stdout: string; stderr: string };
    let manifests: WorkloadIdentity[];
    /** Cloud calls made while migrate ran. */
    const during = { aws: [] as string[], gcp: [] as { operation: string; method: string }[], azure: [] as { operation: string; method: string }[] };
    let versionsBefore: Record<string, string | undefined>;
    let identitiesAfterRun: number;
    /** Every version of the migrated ServiceAccounts the watch saw while the output was applied, as name → annotations. */
    const seen: { name: string; annotations: Record<string, string> }[] = [];
    const probes: { cloud: string; start: number; end: number; result: ProbeResult }[] = [];
    let switchStarted = 0;
    let switchDone = 0;
    const annotationOf = { 'catalog-sa': 'eks.amazonaws.com/role-arn', 'orders-sa': 'iam.gke.io/gcp-service-account', 'billing-sa': 'azure.workload.identity/client-id' } as const;

    before(async () => {
      // --- the hand-made identities a team had before Keyless -------------------------------------------------
      const iam = aws.iam();
      await iam.send(new CreateRoleCommand({ RoleName: 'catalog-reader', AssumeRolePolicyDocument: irsaTrust([subject('catalog-sa')]), MaxSessionDuration: 7200, Tags: [{ Key: 'team', Value: 'catalog' }] }));
      await iam.send(new PutRolePolicyCommand({ RoleName: 'catalog-reader', PolicyName: 'read-covers', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'ReadCovers', Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::your-org-book-covers/*' }] }) }));
      const listing = await iam.send(new CreatePolicyCommand({ PolicyName: `list-covers-${suffix}`, PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::your-org-book-covers' }] }) }));
      await iam.send(new AttachRolePolicyCommand({ RoleName: 'catalog-reader', PolicyArn: listing.Policy?.Arn ?? '' }));
      await iam.send(new CreateRoleCommand({ RoleName: 'shared-reader', AssumeRolePolicyDocument: irsaTrust([subject('shared-a'), subject('shared-b')]) }));
      await iam.send(new CreateRoleCommand({ RoleName: 'wildcard-reader', AssumeRolePolicyDocument: irsaTrust([`system:serviceaccount:${ns}:*`], 'StringLike') }));

      await gcp.client.createServiceAccount(PROJECT, 'orders-writer', { displayName: 'orders', description: 'made by hand for the orders service' });
      await addBinding({ kind: 'serviceAccount', project: PROJECT, email: GSA }, 'roles/iam.workloadIdentityUser', [`serviceAccount:${POOL}[${ns}/orders-sa]`]);
      await addBinding({ kind: 'topic', project: PROJECT, topic: 'orders' }, 'roles/pubsub.publisher', [`serviceAccount:${GSA}`]);
      await addBinding({ kind: 'project', project: PROJECT }, 'roles/cloudtrace.agent', [`serviceAccount:${GSA}`]);
      const MULTI = `multi-user@${PROJECT}.iam.gserviceaccount.com`;
      await gcp.client.createServiceAccount(PROJECT, 'multi-user', { displayName: 'multi', description: '' });
      await addBinding({ kind: 'serviceAccount', project: PROJECT, email: MULTI }, 'roles/iam.workloadIdentityUser', [`serviceAccount:${POOL}[${ns}/multi-sa]`, `serviceAccount:${POOL}[${ns}/reports-sa]`]);

      const billing = await handMadeIdentity('billing-hand-made', [{ name: 'billing-aks', issuer, subject: subject('billing-sa') }]);
      billingIdentityId = billing.id ?? '';
      billingClientId = billing.clientId ?? '';
      await azure.authorization().roleAssignments.create(DATA_SCOPE.slice(1), randomUUID(), {
        roleDefinitionId: `/subscriptions/${TEST_SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/${READER}`,
        principalId: billing.principalId ?? '',
        principalType: 'ServicePrincipal',
      });
      const twoClusters = await handMadeIdentity('payments-two-clusters', [
        { name: 'this-cluster', issuer, subject: subject('payments-sa') },
        { name: 'dr-cluster', issuer: 'https://oidc.dr.example.com/cluster', subject: subject('payments-sa') },
      ]);

      // The ServiceAccounts annotated by hand, and a workload on each migrated one, injected by its webhook.
      await kubectlApply(
        serviceAccount('catalog-sa'),
        serviceAccount('orders-sa'),
        serviceAccount('billing-sa'),
        serviceAccount('shared-a'),
        serviceAccount('shared-b'),
        serviceAccount('wild-sa'),
        serviceAccount('multi-sa'),
        serviceAccount('payments-sa'),
      );
      const annotate = (sa: string, ...pairs: string[]) => kubectl(['annotate', '-n', ns, `serviceaccount/${sa}`, ...pairs]);
      await annotate('catalog-sa', `eks.amazonaws.com/role-arn=${ROLE_ARN}`);
      await annotate('orders-sa', `iam.gke.io/gcp-service-account=${GSA}`);
      await annotate('billing-sa', `azure.workload.identity/client-id=${billingClientId}`, `azure.workload.identity/tenant-id=${TEST_TENANT}`);
      await annotate('shared-a', `eks.amazonaws.com/role-arn=arn:aws:iam::${TEST_ACCOUNT_ID}:role/shared-reader`);
      await annotate('shared-b', `eks.amazonaws.com/role-arn=arn:aws:iam::${TEST_ACCOUNT_ID}:role/shared-reader`);
      await annotate('wild-sa', `eks.amazonaws.com/role-arn=arn:aws:iam::${TEST_ACCOUNT_ID}:role/wildcard-reader`);
      await annotate('multi-sa', `iam.gke.io/gcp-service-account=${MULTI}`);
      await annotate('payments-sa', `azure.workload.identity/client-id=${twoClusters.clientId ?? ''}`);
      await injects('catalog-sa', 'AWS_ROLE_ARN');
      await injects('billing-sa', 'AZURE_CLIENT_ID', AZURE_LABEL);
      await kubectlApply(deployment('catalog', 'catalog-sa'), deployment('orders', 'orders-sa'), deployment('billing', 'billing-sa', AZURE_LABEL));
      for (const d of ['catalog', 'orders', 'billing']) await kubectl(['rollout', 'status', '-n', ns, `deployment/${d}`, '--timeout=60s']);

      // --- what each workload does, as its SDK does it ----------------------------------------------------------
      const [catalogPod] = await podsOf('catalog');
      const [billingPod] = await podsOf('billing');
      assert.ok(catalogPod && billingPod);
      const catalogEnv = await podEnvironment(kc, catalogPod, dir);
      const billingEnv = await podEnvironment(kc, billingPod, dir);
      assert.equal(catalogEnv['AWS_ROLE_ARN'], ROLE_ARN, 'the webhook injected the hand-made role');
      assert.equal(billingEnv['AZURE_CLIENT_ID'], billingClientId, 'the webhook injected the hand-made identity');
      const gkeToken = writeFile(dir, await mintToken(kc, ns, 'orders-sa', { audience: POOL, expirationSeconds: 3600 }));
      const exchange = {
        aws: () => probe('aws', { ...catalogEnv, AWS_ENDPOINT_URL_STS: aws.tokens.endpoint, AWS_REGION: TEST_REGION, KEYLESS_PROBE_STS_ENDPOINT: aws.tokens.endpoint }, dir),
        azure: () => probe('azure', { ...billingEnv, NODE_EXTRA_CA_CERTS: azure.caFile }, dir),
        // GKE's metadata server reads the annotation on every request, then exchanges and impersonates.
        gcp: async () => {
          const sa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'orders-sa' });
          const email = sa.metadata?.annotations?.['iam.gke.io/gcp-service-account'] ?? '';
          const config = writeFile(
            dir,
            JSON.stringify({
              type: 'external_account',
              audience: `identitynamespace:${POOL}:${GKE_PROVIDER}`,
              subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
              token_url: `${gcp.endpoint}/v1/token`,
              service_account_impersonation_url: `${gcp.endpoint}/v1/projects/-/serviceAccounts/${email}:generateAccessToken`,
              cloud_resource_manager_url: `${gcp.endpoint}/v1/projects/`,
              credential_source: { file: gkeToken },
            }),
          );
          return probe('gcp', { GOOGLE_APPLICATION_CREDENTIALS: config }, dir);
        },
      };

      // --- migrate: read only ---------------------------------------------------------------------------------
      const names = ['catalog-sa', 'orders-sa', 'billing-sa'];
      const versionOf = async (name: string) => (await core().readNamespacedServiceAccount({ namespace: ns, name })).metadata?.resourceVersion;
      versionsBefore = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await versionOf(n)] as const)));
      const awsMark = aws.calls.length;
      const azureMark = azure.emulator.requests.length;
      await gcp.clearLog();
      run = await kubectlKeyless(['migrate', '-n', ns], pluginEnv());
      during.aws = aws.calls.slice(awsMark).map((c) => c.operation);
      during.azure = azure.emulator.requests.slice(azureMark).map((r) => ({ operation: r.operation, method: r.method }));
      const log = (await (await fetch(`${gcp.endpoint}/__emulator/log`)).json()) as { calls: { caller: string; operation: string; method: string }[] };
      during.gcp = log.calls.filter((c) => c.caller === PLUGIN_GCP_TOKEN);
      identitiesAfterRun = ((await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: 'keyless.dev', version: 'v1alpha1', plural: 'workloadidentities', namespace: ns })) as { items: unknown[] }).items.length;
      assert.equal(run.code, 0, run.stderr);
      manifests = loadAll(run.stdout).filter(Boolean) as WorkloadIdentity[];

      // --- the switch: applied as is, watched, exchanged --------------------------------------------------------
      const api = kubeApi();
      const stopWatch = new AbortController();
      const list = await api.request<{ metadata: { resourceVersion: string } }>('GET', `/api/v1/namespaces/${ns}/serviceaccounts`);
      const watching = api
        .watch<V1ServiceAccount>(`/api/v1/namespaces/${ns}/serviceaccounts`, { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: false }, (e) => {
          const name = e.object.metadata?.name ?? '';
          if (MIGRATED.includes(name)) seen.push({ name, annotations: { ...(e.object.metadata?.annotations ?? {}) } });
        }, stopWatch.signal)
        .catch(() => undefined);
      let switching = true;
      // Each workload, again and again until the switch is done, then once more: it must keep its credentials.
      const exchanging = Promise.all(
        Object.entries(exchange).map(async ([cloud, attempt]) => {
          const once = async () => {
            const start = Date.now();
            const result = await attempt();
            probes.push({ cloud, start, end: Date.now(), result });
          };
          while (switching) await once();
          await once();
        }),
      );
      switchStarted = Date.now();
      const applied = await kubectl(['apply', '-f', '-'], run.stdout);
      assert.match(applied.stdout, /workloadidentity\.keyless\.dev\/catalog created/);
      await kubectl(['wait', '--for=condition=Ready', '--timeout=120s', '-n', ns, ...manifests.map((m) => `workloadidentity/${m.metadata.name}`)]);
      switchDone = Date.now();
      switching = false;
      await exchanging;
      stopWatch.abort();
      await watching;
      api.close();
    });

    it('prints one WorkloadIdentity per identity it can adopt, naming that identity in keyless.dev/adopt', () => {
      assert.deepEqual(
        manifests.map((m) => [m.metadata.name, m.spec.serviceAccountName, m.metadata.annotations?.['keyless.dev/adopt']]).sort(),
        [
          ['billing', 'billing-sa', billingIdentityId],
          ['catalog', 'catalog-sa', ROLE_ARN],
          ['orders', 'orders-sa', GSA],
        ].sort(),
      );
      assert.deepEqual(manifests.map((m) => m.spec.cloudAccountRef.name).sort(), Object.values(account).sort());
    });

    it('reproduces what each identity grants today in the spec', () => {
      const byName = Object.fromEntries(manifests.map((m) => [m.metadata.name, m.spec]));
      assert.deepEqual(byName['catalog']?.aws, {
        mechanism: 'IRSA',
        policy: [{ sid: 'ReadCovers', effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::your-org-book-covers/*'] }],
        managedPolicyArns: [`arn:aws:iam::${TEST_ACCOUNT_ID}:policy/list-covers-${suffix}`],
        maxSessionDuration: '2h',
      });
      assert.deepEqual(byName['orders']?.gcp, {
        mechanism: 'ServiceAccount',
        roles: [{ role: 'roles/cloudtrace.agent' }, { role: 'roles/pubsub.publisher', resource: `//pubsub.googleapis.com/projects/${PROJECT}/topics/orders` }],
      });
      assert.deepEqual(byName['billing']?.azure, { roleAssignments: [{ role: 'Reader', scope: DATA_SCOPE }] });
    });

    it('reports each identity it leaves alone, and why', () => {
      const report = run.stderr;
      const reasons: [string, RegExp][] = [
        ['shared-a', /shared with ServiceAccount [^ ]+\/shared-b/],
        ['shared-b', /also trusts system:serviceaccount:[^ ]+:shared-a/],
        ['wild-sa', /is a wildcard trust: it lets every ServiceAccount matching system:serviceaccount:[^ ]+:\* assume the role/],
        ['multi-sa', /serviceAccount:[^ ]+\[[^ ]+\/reports-sa\] may also impersonate the service account/],
        ['payments-sa', /federated credential dr-cluster also trusts subject system:serviceaccount:[^ ]+:payments-sa from issuer https:\/\/oidc\.dr\.example\.com\/cluster/],
      ];
      assert.ok(report.includes('Not migrated (5)'), report);
      // "  NS/SA (cloud identity):" then one "    - reason" line per reason.
      const left = new Map<string, string[]>();
      let current: string[] = [];
      for (const line of report.slice(report.indexOf('Not migrated')).split('\n').slice(1)) {
        if (line.startsWith('    - ')) current.push(line.slice(6));
        else if (line.startsWith('  ')) left.set(line.trim().split(' ')[0] ?? '', (current = []));
        else break;
      }
      for (const [sa, why] of reasons) {
        const listed = left.get(`${ns}/${sa}`);
        assert.ok(listed, `${sa} is listed: ${report}`);
        assert.ok(listed.some((r) => why.test(r)), `${sa}: ${why} in ${JSON.stringify(listed)}`);
      }
      const rows = parseTable(report.slice(0, report.indexOf('\n\n')));
      assert.deepEqual(rows.filter((r) => r['MIGRATE'] === 'yes').map((r) => r['SERVICEACCOUNT']).sort(), MIGRATED.map((sa) => `${ns}/${sa}`).sort());
    });

    it('writes nothing while it reads: no cloud write, no Kubernetes object', () => {
      assert.ok(during.aws.includes('GetRole'), 'it read IAM');
      assert.deepEqual(during.aws.filter(isWrite), []);
      assert.ok(during.gcp.some((c) => c.operation === 'GetServiceAccount'), 'it read Google Cloud');
      assert.deepEqual(during.gcp.filter((c) => c.method !== 'GET' && !c.operation.endsWith('getIamPolicy')), []);
      assert.ok(during.azure.some((r) => r.operation === 'FederatedIdentityCredentials_List'), 'it read Azure');
      // The same host is Entra ID, where only the operator's verification goes.
      assert.deepEqual(during.azure.filter((r) => r.method !== 'GET' && !r.operation.startsWith('Entra_')), []);
      assert.equal(identitiesAfterRun, 0, 'no WorkloadIdentity was created');
    });

    it('adopts the same role, Google service account and managed identity: no new identity', async () => {
      assert.equal((await getWI('catalog')).status?.identity, ROLE_ARN);
      assert.equal((await getWI('orders')).status?.identity, GSA);
      assert.equal((await getWI('billing')).status?.identity, billingClientId);
      const role = await aws.iam().send(new GetRoleCommand({ RoleName: 'catalog-reader' }));
      assert.ok(role.Role?.Tags?.some((t) => t.Key === 'keyless.dev/name' && t.Value === 'catalog'), 'the role carries our marker now');
      assert.deepEqual((await aws.iam().send(new ListRolePoliciesCommand({ RoleName: 'catalog-reader' }))).PolicyNames, ['keyless']);
      assert.equal((await aws.iam().send(new ListAttachedRolePoliciesCommand({ RoleName: 'catalog-reader' }))).AttachedPolicies?.length, 1);
      assert.deepEqual([...azure.emulator.state.identities.values()].map((i) => i.name).sort(), ['billing-hand-made', 'payments-two-clusters']);
    });

    it('never leaves a migrated ServiceAccount without its annotation while the output is applied', (t) => {
      t.diagnostic(`${seen.length} versions of the migrated ServiceAccounts seen during the switch`);
      for (const { name, annotations } of seen) {
        const key = annotationOf[name as keyof typeof annotationOf];
        assert.ok(annotations[key], `${name} lost ${key} in one of its versions: ${JSON.stringify(annotations)}`);
      }
    });

    it('hands each annotation to Keyless, with the value it had', async () => {
      for (const name of MIGRATED) {
        const sa = await core().readNamespacedServiceAccount({ namespace: ns, name });
        const key = annotationOf[name as keyof typeof annotationOf];
        const cloud = { 'catalog-sa': 'aws', 'orders-sa': 'gcp', 'billing-sa': 'azure' }[name];
        assert.notEqual(sa.metadata?.resourceVersion, versionsBefore[name], `${name} went through Keyless's apply`);
        assert.ok(sa.metadata?.managedFields?.some((f) => f.manager === `keyless-${cloud ?? ''}` && JSON.stringify(f.fieldsV1).includes(`f:${key}`)), `${name}: Keyless manages ${key}`);
        assert.ok(seen.some((v) => v.name === name), `the watch saw ${name} change`);
      }
      assert.equal((await core().readNamespacedServiceAccount({ namespace: ns, name: 'catalog-sa' })).metadata?.annotations?.['eks.amazonaws.com/role-arn'], ROLE_ARN);
      assert.equal((await core().readNamespacedServiceAccount({ namespace: ns, name: 'orders-sa' })).metadata?.annotations?.['iam.gke.io/gcp-service-account'], GSA);
      assert.equal((await core().readNamespacedServiceAccount({ namespace: ns, name: 'billing-sa' })).metadata?.annotations?.['azure.workload.identity/client-id'], billingClientId);
    });

    it('keeps every workload getting credentials through the switch, from what its webhook injected', (t) => {
      const during = (p: (typeof probes)[number]) => p.start < switchDone && p.end > switchStarted;
      t.diagnostic(`${probes.length} exchanges, ${probes.filter(during).length} of them during the ${switchDone - switchStarted} ms from kubectl apply to Ready`);
      assert.deepEqual(probes.filter((p) => !p.result.ok), []);
      for (const cloud of ['aws', 'gcp', 'azure']) {
        assert.ok(probes.some((p) => p.cloud === cloud && during(p)), `${cloud}: an exchange while the switch happened`);
        assert.ok(probes.some((p) => p.cloud === cloud && p.start >= switchDone), `${cloud}: an exchange after it`);
      }
    });
  });

  describe('backing out of a migration', () => {
    it('leaves the adopted identities in place when the applied WorkloadIdentities are deleted (deletionPolicy: Orphan)', async () => {
      const role = `arn:aws:iam::${TEST_ACCOUNT_ID}:role/backout-reader`;
      await aws.iam().send(new CreateRoleCommand({ RoleName: 'backout-reader', AssumeRolePolicyDocument: irsaTrust([subject('backout-sa')]) }));
      await kubectlApply(serviceAccount('backout-sa', { 'eks.amazonaws.com/role-arn': role }));
      const { stdout } = await kubectlKeyless(['migrate', '-n', ns, '--cloud-account', account.aws], pluginEnv());
      const [wi] = (loadAll(stdout).filter(Boolean) as WorkloadIdentity[]).filter((m) => m.spec.serviceAccountName === 'backout-sa');
      assert.equal(wi?.spec.deletionPolicy, 'Orphan');
      await kubectl(['apply', '-f', '-'], JSON.stringify(wi));
      await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', '-n', ns, `workloadidentity/${wi?.metadata.name ?? ''}`]);
      await kubectl(['delete', '-n', ns, `workloadidentity/${wi?.metadata.name ?? ''}`, '--wait=true', '--timeout=60s']);
      const left = await aws.iam().send(new GetRoleCommand({ RoleName: 'backout-reader' }));
      assert.equal(left.Role?.Arn, role, 'the role is still there');
      assert.equal((await core().readNamespacedServiceAccount({ namespace: ns, name: 'backout-sa' })).metadata?.annotations?.['eks.amazonaws.com/role-arn'], role, 'and so is the annotation');
    });
  });

  describe('status and explain', () => {
    before(async () => {
      const policy = [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::your-org-book-covers/*'] }];
      await kubectlApply(serviceAccount('shelf-sa'), serviceAccount('early-sa'), serviceAccount('ledger-sa'), serviceAccount('legacy-sa', { 'eks.amazonaws.com/role-arn': `arn:aws:iam::${TEST_ACCOUNT_ID}:role/legacy` }));
      // A pod that starts before its identity exists: the webhook had nothing to inject.
      await core().createNamespacedPod({ namespace: ns, body: { metadata: { name: 'early', namespace: ns }, spec: { serviceAccountName: 'early-sa', containers: [{ name: 'app', image: 'registry.invalid/app:1' }] } } });
      await core().createNamespacedPod({ namespace: ns, body: { metadata: { name: 'legacy', namespace: ns }, spec: { serviceAccountName: 'legacy-sa', containers: [{ name: 'app', image: 'registry.invalid/app:1' }] } } });
      await kubectlApply(
        workloadIdentity('shelf', 'shelf-sa', account.aws, { aws: { policy } }),
        workloadIdentity('early', 'early-sa', account.aws, { aws: { policy } }),
        workloadIdentity('ledger', 'ledger-sa', account.azure, { azure: { roleAssignments: [{ role: 'Reader', scope: DATA_SCOPE }] } }),
        workloadIdentity('broken', 'orphan-sa', 'nowhere', { aws: { policy } }),
      );
      await kubectl(['wait', '--for=condition=Ready', '--timeout=90s', '-n', ns, 'workloadidentity/shelf', 'workloadidentity/early', 'workloadidentity/ledger']);
      await injects('shelf-sa', 'AWS_ROLE_ARN');
      // One Deployment injected as it should be, one whose pod template forgot the Azure label.
      await kubectlApply(deployment('shelf', 'shelf-sa'), deployment('ledger-unlabelled', 'ledger-sa'));
      for (const d of ['shelf', 'ledger-unlabelled']) await kubectl(['rollout', 'status', '-n', ns, `deployment/${d}`, '--timeout=60s']);
      await eventually('shelf to be verified and early to report its stale pod', async () => {
        const shelf = (await getWI('shelf')).status?.conditions?.find((c) => c.type === 'CredentialsVerified');
        const early = (await getWI('early')).status?.conditions?.find((c) => c.type === 'WorkloadsUpToDate');
        return shelf?.status === 'True' && early?.reason === 'PodsNeedRestart' ? true : undefined;
      }, 60_000);
    });

    it('status lists every WorkloadIdentity with its mechanism, identity and the first step that is not Ready', async () => {
      const { code, stdout } = await kubectlKeyless(['status', '-n', ns]);
      assert.equal(code, 0);
      const rows = Object.fromEntries(parseTable(stdout).map((r) => [r['NAME'] ?? '', r]));
      const shelf = await getWI('shelf');
      const row = { ...rows['shelf'] };
      delete row['MESSAGE'];
      assert.deepEqual(row, { NAME: 'shelf', SERVICEACCOUNT: 'shelf-sa', CLOUD: 'aws', MECHANISM: 'IRSA', IDENTITY: shelf.status?.identity, READY: 'True', STEP: '-', REASON: 'Ready' });
      assert.equal(rows['broken']?.['READY'], 'False');
      assert.equal(rows['broken']?.['STEP'], 'Ready');
      assert.equal(rows['broken']?.['REASON'], 'CloudAccountNotFound');
      assert.equal(rows['broken']?.['MESSAGE'], 'CloudAccount "nowhere" does not exist.');
      assert.equal(rows['early']?.['STEP'], 'WorkloadsUpToDate');
      assert.equal(rows['early']?.['REASON'], 'PodsNeedRestart');
      assert.equal(rows['ledger']?.['MECHANISM'], 'WorkloadIdentity');
    });

    it('status -A adds the namespace to every row', async () => {
      const { stdout } = await kubectlKeyless(['status', '-A']);
      const rows = parseTable(stdout);
      assert.ok(rows.some((r) => r['NAMESPACE'] === ns && r['NAME'] === 'shelf'));
    });

    it('explain follows an injected Deployment link by link to CredentialsVerified, every link OK', async () => {
      const { code, stdout } = await kubectlKeyless(['explain', 'deploy/shelf', '-n', ns]);
      assert.equal(code, 0);
      const table = stdout.slice(stdout.indexOf('STATE'));
      const links = parseTable(table.slice(0, table.indexOf('\n\n')));
      const states = Object.fromEntries(links.filter((l) => l['LINK']).map((l) => [l['LINK'] ?? '', l['STATE']]));
      assert.deepEqual(states, {
        ServiceAccount: 'OK',
        WorkloadIdentity: 'OK',
        'cloud identity': 'OK',
        trust: 'OK',
        permissions: 'OK',
        annotation: 'OK',
        injection: 'OK',
        'token audience': 'OK',
        CredentialsVerified: 'OK',
      });
      assert.match(stdout, /token audience\s+sts\.amazonaws\.com \(AWS_WEB_IDENTITY_TOKEN_FILE=/);
      assert.match(stdout, /Every link holds\./);
    });

    it('explain says a pod created before the annotation got nothing injected, and how to fix it', async () => {
      const { stdout } = await kubectlKeyless(['explain', 'pod/early', '-n', ns]);
      assert.match(stdout, /BROKEN\s+injection\s+the pod has no IRSA credentials \(started before the ServiceAccount was annotated\): it was created at \S+, before the annotation eks\.amazonaws\.com\/role-arn was set at \S+; webhooks inject only when a pod is created/);
      assert.match(stdout, /fix: kubectl delete pod -n \S+ early and create it again/);
      assert.match(stdout, /-\s+token audience\s+no AWS_WEB_IDENTITY_TOKEN_FILE: nothing injected/);
    });

    it('explain says a pod without the Azure label got nothing injected', async () => {
      const { stdout } = await kubectlKeyless(['explain', 'deploy/ledger-unlabelled', '-n', ns]);
      assert.match(stdout, /BROKEN\s+injection\s+the pod lacks the label azure\.workload\.identity\/use: "true", so the Azure workload identity webhook skipped it/);
      assert.match(stdout, /fix: add the label to the pod template's labels \(not the Deployment's own\), then kubectl rollout restart -n \S+ deployment\/ledger-unlabelled/);
    });

    it('explain points a ServiceAccount with an identity made by hand to migrate', async () => {
      const { stdout } = await kubectlKeyless(['explain', 'pod/legacy', '-n', ns]);
      assert.match(stdout, /BROKEN\s+WorkloadIdentity\s+no WorkloadIdentity in \S+ names ServiceAccount legacy-sa; it carries an identity set by hand \(eks\.amazonaws\.com\/role-arn: arn:aws:iam::\d+:role\/legacy\)/);
      assert.match(stdout, /fix: kubectl keyless migrate -n \S+ writes the WorkloadIdentity that adopts it/);
    });

    it('explain says which workload it cannot find', async () => {
      const { code, stderr } = await kubectlKeyless(['explain', 'deploy/nothing', '-n', ns]);
      assert.equal(code, 1);
      assert.match(stderr, /deployment nothing not found in namespace/);
    });
  });
});
