// A model-based property test of edit histories (fast-check): random sequences of spec edits — cloud and mechanism
// switches, grants added and removed, a ServiceAccount pre-annotated by another tool, the take-over annotation,
// namespace labels, CloudAccount selectors, guardrails and quotas changed, a CloudAccount removed and restored,
// deletes, operator restarts, and cloud calls that fail before or after they took effect — driven through the real
// reconciler and the real providers over the in-memory cloud fakes (AWS roles observed through the account snapshot,
// which a step ages by a third of its max age). After every convergence:
//   - a WorkloadIdentity without a record owns nothing in any cloud; one with a record owns exactly what its spec
//     (as the guardrails permit) asks for, in the record's cloud and nowhere else;
//   - at most one WorkloadIdentity holds a cloud for a ServiceAccount, and Keyless's annotation names its identity;
//   - nothing Keyless does not own changed (foreign roles, bindings, identities, assignments, associations);
//   - every live WorkloadIdentity reports on its current generation, and deleted ones are gone;
// and after deleting everything, nothing Keyless owns is left. KEYLESS_PROPERTY_RUNS sets the number of histories
// (default 40); the counts run are printed as a diagnostic.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CONDITION, MARKER, SERVICE_ACCOUNT_ANNOTATION, WORKLOAD_IDENTITY_ANNOTATION, serviceAccountFieldManager } from '../../api/constants.ts';
import type { CloudAccount, CloudAccountSpec, Cloud, Guardrails, WorkloadIdentity, WorkloadIdentitySpec } from '../../api/types.ts';
import { evaluateGuardrails } from '../../domain/guardrails/index.ts';
import { FakeClock } from '../../controller/fake-clock.ts';
import { FakeCluster } from '../../kube/fake/cluster.ts';
import { FakeArm } from '../../providers/aks-workload-identity/fake/arm.ts';
import { FakeAzureExchange } from '../../providers/aks-workload-identity/fake/exchange.ts';
import { KeyedMutex } from '../../providers/keyed-mutex.ts';
import { AksWorkloadIdentityProvider } from '../../providers/aks-workload-identity/provider.ts';
import { AccountSnapshot } from '../../providers/aws/account-snapshot.ts';
import { shareArmReads } from '../../providers/aks-workload-identity/shared-port.ts';
import { iamDataCatalogue } from '../../providers/aws/action-catalogue.ts';
import { FakeEks } from '../../providers/aws/fake/eks.ts';
import { FakeExchange } from '../../providers/aws/fake/exchange.ts';
import { FakeIam } from '../../providers/aws/fake/iam.ts';
import { AwsProvider } from '../../providers/aws/provider.ts';
import { CloudError } from '../../providers/cloud-error.ts';
import { FakeGcpExchange } from '../../providers/gke-workload-identity/fake/exchange.ts';
import { FakeGcp } from '../../providers/gke-workload-identity/fake/gcp.ts';
import { directPrincipal, gcpServiceAccountId, serviceAccountEmail } from '../../providers/gke-workload-identity/naming.ts';
import { GkeWorkloadIdentityProvider } from '../../providers/gke-workload-identity/provider.ts';
import { shareGcpReads } from '../../providers/gke-workload-identity/shared-port.ts';
import { providerRegistry, type ProviderRegistry } from '../../providers/registry.ts';
import { ownedAnnotationKeys } from '../service-account.ts';
import { aReadyAccount, CLUSTER, harness, type Harness } from './fixtures.ts';

const RUNS = Number(process.env['KEYLESS_PROPERTY_RUNS'] ?? 40);
const NS = 'shop';
const NAMES = ['alpha', 'beta', 'gamma'] as const;
const SERVICE_ACCOUNTS = ['sa1', 'sa2'] as const;
const ACCOUNT_ID = '123456789012';
const PROJECT = 'proj';
const PROJECT_NUMBER = '42';
const POOL = `${PROJECT}.svc.id.goog`;
const SUB_A = '00000000-0000-0000-0000-00000000000a';
const SUB_B = '00000000-0000-0000-0000-00000000000b';
const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
const ACCOUNTS: Record<Cloud, string> = { aws: 'aws-a', gcp: 'gcp-a', azure: 'azure-a' };
const catalogue = iamDataCatalogue();

