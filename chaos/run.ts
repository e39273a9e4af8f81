// One chaos run (issue 15): a mixed population reconciled by two operator replicas while the clouds fail 20% of
// requests, the leader is SIGKILLed, the API server restarts with every watch expired, specs are edited and
// identities deleted; then faults stop and everything must converge, and everything is deleted and nothing may be
// left. The run never trusts the operator's word: the clouds are read straight from the emulators, the API
// server's view comes from a watch of our own. No timing is asserted; times are reported.
//
//   phase      faults  kills  what happens
//   build        on     35%   namespaces, ServiceAccounts, WorkloadIdentities created; then the API server restarts
//   churn        on     25%   spec edits (grants, GKE mode, cloud, ServiceAccount), deletes, new identities
//   account      on     10%   every identity of one CloudAccount (Pod Identity) deleted
//   converge     off     -    until every identity is Ready for its generation and the deleted ones are gone
//   teardown     on     30%   every identity deleted; faults stop once the kills are done; until all are gone
import { CustomObjectsApi } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { GROUP, REASON, VERSION, WORKLOAD_IDENTITY_PLURAL } from '../src/api/constants.ts';
import type { WorkloadIdentity } from '../src/api/types.ts';
import { CLUSTER_NAME, startAws, startAzure, startGcp } from '../bench/clouds.ts';
import type { ProxyCounts } from '../bench/cloud-proxy.ts';
import { DEFAULT_WEIGHTS, type FaultSettings } from '../bench/faults.ts';
import { parseOptions, shippedNodeOptions } from '../bench/options.ts';
import { forEachLimit, until, Workload } from '../bench/workload.ts';
import { kubeConfig, kubectl, rawGet } from '../test/support/cluster.ts';
import { installOperator } from '../test/support/operator.ts';
import { broaderTrust, duplicates, mismatches, ownedCounts, remainsOf, takeInventory, type Clouds } from './cloud-state.ts';
import { seedForeign } from './foreign.ts';
import { Observer } from './observer.ts';
import { seededRandom, type ChaosOptions } from './options.ts';
import { edit, initialPopulation, key, KINDS, NAMESPACES, SHARES, spec, type EditKind, type Kind, type Member } from './population.ts';
import { Replicas, type Exit, type Kill } from './replicas.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface ChaosReport {
  options: ChaosOptions;
  durationSeconds: number;
  population: { initial: Record<Kind, number>; edits: Partial<Record<EditKind, number>>; deleted: number; added: number; accountDeleted: number };
  faults: { injected: Record<string, number>; conflicts: number; cloudRequests: number; requestsUnderFaults: number; concurrentEditorEdits: number };
  process: { kills: Kill[]; leaderChanges: number; apiserverRestarts: number; expiredRelists: number; exits: Exit[]; peakRssMiB: number };
  convergeSeconds: number | undefined;
  teardownSeconds: number | undefined;
  checks: {
    notConverged: string[];
    duplicates: string[];
    mismatches: string[];
    broaderTrust: { samples: number; violations: string[] };
    releasedEarly: { checked: number; violations: string[]; missedByWatch: number };
    leaked: Record<string, number>;
    foreignChanged: string[];
    crashes: Exit[];
  };
  passed: boolean;
}

export interface ChaosEnv {
  /** The control plane's state directory, for `hack/controlplane.sh restart-apiserver`. */
  controlplaneState: string;
  /** Scratch: operator logs and kubeconfig. */
  dir: string;
  log: (message: string) => void;
}

const CUSTOM = { group: GROUP, version: VERSION, plural: WORKLOAD_IDENTITY_PLURAL };

