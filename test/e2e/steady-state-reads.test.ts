// Steady-state cloud reads of GKE (both modes) and AKS identities, counted from the emulators' request logs: several
// converged identities per mechanism sharing one project, bucket, resource group and subscription, a few resyncs,
// and no write. What one identity alone can tell (its Google service account's policy, its managed identity's
// federated credentials) is read at most once per reconcile of that identity; what every identity of the account
// shares (a resource's IAM policy, the list of service accounts or managed identities, the role assignments of a
// subscription) is read by the account, not by each identity — at most once per shared-read max age, however many
// identities use it. Counts only: the reconciles are counted from the operator's own log, the window just has to
// hold a few resyncs. Then a binding and a role assignment are removed by hand and must come back (the time it took
// is printed, never asserted).
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { WorkloadIdentity } from '../../src/api/types.ts';
import { grantsOf, type IamBinding } from '../../src/providers/gke-workload-identity/policy.ts';
import type { PolicyTarget } from '../../src/providers/gke-workload-identity/resources.ts';
import { sharedReadMaxAgeMs } from '../../src/providers/shared-reads.ts';
import type { LoggedCall } from '../emulators/gcp/state.ts';
import { DATA_RESOURCE_GROUP, TEST_RESOURCE_GROUP, TEST_SUBSCRIPTION as SUB, TEST_TENANT, startTestAzure, type TestAzure } from '../support/azure.ts';
import { clusterIssuer, eventually, freshNamespace, kubeConfig, kubectl, kubectlApply } from '../support/cluster.ts';
import { isWrite as isGcpWrite, startGcpTestEmulator, type GcpTestEmulator } from '../support/gcp.ts';
import { azureEnv, gcpEnv, installOperator, startOperator, type RunningOperator } from '../support/operator.ts';

const RESYNC_SECONDS = 5;
const RESYNCS = 3;
/** Identities per mechanism: enough that a read per identity and a read per account tell apart. */
const N = 5;
const group = { group: 'keyless.dev', version: 'v1alpha1' };
const suffix = randomBytes(3).toString('hex');
const MODES = ['ServiceAccount', 'DirectPrincipal'] as const;
type Mode = (typeof MODES)[number];
type Mechanism = Mode | 'AKS';
const gcpSetup = Object.fromEntries(
  MODES.map((mode) => {
    const project = `e2e-reads-${mode === 'ServiceAccount' ? 'sa' : 'dp'}-${suffix}`;
    return [mode, { project, projectNumber: String(randomInt(100_000_000, 999_999_999)), bucket: `${project}-data`, account: `${project}` }];
  }),
) as Record<Mode, { project: string; projectNumber: string; bucket: string; account: string }>;
const azureAccountName = `e2e-reads-aks-${suffix}`;
const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
const BLOB_READER = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1';
const DATA_RG = `/subscriptions/${SUB}/resourceGroups/${DATA_RESOURCE_GROUP}`;
const BOOKS = `${DATA_RG}/providers/Microsoft.Storage/storageAccounts/books`;
const names = (mechanism: Mechanism) => Array.from({ length: N }, (_, i) => `${mechanism === 'AKS' ? 'aks' : mechanism === 'ServiceAccount' ? 'gsa' : 'direct'}-${i}`);

/** One mechanism's reads in the window: those naming one identity's own objects, and those of shared things. */
interface Tally {
  reconciles: Map<string, number>;
  own: Map<string, number>;
  shared: Map<string, number>;
  writes: string[];
  total: number;
}

const count = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);
const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