// ---------------------------------------------------------------------------------------------------------------
// The world: one cluster, three clouds, and things Keyless does not own.

const AWS_ACTIONS = [
  { action: 's3:GetObject', resource: 'arn:aws:s3:::covers/*' },
  { action: 's3:PutObject', resource: 'arn:aws:s3:::covers/*' },
  { action: 'sqs:SendMessage', resource: `arn:aws:sqs:us-east-1:${ACCOUNT_ID}:orders` },
];
const GCP_ROLES = [
  { role: 'roles/cloudtrace.agent' },
  { role: 'roles/storage.objectViewer', resource: '//storage.googleapis.com/projects/_/buckets/covers' },
  { role: 'roles/pubsub.publisher', resource: `//pubsub.googleapis.com/projects/${PROJECT}/topics/orders` },
];
const AZURE_SCOPES = [`/subscriptions/${SUB_A}/resourceGroups/data-a`, `/subscriptions/${SUB_B}/resourceGroups/data-b`];

interface World {
  cluster: FakeCluster;
  iam: FakeIam;
  eks: FakeEks;
  gcp: FakeGcp;
  arm: FakeArm;
  /** Armed by a Crash step: the n-th cloud call from now fails, before or after it took effect. */
  fault: { countdown: number; after: boolean } | undefined;
  /** What a deleted account looked like, to restore it. */
  removed: Map<string, CloudAccount>;
  /** The AWS account snapshot's clock: each step moves it by STEP_MS. */
  clock: FakeClock;
}

const STEP_MS = 1000;

/** Counts the roles the snapshot answered for, so a run shows it was exercised. */
class CountedSnapshot extends AccountSnapshot {
  override async observe(...args: Parameters<AccountSnapshot['observe']>) {
    const observed = await super.observe(...args);
    if (observed) count('aws role observed from the snapshot');
    return observed;
  }
}

