// The scenarios of issue 9 (and issue 14's GCP and Azure). Each starts the operator it needs (a cold process, so CPU
// and memory are its own), sets the cloud's latency and write limit at the proxy, does one thing to the cluster and
// waits for the operator to converge, and returns what it measured. Create, steady state and delete are one function
// each over a Mechanism (clouds.ts), whatever the cloud. None of them asserts a timing: the report compares.
import type { KubeConfig } from '@kubernetes/client-node';
import { MARKER } from '../src/api/constants.ts';
import { AWS_ACCOUNT, AWS_NAMESPACE, awsPolicyFor, CLUSTER_NAME, type AwsCloud, type Mechanism } from './clouds.ts';
import { sumCounts, type ProxySettings } from './cloud-proxy.ts';
import { Meter, perUnit, total, type Bill } from './measure.ts';
import type { Operator } from './operator.ts';
import type { Options } from './options.ts';
import { distribution, mib, round, type Distribution } from './report.ts';
import { until, type Tracked, type Workload } from './workload.ts';

const SCALE_NAMESPACE_SIZE = 1000;

export interface Context {
  opts: Options;
  kc: KubeConfig;
  workload: Workload;
  startOperator(name: string, env: Record<string, string>): Promise<Operator>;
  /** Waits until every CloudAccount the bench made is Ready (an operator must be running). */
  accountsReady(): Promise<void>;
  log(message: string): void;
}

export interface CreateResult {
  mechanism: string;
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
  mechanism: string;
  n: number;
  /** Every WorkloadIdentity the operator resynced, other scenarios' left-overs included. */
  identitiesResynced: number;
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
  /** Calls of the operations only the CloudAccount check makes (`accountCheckOperations`), per resync. */
  accountChecksPerResync: number;
  accountCheckOperations: string[];
  bill: Bill;
}

export interface DeleteResult {
  mechanism: string;
  n: number;
  cloud: { latencyMs: number; writeRate: number; writeBurst: number };
  complete: boolean;
  secondsToAllRevoked: number;
  floorSeconds: number;
  ratioToFloor: number;
  writesFloorPerIdentity: number;
  callsPerIdentity: Record<string, number>;
  readsPerIdentity: number;
  writesPerIdentity: number;
  ownedObjectsLeft: Record<string, number>;
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

/** What one mechanism's create, steady-state and delete scenarios measured; each only when it ran. */
export interface PhasesResult {
  create?: CreateResult;
  steady?: SteadyResult;
  delete?: DeleteResult;
}

/** The operator's budgets when nothing but the counts matter: no budget paces anything. */
const UNLIMITED = { KEYLESS_CLOUD_WRITES_PER_SECOND: '100000', KEYLESS_CLOUD_WRITE_BURST: '1000', KEYLESS_CLOUD_READS_PER_SECOND: '100000' };

export function operatorEnv(opts: Options, extra: Record<string, string> = {}): Record<string, string> {
  return {
    KEYLESS_WORKERS: String(opts.workers),
    KEYLESS_CLOUD_WRITES_PER_SECOND: String(opts.operatorWritesPerSecond),
    KEYLESS_CLOUD_WRITE_BURST: String(opts.operatorWriteBurst),
    KEYLESS_CLOUD_READS_PER_SECOND: String(opts.operatorReadsPerSecond),
    ...(opts.operatorNodeOptions ? { NODE_OPTIONS: opts.operatorNodeOptions } : {}),
    ...extra,
    ...opts.operatorEnv,
  };
}

/** Every setting the scenario ran the operator with, for the report. */
function shownConfig(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('KEYLESS_') || k === 'NODE_OPTIONS'));
}

function limited(ctx: Context, m: Mechanism): ProxySettings {
  return { latencyMs: ctx.opts.latencyMs, writeRate: ctx.opts.writeRate, writeBurst: ctx.opts.writeBurst, upstream: m.upstream };
}

const pad = (i: number) => String(i).padStart(5, '0');

function failureReasons(tracked: Tracked[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tracked) for (const reason of t.failures.keys()) out[reason] = (out[reason] ?? 0) + 1;
  return out;
}

/**
 * Create, then (each if asked) steady state and delete of one mechanism: create and delete under the cloud's latency
 * and write limit with the operator's budgets at the cloud's write rate (`limitedEnv`), each phase a fresh operator
 * but delete right after create (then the create burst's operator goes on).
 */
export async function phases(ctx: Context, m: Mechanism, which: { steady: boolean; delete: boolean }, limitedEnv: Record<string, string>): Promise<PhasesResult> {
  const out: PhasesResult = {};
  let operator = await ctx.startOperator(`${m.key}-create`, limitedEnv);
  try {
    await ctx.accountsReady();
    out.create = await createBurst(ctx, m, operator, limitedEnv);
    if (which.steady) {
      await operator.stop();
      out.steady = await steadyState(ctx, m);
      if (which.delete) operator = await ctx.startOperator(`${m.key}-delete`, limitedEnv);
    }
    if (which.delete) out.delete = await deleteAll(ctx, m, operator);
  } finally {
    await operator.stop();
  }
  return out;
}

