// GKE Workload Identity end to end: the real operator (its own ServiceAccount and ClusterRole), the real control
// plane, kubectl, the in-project GCP emulator serving the real Google REST clients, and gcloud as an independent
// client reading back what the operator wrote.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { CloudAccount, WorkloadIdentity } from '../../src/api/types.ts';
import { grantsOf, type IamBinding, type IamPolicy } from '../../src/providers/gke-workload-identity/policy.ts';
import type { PolicyTarget } from '../../src/providers/gke-workload-identity/resources.ts';
import { eventually, freshNamespace, kubeConfig, kubectl, kubectlApply } from '../support/cluster.ts';
import { isWrite, startGcpTestEmulator, type GcpTestEmulator } from '../support/gcp.ts';
import { gcpEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';

const RESYNC_SECONDS = 5;
const group = { group: 'keyless.dev', version: 'v1alpha1' };
const suffix = randomBytes(3).toString('hex');
const PROJECT = `e2e-gke-${suffix}`;
const PROJECT_NUMBER = String(randomInt(100_000_000, 999_999_999));
const POOL = `${PROJECT}.svc.id.goog`;
const BUCKET = `covers-${suffix}`;
const covers = { title: 'covers-only', expression: `resource.name.startsWith("projects/_/buckets/${BUCKET}/objects/covers/")` };

const projectTarget: PolicyTarget = { kind: 'project', project: PROJECT };
const bucketTarget: PolicyTarget = { kind: 'bucket', bucket: BUCKET };
const topicTarget: PolicyTarget = { kind: 'topic', project: PROJECT, topic: 'orders' };
const secretTarget: PolicyTarget = { kind: 'secret', project: PROJECT, secret: 'db-password' };
const sharedTargets = [projectTarget, bucketTarget, topicTarget, secretTarget];

const TRACE = { role: 'roles/cloudtrace.agent' };
const PUBLISH = { role: 'roles/pubsub.publisher', resource: `//pubsub.googleapis.com/projects/${PROJECT}/topics/orders` };
const ROLES = [
  TRACE,
  { role: 'roles/storage.objectViewer', resource: `//storage.googleapis.com/projects/_/buckets/${BUCKET}`, condition: covers },
  PUBLISH,
  { role: 'roles/secretmanager.secretAccessor', resource: `//secretmanager.googleapis.com/projects/${PROJECT}/secrets/db-password` },
];

/** Bindings compared as sets: order inside a policy carries no meaning. */
function bindingSet(policy: IamPolicy): string[] {
  return (policy.bindings ?? []).flatMap((b: IamBinding) => b.members.map((m) => `${b.role} ${m} ${b.condition?.expression ? JSON.stringify([b.condition.title, b.condition.expression]) : ''}`)).sort();
}

describe('GKE Workload Identity end to end', () => {
  let kc: KubeConfig;
  let gcp: GcpTestEmulator;
  let operator: RunningOperator;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  let gcloudConfig: string;
  let before1: Map<string, string[]>;
  const account = `e2e-gke-${suffix}`;

  const custom = () => kc.makeApiClient(CustomObjectsApi);
  const core = () => kc.makeApiClient(CoreV1Api);
  const getWI = async (name: string) => (await custom().getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns, name })) as WorkloadIdentity;
  const waitReady = (name: string, timeout = '90s') => kubectl(['wait', '--for=condition=Ready', `--timeout=${timeout}`, '-n', ns, `workloadidentity/${name}`]);
  const condition = (wi: WorkloadIdentity, type: string) => wi.status?.conditions?.find((c) => c.type === type);
  const serviceAccount = (name: string) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } });
  const workloadIdentity = (name: string, serviceAccountName: string, gcpSpec: Record<string, unknown>) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns },
    spec: { serviceAccountName, cloudAccountRef: { name: account }, gcp: gcpSpec },
  });
  const policy = (t: PolicyTarget) => gcp.client.getIamPolicy(t);
  const gsaOf = async (name: string) => {
    const email = (await getWI(name)).status?.gcp?.serviceAccountEmail;
    assert.ok(email, `${name} has status.gcp.serviceAccountEmail`);
    return email;
  };
  const gsaTarget = (email: string): PolicyTarget => ({ kind: 'serviceAccount', project: PROJECT, email });
  const gcloud = async (...args: string[]) => {
    const root = `${gcp.endpoint}/`;
    const { stdout } = await promisify(execFile)('gcloud', [...args, '--format=json'], {
      timeout: 60_000,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: gcloudConfig,
        CLOUDSDK_CONFIG: gcloudConfig,
        CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
        CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: '1',
        CLOUDSDK_AUTH_ACCESS_TOKEN: 'gcloud-e2e',
        CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM: root,
        CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER: root,
        CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB: root,
        CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER: root,
        CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE: `${root}storage/v1/`,
      },
    });
    return JSON.parse(stdout) as unknown;
  };
  const foreignGrant = (target: PolicyTarget, role: string, member: string) => gcp.editByHand(target, (bindings) => [...bindings, { role, members: [member] }]);

  before(async () => {
    kc = kubeConfig();
    gcp = await startGcpTestEmulator();
    await gcp.addProject(PROJECT, PROJECT_NUMBER);
    await gcp.addBucket(BUCKET);
    await gcp.addTopic(PROJECT, 'orders');
    await gcp.addSecret(PROJECT, 'db-password');
    gcloudConfig = mkdtempSync(path.join(os.tmpdir(), 'keyless-gcloud-'));
    // Bindings someone else made before Keyless arrived; the bucket's one shares our role.
    await foreignGrant(projectTarget, 'roles/owner', 'user:root@example.com');
    await foreignGrant(bucketTarget, 'roles/storage.objectViewer', 'group:readers@example.com');
    await foreignGrant(topicTarget, 'roles/pubsub.viewer', 'domain:example.com');

    const operatorKubeconfig = await installOperator(kc, 'gke-workload-identity');
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-gke');
    operator = await startOperator({
      name: 'gke-workload-identity',
      kubeconfig: operatorKubeconfig,
      // A short resync over two dozen identities needs more than the default 10 cloud calls per second.
      env: { ...gcpEnv(gcp.endpoint), KEYLESS_RESYNC_SECONDS: String(RESYNC_SECONDS), KEYLESS_CLUSTER_NAME: 'e2e-cluster', KEYLESS_CLOUD_WRITES_PER_SECOND: '50', KEYLESS_CLOUD_WRITE_BURST: '50' },
    });
    // Operators of suites running beside this one share the leader Lease: wait for our turn.
    await eventually('the operator to lead', async () => ((await operator.metric('keyless_leader')) === 1 ? true : undefined), 600_000);
  });

  after(async () => {
    // The namespace first, while the operator runs, so every WorkloadIdentity's finalizer is honoured.
    await gcp.setFaults({ propagationDelayMs: 0, conflictEvery: 0 });
    await dropNamespace();
    await kubectl(['delete', 'cloudaccount', account, '--ignore-not-found']);
    await operator.stop();
    await gcp.stop();
    rmSync(gcloudConfig, { recursive: true, force: true });
  });

  it('makes the CloudAccount Ready with the workload identity pool as its issuer', async () => {
    await kubectlApply({ apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: account }, spec: { gcp: { projectId: PROJECT, projectNumber: PROJECT_NUMBER } } });
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', `cloudaccount/${account}`]);
    const ca = (await custom().getClusterCustomObject({ ...group, plural: 'cloudaccounts', name: account })) as CloudAccount;
    assert.equal(ca.status?.issuer, POOL);
    assert.match(ca.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '', new RegExp(`--workload-pool=${POOL.replace(/\./g, '\\.')}`));
    before1 = new Map(await Promise.all(sharedTargets.map(async (t) => [JSON.stringify(t), bindingSet(await policy(t))] as const)));
  });

  it('ServiceAccount mode: creates the Google service account, its trust and exactly the grants, and annotates', async (t) => {
    await gcp.clearLog();
    await kubectlApply(serviceAccount('catalog-sa'), workloadIdentity('catalog', 'catalog-sa', { mechanism: 'ServiceAccount', roles: ROLES }));
    await waitReady('catalog');
    const calls = await gcp.operatorCalls();
    t.diagnostic(`create (ServiceAccount mode, 4 grants): ${calls.length} calls, ${calls.filter(isWrite).length} writes: ${calls.map((c) => c.operation).join(', ')}`);

    const wi = await getWI('catalog');
    const email = await gsaOf('catalog');
    // <namespace>-<name> cut to fit IAM's 30 characters, then a hash of the identity.
    assert.match(email, new RegExp(`^${ns}-[a-z0-9-]*[0-9a-f]{8}@${PROJECT}\\.iam\\.gserviceaccount\\.com$`));
    assert.match(email.split('@')[0] ?? '', /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/);
    const sa = await gcp.client.getServiceAccount(PROJECT, email);
    assert.equal(sa?.displayName, `${ns}/catalog`);
    assert.match(sa?.description ?? '', new RegExp(`keyless\\.dev/cluster=e2e-cluster keyless\\.dev/namespace=${ns} keyless\\.dev/name=catalog$`));

    const kubernetesMember = `serviceAccount:${POOL}[${ns}/catalog-sa]`;
    assert.deepEqual((await policy(gsaTarget(email))).bindings, [{ role: 'roles/iam.workloadIdentityUser', members: [kubernetesMember] }]);
    const me = `serviceAccount:${email}`;
    assert.deepEqual(grantsOf(await policy(projectTarget), me), [{ role: 'roles/cloudtrace.agent' }]);
    const bucketPolicy = await policy(bucketTarget);
    assert.deepEqual(grantsOf(bucketPolicy, me), [{ role: 'roles/storage.objectViewer', condition: covers }]);
    assert.equal(bucketPolicy.version, 3);
    assert.deepEqual(grantsOf(await policy(topicTarget), me), [{ role: 'roles/pubsub.publisher' }]);
    assert.deepEqual(grantsOf(await policy(secretTarget), me), [{ role: 'roles/secretmanager.secretAccessor' }]);

    const ksa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'catalog-sa' });
    assert.equal(ksa.metadata?.annotations?.['iam.gke.io/gcp-service-account'], email);
    assert.equal(wi.status?.identity, email);
    assert.deepEqual(wi.status?.gcp, { serviceAccountEmail: email, member: me });
    assert.equal(wi.status?.provisioned?.gcp?.serviceAccountEmail, email, 'the record names the service account');
    assert.equal(new Set(wi.status?.provisioned?.gcp?.grants?.map((g) => g.resource)).size, 4, 'the record remembers the four resources granted on');
    for (const type of ['IdentityReady', 'TrustReady', 'PermissionsReady', 'ServiceAccountReady', 'Ready']) {
      assert.equal(condition(wi, type)?.status, 'True', type);
    }
    assert.match(condition(wi, 'TrustReady')?.message ?? '', new RegExp(`lets serviceAccount:${POOL.replace(/\./g, '\\.')}\\[${ns}/catalog-sa\\] impersonate it`));
    const table = (await kubectl(['get', 'wi', '-n', ns, 'catalog'])).stdout;
    assert.match(table, new RegExp(`catalog\\s+gcp\\s+ServiceAccount\\s+catalog-sa\\s+True\\s+${email.replace(/\./g, '\\.')}`));
  });

  it('DirectPrincipal mode: grants to the principal, no Google service account, no annotation', async () => {
    const accountsBefore = await gcloud('iam', 'service-accounts', 'list', '--project', PROJECT);
    await kubectlApply(serviceAccount('orders-sa'), workloadIdentity('orders', 'orders-sa', { mechanism: 'DirectPrincipal', roles: [TRACE, PUBLISH] }));
    await waitReady('orders');
    const principal = `principal://iam.googleapis.com/projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/${POOL}/subject/ns/${ns}/sa/orders-sa`;
    const wi = await getWI('orders');
    assert.equal(wi.status?.identity, principal);
    assert.equal(wi.status?.gcp?.member, principal);
    assert.equal(wi.status?.gcp?.serviceAccountEmail, undefined);
    assert.deepEqual(grantsOf(await policy(projectTarget), principal), [{ role: 'roles/cloudtrace.agent' }]);
    assert.deepEqual(grantsOf(await policy(topicTarget), principal), [{ role: 'roles/pubsub.publisher' }]);
    assert.deepEqual(grantsOf(await policy(bucketTarget), principal), []);
    assert.deepEqual(await gcloud('iam', 'service-accounts', 'list', '--project', PROJECT), accountsBefore, 'no Google service account was created');
    const ksa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'orders-sa' });
    assert.equal(ksa.metadata?.annotations?.['iam.gke.io/gcp-service-account'], undefined);
    assert.equal(condition(wi, 'ServiceAccountReady')?.reason, 'NotRequired');
  });

  it('gcloud, an independent client, reads back what the operator wrote', async () => {
    const email = await gsaOf('catalog');
    const accounts = (await gcloud('iam', 'service-accounts', 'list', '--project', PROJECT)) as { email: string; displayName: string }[];
    assert.deepEqual(accounts.map((a) => [a.email, a.displayName]), [[email, `${ns}/catalog`]]);
    const trust = (await gcloud('iam', 'service-accounts', 'get-iam-policy', email, '--project', PROJECT)) as IamPolicy;
    assert.deepEqual(trust.bindings, [{ role: 'roles/iam.workloadIdentityUser', members: [`serviceAccount:${POOL}[${ns}/catalog-sa]`] }]);
    const projectPolicy = (await gcloud('projects', 'get-iam-policy', PROJECT)) as IamPolicy;
    assert.deepEqual(grantsOf(projectPolicy, `serviceAccount:${email}`), [{ role: 'roles/cloudtrace.agent' }]);
    const bucketPolicy = (await gcloud('storage', 'buckets', 'get-iam-policy', `gs://${BUCKET}`)) as IamPolicy;
    assert.deepEqual(grantsOf(bucketPolicy, `serviceAccount:${email}`), [{ role: 'roles/storage.objectViewer', condition: covers }]);
    const topicPolicy = (await gcloud('pubsub', 'topics', 'get-iam-policy', 'orders', '--project', PROJECT)) as IamPolicy;
    assert.deepEqual(grantsOf(topicPolicy, `serviceAccount:${email}`), [{ role: 'roles/pubsub.publisher' }]);
    const secretPolicy = (await gcloud('secrets', 'get-iam-policy', 'db-password', '--project', PROJECT)) as IamPolicy;
    assert.deepEqual(grantsOf(secretPolicy, `serviceAccount:${email}`), [{ role: 'roles/secretmanager.secretAccessor' }]);
  });

  it('makes no cloud writes at steady state', async (t) => {
    await gcp.clearLog();
    const reconcilesBefore = await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity', result: 'success' });
    // Several resync periods pass; the assertion is about what happened in them, not how long they took.
    await new Promise((resolve) => setTimeout(resolve, (RESYNC_SECONDS * 3 + 2) * 1000));
    const calls = await gcp.operatorCalls();
    const reconciles = (await operator.metric('keyless_reconcile_total', { controller: 'workloadidentity', result: 'success' })) - reconcilesBefore;
    assert.deepEqual(calls.filter(isWrite), [], 'cloud writes at steady state');
    assert.ok(reconciles >= 2, `at least two resyncs happened (${reconciles})`);
    t.diagnostic(`steady state: ${calls.length} reads over ${reconciles} reconciles of 2 identities: ${(calls.length / reconciles).toFixed(2)} reads per identity per resync (${[...new Set(calls.map((c) => c.operation))].join(', ')})`);
  });

  it('removes the grant of a role dropped from the spec, and rejects an unsupported resource as InvalidSpec', async () => {
    const email = await gsaOf('catalog');
    await kubectlApply(workloadIdentity('catalog', 'catalog-sa', { mechanism: 'ServiceAccount', roles: ROLES.filter((r) => r.role !== 'roles/pubsub.publisher') }));
    await eventually('the topic grant to be revoked', async () => (grantsOf(await policy(topicTarget), `serviceAccount:${email}`).length === 0 ? true : undefined));
    await waitReady('catalog');

    await kubectlApply(serviceAccount('bad-sa'), workloadIdentity('bad', 'bad-sa', { roles: [{ role: 'roles/bigquery.dataViewer', resource: `//bigquery.googleapis.com/projects/${PROJECT}/datasets/d` }] }));
    const ready = await eventually('InvalidSpec', async () => {
      const c = condition(await getWI('bad'), 'Ready');
      return c?.reason === 'InvalidSpec' ? c : undefined;
    });
    assert.match(ready.message, /is not a resource Keyless can grant on; use one of/);
    await kubectl(['delete', '-n', ns, 'workloadidentity/bad', '--wait=true', '--timeout=60s']);

    // Accepted by setIamPolicy, but a Cloud Storage role on a Pub/Sub topic grants nothing: reported, never Ready.
    await kubectlApply(workloadIdentity('bad', 'bad-sa', { roles: [{ role: 'roles/storage.objectViewer', resource: PUBLISH.resource }] }));
    const permissions = await eventually('GrantsNothing', async () => {
      const c = condition(await getWI('bad'), 'PermissionsReady');
      return c?.reason === 'GrantsNothing' ? c : undefined;
    });
    assert.match(permissions.message, /roles\/storage\.objectViewer grants nothing on \/\/pubsub\.googleapis\.com\/.*topics\/orders: a Pub\/Sub topic's IAM policy takes only roles\/pubsub\.\* roles/);
    assert.equal(condition(await getWI('bad'), 'Ready')?.reason, 'GrantsNothing');
    await kubectl(['delete', '-n', ns, 'workloadidentity/bad', '--wait=true', '--timeout=60s']);
  });

  it('switches from ServiceAccount to DirectPrincipal by one field: grants move, the service account goes', async () => {
    await kubectlApply(serviceAccount('switch-sa'), workloadIdentity('switch', 'switch-sa', { mechanism: 'ServiceAccount', roles: [PUBLISH] }));
    await waitReady('switch');
    const email = await gsaOf('switch');
    await kubectl(['patch', '-n', ns, 'workloadidentity/switch', '--type=merge', '-p', '{"spec":{"gcp":{"mechanism":"DirectPrincipal"}}}']);
    const principal = `principal://iam.googleapis.com/projects/${PROJECT_NUMBER}/locations/global/workloadIdentityPools/${POOL}/subject/ns/${ns}/sa/switch-sa`;
    await eventually('the grant to move to the principal', async () => ((await getWI('switch')).status?.identity === principal && condition(await getWI('switch'), 'Ready')?.status === 'True' ? true : undefined));
    assert.equal(await gcp.client.getServiceAccount(PROJECT, email), undefined, 'the service account of ServiceAccount mode is deleted');
    const topicPolicy = await policy(topicTarget);
    assert.deepEqual(grantsOf(topicPolicy, principal), [{ role: 'roles/pubsub.publisher' }]);
    assert.doesNotMatch(JSON.stringify(topicPolicy), new RegExp(email.replace(/\./g, '\\.')));
    const ksa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'switch-sa' });
    assert.equal(ksa.metadata?.annotations?.['iam.gke.io/gcp-service-account'], undefined);
    await kubectl(['delete', '-n', ns, 'workloadidentity/switch', '--wait=true', '--timeout=60s']);
  });

  it('deletes in both modes removing exactly what was added: trust, grants, the service account, the annotation', async () => {
    const email = await gsaOf('catalog');
    await kubectl(['delete', '-n', ns, 'workloadidentity/catalog', 'workloadidentity/orders', '--wait=true', '--timeout=60s']);
    assert.equal(await gcp.client.getServiceAccount(PROJECT, email), undefined, 'the Google service account is deleted');
    for (const target of sharedTargets) {
      const after = await policy(target);
      assert.deepEqual(bindingSet(after), before1.get(JSON.stringify(target)), `${JSON.stringify(target)} is back to what it was`);
      assert.doesNotMatch(JSON.stringify(after), /deleted:/);
    }
    const ksa = await core().readNamespacedServiceAccount({ namespace: ns, name: 'catalog-sa' });
    assert.equal(ksa.metadata?.annotations?.['iam.gke.io/gcp-service-account'], undefined);
  });

  it('20 WorkloadIdentities granting on one project at once: no lost update, foreign bindings kept', async (t) => {
    const names = Array.from({ length: 20 }, (_, i) => `team-${String(i).padStart(2, '0')}`);
    await foreignGrant(projectTarget, 'roles/viewer', 'user:before@example.com');
    await gcp.clearLog();
    await kubectlApply(...names.flatMap((n) => [serviceAccount(`${n}-sa`), workloadIdentity(n, `${n}-sa`, { mechanism: 'ServiceAccount', roles: [{ role: 'roles/logging.logWriter' }, { role: 'roles/monitoring.metricWriter' }] })]));
    // Someone else keeps editing the same policy while the operator works.
    const during: string[] = [];
    for (let i = 0; i < 5; i++) {
      const member = `user:during-${i}@example.com`;
      await foreignGrant(projectTarget, 'roles/viewer', member);
      during.push(member);
    }
    await Promise.all(names.map((n) => waitReady(n, '180s')));
    const final = await policy(projectTarget);
    for (const n of names) {
      const email = await gsaOf(n);
      assert.deepEqual(grantsOf(final, `serviceAccount:${email}`).map((g) => g.role).sort(), ['roles/logging.logWriter', 'roles/monitoring.metricWriter'], n);
    }
    const viewers = final.bindings?.filter((b) => b.role === 'roles/viewer').flatMap((b) => b.members) ?? [];
    for (const m of ['user:before@example.com', ...during]) assert.ok(viewers.includes(m), `${m} survived`);
    assert.ok(grantsOf(final, 'user:root@example.com').length === 1, 'the owner binding from before the run survived');
    const calls = await gcp.operatorCalls();
    const conflicts = calls.filter((c) => c.operation === 'projects.setIamPolicy' && c.status === 409).length;
    t.diagnostic(`20 identities: ${calls.length} calls (${calls.filter((c) => c.operation === 'projects.setIamPolicy').length} project setIamPolicy, ${conflicts} of them stale-etag retries)`);
  });

  it('converges with propagation delay and etag-conflict faults on, without duplicate service accounts', async () => {
    await gcp.setFaults({ propagationDelayMs: 2_000, conflictEvery: 2 });
    await gcp.clearLog();
    const names = ['slow-a', 'slow-b', 'slow-c'];
    await kubectlApply(...names.flatMap((n) => [serviceAccount(`${n}-sa`), workloadIdentity(n, `${n}-sa`, { mechanism: 'ServiceAccount', roles: [TRACE, PUBLISH] })]));
    await Promise.all(names.map((n) => waitReady(n, '180s')));
    await gcp.setFaults({ propagationDelayMs: 0, conflictEvery: 0 });
    const calls = await gcp.operatorCalls();
    assert.equal(calls.filter((c) => c.operation === 'CreateServiceAccount' && c.status === 200).length, names.length, 'one successful create per identity');
    assert.ok(calls.some((c) => c.status === 404 || (c.status === 400 && c.operation.endsWith('setIamPolicy'))), 'the operator met the propagation delay');
    assert.ok(calls.some((c) => c.status === 409 && c.operation.endsWith('setIamPolicy')), 'the operator met stale etags');

    const accounts = (await gcloud('iam', 'service-accounts', 'list', '--project', PROJECT)) as { email: string; description: string }[];
    const racers: IamBinding[] = [];
    for (const n of names) {
      const mine = accounts.filter((a) => a.description.endsWith(`keyless.dev/namespace=${ns} keyless.dev/name=${n}`));
      assert.equal(mine.length, 1, `exactly one service account for ${n}`);
      const email = mine[0]?.email ?? '';
      assert.equal(email, await gsaOf(n));
      assert.deepEqual(grantsOf(await policy(topicTarget), `serviceAccount:${email}`), [{ role: 'roles/pubsub.publisher' }]);
      const trust = (await policy(gsaTarget(email))).bindings?.filter((b) => b.role === 'roles/iam.workloadIdentityUser');
      assert.deepEqual(trust, [{ role: 'roles/iam.workloadIdentityUser', members: [`serviceAccount:${POOL}[${ns}/${n}-sa]`] }]);
      racers.push(...((await policy(gsaTarget(email))).bindings ?? []));
    }
    // The emulator's concurrent writer added these between the operator's reads and writes; all survived.
    racers.push(...((await policy(projectTarget)).bindings ?? []), ...((await policy(topicTarget)).bindings ?? []));
    const written = racers.filter((b) => b.role === 'roles/browser').flatMap((b) => b.members);
    assert.ok(written.length > 0, 'the conflict fault fired');
    assert.deepEqual(written.sort(), Array.from({ length: written.length }, (_, i) => `user:concurrent-${i + 1}@example.com`).sort(), 'every concurrent write survived');
  });
  it('reports the service account quota as QuotaExceeded and recovers once there is room', async () => {
    const accounts = (await gcloud('iam', 'service-accounts', 'list', '--project', PROJECT)) as unknown[];
    await gcp.setFaults({ serviceAccountQuota: accounts.length });
    try {
      await kubectlApply(serviceAccount('full-sa'), workloadIdentity('full', 'full-sa', { mechanism: 'ServiceAccount', roles: [TRACE] }));
      const ready = await eventually('QuotaExceeded', async () => {
        const c = condition(await getWI('full'), 'Ready');
        return c?.reason === 'QuotaExceeded' ? c : undefined;
      });
      assert.match(ready.message, /Maximum number of service accounts on project reached\..*DirectPrincipal/);
      assert.equal(condition(await getWI('full'), 'IdentityReady')?.status, 'False');
    } finally {
      await gcp.setFaults({ serviceAccountQuota: 100 });
    }
    // A terminal failure waits for the next resync (or a spec change) before looking again.
    await waitReady('full', `${RESYNC_SECONDS * 4}s`);
  });
});
