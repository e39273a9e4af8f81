// Step 4 of a reconcile: the ServiceAccount annotations the mechanism needs, by server-side apply under one field
// manager per cloud, touching only our keys. An annotation another tool owns with another value is a condition that
// names the tool and the two ways out, never a silent retry; removal touches an annotation only while it still
// carries the value this WorkloadIdentity set, so a loser of a Conflict never strips the winner's.
import { REASON, WORKLOAD_IDENTITY_ANNOTATION, serviceAccountFieldManager } from '../../api/constants.ts';
import type { Cloud, ProvisionedRecord, WorkloadIdentity } from '../../api/types.ts';
import { FieldConflictError } from '../../kube/client.ts';
import type { Provisioned } from '../../providers/types.ts';
import { BY_SERVICE_ACCOUNT, serviceAccountKey } from '../indexes.ts';
import { annotationsUpToDate, ownedAnnotationKeys } from '../service-account.ts';
import { holds } from './admit.ts';
import type { Outcome } from './conditions.ts';
import type { WorkloadIdentityReconcilerDeps } from './deps.ts';

export interface Bound {
  outcome: NonNullable<Outcome['serviceAccount']>;
  /** The annotations Keyless set (for the record); empty when it set none. */
  applied: Record<string, string>;
}

const ANNOTATIONS_FIELD = '.metadata.annotations.';

/**
 * Puts our annotations on the ServiceAccount. serviceAccountName is immutable (CRD), so no other ServiceAccount ever
 * carries this identity's annotations.
 */
export async function bindServiceAccount(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity, cloud: Cloud, provisioned: Provisioned): Promise<Bound> {
  const namespace = wi.metadata.namespace ?? '';
  const name = wi.spec.serviceAccountName;
  const desired = provisioned.serviceAccountAnnotations;
  const sa = d.serviceAccounts.get(`${namespace}/${name}`);
  if (!sa) {
    return {
      outcome: {
        ok: false,
        reason: REASON.ServiceAccountNotFound,
        message: `ServiceAccount ${namespace}/${name} does not exist yet. The cloud identity is ready; Keyless annotates the ServiceAccount as soon as it is created.`,
      },
      applied: {},
    };
  }
  const keys = Object.keys(desired);
  const manager = serviceAccountFieldManager(cloud);
  if (!annotationsUpToDate(sa, desired, manager)) {
    const force = wi.metadata.annotations?.[WORKLOAD_IDENTITY_ANNOTATION.takeOverAnnotations] === 'true';
    try {
      await d.kube.applyServiceAccountAnnotations(sa, desired, manager, { force });
    } catch (err) {
      if (!(err instanceof FieldConflictError)) throw err;
      return { outcome: conflictOutcome(wi, err, sa.metadata?.annotations ?? {}), applied: {} };
    }
  }
  return {
    outcome: {
      ok: true,
      reason: keys.length ? REASON.Annotated : REASON.NotRequired,
      message: [
        keys.length ? `ServiceAccount ${namespace}/${name} carries ${keys.map((k) => `${k}=${desired[k]}`).join(', ')}.` : `ServiceAccount ${namespace}/${name} needs no annotation for this mechanism.`,
        provisioned.serviceAccountHint,
      ]
        .filter(Boolean)
        .join(' '),
    },
    applied: desired,
  };
}

function conflictOutcome(wi: WorkloadIdentity, err: FieldConflictError, current: Record<string, string>): NonNullable<Outcome['serviceAccount']> {
  const namespace = wi.metadata.namespace ?? '';
  const name = wi.spec.serviceAccountName;
  const owners = err.conflicts.map((c) => {
    const key = c.field.startsWith(ANNOTATIONS_FIELD) ? c.field.slice(ANNOTATIONS_FIELD.length) : c.field;
    return { key, manager: c.manager, value: current[key] };
  });
  const described = owners.map((o) => `${o.key}${o.value === undefined ? '' : `=${o.value}`} (set by field manager ${o.manager})`).join(', ');
  const remove = owners.map((o) => `${o.key}-`).join(' ');
  return {
    ok: false,
    reason: REASON.AnnotationConflict,
    message:
      `ServiceAccount ${namespace}/${name} already carries ${described}, and Keyless never overwrites an annotation another tool set. The cloud identity is ready; ` +
      `pods of this ServiceAccount still get what that annotation names. Either remove it (kubectl annotate serviceaccount -n ${namespace} ${name} ${remove}) and from the manifest or chart that sets it, ` +
      `or let Keyless take it over: kubectl annotate workloadidentity -n ${namespace} ${wi.metadata.name} ${WORKLOAD_IDENTITY_ANNOTATION.takeOverAnnotations}=true.`,
  };
}

/**
 * Removes the annotations this WorkloadIdentity set for the record's cloud, first in every revocation (no new pod is
 * pointed at an identity about to disappear). Only while they still carry the values the record names — or, for a
 * record from before the first annotation was recorded, while no other WorkloadIdentity of the ServiceAccount holds
 * that cloud. Returns what it removed, for messages.
 */
export async function unbindServiceAccount(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity, record: ProvisionedRecord): Promise<string | undefined> {
  const namespace = wi.metadata.namespace ?? '';
  const sa = d.serviceAccounts.get(`${namespace}/${wi.spec.serviceAccountName}`);
  if (!sa) return undefined;
  const manager = serviceAccountFieldManager(record.cloud);
  const owned = ownedAnnotationKeys(sa, manager);
  if (!owned.length) return undefined;
  const current = sa.metadata?.annotations ?? {};
  const recorded = Object.entries(record.serviceAccountAnnotations ?? {});
  const ours = recorded.length
    ? recorded.every(([k, v]) => current[k] === undefined || current[k] === v)
    : !d.identities.byIndex(BY_SERVICE_ACCOUNT, serviceAccountKey(namespace, wi.spec.serviceAccountName)).some((o) => o.metadata.name !== wi.metadata.name && holds(o, record.cloud));
  if (!ours) return undefined;
  await d.kube.applyServiceAccountAnnotations(sa, {}, manager);
  return `removed ${owned.join(', ')} from ServiceAccount ${namespace}/${wi.spec.serviceAccountName}`;
}