export async function runChaos(opts: ChaosOptions, env: ChaosEnv): Promise<ChaosReport> {
  const began = Date.now();
  const random = seededRandom(opts.seed);
  const log = env.log;
  rmSync(env.dir, { recursive: true, force: true });
  mkdirSync(env.dir, { recursive: true });
  const kc = kubeConfig();
  await clearEarlierRun();
  const operatorKubeconfig = await installOperator(kc, 'chaos', path.join(env.dir, 'operator'));
  const { issuer } = JSON.parse((await rawGet(kc, '/.well-known/openid-configuration')).body) as { issuer: string };

  // The benchmark's clouds with no latency and no write limit: here the clouds fail, they are not slow.
  const cloudOptions = { ...parseOptions([], {}), latencyMs: 0, writeRate: 0 };
  const aws = await startAws(cloudOptions, issuer);
  const gcp = await startGcp(cloudOptions).catch(async (err: unknown) => {
    await aws.stop();
    throw err;
  });
  const azure = await startAzure(cloudOptions, issuer).catch(async (err: unknown) => {
    await aws.stop();
    await gcp.stop();
    throw err;
  });
  const clouds: Clouds = { aws, gcp, azure, issuer };
  const proxies = [aws.proxy, gcp.proxy, azure.proxy];
  const replicas = new Replicas(kc, {
    kubeconfig: operatorKubeconfig,
    logDir: env.dir,
    began,
    env: {
      ...aws.operatorEnv,
      ...gcp.operatorEnv,
      ...azure.operatorEnv,
      KEYLESS_CLUSTER_NAME: CLUSTER_NAME,
      KEYLESS_CLOUD_CALL_TIMEOUT_SECONDS: String(opts.callTimeoutSeconds),
      KEYLESS_CLOUD_WRITES_PER_SECOND: '50',
      KEYLESS_CLOUD_WRITE_BURST: '10',
      KEYLESS_CLOUD_READS_PER_SECOND: '500',
      KEYLESS_RESYNC_SECONDS: '120',
      // The heap limits the shipped Deployment sets: memory is judged as the image runs.
      NODE_OPTIONS: shippedNodeOptions(),
    },
  });
  const observer = new Observer(kc, (k, versions) => void checkRelease(k, versions));
  const releasedEarly: string[] = [];
  let releasesChecked = 0;
  const checkRelease = async (k: string, versions: WorkloadIdentity[]) => {
    releasesChecked++;
    for (const v of versions) {
      const left = await remainsOf(clouds, v).catch((err: unknown) => [`(could not read the clouds: ${String(err)})`]);
      if (left.length) releasedEarly.push(`${k}: its finalizer was removed while the cloud still had ${left.join(', ')}`);
    }
  };
  const workload = new Workload(kc);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const known = { gsaEmails: new Set<string>(), principals: new Set<string>() };
  const trustViolations = new Set<string>();
  let trustSamples = 0;
  let sampler: NodeJS.Timeout | undefined;
  let editor: { stop(): Promise<number> } | undefined;

  const faults: FaultSettings = { rate: opts.faultRate, weights: DEFAULT_WEIGHTS, hangMs: (opts.callTimeoutSeconds + 3) * 1000, slowMs: Math.min(2000, opts.callTimeoutSeconds * 400), invisibleMs: 3000 };
  /** Cloud requests while faults were on: what the injected faults are a share of. */
  let requestsUnderFaults = 0;
  let faultsOnSince: number | undefined;
  const requestCount = () =>
    proxies.reduce((sum, p) => {
      const c = p.snapshot();
      return sum + c.reads + c.writes;
    }, 0);
  const setFaults = (on: boolean) => {
    if (on && faultsOnSince === undefined) faultsOnSince = requestCount();
    if (!on && faultsOnSince !== undefined) {
      requestsUnderFaults += requestCount() - faultsOnSince;
      faultsOnSince = undefined;
    }
    for (const p of proxies) p.configure({ faults: on ? faults : undefined });
  };
  // Kills armed "after a write" fire from the proxies, as soon as a cloud write was applied and answered: the
  // operator has changed the cloud and not yet written what it did into the WorkloadIdentity's status.
  let armed: string | undefined;
  for (const p of proxies) {
    p.hooks.onWriteApplied = () => {
      if (armed !== undefined && replicas.killLeader(armed, 'afterWrite')) armed = undefined;
    };
  }

  let members = initialPopulation(opts.n);
  const initial = Object.fromEntries(KINDS.map((k) => [k, members.filter((m) => m.kind === k).length])) as Record<Kind, number>;
  const edits: Partial<Record<EditKind, number>> = {};
  let deleted = 0;
  let added = 0;
  let restarts = 0;
  let convergeSeconds: number | undefined;
  let teardownSeconds: number | undefined;
  const notConverged: string[] = [];
  /** What the phases found, filled in as they end. */
  const found = { accountDeleted: 0, expiredRelists: 0, duplicates: [] as string[], mismatches: [] as string[], leaked: {} as Record<string, number>, foreignChanged: [] as string[], editorEdits: 0 };

  const killPlan = { build: Math.round(opts.kills * 0.35), churn: Math.round(opts.kills * 0.25), account: Math.round(opts.kills * 0.1) };
  const killsLeft = { value: opts.kills };
  /**
   * Runs `work` while killing the leader `count` times, each 10–20 s after a leader took over (so every leader gets
   * to act), alternating between "right after a cloud write" and "any moment".
   */
  const withKills = async (phase: string, count: number, work: Promise<unknown>) => {
    // Held until the kills are done; a failure of the work is raised then, not left unhandled meanwhile.
    const outcome = work.then(
      () => undefined,
      (err: unknown) => ({ err }),
    );
    const n = Math.min(count, killsLeft.value);
    for (let i = 0; i < n; i++) {
      // Counted from the moment a leader leads, so each leader gets to act before it is killed.
      await until(() => replicas.leader !== undefined, 120_000, 500);
      await new Promise((r) => setTimeout(r, 10_000 + random() * 10_000));
      const before = replicas.kills.length;
      if (i % 2 === 0) {
        armed = phase;
        // A phase with few writes left still gets its kill, at a random moment.
        if (!(await until(() => armed === undefined, 10_000, 100))) armed = undefined;
      }
      // The Lease may be between holders for a moment: wait for the next one rather than skip a kill.
      if (replicas.kills.length === before) await until(() => replicas.killLeader(phase, 'random'), 120_000, 500);
      killsLeft.value--;
    }
    const failed = await outcome;
    if (failed) throw failed.err;
  };

  const create = async (list: Member[]) => {
    await forEachLimit(list, 8, async (m) => {
      await retry(() => custom.createNamespacedCustomObject({ ...CUSTOM, namespace: m.namespace, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'WorkloadIdentity', metadata: { name: m.name, namespace: m.namespace }, spec: spec(m) } }), { created: true });
    });
  };

  try {
    log(`seeding foreign objects; ${opts.n} identities (${KINDS.map((k) => `${k} ${initial[k]}`).join(', ')}), fault rate ${opts.faultRate}, ${opts.kills} kills, seed ${opts.seed}`);
    const foreign = await seedForeign(clouds);
    const foreignBefore = await foreign.snapshot();
    // The clouds' own eventual consistency, for the whole run: a new Google service account is invisible to reads
    // and refused as a member for a while; a new managed identity's principal is unknown to role assignments for a
    // while; concurrent federated credential writes on one identity conflict.
    await gcp.emulator.setFaults({ propagationDelayMs: 3000 });
    azure.test.emulator.state.config.principalReplicationDelayMs = 3000;
    azure.test.emulator.state.config.ficWriteLatencyMs = 20;
    editor = foreign.startEditor(1500);
    await observer.start();
    await replicas.start(2);
    await until(() => replicas.leader !== undefined, 60_000, 500);
    let sampling = false;
    sampler = setInterval(() => {
      // One sample at a time: at 1,000 identities reading every role from moto takes a while.
      if (sampling) return;
      sampling = true;
      takeInventory(clouds, known)
        .then((inv) => {
          trustSamples++;
          for (const v of broaderTrust(inv, clouds)) trustViolations.add(v);
        })
        .catch((err: unknown) => log(`trust sample failed: ${String(err)}`))
        .finally(() => (sampling = false));
    }, 10_000);
    setFaults(true);

    // build
    log('build: namespaces, ServiceAccounts, WorkloadIdentities');
    for (const ns of NAMESPACES) await workload.namespace(ns);
    for (const ns of NAMESPACES) {
      await workload.serviceAccounts(
        ns,
        members.filter((m) => m.namespace === ns).map((m) => m.serviceAccount),
        8,
      );
    }
    await withKills('build', killPlan.build, create(members));
    for (let i = 0; i < opts.apiserverRestarts; i++) {
      log(`the API server restarts${i === 0 ? ', every watch expired' : ''}`);
      await promisify(execFile)(path.join(root, 'hack/controlplane.sh'), ['restart-apiserver', env.controlplaneState, ...(i === 0 ? ['--expire-watches'] : [])], { timeout: 300_000 });
      restarts++;
    }

    // churn
    const editable = members.filter((m) => m.kind !== 'pod');
    const toEdit = pick(editable, Math.round(opts.n * opts.churnEdits), random);
    const toDelete = pick(
      editable.filter((m) => !toEdit.includes(m)),
      Math.round(opts.n * opts.churnDeletes),
      random,
    );
    log(`churn: ${toEdit.length} edits, ${toDelete.length} deletes, ${toDelete.length} new identities`);
    const churn = (async () => {
      await forEachLimit(toEdit, 4, async (m) => {
        const { kind, next } = edit(m, random);
        await retry(async () => {
          const current = (await custom.getNamespacedCustomObject({ ...CUSTOM, namespace: m.namespace, name: m.name })) as WorkloadIdentity;
          await custom.replaceNamespacedCustomObject({ ...CUSTOM, namespace: m.namespace, name: m.name, body: { ...current, spec: spec(next) } });
        });
        members = members.map((x) => (x === m ? next : x));
        edits[kind] = (edits[kind] ?? 0) + 1;
      });
      await forEachLimit(toDelete, 4, async (m) => {
        await retry(() => custom.deleteNamespacedCustomObject({ ...CUSTOM, namespace: m.namespace, name: m.name }));
        members = members.filter((x) => x !== m);
        deleted++;
      });
      // New identities under new names: a name reused at once would mix the old object's revocation with the new one's.
      // Their ServiceAccounts are new too: a GKE principal or a Pod Identity association is per ServiceAccount.
      const fresh = toDelete.map((m, i) => ({ ...m, name: `wi-new-${i}`, serviceAccount: `sa-new-${i}`, version: 0 }));
      for (const m of fresh) await workload.serviceAccounts(m.namespace, [m.serviceAccount], 1);
      await create(fresh);
      members.push(...fresh);
      added = fresh.length;
    })();
    await withKills('churn', killPlan.churn, churn);

    // one CloudAccount's identities deleted, faults still on
    const podNamespace = SHARES.pod.namespace;
    found.accountDeleted = members.filter((m) => m.kind === 'pod').length;
    log(`account: deleting the ${found.accountDeleted} identities of the Pod Identity account`);
    await withKills('account', killPlan.account, workload.deleteAll(podNamespace));
    members = members.filter((m) => m.kind !== 'pod');

    // converge
    setFaults(false);
    log('converge: faults off');
    const stoppedAt = Date.now();
    const settled = (m: Member) => (m.switched ? Observer.refused(observer.latest.get(key(m)), REASON.CloudMismatch) : Observer.ready(observer.latest.get(key(m))));
    const converged = await until(
      () => members.every(settled) && ![...observer.latest.keys()].some((k) => k.startsWith(`${podNamespace}/`)),
      opts.convergeTimeoutSeconds * 1000,
      1000,
    );
    convergeSeconds = converged ? Math.round((Date.now() - stoppedAt) / 100) / 10 : undefined;
    if (!converged) {
      for (const m of members) {
        const wi = observer.latest.get(key(m));
        if (!settled(m)) notConverged.push(`${key(m)}: ${JSON.stringify(wi?.status?.conditions?.find((c) => c.type === 'Ready') ?? 'not seen')}`);
      }
      for (const k of observer.latest.keys()) if (k.startsWith(`${podNamespace}/`)) notConverged.push(`${k}: still there after its CloudAccount's identities were deleted`);
    }
    log(converged ? `converged in ${convergeSeconds}s` : `did not converge within ${opts.convergeTimeoutSeconds}s: ${notConverged.length} identities`);
    const inventory = await takeInventory(clouds, known);
    found.duplicates = duplicates(inventory);
    found.mismatches = mismatches(inventory, members, clouds);
    for (const v of broaderTrust(inventory, clouds)) trustViolations.add(v);
    trustSamples++;

    // teardown
    setFaults(true);
    const teardownKills = killsLeft.value;
    log(`teardown: deleting everything, ${teardownKills} kills`);
    const teardownBegan = Date.now();
    await withKills(
      'teardown',
      teardownKills,
      Promise.all(NAMESPACES.map((ns) => workload.deleteAll(ns))),
    );
    setFaults(false);
    const gone = await until(() => observer.latest.size === 0, opts.convergeTimeoutSeconds * 1000, 1000);
    teardownSeconds = gone ? Math.round((Date.now() - teardownBegan) / 100) / 10 : undefined;
    if (!gone) for (const k of observer.latest.keys()) notConverged.push(`${k}: not gone after the delete`);
    log(gone ? `everything gone ${teardownSeconds}s after the delete` : `${observer.latest.size} identities not gone`);
    // Releases noticed late are checked asynchronously: let them finish.
    await new Promise((r) => setTimeout(r, 2000));
    found.leaked = ownedCounts(await takeInventory(clouds, known));
    found.editorEdits = await editor.stop();
    editor = undefined;
    const foreignAfter = await foreign.snapshot();
    found.foreignChanged = Object.keys(foreignBefore).filter((k) => foreignBefore[k] !== foreignAfter[k]).map((k) => `${k}: before ${foreignBefore[k]}, after ${foreignAfter[k]}`);
  } finally {
    clearInterval(sampler);
    setFaults(false);
    await editor?.stop();
    await replicas.stop();
    observer.stop();
    for (const cloud of [aws, gcp, azure]) await cloud.stop();
  }

  // Counted from every replica's log, killed ones included (a metric dies with its process).
  found.expiredRelists = readdirSync(env.dir)
    .filter((f) => /^chaos-\d+\.log$/.test(f))
    .reduce((sum, f) => sum + readFileSync(path.join(env.dir, f), 'utf8').split('"msg":"watch expired (410 Gone); relisting"').length - 1, 0);
  const counts = proxies.map((p) => p.snapshot());
  const crashes = replicas.exits.filter((e) => e.cause === 'crashed');
  const checks = {
    notConverged,
    duplicates: found.duplicates,
    mismatches: found.mismatches,
    broaderTrust: { samples: trustSamples, violations: [...trustViolations] },
    releasedEarly: { checked: releasesChecked, violations: releasedEarly, missedByWatch: observer.missedReleases },
    leaked: found.leaked,
    foreignChanged: found.foreignChanged,
    crashes,
  };
  const passed =
    convergeSeconds !== undefined &&
    teardownSeconds !== undefined &&
    notConverged.length === 0 &&
    found.duplicates.length === 0 &&
    found.mismatches.length === 0 &&
    trustViolations.size === 0 &&
    releasedEarly.length === 0 &&
    Object.values(found.leaked).every((v) => v === 0) &&
    found.foreignChanged.length === 0 &&
    crashes.length === 0;
  return {
    options: opts,
    durationSeconds: Math.round((Date.now() - began) / 1000),
    population: { initial, edits, deleted, added, accountDeleted: found.accountDeleted },
    faults: { injected: sumFaults(counts), conflicts: counts.reduce((s, c) => s + c.conflicts, 0), cloudRequests: counts.reduce((s, c) => s + c.reads + c.writes, 0), requestsUnderFaults, concurrentEditorEdits: found.editorEdits },
    process: {
      kills: replicas.kills,
      leaderChanges: Math.max(0, replicas.leaders.length - 1),
      apiserverRestarts: restarts,
      expiredRelists: found.expiredRelists,
      exits: replicas.exits,
      peakRssMiB: Math.round(replicas.peakRssBytes / 2 ** 20),
    },
    convergeSeconds,
    teardownSeconds,
    checks,
    passed,
  };
}