/** A port whose calls can fail once, as an injected fault: before the call, or after it (the answer was lost). */
function faulty<T extends object>(port: T, world: World): T {
  return new Proxy(port, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const fault = world.fault;
        if (fault && --fault.countdown === 0) {
          world.fault = undefined;
          if (!fault.after) throw new CloudError('retryable', 'InjectedFault', String(prop), 'injected fault before the call');
          await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          throw new CloudError('retryable', 'InjectedFault', String(prop), 'injected fault: the call took effect but its answer was lost');
        }
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
}

function registry(world: World): ProviderRegistry {
  // The fakes show a write at once, so nothing needs to settle; a snapshot lives three steps.
  const roles = new CountedSnapshot(faulty(world.iam, world), { maxAgeMs: 3 * STEP_MS, settleMs: 0, now: world.clock.now });
  const iam = roles.iam;
  const eks = faulty(world.eks, world);
  const gcp = faulty(world.gcp, world);
  const arm = faulty(world.arm, world);
  const pods = { countDependent: () => Promise.resolve(0) };
  // A restarted operator starts with empty caches: a new registry builds new providers.
  // Shared copies that never expire (the clock stands still): a reconcile sees a change only if Keyless made it
  // through the same ports, so a copy its own write left stale would break an invariant below.
  const frozen = { maxAgeMs: 1, now: () => 0 };
  const azure = { ...shareArmReads(arm, arm, frozen), exchange: new FakeAzureExchange(world.arm), credentialWrites: new KeyedMutex(), roleIds: new Map<string, string>() };
  const exchange = new FakeExchange(world.iam, world.eks);
  const gcpExchange = new FakeGcpExchange(world.gcp);
  const gcpShared = shareGcpReads(gcp, frozen);
  return providerRegistry({
    'aws/IRSA': () => new AwsProvider('IRSA', { iam, roles, eks, pods, exchange }),
    'aws/PodIdentity': () => new AwsProvider('PodIdentity', { iam, roles, eks, pods, exchange }),
    'gcp/ServiceAccount': () => new GkeWorkloadIdentityProvider('ServiceAccount', gcpShared, gcpExchange),
    'gcp/DirectPrincipal': () => new GkeWorkloadIdentityProvider('DirectPrincipal', gcpShared, gcpExchange),
    'azure/WorkloadIdentity': () => new AksWorkloadIdentityProvider(azure),
  });
}

const accountSpecs: Record<Cloud, CloudAccountSpec> = {
  aws: { aws: { accountId: ACCOUNT_ID, region: 'us-east-1', clusterName: 'prod' } },
  gcp: { gcp: { projectId: PROJECT, projectNumber: PROJECT_NUMBER } },
  azure: { azure: { subscriptionId: SUB_A, tenantId: '00000000-0000-0000-0000-0000000000ee', resourceGroup: 'identities', location: 'eastus', oidcIssuer: 'https://issuer.example.com' } },
};

function account(cloud: Cloud, extra: Partial<CloudAccountSpec> = {}): CloudAccount {
  return aReadyAccount(ACCOUNTS[cloud], { ...accountSpecs[cloud], ...extra }, cloud === 'aws' ? { oidcProviderArn: `arn:aws:iam::${ACCOUNT_ID}:oidc-provider/issuer.example.com` } : {});
}

const principal = (sa: string) => directPrincipal(PROJECT_NUMBER, POOL, NS, sa);
const gsaEmail = (name: string) => serviceAccountEmail(gcpServiceAccountId(CLUSTER, NS, name), PROJECT);

/** Objects Keyless does not own, seeded before every history and compared after every convergence. */
function seedForeign(world: World): () => unknown {
  world.iam.seedRole({ name: 'legacy-role', path: '/', trustPolicy: '{"Version":"2012-10-17","Statement":[]}', description: 'hand-made', maxSessionDuration: 3600, tags: {} });
  world.iam.seedRole({ name: 'other-cluster-role', path: '/keyless/', trustPolicy: '{"Version":"2012-10-17","Statement":[]}', description: 'x', maxSessionDuration: 3600, tags: { [MARKER.cluster]: 'c9', [MARKER.namespace]: NS, [MARKER.name]: 'alpha' } });
  world.eks.seed({ clusterName: 'prod', namespace: NS, serviceAccount: 'other-sa', roleArn: `arn:aws:iam::${ACCOUNT_ID}:role/legacy-role`, tags: {} });
  world.gcp.foreignWrite({ kind: 'project', project: PROJECT }, (p) => ({ ...p, bindings: [{ role: 'roles/owner', members: ['user:root@example.com'] }, { role: 'roles/browser', members: [principal('sa1')] }] }));
  // Exactly a grant the spec may ask for, made by a person: Keyless must never take it for its own.
  world.gcp.foreignWrite({ kind: 'bucket', bucket: 'covers' }, (p) => ({ ...p, bindings: [{ role: 'roles/storage.objectViewer', members: [principal('sa2'), 'group:readers@example.com'] }] }));
  world.arm.seedIdentity('hand-made', { team: 'payments' });
  world.arm.seedAssignment({ name: 'f0000000-0000-0000-0000-000000000001', scope: AZURE_SCOPES[0] ?? '', roleDefinitionId: `/subscriptions/${SUB_A}/providers/Microsoft.Authorization/roleDefinitions/${READER}`, principalId: 'foreign-principal' });
  const foreignBindings = [
    { target: { kind: 'project' as const, project: PROJECT }, role: 'roles/owner', member: 'user:root@example.com' },
    { target: { kind: 'project' as const, project: PROJECT }, role: 'roles/browser', member: principal('sa1') },
    { target: { kind: 'bucket' as const, bucket: 'covers' }, role: 'roles/storage.objectViewer', member: principal('sa2') },
    { target: { kind: 'bucket' as const, bucket: 'covers' }, role: 'roles/storage.objectViewer', member: 'group:readers@example.com' },
  ];
  return () => ({
    roles: ['legacy-role', 'other-cluster-role'].map((n) => world.iam.roles.get(n)),
    associations: [...world.eks.associations.values()].filter((a) => a.serviceAccount === 'other-sa'),
    bindings: foreignBindings.map((b) => (world.gcp.policy(b.target).bindings ?? []).some((x) => x.role === b.role && !x.condition && x.members.includes(b.member))),
    identities: world.arm.identities.get('hand-made'),
    assignments: world.arm.assignments.get('f0000000-0000-0000-0000-000000000001'),
  });
}

function newWorld(): World {
  const gcp = new FakeGcp(PROJECT);
  gcp.addResource({ kind: 'bucket', bucket: 'covers' });
  gcp.addResource({ kind: 'topic', project: PROJECT, topic: 'orders' });
  const world: World = { cluster: new FakeCluster(), iam: new FakeIam(ACCOUNT_ID), eks: new FakeEks(), gcp, arm: new FakeArm(SUB_A, 'identities'), fault: undefined, removed: new Map(), clock: new FakeClock() };
  world.cluster.putNamespace(NS, { team: 'books' });
  for (const cloud of ['aws', 'gcp', 'azure'] as const) world.cluster.putAccount(account(cloud));
  for (const sa of [...SERVICE_ACCOUNTS, 'other-sa']) world.cluster.createServiceAccount(NS, sa);
  return world;
}

// ---------------------------------------------------------------------------------------------------------------
// Steps.

type Step =
  | { kind: 'apply'; name: string; serviceAccount: string; cloud: Cloud; mechanism: string; grants: number[]; takeOver: boolean; settle: boolean }
  | { kind: 'delete'; name: string }
  | { kind: 'preAnnotate'; serviceAccount: string }
  | { kind: 'label'; selected: boolean }
  | { kind: 'selector'; cloud: Cloud; on: boolean }
  | { kind: 'guardrails'; cloud: Cloud; tight: boolean }
  | { kind: 'quota'; cloud: Cloud; limit: number | undefined }
  | { kind: 'removeAccount'; cloud: Cloud }
  | { kind: 'restoreAccount'; cloud: Cloud }
  | { kind: 'restart' }
  | { kind: 'crash'; name: string; countdown: number; after: boolean }
  | { kind: 'stale'; name: string; back: number };

const cloudArb = fc.constantFrom<Cloud>('aws', 'gcp', 'azure');
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('apply' as const),
      name: fc.constantFrom(...NAMES),
      serviceAccount: fc.constantFrom(...SERVICE_ACCOUNTS),
      cloud: cloudArb,
      mechanism: fc.constantFrom('A', 'B'),
      grants: fc.subarray([0, 1, 2]),
      takeOver: fc.boolean(),
      // Sometimes the next step comes before the operator caught up (a quick second edit, a crash mid-create).
      settle: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), name: fc.constantFrom(...NAMES) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('preAnnotate' as const), serviceAccount: fc.constantFrom(...SERVICE_ACCOUNTS) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('label' as const), selected: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('selector' as const), cloud: cloudArb, on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('guardrails' as const), cloud: cloudArb, tight: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('quota' as const), cloud: cloudArb, limit: fc.constantFrom(undefined, 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('removeAccount' as const), cloud: cloudArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restoreAccount' as const), cloud: cloudArb }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('crash' as const), name: fc.constantFrom(...NAMES), countdown: fc.integer({ min: 1, max: 12 }), after: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('stale' as const), name: fc.constantFrom(...NAMES), back: fc.integer({ min: 1, max: 6 }) }) },
);

