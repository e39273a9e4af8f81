// Pod Identity associations: at most one per (cluster, namespace, ServiceAccount). Keyless adopts an existing one
// only if it carries this WorkloadIdentity's marker; anything else is a Conflict left untouched. Deletes are
// eventually consistent (EKS API reference), so a delete counts only once Describe no longer finds it.
import { REASON } from '../../api/constants.ts';
import { isCloudError } from '../cloud-error.ts';
import type { Association, EksPort } from '../aws/eks-port.ts';
import { isOwned } from '../ownership.ts';
import { ProviderError, type Change } from '../types.ts';

export interface DesiredAssociation {
  clusterName: string;
  namespace: string;
  serviceAccount: string;
  marker: Record<string, string>;
  /** Deterministic per WorkloadIdentity (uid) and role, so a retried create is idempotent at EKS. */
  clientRequestToken: string;
}

/** Where an association is and whose it must be: enough to find and delete ours. */
export type AssociationRef = Pick<DesiredAssociation, 'clusterName' | 'namespace' | 'serviceAccount' | 'marker'>;

/** The association for this namespace/ServiceAccount, if any exists (ours or not). */
export async function observeAssociation(eks: EksPort, desired: AssociationRef): Promise<Association | undefined> {
  const [id] = await eks.findAssociations(desired.clusterName, desired.namespace, desired.serviceAccount);
  return id ? eks.describeAssociation(desired.clusterName, id) : undefined;
}

function assertOwned(association: Association, desired: DesiredAssociation): void {
  if (!association.ownerArn && isOwned(association.tags, desired.marker)) return;
  throw new ProviderError(
    'trust',
    REASON.Conflict,
    `Pod Identity association ${association.associationId} for ${desired.namespace}/${desired.serviceAccount} on cluster ${desired.clusterName} already exists and is not owned by this WorkloadIdentity${association.ownerArn ? ` (it belongs to ${association.ownerArn})` : ''}; Keyless leaves it untouched. Delete it (aws eks delete-pod-identity-association --cluster-name ${desired.clusterName} --association-id ${association.associationId}) or use another ServiceAccount.`,
    false,
  );
}

export async function ensureAssociation(
  eks: EksPort,
  desired: DesiredAssociation,
  observed: Association | undefined,
  roleArn: string,
): Promise<{ association: Association; changes: Change[] }> {
  let association = observed;
  if (!association) {
    try {
      association = await eks.createAssociation({
        clusterName: desired.clusterName,
        namespace: desired.namespace,
        serviceAccount: desired.serviceAccount,
        roleArn,
        clientRequestToken: desired.clientRequestToken,
        tags: desired.marker,
      });
      return { association, changes: [{ step: 'trust', action: 'AssociationCreated', message: `Created Pod Identity association ${association.associationId} for ${desired.namespace}/${desired.serviceAccount} with role ${roleArn}` }] };
    } catch (err) {
      // ResourceInUseException carries the existing id only in its message; look it up instead.
      if (!isCloudError(err, 'alreadyExists')) throw err;
      association = await observeAssociation(eks, desired);
      if (!association) throw err;
    }
  }
  assertOwned(association, desired);
  if (association.roleArn === roleArn) return { association, changes: [] };
  const updated = await eks.updateAssociationRole(desired.clusterName, association.associationId, roleArn, `${desired.clientRequestToken.slice(0, 56)}-update`);
  return { association: updated, changes: [{ step: 'trust', action: 'AssociationUpdated', message: `Pointed Pod Identity association ${association.associationId} at role ${roleArn}` }] };
}

/** Deletes our association (never a foreign one); complete once EKS no longer describes it. */
export async function deleteAssociation(eks: EksPort, desired: AssociationRef): Promise<{ complete: boolean; changes: Change[] }> {
  const association = await observeAssociation(eks, desired);
  if (!association || association.ownerArn || !isOwned(association.tags, desired.marker)) return { complete: true, changes: [] };
  await eks.deleteAssociation(desired.clusterName, association.associationId);
  const gone = !(await eks.describeAssociation(desired.clusterName, association.associationId));
  return {
    complete: gone,
    changes: [{ step: 'trust', action: 'AssociationDeleted', message: `Deleted Pod Identity association ${association.associationId} for ${desired.namespace}/${desired.serviceAccount}` }],
  };
}
