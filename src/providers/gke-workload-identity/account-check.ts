// The GCP side of a CloudAccount: the project must be reachable with the operator's Google identity (its IAM
// policy readable: the copy the account's identities share), and the workload identity pool is what this cluster's
// tokens are trusted through. GKE's pool is not an OIDC issuer URL Keyless can verify from outside the cluster, so
// the pool stands in for the issuer.
import { REASON } from '../../api/constants.ts';
import type { CloudAccount } from '../../api/types.ts';
import { isCloudError } from '../cloud-error.ts';
import type { AccountVerdict } from '../types.ts';
import type { GcpSharedReads } from './gcp-port.ts';
import { workloadPool } from './naming.ts';
import type { IamPolicy } from './policy.ts';

export async function checkGcpAccount(gcp: GcpSharedReads, account: CloudAccount): Promise<AccountVerdict> {
  const spec = account.spec.gcp;
  if (!spec) throw new Error('not a GCP account');
  const pool = workloadPool(spec.projectId, spec.workloadPool);
  let policy: IamPolicy | undefined;
  try {
    policy = await gcp.sharedIamPolicy({ kind: 'project', project: spec.projectId });
  } catch (err) {
    if (isCloudError(err, 'terminal')) {
      return {
        ok: false,
        reason: REASON.CloudRejected,
        message: `The operator's Google identity cannot read the IAM policy of project ${spec.projectId} (${err.message}). Grant it roles/iam.serviceAccountAdmin and roles/resourcemanager.projectIamAdmin on the project (and the admin role of any bucket, topic or secret it grants on).`,
      };
    }
    throw err;
  }
  if (!policy) {
    return { ok: false, reason: REASON.ResourceNotFound, message: `Google Cloud project ${spec.projectId} was not found. Fix spec.gcp.projectId (gcloud projects describe ${spec.projectId}).` };
  }
  return {
    ok: true,
    reason: REASON.Ready,
    issuer: pool,
    message: `Project ${spec.projectId} (number ${spec.projectNumber}) is reachable; identities are trusted through workload identity pool ${pool}. The GKE cluster must run with --workload-pool=${pool} and node pools with --workload-metadata=GKE_METADATA.`,
  };
}
