// WorkloadsUpToDate: running pods of the ServiceAccount that predate the identity (or its latest change), with the
// rollout restart to run; with keyless.dev/restart-workloads, Keyless runs it once per identity change. What counts as
// stale is the mechanism's knowledge (Provider.pods); which workloads own the pods and how to restart them is ours.
import { REASON, WORKLOAD_IDENTITY_ANNOTATION } from '../../api/constants.ts';
import type { WorkloadIdentity, WorkloadIdentityStatus } from '../../api/types.ts';
import type { WorkloadRef } from '../../kube/workloads.ts';
import type { PodCredentials } from '../../providers/types.ts';
import type { Outcome } from './conditions.ts';
import type { WorkloadIdentityReconcilerDeps } from './deps.ts';
import type { Reporter } from './report.ts';

export async function workloadsUpToDate(
  d: WorkloadIdentityReconcilerDeps,
  reporter: Reporter,
  wi: WorkloadIdentity,
  pods: PodCredentials,
  status: WorkloadIdentityStatus,
): Promise<NonNullable<Outcome['workloads']>> {
  const namespace = wi.metadata.namespace ?? '';
  const serviceAccountName = wi.spec.serviceAccountName;
  if (!pods.injected) {
    return { ok: true, reason: REASON.NotRequired, message: pods.notInjected ?? 'Pods need no restart: nothing is injected into them.' };
  }
  const running = await d.workloads.podsOf(namespace, serviceAccountName);
  const stale = running.flatMap((p) => {
    const why = pods.staleReason(p, status);
    return why ? [{ pod: p, why }] : [];
  });
  if (stale.length === 0) {
    return { ok: true, reason: REASON.UpToDate, message: `All ${running.length} running pod(s) of ServiceAccount ${namespace}/${serviceAccountName} use the current identity.` };
  }
  const owners = new Map<string, WorkloadRef>();
  for (const { pod } of stale) {
    const owner = await d.workloads.ownerOf(pod);
    if (owner) owners.set(`${owner.kind.toLowerCase()}/${owner.name}`, owner);
  }
  const listed = stale.slice(0, 5).map(({ pod, why }) => `${pod.metadata?.name ?? ''} ${why}`);
  const more = stale.length > listed.length ? ` and ${stale.length - listed.length} more` : '';
  const command = owners.size ? ` Restart them: kubectl rollout restart -n ${namespace} ${[...owners.keys()].join(' ')}.` : ' Delete them so their controllers recreate them.';
  let restarted = '';
  if (wi.metadata.annotations?.[WORKLOAD_IDENTITY_ANNOTATION.restartWorkloads] === 'true') {
    // One restart per identity change: a pod that still lacks credentials afterwards (no webhook?) is reported,
    // not restarted in a loop.
    const stamp = `${status.identity ?? ''}@${wi.metadata.generation ?? 0}`;
    const done: string[] = [];
    for (const [key, owner] of owners) {
      if ((await d.workloads.restartedFor(namespace, owner)) === stamp) continue;
      await d.workloads.restart(namespace, owner, stamp);
      done.push(key);
    }
    if (done.length) {
      await reporter.event(wi, 'Normal', 'WorkloadsRestarted', `Restarted ${done.join(', ')} so their pods pick up ${status.identity ?? 'the identity'} (keyless.dev/restart-workloads)`);
      restarted = ` Keyless restarted ${done.join(', ')} (keyless.dev/restart-workloads); this clears once the new pods run.`;
    }
  }
  return {
    ok: false,
    reason: REASON.PodsNeedRestart,
    message: `${stale.length} running pod(s) of ServiceAccount ${namespace}/${serviceAccountName} do not use the current identity: ${listed.join('; ')}${more}.${command}${restarted}`,
  };
}
