// The scenarios of issue 9. Each starts the operator it needs (a cold process, so CPU and memory are its own),
// sets the cloud's latency and write limit at the proxy, does one thing to the cluster and waits for the
// operator to converge, and returns what it measured. None of them asserts a timing: the report compares.
import { ListPodIdentityAssociationsCommand, type EKSClient } from '@aws-sdk/client-eks';
import { ListRolesCommand, ListRoleTagsCommand, type IAMClient } from '@aws-sdk/client-iam';
import type { KubeConfig } from '@kubernetes/client-node';
import { sumCounts, type CloudProxy, type ProxySettings } from './cloud-proxy.ts';
import type { IamEmulator } from './iam-emulator.ts';
import { Meter, perUnit, total, type Bill } from './measure.ts';
import type { Operator } from './operator.ts';
import type { Options } from './options.ts';
import { distribution, mib, round, type Distribution } from './report.ts';
import { until, type Tracked, type Workload } from './workload.ts';

export const CLUSTER_NAME = 'bench';
export const ACCOUNT = { irsa: 'bench-irsa', pod: 'bench-pod', scale: 'bench-scale' } as const;
export const NAMESPACE = { irsa: 'bench-irsa', pod: 'bench-pod', scale: 'bench-scale' } as const;
/** IRSA and Pod Identity both write CreateRole (trust and tags in one call) and PutRolePolicy per identity. */
export const IAM_WRITES_FLOOR = 2;
const SCALE_NAMESPACE_SIZE = 1000;

export interface Context {
  opts: Options;
  kc: KubeConfig;
  proxy: CloudProxy;
  /** moto, straight (not through the proxy): for the bench's own reads. */
  motoIam: IAMClient;
  /** The Pod Identity emulator, straight. */
  eks: EKSClient;
  /** Upstream for the proxy: the Pod Identity emulator in front of moto. */
  motoUpstream: string;
  scaleIam: IamEmulator;
  workload: Workload;
  startOperator(name: string, env: Record<string, string>): Promise<Operator>;
  log(message: string): void;
}

export interface CreateResult {
  mechanism: 'IRSA' | 'PodIdentity';
  n: number;
  cloud: { latencyMs: number; writeRate: number; writeBurst: number };
  operatorConfig: Record<string, string>;
  complete: boolean;
  ready: number;
  /** From the first create request to the last identity seen Ready. */
  secondsToAllReady: number;
  /** How long the bench took to submit the N creates. */
  submitSeconds: number;
  /** creationTimestamp → Ready's lastTransitionTime (both whole seconds). */
  timeToReadySeconds: Distribution;
  /** N × writes ÷ write rate: the fastest any operator could be under this limit. */
  floorSeconds: number;
  ratioToFloor: number;
  callsPerIdentity: Record<string, number>;
  readsPerIdentity: number;
  writesPerIdentity: number;
  writesFloorPerIdentity: number;
  identitiesWithThrottlingInConditions: number;
  failingConditionReasons: Record<string, number>;
  bill: Bill;
  /**
   * After all are Ready, until the operator is idle (empty queue, no cloud call for 3s): work the burst still
   * causes, such as reconciles echoing the operator's own writes. `callsPerIdentity` covers burst and settling.
   */
  settle: { complete: boolean; seconds: number; callsPerIdentity: Record<string, number>; readsPerIdentity: number; writesPerIdentity: number; kubernetesWrites: Record<string, number> };
}

export interface SteadyResult {
  n: number;
  resyncSeconds: number;
  resyncs: number;
  cloudLatencyMs: number;
  operatorConfig: Record<string, string>;
  /** The pass every restart makes over all identities, before the measured window. */
  restart: { seconds: number; readsPerIdentity: number; writes: number; kubernetesWrites: number; callsPerIdentity: Record<string, number> };
  /** False when one pass over all identities takes longer than the resync interval. */
  keepsUp: boolean;
  windowSeconds: number;
  reconciles: number;
  perIdentityPerResync: { reads: number; writes: number; byOperation: Record<string, number> };
  kubernetesWritesPerResync: number;
  kubernetesWrites: Record<string, number>;
  accountChecksPerResync: number;
  bill: Bill;
}