function specFor(step: Extract<Step, { kind: 'apply' }>, existing: WorkloadIdentity | undefined): WorkloadIdentitySpec {
  // cloudAccountRef is immutable: an existing identity keeps its account, so switching cloud means a mismatch.
  const cloudAccountRef = existing?.spec.cloudAccountRef ?? { name: ACCOUNTS[step.cloud] };
  const serviceAccountName = existing?.spec.serviceAccountName ?? step.serviceAccount;
  const base = { serviceAccountName, cloudAccountRef };
  switch (step.cloud) {
    case 'aws': {
      const chosen = step.grants.map((i) => AWS_ACTIONS[i]).filter((a) => a !== undefined);
      return { ...base, aws: { mechanism: step.mechanism === 'A' ? 'IRSA' : 'PodIdentity', policy: chosen.map((a) => ({ effect: 'Allow' as const, actions: [a.action], resources: [a.resource] })) } };
    }
    case 'gcp':
      return { ...base, gcp: { mechanism: step.mechanism === 'A' ? 'ServiceAccount' : 'DirectPrincipal', roles: step.grants.map((i) => GCP_ROLES[i]).filter((r) => r !== undefined) } };
    case 'azure':
      return { ...base, azure: { roleAssignments: step.grants.map((i) => ({ role: 'Reader', scope: AZURE_SCOPES[i % 2] ?? '' })) } };
  }
}

