// Step 3 of a reconcile, and the revocation every teardown shares. Provisioning records what it may create before it
// creates it (write-ahead), so a crash between a cloud write and the status write never loses track of an object;
// revocation reads only that record, so it completes whatever the spec says now.
import type { ProvisionedRecord, WorkloadIdentity } from '../../api/types.ts';
import { TerminalError } from '../../controller/errors.ts';
import { deepEqual } from '../../domain/conditions.ts';
import { accountForRecord } from '../../providers/registry.ts';
import type { Owner, Provisioned, Revoked } from '../../providers/types.ts';
import type { Admitted } from './admit.ts';
import { unbindServiceAccount } from './bind-service-account.ts';
import { withdrawConfigMap } from './config-map.ts';
import type { WorkloadIdentityReconcilerDeps } from './deps.ts';
import { ObjectGone, type Reporter } from './report.ts';

export function ownerOf(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity): Owner {
  return { cluster: d.cluster, namespace: wi.metadata.namespace ?? '', name: wi.metadata.name, serviceAccountName: wi.spec.serviceAccountName };
}

/**
 * Revokes everything `record` names: our ServiceAccount annotations and the pods' ConfigMap first (no new pod is
 * pointed at an identity about to disappear), then the provider's trust, grants and identity, through the account the
 * record names.
 */
export async function revokeRecord(d: WorkloadIdentityReconcilerDeps, wi: WorkloadIdentity, record: ProvisionedRecord): Promise<Revoked> {
  const unbound = [await unbindServiceAccount(d, wi, record), await withdrawConfigMap(d, wi, record)].filter(Boolean).join('; ');
  const account = accountForRecord(record, d.accounts.get(record.cloudAccount));
  const provider = d.providers.providerFor(account, record.cloud, record.mechanism);
  if (!provider) {
    throw new TerminalError(`This version of Keyless cannot revoke ${record.cloud} objects of mechanism ${record.mechanism}; run a version that can, or set spec.deletionPolicy: Orphan.`);
  }
  const revoked = await provider.revoke(record, ownerOf(d, wi));
  return unbound ? { ...revoked, message: `${revoked.message}; ${unbound}` } : revoked;
}

export interface ProvisionResult {
  /** The object after the write-ahead of the record, for the writes that follow. */
  wi: WorkloadIdentity;
  /** The record as it stands in status: what a failed `ensure` may have left behind. */
  record: ProvisionedRecord | undefined;
  provisioned?: Provisioned;
  /** Why provisioning stopped; the caller reports it. */
  error?: unknown;
}

/**
 * observe → record what ensure may create (a status write only when that changes the record) → ensure. A failure is
 * returned, not thrown, with the record as written, so the caller reports it against the right state.
 */
export async function provision(reporter: Reporter, wi: WorkloadIdentity, target: Admitted, record: ProvisionedRecord | undefined): Promise<ProvisionResult> {
  const { provider, ctx, cloud, mechanism, account } = target;
  let current = wi;
  let written = record;
  try {
    const desired = provider.desired(ctx);
    const observed = await provider.observe(desired);
    const intended: ProvisionedRecord = {
      cloud,
      cloudAccount: account.metadata.name,
      mechanism,
      ...(record?.serviceAccountAnnotations ? { serviceAccountAnnotations: record.serviceAccountAnnotations } : {}),
      ...provider.intent(desired, observed),
    };
    if (!deepEqual(intended, record)) {
      current = await reporter.fields(wi, { ...wi.status, provisioned: intended });
      written = intended;
    }
    return { wi: current, record: written, provisioned: await provider.ensure(desired, observed) };
  } catch (error) {
    if (error instanceof ObjectGone) throw error;
    return { wi: current, record: written, error };
  }
}