/**
 * A run that ended early (a failed check, an interrupted process) leaves its namespaces, possibly with
 * WorkloadIdentities whose finalizers no operator will ever remove: their clouds are gone with that run, so the
 * finalizers go and the namespaces with them, before this run makes its own.
 */
async function clearEarlierRun(): Promise<void> {
  const existing = (await kubectl(['get', 'namespaces', '-o', 'name'])).stdout.split('\n').map((l) => l.replace('namespace/', '').trim());
  const earlier = NAMESPACES.filter((ns) => existing.includes(ns));
  if (!earlier.length) return;
  for (const ns of earlier) {
    const names = (await kubectl(['get', WORKLOAD_IDENTITY_PLURAL, '-n', ns, '-o', 'name'])).stdout.split('\n').filter(Boolean);
    for (const name of names) await kubectl(['patch', '-n', ns, name, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']).catch(() => undefined);
  }
  await kubectl(['delete', 'namespace', ...earlier, '--ignore-not-found', '--wait=true', '--timeout=300s']);
}

function sumFaults(counts: ProxyCounts[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of counts) for (const [k, v] of Object.entries(c.faults)) out[k] = (out[k] ?? 0) + (v ?? 0);
  return out;
}

function pick<T>(items: T[], count: number, random: () => number): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (out.length < count && pool.length) out.push(pool.splice(Math.floor(random() * pool.length), 1)[0] as T);
  return out;
}

/**
 * The API server restarts during the run: calls are retried through it. A create answered 409 after a failed
 * attempt is that attempt's success; a replace answered 409 read a stale version and is redone; a delete answered
 * 404 is done.
 */
async function retry(fn: () => Promise<unknown>, opts: { created?: boolean } = {}): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await fn();
      return;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 409 && opts.created && attempt > 1) return;
      if (code === 404 && !opts.created) return;
      // The API refusing the request (invalid, forbidden) is the run's own mistake: no retry hides it.
      if (typeof code === 'number' && code >= 400 && code < 500 && code !== 409 && code !== 429) throw err;
      if (attempt >= 40) throw err;
      await new Promise((r) => setTimeout(r, 500 * Math.min(attempt, 6)));
    }
  }
}