const GUARDRAILS: Record<Cloud, Guardrails> = {
  aws: { aws: { deniedActions: ['s3:PutObject'] } },
  gcp: { gcp: { deniedRoles: ['roles/cloudtrace.agent'] } },
  azure: { azure: { allowedScopePrefixes: [`/subscriptions/${SUB_A}`] } },
};

function editAccount(world: World, cloud: Cloud, change: (spec: CloudAccountSpec) => CloudAccountSpec): void {
  const current = world.cluster.accounts.get(ACCOUNTS[cloud]);
  if (current) world.cluster.putAccount({ ...current, spec: change(current.spec) });
  const removed = world.removed.get(ACCOUNTS[cloud]);
  if (removed) world.removed.set(ACCOUNTS[cloud], { ...removed, spec: change(removed.spec) });
}

async function perform(world: World, h: Harness, step: Step): Promise<Harness> {
  const key = (name: string) => `${NS}/${name}`;
  switch (step.kind) {
    case 'apply': {
      const existing = world.cluster.identity(key(step.name));
      if (existing?.metadata.deletionTimestamp) return h;
      world.cluster.applyIdentity({
        metadata: { name: step.name, namespace: NS, annotations: step.takeOver ? { [WORKLOAD_IDENTITY_ANNOTATION.takeOverAnnotations]: 'true' } : {} },
        spec: specFor(step, existing),
      });
      return h;
    }
    case 'delete':
      world.cluster.deleteIdentity(key(step.name));
      return h;
    case 'preAnnotate':
      world.cluster.annotate(NS, step.serviceAccount, SERVICE_ACCOUNT_ANNOTATION.awsRoleArn, `arn:aws:iam::${ACCOUNT_ID}:role/hand-made`);
      return h;
    case 'label':
      world.cluster.putNamespace(NS, step.selected ? { team: 'books' } : {});
      return h;
    case 'selector':
      editAccount(world, step.cloud, (spec) => {
        const next = { ...spec };
        delete next.namespaceSelector;
        return step.on ? { ...next, namespaceSelector: { matchLabels: { team: 'books' } } } : next;
      });
      return h;
    case 'guardrails':
      editAccount(world, step.cloud, (spec) => ({ ...spec, guardrails: { ...spec.guardrails, ...(step.tight ? GUARDRAILS[step.cloud] : { [step.cloud]: {} }) } }));
      return h;
    case 'quota':
      editAccount(world, step.cloud, (spec) => {
        const guardrails = { ...spec.guardrails };
        delete guardrails.maxIdentitiesPerNamespace;
        return { ...spec, guardrails: step.limit === undefined ? guardrails : { ...guardrails, maxIdentitiesPerNamespace: step.limit } };
      });
      return h;
    case 'removeAccount': {
      // As if the in-use finalizer had been removed by force: the account is gone, the records remain.
      const current = world.cluster.accounts.get(ACCOUNTS[step.cloud]);
      if (current) world.removed.set(ACCOUNTS[step.cloud], current);
      world.cluster.removeAccount(ACCOUNTS[step.cloud]);
      return h;
    }
    case 'restoreAccount': {
      const removed = world.removed.get(ACCOUNTS[step.cloud]);
      if (removed) world.cluster.putAccount(removed);
      world.removed.delete(ACCOUNTS[step.cloud]);
      return h;
    }
    case 'restart':
      restarted(world);
      return harness(registry(world), world.cluster);
    case 'stale':
      // The informer lags: a reconcile runs, and the next one starts before the informer has seen all it wrote — it
      // sees an older version than the latest, but not one the informer already passed (a watch never goes back).
      await h.reconcile(key(step.name));
      if (world.cluster.lagBy(key(step.name), step.back)) await h.reconcile(key(step.name));
      world.cluster.catchUp();
      return h;
    case 'crash':
      // One reconcile with a cloud call that fails (possibly after it took effect), then the process "dies": the
      // next operator starts with fresh providers.
      world.fault = { countdown: step.countdown, after: step.after };
      await h.reconcile(key(step.name));
      world.fault = undefined;
      restarted(world);
      return harness(registry(world), world.cluster);
  }
}

/** A (re)started operator lists every object afresh: its informer can lag only behind what comes after. */
function restarted(world: World): void {
  world.cluster.relist();
}