/**
 * Create burst: N WorkloadIdentities at once against a cloud with latency and a write limit, each with its own
 * ServiceAccount (made beforehand, not timed).
 */
export async function createBurst(ctx: Context, m: Mechanism, operator: Operator, env: Record<string, string>): Promise<CreateResult> {
  const { opts } = ctx;
  const { n, namespace } = m;
  const names = Array.from({ length: n }, (_, i) => pad(i));
  await ctx.workload.namespace(namespace);
  await ctx.workload.serviceAccounts(namespace, names.map((x) => `sa-${x}`), opts.createConcurrency);
  m.proxy.configure(limited(ctx, m));

  const meter = new Meter(m.proxy, operator);
  await meter.start();
  const started = Date.now();
  ctx.log(`${m.label} create burst: ${n} WorkloadIdentities, ${opts.latencyMs} ms latency, ${opts.writeRate} writes/s`);
  await ctx.workload.workloadIdentities(
    namespace,
    names.map((x, i) => ({ name: `wi-${x}`, spec: { serviceAccountName: `sa-${x}`, cloudAccountRef: { name: m.account }, ...m.spec(i) } })),
    opts.createConcurrency,
  );
  const submitSeconds = (Date.now() - started) / 1000;
  const floorSeconds = (n * m.floor.create) / opts.writeRate;
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
  const settleMeter = new Meter(m.proxy, operator);
  await settleMeter.start({ fromProcessStart: true });
  const settleStarted = Date.now();
  const settled = await quiescent(m, operator, 900_000);
  const settleBill = await settleMeter.stop();
  const all = tracked();
  const readyAt = all.map((t) => t.readyAtMs ?? Date.now());
  const secondsToAllReady = round((Math.max(...readyAt) - started) / 1000, 1);
  const reads = bill.cloud.reads;
  const writes = bill.cloud.writes;
  return {
    mechanism: m.label,
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
    writesFloorPerIdentity: m.floor.create,
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

/** Waits until the operator's queue is empty and the mechanism's cloud saw no call for 3s. */
async function quiescent(m: Mechanism, operator: Operator, timeoutMs: number): Promise<boolean> {
  let calls = -1;
  let quietSince = Date.now();
  return until(async () => {
    const now = m.proxy.snapshot();
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
 * latency here so M cycles fit the time budget — the counts do not depend on latency. The operator resyncs every
 * identity in the cluster; when another scenario's are still there (its delete was not asked for), this cloud's
 * calls are divided by this mechanism's share of the reconciles.
 */
export async function steadyState(ctx: Context, m: Mechanism): Promise<SteadyResult> {
  const { opts } = ctx;
  const { n } = m;
  const resynced = Math.max(n, ctx.workload.liveCount());
  m.proxy.configure({ ...limited(ctx, m), latencyMs: 0 });
  // The budgets must not be what paces a resync here: the counts are the point, and docs/benchmarks.md works out
  // the read budget a resync needs separately.
  const env = operatorEnv(opts, { KEYLESS_RESYNC_SECONDS: String(opts.resyncSeconds), ...UNLIMITED });
  ctx.log(`${m.label} steady state: ${n} identities (${resynced} in all), resync every ${opts.resyncSeconds}s, ${opts.resyncs} cycles`);
  const operator = await ctx.startOperator(`${m.key}-steady`, env);
  try {
    const restartMeter = new Meter(m.proxy, operator);
    await restartMeter.start();
    // The restart pass is over once every identity was reconciled once. (When one pass takes longer than the resync
    // interval, the queue never empties: the operator is permanently behind, which the report says.)
    await until(async () => (await operator.metrics()).sum('keyless_reconcile_total', { controller: 'workloadidentity' }) >= resynced, 600_000, 250);
    const restartBill = await restartMeter.stop();

    const meter = new Meter(m.proxy, operator);
    await meter.start();
    await new Promise((r) => setTimeout(r, opts.resyncs * opts.resyncSeconds * 1000));
    const bill = await meter.stop();
    const reconciles = total(bill.operator.reconciles);
    const ours = Math.max(1, (reconciles * n) / resynced);
    const accountChecks = m.accountChecks.reduce((sum, op) => sum + (bill.cloud.byOperation[op]?.calls ?? 0), 0);
    const byOperation = Object.fromEntries(Object.entries(bill.cloud.byOperation).filter(([op]) => !m.accountChecks.includes(op)));
    const identityReads = bill.cloud.reads - accountChecks;
    return {
      mechanism: m.label,
      n,
      identitiesResynced: resynced,
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
        reads: round(identityReads / ours, 2),
        writes: round(bill.cloud.writes / ours, 2),
        byOperation: perUnit(byOperation, ours),
      },
      kubernetesWritesPerResync: round(total(bill.operator.kubernetesWrites) / opts.resyncs, 2),
      kubernetesWrites: bill.operator.kubernetesWrites,
      accountChecksPerResync: round(accountChecks / opts.resyncs, 2),
      accountCheckOperations: m.accountChecks,
      bill,
    };
  } finally {
    await operator.stop();
  }
}

/**
 * Delete all: every WorkloadIdentity of the mechanism's namespace at once, once the operator is idle; done when every
 * finalizer is gone.
 */
export async function deleteAll(ctx: Context, m: Mechanism, operator: Operator): Promise<DeleteResult> {
  const { opts } = ctx;
  const { namespace } = m;
  const n = ctx.workload.live([namespace]).length;
  m.proxy.configure(limited(ctx, m));
  // A freshly started operator first makes a pass over every identity (the restart cost steady state reports): the
  // delete is measured from when that is over.
  await quiescent(m, operator, 600_000);
  ctx.log(`${m.label} delete all: ${n} WorkloadIdentities`);
  const meter = new Meter(m.proxy, operator);
  await meter.start();
  const started = Date.now();
  await ctx.workload.deleteAll(namespace);
  const floorSeconds = (n * m.floor.delete) / opts.writeRate;
  const complete = await until(() => ctx.workload.live([namespace]).length === 0, Math.max(900_000, floorSeconds * 5_000));
  const bill = await meter.stop();
  const gone = ctx.workload.in([namespace]).map((t) => t.deletedAtMs ?? Date.now());
  const seconds = round((Math.max(started, ...gone) - started) / 1000, 1);
  const per = Math.max(1, n);
  return {
    mechanism: m.label,
    n,
    cloud: { latencyMs: opts.latencyMs, writeRate: opts.writeRate, writeBurst: opts.writeBurst },
    complete,
    secondsToAllRevoked: seconds,
    floorSeconds,
    ratioToFloor: round(seconds / floorSeconds, 2),
    writesFloorPerIdentity: m.floor.delete,
    callsPerIdentity: perUnit(bill.cloud.byOperation, per),
    readsPerIdentity: round(bill.cloud.reads / per, 2),
    writesPerIdentity: round(bill.cloud.writes / per, 2),
    ownedObjectsLeft: await m.ownedLeft(),
    bill,
  };
}

/**
 * Scale: N WorkloadIdentities (in namespaces of 1,000) created while no operator runs, then one operator starts
 * against a zero-latency, unlimited in-bench IAM: how long until it has observed them all and made them Ready,
 * how fast its queue drains, how much memory it needs. With BENCH_SCALE_DELETE=true all are then deleted, and
 * the emulator must be left without a role of ours.
 */
export async function scale(ctx: Context, aws: AwsCloud): Promise<ScaleResult> {
  const { opts } = ctx;
  const n = opts.scaleN;
  const namespaces = Array.from({ length: Math.ceil(n / SCALE_NAMESPACE_SIZE) }, (_, i) => `${AWS_NAMESPACE.scale}-${i}`);
  aws.proxy.configure({ latencyMs: 0, writeRate: 0, writeBurst: 1, upstream: aws.scaleIam.endpoint });
  ctx.log(`scale: creating ${n} ServiceAccounts and WorkloadIdentities with no operator running`);
  const submitStarted = Date.now();
  for (const [ni, namespace] of namespaces.entries()) {
    const size = Math.min(SCALE_NAMESPACE_SIZE, n - ni * SCALE_NAMESPACE_SIZE);
    const names = Array.from({ length: size }, (_, i) => pad(i));
    await ctx.workload.namespace(namespace);
    await ctx.workload.serviceAccounts(namespace, names.map((x) => `sa-${x}`), opts.createConcurrency);
    await ctx.workload.workloadIdentities(
      namespace,
      names.map((x, i) => ({ name: `wi-${x}`, spec: { serviceAccountName: `sa-${x}`, cloudAccountRef: { name: AWS_ACCOUNT.scale }, aws: { mechanism: 'IRSA', policy: awsPolicyFor(i) } } })),
      opts.createConcurrency,
    );
  }
  const submitSeconds = round((Date.now() - submitStarted) / 1000, 1);
  const readyCount = () => ctx.workload.in(namespaces).filter((t) => t.readyAtMs !== undefined).length;

  // No budget in the operator either: this scenario measures the operator's own throughput and memory.
  const env = operatorEnv(opts, UNLIMITED);
  ctx.log(`scale: starting the operator over ${n} WorkloadIdentities`);
  const started = Date.now();
  const operator = await ctx.startOperator('scale', env);
  try {
    const observedAt = started + operator.syncedAfterMs;
    const meter = new Meter(aws.proxy, operator);
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
    const deleteMeter = new Meter(aws.proxy, operator);
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
      ownedRolesLeft: aws.scaleIam.countRoles({ [MARKER.cluster]: CLUSTER_NAME }),
      bill: deleteBill,
    };
    return result;
  } finally {
    await operator.stop();
  }
}
