// The GcpPort of one CloudAccount, with the reads its identities share (../shared-reads.ts): each resource's IAM
// policy and each project's service-account listing are read once for every identity that needs them, and every
// write Keyless makes through this port lands in the copies it touches — a policy becomes what setIamPolicy answered,
// a created, renamed or deleted account shows in the listing — or, when the write failed and may have happened
// anyway, drops them. A read through the port itself (getIamPolicy: a read-modify-write after a stale etag, a
// revoke) always goes to Google, and its answer becomes the copy. A Google service account's own policy belongs to
// one identity: it is never kept.
import { isCloudError } from '../cloud-error.ts';
import { ownWrite, SharedReads, type SharedReadsOptions } from '../shared-reads.ts';
import type { GcpPort, GoogleServiceAccount, SharedGcpPort } from './gcp-port.ts';
import type { IamPolicy } from './policy.ts';
import { targetKey, type PolicyTarget } from './resources.ts';

async function orMissing<T, M>(read: () => Promise<T>, missing: M): Promise<T | M> {
  try {
    return await read();
  } catch (err) {
    if (isCloudError(err, 'notFound')) return missing;
    throw err;
  }
}

/** Policies several identities read: every grant target. A service account's policy is its identity's trust. */
const shared = (target: PolicyTarget) => target.kind !== 'serviceAccount';

export function shareGcpReads(port: GcpPort, opts: SharedReadsOptions): SharedGcpPort {
  const policies = new SharedReads<IamPolicy | undefined>(opts);
  const listings = new SharedReads<readonly GoogleServiceAccount[]>(opts);
  const without = (email: string) => (list: readonly GoogleServiceAccount[]) => list.filter((sa) => sa.email !== email);

  return {
    sharedIamPolicy: (target) => policies.read(targetKey(target), () => orMissing(() => port.getIamPolicy(target), undefined)),
    sharedServiceAccounts: (project) => listings.read(project, () => orMissing(() => port.listServiceAccounts(project), [])),

    getServiceAccount: async (project, email) => {
      const sa = await port.getServiceAccount(project, email);
      // A direct read is newer than the listing: a lagging listing learns the account, a stale one forgets it.
      listings.amend(project, (list) => (sa ? [...without(email)(list), sa] : without(email)(list)));
      return sa;
    },
    listServiceAccounts: async (project) => [...(await listings.fresh(project, () => port.listServiceAccounts(project)))],
    createServiceAccount: (project, accountId, fields) =>
      ownWrite(
        () => port.createServiceAccount(project, accountId, fields),
        (sa) => listings.update(project, (list) => [...without(sa.email)(list), sa]),
        () => listings.drop(project),
      ),
    patchServiceAccount: (project, email, fields) =>
      ownWrite(
        () => port.patchServiceAccount(project, email, fields),
        () => listings.update(project, (list) => list.map((sa) => (sa.email === email ? { ...sa, ...fields } : sa))),
        () => listings.drop(project),
      ),
    deleteServiceAccount: (project, email) => {
      // IAM turns the account's bindings in every policy into `deleted:` members: no kept policy is current.
      const gone = () => policies.dropWhere(() => true);
      return ownWrite(
        () => port.deleteServiceAccount(project, email),
        () => {
          listings.update(project, without(email));
          gone();
        },
        () => {
          listings.drop(project);
          gone();
        },
      );
    },

    getIamPolicy: async (target) => {
      if (!shared(target)) return port.getIamPolicy(target);
      const key = targetKey(target);
      try {
        return await policies.fresh(key, () => port.getIamPolicy(target));
      } catch (err) {
        if (isCloudError(err, 'notFound')) policies.update(key, () => undefined);
        throw err;
      }
    },
    setIamPolicy: (target, policy) => {
      const key = targetKey(target);
      return ownWrite(
        () => port.setIamPolicy(target, policy),
        (written) => policies.update(key, () => written),
        () => policies.drop(key),
      );
    },
  };
}