/** Reconciles every WorkloadIdentity until a whole pass writes nothing; returns how many passes it took. */
async function converge(world: World, h: Harness): Promise<number> {
  for (let pass = 1; pass <= 12; pass++) {
    const before = JSON.stringify([world.cluster.writes.length, world.iam.writes.length, world.eks.writes.length, world.gcp.writes.length, world.arm.writes.length]);
    for (const wi of world.cluster.identities.list()) {
      const { error } = await h.settle(`${NS}/${wi.metadata.name}`);
      if (error !== undefined && !(error instanceof Error && error.name === 'TerminalError')) throw new Error(`${wi.metadata.name} did not settle: ${error instanceof Error ? error.message : JSON.stringify(error)}`);
    }
    const after = JSON.stringify([world.cluster.writes.length, world.iam.writes.length, world.eks.writes.length, world.gcp.writes.length, world.arm.writes.length]);
    if (before === after) return pass;
  }
  throw new Error('no convergence within 12 passes');
}

// ---------------------------------------------------------------------------------------------------------------
// What the clouds hold, per WorkloadIdentity.

interface Holdings {
  aws: { actions: string[]; association: boolean } | undefined;
  gsa: boolean;
  /** role@resource granted to the WorkloadIdentity's own Google service account. */
  gsaGrants: string[];
  azure: string[] | undefined;
}

const owns = (tags: Record<string, string>, name: string) => tags[MARKER.cluster] === CLUSTER && tags[MARKER.namespace] === NS && tags[MARKER.name] === name;

function grantsOfMember(world: World, member: string): string[] {
  const out: string[] = [];
  for (const [key, policy] of world.gcp.policies) {
    for (const b of policy.bindings ?? []) if (b.members.includes(member)) out.push(`${b.role}@${key}`);
  }
  return out.sort();
}

function holdings(world: World, name: string): Holdings {
  const role = [...world.iam.roles.values()].find((r) => owns(r.tags, name));
  const inline = role?.inline.get('keyless') as { Statement?: { Action: string | string[] }[] } | undefined;
  const identity = [...world.arm.identities.values()].find((i) => owns(i.tags, name));
  return {
    aws: role ? { actions: (inline?.Statement ?? []).flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort(), association: [...world.eks.associations.values()].some((a) => owns(a.tags, name)) } : undefined,
    gsa: world.gcp.serviceAccounts.has(gsaEmail(name)),
    gsaGrants: grantsOfMember(world, `serviceAccount:${gsaEmail(name)}`),
    azure: identity ? [...world.arm.assignments.values()].filter((a) => a.principalId === identity.principalId).map((a) => `${a.roleDefinitionId.split('/').pop() ?? ''}@${a.scope.toLowerCase()}`).sort() : undefined,
  };
}

const empty = (x: Holdings) => x.aws === undefined && !x.gsa && x.gsaGrants.length === 0 && x.azure === undefined;
const targetKeyOf = (resource: string | undefined) =>
  resource === undefined ? `project/${PROJECT}` : resource.startsWith('//storage') ? `bucket/${resource.split('/').pop() ?? ''}` : `topic/projects/${PROJECT}/topics/orders`;

const FOREIGN_PRINCIPAL_GRANTS: Record<string, string[]> = { sa1: [`roles/browser@project/${PROJECT}`], sa2: ['roles/storage.objectViewer@bucket/covers'] };

/** How often each situation was seen at a check, so a run shows what it exercised. */
const seen = new Map<string, number>();
const count = (what: string) => seen.set(what, (seen.get(what) ?? 0) + 1);