export interface DeleteResult {
  mechanism: 'IRSA' | 'PodIdentity';
  n: number;
  cloud: { latencyMs: number; writeRate: number; writeBurst: number };
  complete: boolean;
  secondsToAllRevoked: number;
  floorSeconds: number;
  ratioToFloor: number;
  callsPerIdentity: Record<string, number>;
  ownedObjectsLeft: { roles: number; associations: number };
  bill: Bill;
}

export interface ScaleResult {
  n: number;
  operatorConfig: Record<string, string>;
  submitSeconds: number;
  /** Operator start → its informers listed everything (the "caches synced" log line). */
  secondsToObserved: number;
  /** Operator start → every identity Ready. */
  secondsToAllReady: number;
  ready: number;
  complete: boolean;
  /** Identities made Ready per second between observed and all Ready. */
  drainPerSecond: number;
  peakQueueDepth: number;
  callsPerIdentity: Record<string, number>;
  timeline: { t: number; queueDepth: number; ready: number; rssMiB: number; heapUsedMiB: number }[];
  /** One identity's objects as cached by the operator. */
  objectSizes: Record<string, number>;
  bill: Bill;
  /** Only with BENCH_SCALE_DELETE=true. */
  delete?: { complete: boolean; secondsToAllRevoked: number; ownedRolesLeft: number; bill: Bill };
}

export function operatorEnv(opts: Options, extra: Record<string, string> = {}): Record<string, string> {
  return {
    KEYLESS_WORKERS: String(opts.workers),
    KEYLESS_CLOUD_CALLS_PER_SECOND: String(opts.operatorCallsPerSecond),
    KEYLESS_CLOUD_CALL_BURST: String(opts.operatorCallBurst),
    ...(opts.operatorNodeOptions ? { NODE_OPTIONS: opts.operatorNodeOptions } : {}),
    ...extra,
    ...opts.operatorEnv,
  };
}

/** Every setting the scenario ran the operator with, for the report. */
function shownConfig(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('KEYLESS_') || k === 'NODE_OPTIONS'));
}

function limited(ctx: Context): ProxySettings {
  return { latencyMs: ctx.opts.latencyMs, writeRate: ctx.opts.writeRate, writeBurst: ctx.opts.writeBurst, upstream: ctx.motoUpstream };
}

function policyFor(i: number): Record<string, unknown>[] {
  return [{ effect: 'Allow', actions: ['s3:GetObject'], resources: [`arn:aws:s3:::bench-bucket/${i}/*`] }];
}

const pad = (i: number) => String(i).padStart(5, '0');

function failureReasons(tracked: Tracked[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tracked) for (const reason of t.failures.keys()) out[reason] = (out[reason] ?? 0) + 1;
  return out;
}