describe('steady-state reads shared across identities', () => {
  let kc: KubeConfig;
  let gcp: GcpTestEmulator;
  let azure: TestAzure;
  let operator: RunningOperator;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  /** GSA email or managed identity name (lowercase) → the WorkloadIdentity it belongs to. */
  const ownerOf = new Map<string, string>();
  const tallies = new Map<Mechanism, Tally>();

  const getWI = async (name: string) => (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ ...group, plural: 'workloadidentities', namespace: ns, name })) as WorkloadIdentity;
  const serviceAccount = (name: string) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } });
  const workloadIdentity = (name: string, account: string, spec: object) => ({
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: ns, labels: { batch: 'reads' } },
    spec: { serviceAccountName: `${name}-sa`, cloudAccountRef: { name: account }, ...spec },
  });
  const gcpRoles = (mode: Mode) => [
    { role: 'roles/cloudtrace.agent' },
    { role: 'roles/storage.objectViewer', resource: `//storage.googleapis.com/projects/_/buckets/${gcpSetup[mode].bucket}` },
  ];

  before(async () => {
    kc = kubeConfig();
    gcp = await startGcpTestEmulator();
    for (const mode of MODES) {
      await gcp.addProject(gcpSetup[mode].project, gcpSetup[mode].projectNumber);
      await gcp.addBucket(gcpSetup[mode].bucket);
    }
    azure = await startTestAzure();
    const operatorKubeconfig = await installOperator(kc, 'steady-state-reads');
    const issuer = await clusterIssuer(kc);
    [ns, dropNamespace] = await freshNamespace(kc, 'e2e-reads');
    operator = await startOperator({
      name: 'steady-state-reads',
      kubeconfig: operatorKubeconfig,
      env: {
        ...gcpEnv(gcp.endpoint),
        ...azureEnv(azure.emulator.endpoint, azure.caFile),
        KEYLESS_RESYNC_SECONDS: String(RESYNC_SECONDS),
        KEYLESS_CLUSTER_NAME: 'e2e-reads',
        // Each reconcile's end is logged at debug: the reconciles of the window are counted from the log.
        KEYLESS_LOG_LEVEL: 'debug',
        KEYLESS_WORKERS: '8',
        KEYLESS_CLOUD_WRITES_PER_SECOND: '100',
        KEYLESS_CLOUD_WRITE_BURST: '50',
      },
    });
    // Operators of suites running beside this one share the leader Lease: wait for our turn.
    await eventually('the operator to lead', async () => ((await operator.metric('keyless_leader')) === 1 ? true : undefined), 600_000);

    await kubectlApply(
      ...MODES.map((mode) => ({
        apiVersion: 'keyless.dev/v1alpha1',
        kind: 'CloudAccount',
        metadata: { name: gcpSetup[mode].account },
        spec: { gcp: { projectId: gcpSetup[mode].project, projectNumber: gcpSetup[mode].projectNumber, mechanism: mode } },
      })),
      {
        apiVersion: 'keyless.dev/v1alpha1',
        kind: 'CloudAccount',
        metadata: { name: azureAccountName },
        spec: { azure: { subscriptionId: SUB, tenantId: TEST_TENANT, resourceGroup: TEST_RESOURCE_GROUP, location: 'eastus', oidcIssuer: issuer } },
      },
    );
    await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', ...MODES.map((m) => `cloudaccount/${gcpSetup[m].account}`), `cloudaccount/${azureAccountName}`]);

    const objects: object[] = [];
    for (const mode of MODES) for (const name of names(mode)) objects.push(serviceAccount(`${name}-sa`), workloadIdentity(name, gcpSetup[mode].account, { gcp: { roles: gcpRoles(mode) } }));
    for (const name of names('AKS')) objects.push(serviceAccount(`${name}-sa`), workloadIdentity(name, azureAccountName, { azure: { roleAssignments: [{ role: READER, scope: DATA_RG }, { role: BLOB_READER, scope: BOOKS }] } }));
    await kubectlApply(...objects);
    await kubectl(['wait', '--for=condition=Ready', '--timeout=180s', '-n', ns, 'workloadidentity', '-l', 'batch=reads']);
    for (const name of names('ServiceAccount')) ownerOf.set((await getWI(name)).status?.gcp?.serviceAccountEmail ?? '', name);
    for (const name of names('AKS')) ownerOf.set(((await getWI(name)).status?.azure?.identityId ?? '').split('/').pop()?.toLowerCase() ?? '', name);
  });

  after(async () => {
    // The namespace first, while the operator runs, so every WorkloadIdentity's finalizer is honoured.
    await dropNamespace();
    await kubectl(['delete', 'cloudaccount', azureAccountName, ...MODES.map((m) => gcpSetup[m].account), '--ignore-not-found']);
    await operator.stop();
    await gcp.stop();
    await azure.stop();
  });

  it(`counts every cloud call over ${RESYNCS} resyncs of ${N} converged identities per mechanism`, async (t) => {
    // Converged means one quiet pass: let the creates' own follow-up reconciles finish before counting.
    await new Promise((resolve) => setTimeout(resolve, RESYNC_SECONDS * 1000));
    await gcp.clearLog();
    const armFrom = azure.emulator.requests.length;
    const logFrom = statSync(operator.logFile).size;
    const started = Date.now();
    // The window only has to hold a few resyncs; what is asserted is counted in it, not how long anything took.
    await new Promise((resolve) => setTimeout(resolve, RESYNCS * RESYNC_SECONDS * 1000));
    const windowMs = Date.now() - started;
    const gcpCalls = await gcp.operatorCalls();
    const armCalls = azure.emulator.requests.slice(armFrom);
    const log = readFileSync(operator.logFile).subarray(logFrom).toString();

    for (const mechanism of [...MODES, 'AKS'] as const) tallies.set(mechanism, { reconciles: new Map(), own: new Map(), shared: new Map(), writes: [], total: 0 });
    const mechanismOf = new Map<string, Mechanism>();
    for (const mechanism of [...MODES, 'AKS'] as const) for (const name of names(mechanism)) mechanismOf.set(name, mechanism);
    for (const line of log.split('\n')) {
      if (!line.includes('"reconcile succeeded"')) continue;
      const key = (JSON.parse(line) as { key?: string }).key ?? '';
      const [namespace, name = ''] = key.split('/');
      const tally = namespace === ns ? tallies.get(mechanismOf.get(name) ?? 'AKS') : undefined;
      if (tally && mechanismOf.has(name)) count(tally.reconciles, name);
    }

    const gcpMode = (c: LoggedCall): Mode | undefined => MODES.find((m) => c.path.includes(gcpSetup[m].project) || c.path.includes(gcpSetup[m].bucket));
    for (const c of gcpCalls) {
      const mode = gcpMode(c);
      const tally = mode && tallies.get(mode);
      if (!tally) continue;
      tally.total++;
      if (isGcpWrite(c)) tally.writes.push(`${c.operation} ${c.path}`);
      const email = /\/serviceAccounts\/([^/:]+)/.exec(c.path)?.[1];
      const owner = email && ownerOf.get(email);
      if (owner) count(tally.own, owner);
      else count(tally.shared, `${c.operation} ${c.path}`);
    }
    const aks = tallies.get('AKS');
    assert.ok(aks);
    for (const r of armCalls) {
      aks.total++;
      if (r.method !== 'GET') aks.writes.push(`${r.operation} ${r.path}`);
      const identity = /\/userAssignedIdentities\/([^/]+)/i.exec(r.path)?.[1]?.toLowerCase();
      const owner = identity && ownerOf.get(identity);
      if (owner) count(aks.own, owner);
      else count(aks.shared, `${r.operation} ${r.path}`);
    }

    const maxAgeMs = sharedReadMaxAgeMs(RESYNC_SECONDS * 1000);
    // Two reads of one shared thing are at least a max age apart (a Keyless write in between would replace the copy,
    // but there is none at steady state).
    const perSharedThing = Math.floor(windowMs / maxAgeMs) + 1;
    for (const [mechanism, tally] of tallies) {
      const reconciles = sum(tally.reconciles);
      t.diagnostic(
        `${mechanism}: ${tally.total} reads over ${reconciles} reconciles of ${N} identities = ${(tally.total / reconciles).toFixed(2)} per identity per resync ` +
          `(own objects ${sum(tally.own)}, shared ${sum(tally.shared)}: ${[...tally.shared].map(([k, v]) => `${k.split(' ')[0]} ${v}`).join(', ')})`,
      );
    }
    for (const [mechanism, tally] of tallies) {
      const reconciles = sum(tally.reconciles);
      assert.deepEqual(tally.writes, [], `${mechanism}: no cloud writes at steady state`);
      assert.ok(reconciles >= N * (RESYNCS - 1), `${mechanism}: every identity resynced (${reconciles} reconciles)`);
      for (const name of names(mechanism)) {
        const own = tally.own.get(name) ?? 0;
        const resyncs = tally.reconciles.get(name) ?? 0;
        // +1: a reconcile can straddle the window's start or end, its reads inside and its end outside.
        assert.ok(own <= resyncs + 1, `${mechanism} ${name}: ${own} reads of its own objects over ${resyncs} resyncs; at most one per resync`);
      }
      for (const [what, reads] of tally.shared) {
        assert.ok(reads <= perSharedThing, `${mechanism}: ${what} read ${reads} times; shared by the account, at most ${perSharedThing} in ${windowMs} ms`);
      }
    }
  });

  it('repairs a binding and a role assignment removed by hand within about a resync', async (t) => {
    const repaired = async (what: string, check: () => Promise<boolean>) => {
      const from = Date.now();
      await eventually(what, async () => ((await check()) ? true : undefined), RESYNC_SECONDS * 4 * 1000);
      t.diagnostic(`drift repaired: ${what} after ${((Date.now() - from) / 1000).toFixed(1)} s (resync ${RESYNC_SECONDS} s, shared-read max age ${sharedReadMaxAgeMs(RESYNC_SECONDS * 1000) / 1000} s)`);
    };
    const gsa = `serviceAccount:${(await getWI(names('ServiceAccount')[0] ?? '')).status?.gcp?.serviceAccountEmail ?? ''}`;
    const direct = (await getWI(names('DirectPrincipal')[0] ?? '')).status?.gcp?.member ?? '';
    const aks = (await getWI(names('AKS')[0] ?? '')).status?.azure;
    assert.ok(aks?.principalId);
    const principalId = aks.principalId;
    const projectSa: PolicyTarget = { kind: 'project', project: gcpSetup.ServiceAccount.project };
    const bucketDp: PolicyTarget = { kind: 'bucket', bucket: gcpSetup.DirectPrincipal.bucket };
    const without = (member: string) => (bindings: IamBinding[]) => bindings.map((b) => ({ ...b, members: b.members.filter((m) => m !== member) })).filter((b) => b.members.length);

    await gcp.editByHand(projectSa, without(gsa));
    await gcp.editByHand(bucketDp, without(direct));
    const [assignment] = (await azure.assignmentsOf(principalId)).filter((a) => a.scope?.toLowerCase() === BOOKS.toLowerCase());
    assert.ok(assignment?.name);
    await azure.authorization().roleAssignments.delete(BOOKS.slice(1), assignment.name);
    assert.equal(grantsOf(await gcp.client.getIamPolicy(projectSa), gsa).length, 0);

    await Promise.all([
      repaired('the ServiceAccount-mode project grant', async () => grantsOf(await gcp.client.getIamPolicy(projectSa), gsa).length === 1),
      repaired('the DirectPrincipal bucket grant', async () => grantsOf(await gcp.client.getIamPolicy(bucketDp), direct).length === 1),
      repaired('the AKS role assignment', async () => (await azure.assignmentsOf(principalId)).length === 2),
    ]);
  });
});