async function checkInvariants(world: World, foreign: () => unknown, baseline: unknown): Promise<void> {
  assert.deepEqual(foreign(), baseline, 'objects Keyless does not own are unchanged');
  const live = world.cluster.identities.list();
  const principalExpected = new Map<string, string[]>(SERVICE_ACCOUNTS.map((sa) => [sa, [...(FOREIGN_PRINCIPAL_GRANTS[sa] ?? [])]]));
  for (const wi of live) {
    const name = wi.metadata.name;
    assert.equal(wi.metadata.deletionTimestamp, undefined, `${name}: a deleted WorkloadIdentity finished its teardown`);
    const ready = wi.status?.conditions?.find((c) => c.type === CONDITION.ready);
    assert.equal(ready?.observedGeneration, wi.metadata.generation, `${name}: status describes the current spec`);
    const held = holdings(world, name);
    const record = wi.status?.provisioned;
    count(record ? `held ${record.cloud}/${record.mechanism}${ready?.status === 'True' ? ' (Ready)' : ` (${ready?.reason ?? ''})`}` : `nothing held (${ready?.reason ?? ''})`);
    if (process.env['KEYLESS_PROPERTY_DEBUG'] && ready?.reason === 'GuardrailViolation') console.log(ready.message);
    if (!record) {
      assert.ok(empty(held), `${name}: no record, so nothing in any cloud (${JSON.stringify(held)}; Ready ${ready?.reason ?? ''})`);
      continue;
    }
    const account = world.cluster.accounts.get(record.cloudAccount);
    assert.ok(account, `${name}: a record survives only while its account exists`);
    const { permitted } = await evaluateGuardrails(wi.spec, account, catalogue);
    if (record.cloud === 'aws') {
      const wanted = (permitted.aws?.policy ?? []).flatMap((s) => s.actions).sort();
      assert.deepEqual(held.aws?.actions, wanted, `${name}: the role grants exactly what the spec permits`);
      assert.equal(held.aws?.association, (permitted.aws?.mechanism ?? 'IRSA') === 'PodIdentity', `${name}: an association exactly for Pod Identity`);
    } else assert.equal(held.aws, undefined, `${name}: nothing in aws`);
    if (record.cloud === 'gcp') {
      const wanted = (permitted.gcp?.roles ?? []).map((r) => `${r.role}@${targetKeyOf(r.resource)}`).sort();
      const mode = permitted.gcp?.mechanism ?? 'ServiceAccount';
      assert.equal(held.gsa, mode === 'ServiceAccount', `${name}: a Google service account exactly in ServiceAccount mode`);
      assert.deepEqual(held.gsaGrants, mode === 'ServiceAccount' ? wanted : [], `${name}: the service account holds exactly what the spec permits`);
      if (mode === 'DirectPrincipal') principalExpected.set(wi.spec.serviceAccountName, [...(principalExpected.get(wi.spec.serviceAccountName) ?? []), ...wanted]);
    } else assert.ok(!held.gsa && held.gsaGrants.length === 0, `${name}: nothing in gcp`);
    if (record.cloud === 'azure') {
      const wanted = [...new Set((permitted.azure?.roleAssignments ?? []).map((a) => `${READER}@${a.scope.toLowerCase()}`))].sort();
      assert.deepEqual(held.azure, wanted, `${name}: the managed identity holds exactly what the spec permits`);
    } else assert.equal(held.azure, undefined, `${name}: nothing in azure`);
  }
  for (const [sa, wanted] of principalExpected) {
    assert.deepEqual(grantsOfMember(world, principal(sa)), [...new Set(wanted)].sort(), `principal of ${sa}: exactly the foreign grants and what its holder asks for`);
  }
  for (const name of NAMES) {
    if (!live.some((wi) => wi.metadata.name === name)) assert.ok(empty(holdings(world, name)), `${name} is gone and owns nothing`);
  }
  for (const sa of SERVICE_ACCOUNTS) {
    for (const cloud of ['aws', 'gcp', 'azure'] as const) {
      const holders = live.filter((wi) => wi.spec.serviceAccountName === sa && wi.status?.provisioned?.cloud === cloud);
      assert.ok(holders.length <= 1, `one holder of ${cloud} for ${sa}, not ${holders.map((w) => w.metadata.name).join(', ')}`);
      const serviceAccount = world.cluster.serviceAccounts.get(`${NS}/${sa}`);
      const owned = serviceAccount ? ownedAnnotationKeys(serviceAccount, serviceAccountFieldManager(cloud)) : [];
      const recorded = holders[0]?.status?.provisioned?.serviceAccountAnnotations ?? {};
      for (const key of owned) assert.equal(serviceAccount?.metadata?.annotations?.[key], recorded[key], `${sa}: Keyless's ${key} names the identity of its holder`);
    }
  }
}