/** Roles under /keyless/ in moto whose tags say they belong to this bench cluster; must be 0 after a delete. */
async function ownedRolesInMoto(iam: IAMClient): Promise<number> {
  let owned = 0;
  let marker: string | undefined;
  do {
    const page = await iam.send(new ListRolesCommand({ PathPrefix: '/keyless/', Marker: marker }));
    for (const role of page.Roles ?? []) {
      const tags = (await iam.send(new ListRoleTagsCommand({ RoleName: role.RoleName }))).Tags ?? [];
      if (tags.some((t) => t.Key === 'keyless.dev/cluster' && t.Value === CLUSTER_NAME)) owned++;
    }
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  return owned;
}

async function associationsLeft(eks: EKSClient): Promise<number> {
  let count = 0;
  let nextToken: string | undefined;
  do {
    const page = await eks.send(new ListPodIdentityAssociationsCommand({ clusterName: CLUSTER_NAME, nextToken }));
    count += page.associations?.length ?? 0;
    nextToken = page.nextToken;
  } while (nextToken);
  return count;
}

/**
 * Create burst: N WorkloadIdentities at once against a cloud with latency and a write limit, each with its own
 * ServiceAccount (made beforehand, not timed). Returns the running operator for the scenarios that follow.
 */
export async function createBurst(ctx: Context, mechanism: 'IRSA' | 'PodIdentity', operator: Operator, env: Record<string, string>): Promise<CreateResult> {
  const { opts } = ctx;
  const n = mechanism === 'IRSA' ? opts.n : opts.podN;
  const namespace = mechanism === 'IRSA' ? NAMESPACE.irsa : NAMESPACE.pod;
  const account = mechanism === 'IRSA' ? ACCOUNT.irsa : ACCOUNT.pod;
  const names = Array.from({ length: n }, (_, i) => pad(i));
  await ctx.workload.namespace(namespace);
  await ctx.workload.serviceAccounts(namespace, names.map((x) => `sa-${x}`), opts.createConcurrency);
  ctx.proxy.configure(limited(ctx));

  const meter = new Meter(ctx.proxy, operator);
  await meter.start();
  const started = Date.now();
  ctx.log(`${mechanism} create burst: ${n} WorkloadIdentities, ${opts.latencyMs} ms latency, ${opts.writeRate} writes/s`);
  await ctx.workload.workloadIdentities(
    namespace,
    names.map((x, i) => ({ name: `wi-${x}`, spec: { serviceAccountName: `sa-${x}`, cloudAccountRef: { name: account }, aws: { mechanism, policy: policyFor(i) } } })),
    opts.createConcurrency,
  );
  const submitSeconds = (Date.now() - started) / 1000;
  const floorSeconds = (n * IAM_WRITES_FLOOR) / opts.writeRate;
  const tracked = () => ctx.workload.in([namespace]);
  const readyCount = () => tracked().filter((t) => t.readyAtMs !== undefined).length;
  let lastLog = Date.now();
  const complete = await until(() => {
    if (Date.now() - lastLog > 30_000) {
      lastLog = Date.now();
      ctx.log(`  ${readyCount()}/${n} Ready after ${Math.round((Date.now() - started) / 1000)}s (floor ${floorSeconds}s)`);
    }
    return readyCount() >= n;
  }, Math.max(900_000, floorSeconds * 5_000));
  const bill = await meter.stop();
  const settleMeter = new Meter(ctx.proxy, operator);
  await settleMeter.start({ fromProcessStart: true });
  const settleStarted = Date.now();
  const settled = await quiescent(ctx, operator, 900_000);
  const settleBill = await settleMeter.stop();
  const all = tracked();
  const readyAt = all.map((t) => t.readyAtMs ?? Date.now());
  const secondsToAllReady = round((Math.max(...readyAt) - started) / 1000, 1);
  const reads = bill.cloud.reads;
  const writes = bill.cloud.writes;
  return {
    mechanism,
    n,
    cloud: { latencyMs: opts.latencyMs, writeRate: opts.writeRate, writeBurst: opts.writeBurst },
    operatorConfig: shownConfig(env),
    complete,
    ready: readyCount(),
    secondsToAllReady,
    submitSeconds: round(submitSeconds, 1),
    timeToReadySeconds: distribution(all.filter((t) => t.readyTransitionMs !== undefined).map((t) => ((t.readyTransitionMs ?? 0) - t.createdMs) / 1000)),
    floorSeconds,
    ratioToFloor: round(secondsToAllReady / floorSeconds, 2),
    callsPerIdentity: perUnit(bill.cloud.byOperation, n),
    readsPerIdentity: round(reads / n, 2),
    writesPerIdentity: round(writes / n, 2),
    writesFloorPerIdentity: IAM_WRITES_FLOOR,
    identitiesWithThrottlingInConditions: all.filter((t) => t.throttlingSurfaced).length,
    failingConditionReasons: failureReasons(all),
    bill,
    settle: {
      complete: settled,
      seconds: round((Date.now() - settleStarted) / 1000, 1),
      callsPerIdentity: perUnit(sumCounts(bill.cloud.byOperation, settleBill.cloud.byOperation).byOperation, n),
      readsPerIdentity: round((reads + settleBill.cloud.reads) / n, 2),
      writesPerIdentity: round((writes + settleBill.cloud.writes) / n, 2),
      kubernetesWrites: settleBill.operator.kubernetesWrites,
    },
  };
}

/** Waits until the operator's queue is empty and the cloud saw no call for 3s. */
async function quiescent(ctx: Context, operator: Operator, timeoutMs: number): Promise<boolean> {
  let calls = -1;
  let quietSince = Date.now();
  return until(async () => {
    const now = ctx.proxy.snapshot();
    const seen = now.reads + now.writes;
    if (seen !== calls) {
      calls = seen;
      quietSince = Date.now();
    }
    const depth = (await operator.metrics()).sum('keyless_workqueue_depth', { controller: 'workloadidentity' });
    return depth === 0 && Date.now() - quietSince >= 3000;
  }, timeoutMs, 500);
}

/**
 * Steady state: a fresh operator over the N Ready identities, resyncing every `resyncSeconds`. Its first pass
 * (what every restart costs) is reported apart; then M resync cycles are measured. The cloud answers without
 * latency here so M cycles fit the time budget — the counts do not depend on latency.
 */
export async function steadyState(ctx: Context): Promise<SteadyResult> {
  const { opts } = ctx;
  const n = opts.n;
  ctx.proxy.configure({ ...limited(ctx), latencyMs: 0 });
  // The limiter must not be what paces a resync here: the counts are the point, and docs/benchmarks.md works out
  // the limiter budget a resync needs separately.
  const env = operatorEnv(opts, { KEYLESS_RESYNC_SECONDS: String(opts.resyncSeconds), KEYLESS_CLOUD_CALLS_PER_SECOND: '1000', KEYLESS_CLOUD_CALL_BURST: '100' });
  ctx.log(`steady state: ${n} identities, resync every ${opts.resyncSeconds}s, ${opts.resyncs} cycles`);
  const operator = await ctx.startOperator('steady', env);
  try {
    const restartMeter = new Meter(ctx.proxy, operator);
    await restartMeter.start();
    // The restart pass is over once every identity was reconciled once. (When one pass takes longer than the resync
    // interval, the queue never empties: the operator is permanently behind, which the report says.)
    await until(async () => (await operator.metrics()).sum('keyless_reconcile_total', { controller: 'workloadidentity' }) >= n, 600_000, 250);
    const restartBill = await restartMeter.stop();

    const meter = new Meter(ctx.proxy, operator);
    await meter.start();
    await new Promise((r) => setTimeout(r, opts.resyncs * opts.resyncSeconds * 1000));
    const bill = await meter.stop();
    const reconciles = total(bill.operator.reconciles);
    const accountChecks = bill.cloud.byOperation['ListOpenIDConnectProviders']?.calls ?? 0;
    const byOperation = Object.fromEntries(Object.entries(bill.cloud.byOperation).filter(([op]) => op !== 'ListOpenIDConnectProviders'));
    const identityReads = bill.cloud.reads - accountChecks;
    return {
      n,
      resyncSeconds: opts.resyncSeconds,
      resyncs: opts.resyncs,
      cloudLatencyMs: 0,
      operatorConfig: shownConfig(env),
      restart: {
        seconds: restartBill.seconds,
        readsPerIdentity: round(restartBill.cloud.reads / n, 2),
        writes: restartBill.cloud.writes,
        kubernetesWrites: total(restartBill.operator.kubernetesWrites),
        callsPerIdentity: perUnit(restartBill.cloud.byOperation, n),
      },
      keepsUp: restartBill.seconds < opts.resyncSeconds,
      windowSeconds: bill.seconds,
      reconciles,
      perIdentityPerResync: {
        reads: round(identityReads / Math.max(1, reconciles), 2),
        writes: round(bill.cloud.writes / Math.max(1, reconciles), 2),
        byOperation: perUnit(byOperation, Math.max(1, reconciles)),
      },
      kubernetesWritesPerResync: round(total(bill.operator.kubernetesWrites) / opts.resyncs, 2),
      kubernetesWrites: bill.operator.kubernetesWrites,
      accountChecksPerResync: round(accountChecks / opts.resyncs, 2),
      bill,
    };
  } finally {
    await operator.stop();
  }
}

/** Delete all: every WorkloadIdentity of `namespace` at once; done when every finalizer is gone. */
export async function deleteAll(ctx: Context, mechanism: 'IRSA' | 'PodIdentity', operator: Operator): Promise<DeleteResult> {
  const { opts } = ctx;
  const namespace = mechanism === 'IRSA' ? NAMESPACE.irsa : NAMESPACE.pod;
  const n = ctx.workload.live([namespace]).length;
  ctx.proxy.configure(limited(ctx));
  ctx.log(`${mechanism} delete all: ${n} WorkloadIdentities`);
  const meter = new Meter(ctx.proxy, operator);
  await meter.start();
  const started = Date.now();
  await ctx.workload.deleteAll(namespace);
  // IRSA deletes the inline policy and the role; Pod Identity also the association (on its own EKS limit).
  const floorSeconds = (n * IAM_WRITES_FLOOR) / opts.writeRate;
  const complete = await until(() => ctx.workload.live([namespace]).length === 0, Math.max(900_000, floorSeconds * 5_000));
  const bill = await meter.stop();
  const gone = ctx.workload.in([namespace]).map((t) => t.deletedAtMs ?? Date.now());
  const seconds = round((Math.max(started, ...gone) - started) / 1000, 1);
  return {
    mechanism,
    n,
    cloud: { latencyMs: opts.latencyMs, writeRate: opts.writeRate, writeBurst: opts.writeBurst },
    complete,
    secondsToAllRevoked: seconds,
    floorSeconds,
    ratioToFloor: round(seconds / floorSeconds, 2),
    callsPerIdentity: perUnit(bill.cloud.byOperation, Math.max(1, n)),
    ownedObjectsLeft: { roles: await ownedRolesInMoto(ctx.motoIam), associations: mechanism === 'PodIdentity' ? await associationsLeft(ctx.eks) : 0 },
    bill,
  };
}

/**
 * Scale: N WorkloadIdentities (in namespaces of 1,000) created while no operator runs, then one operator starts
 * against a zero-latency, unlimited in-bench IAM: how long until it has observed them all and made them Ready,
 * how fast its queue drains, how much memory it needs. With BENCH_SCALE_DELETE=true all are then deleted, and
 * the emulator must be left without a role of ours.
 */
export async function scale(ctx: Context): Promise<ScaleResult> {
  const { opts } = ctx;
  const n = opts.scaleN;
  const namespaces = Array.from({ length: Math.ceil(n / SCALE_NAMESPACE_SIZE) }, (_, i) => `${NAMESPACE.scale}-${i}`);
  ctx.proxy.configure({ latencyMs: 0, writeRate: 0, writeBurst: 1, upstream: ctx.scaleIam.endpoint });
  ctx.log(`scale: creating ${n} ServiceAccounts and WorkloadIdentities with no operator running`);
  const submitStarted = Date.now();
  for (const [ni, namespace] of namespaces.entries()) {
    const size = Math.min(SCALE_NAMESPACE_SIZE, n - ni * SCALE_NAMESPACE_SIZE);
    const names = Array.from({ length: size }, (_, i) => pad(i));
    await ctx.workload.namespace(namespace);
    await ctx.workload.serviceAccounts(namespace, names.map((x) => `sa-${x}`), opts.createConcurrency);
    await ctx.workload.workloadIdentities(
      namespace,
      names.map((x, i) => ({ name: `wi-${x}`, spec: { serviceAccountName: `sa-${x}`, cloudAccountRef: { name: ACCOUNT.scale }, aws: { mechanism: 'IRSA', policy: policyFor(i) } } })),
      opts.createConcurrency,
    );
  }
  const submitSeconds = round((Date.now() - submitStarted) / 1000, 1);
  const readyCount = () => ctx.workload.in(namespaces).filter((t) => t.readyAtMs !== undefined).length;

  // No limiter in the operator either: this scenario measures the operator's own throughput and memory.
  const env = operatorEnv(opts, { KEYLESS_CLOUD_CALLS_PER_SECOND: '100000', KEYLESS_CLOUD_CALL_BURST: '1000' });
  ctx.log(`scale: starting the operator over ${n} WorkloadIdentities`);
  const started = Date.now();
  const operator = await ctx.startOperator('scale', env);
  try {
    const observedAt = started + operator.syncedAfterMs;
    const meter = new Meter(ctx.proxy, operator);
    await meter.start({ fromProcessStart: true });
    const timeline: ScaleResult['timeline'] = [];
    let peakQueueDepth = 0;
    const complete = await until(async () => {
      const metrics = await operator.metrics();
      const depth = metrics.sum('keyless_workqueue_depth', { controller: 'workloadidentity' });
      peakQueueDepth = Math.max(peakQueueDepth, depth);
      const ready = readyCount();
      const point = { t: round((Date.now() - started) / 1000, 1), queueDepth: depth, ready, rssMiB: mib(operator.proc().rssBytes), heapUsedMiB: mib(metrics.sum('nodejs_heap_size_used_bytes')) };
      timeline.push(point);
      if (timeline.length % 15 === 0) ctx.log(`  ${ready}/${n} Ready, queue ${depth}, RSS ${point.rssMiB} MiB, heap used ${point.heapUsedMiB} MiB`);
      return ready >= n;
    }, 1_800_000, 2000);
    const bill = await meter.stop();
    const readyAt = ctx.workload.in(namespaces).map((t) => t.readyAtMs ?? Date.now());
    const allReadyAt = Math.max(...readyAt);
    const objectSizes = await ctx.workload.objectSizes(namespaces[0] ?? '', `wi-${pad(0)}`, `sa-${pad(0)}`);

    const result: ScaleResult = {
      n,
      operatorConfig: shownConfig(env),
      submitSeconds,
      secondsToObserved: round((observedAt - started) / 1000, 1),
      secondsToAllReady: round((allReadyAt - started) / 1000, 1),
      ready: readyCount(),
      complete,
      drainPerSecond: round(n / Math.max(0.001, (allReadyAt - observedAt) / 1000), 1),
      peakQueueDepth,
      callsPerIdentity: perUnit(bill.cloud.byOperation, n),
      timeline,
      objectSizes,
      bill,
    };
    if (!opts.scaleDelete) return result;

    ctx.log(`scale: deleting ${n} WorkloadIdentities`);
    const deleteMeter = new Meter(ctx.proxy, operator);
    await deleteMeter.start();
    const deleteStarted = Date.now();
    try {
      for (const namespace of namespaces) await ctx.workload.deleteAll(namespace);
    } catch (err) {
      // Keep what was measured; the delete is reported as incomplete.
      ctx.log(`scale: delete failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    const deleted = await until(() => ctx.workload.live(namespaces).length === 0, 1_800_000, 1000);
    const deleteBill = await deleteMeter.stop();
    const goneAt = ctx.workload.in(namespaces).map((t) => t.deletedAtMs ?? Date.now());
    result.delete = {
      complete: deleted,
      secondsToAllRevoked: round((Math.max(deleteStarted, ...goneAt) - deleteStarted) / 1000, 1),
      ownedRolesLeft: ctx.scaleIam.countRoles({ 'keyless.dev/cluster': CLUSTER_NAME }),
      bill: deleteBill,
    };
    return result;
  } finally {
    await operator.stop();
  }
}