function totalOwned(world: World): number {
  return (
    [...world.iam.roles.values()].filter((r) => r.tags[MARKER.cluster] === CLUSTER).length +
    [...world.eks.associations.values()].filter((a) => a.tags[MARKER.cluster] === CLUSTER).length +
    [...world.gcp.serviceAccounts.values()].filter((s) => s.description.includes(`${MARKER.cluster}=${CLUSTER}`)).length +
    NAMES.reduce((n, name) => n + grantsOfMember(world, `serviceAccount:${gsaEmail(name)}`).length, 0) +
    SERVICE_ACCOUNTS.reduce((n, sa) => n + grantsOfMember(world, principal(sa)).filter((g) => !(FOREIGN_PRINCIPAL_GRANTS[sa] ?? []).includes(g)).length, 0) +
    [...world.arm.identities.values()].filter((i) => i.tags[MARKER.cluster] === CLUSTER).length
  );
}

/**
 * Histories that must always run, besides the random ones: a crash in the middle of the first reconcile (a create
 * that took effect but whose answer was lost, at each call of it), then an edit that no longer asks for that cloud
 * before the operator caught up. Only the record written before the create knows the object exists.
 */
const apply = (cloud: Cloud, mechanism: 'A' | 'B', settle: boolean): Step => ({ kind: 'apply', name: 'alpha', serviceAccount: 'sa1', cloud, mechanism, grants: [0], takeOver: false, settle });
const crashMidCreate: Step[][] = (['aws', 'gcp', 'azure'] as const).flatMap((cloud) =>
  [1, 2, 3, 4, 5, 6].map((countdown) => [apply(cloud, 'A', false), { kind: 'crash', name: 'alpha', countdown, after: true }, apply(cloud === 'aws' ? 'gcp' : 'aws', 'A', true)] satisfies Step[]),
);

/**
 * A grant given, taken away and given again by one operator: every reconcile after the first answers its shared reads
 * (policies, identity and assignment lists) from copies that only Keyless's own writes can have changed.
 */
const grantsOf = (cloud: Cloud, mechanism: 'A' | 'B', grants: number[]): Step => ({ kind: 'apply', name: 'alpha', serviceAccount: 'sa1', cloud, mechanism, grants, takeOver: false, settle: true });
const grantedTwice: Step[][] = (['gcp', 'azure'] as const).flatMap((cloud) =>
  (['A', 'B'] as const).map((mechanism) => [[], [0], [], [0, 1], [1]].map((grants) => grantsOf(cloud, mechanism, grants))),
);

describe('edit histories (model-based)', () => {
  it(`keeps the clouds exactly at what the specs ask, touches nothing foreign, and always finishes deletion (${RUNS} histories)`, async (t) => {
    let histories = 0;
    let steps = 0;
    let passes = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 14 }), async (history) => {
        histories += 1;
        const world = newWorld();
        const foreign = seedForeign(world);
        const baseline = structuredClone(foreign());
        let h = harness(registry(world), world.cluster);
        for (const step of history) {
          steps += 1;
          world.clock.advance(STEP_MS);
          h = await perform(world, h, step);
          // An unsettled edit or a crash leaves the operator mid-way: the next step happens on that state.
          if ((step.kind === 'apply' && !step.settle) || step.kind === 'crash') continue;
          passes += await converge(world, h);
          await checkInvariants(world, foreign, baseline);
        }
        // Then delete everything: every account is back, every WorkloadIdentity deleted, nothing of ours left.
        for (const cloud of ['aws', 'gcp', 'azure'] as const) await perform(world, h, { kind: 'restoreAccount', cloud });
        for (const name of NAMES) world.cluster.deleteIdentity(`${NS}/${name}`);
        passes += await converge(world, h);
        assert.deepEqual(world.cluster.identities.list(), [], 'every deletion finished');
        assert.equal(totalOwned(world), 0, 'nothing Keyless owned is left in any cloud');
        assert.deepEqual(foreign(), baseline);
      }),
      { numRuns: RUNS, examples: [...crashMidCreate, ...grantedTwice].map((history) => [history]), ...(process.env['KEYLESS_PROPERTY_SEED'] ? { seed: Number(process.env['KEYLESS_PROPERTY_SEED']) } : {}) },
    );
    t.diagnostic(`${histories} histories (including shrinking), ${steps} steps, ${passes} reconcile passes`);
    t.diagnostic(`states checked: ${[...seen].sort().map(([k, v]) => `${k}: ${v}`).join('; ')}`);
  });
});
