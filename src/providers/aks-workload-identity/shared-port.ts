// The ARM ports of one CloudAccount, with the reads its identities share (../shared-reads.ts): the resource group's
// managed identities, and every principal's role assignments at a scope (a subscription), are listed once for every
// identity instead of one GET and one filtered list per identity. Every write Keyless makes through these ports lands
// in the copies it touches — a created or re-tagged identity, a deleted one, a created or deleted assignment in each
// kept list it shows in — or, when the write failed and may have happened anyway, drops them. A direct read (an
// identity's GET, a list of one principal's assignments) always goes to Azure; an identity's GET also corrects the
// kept list. Federated credentials belong to one identity each: they are never kept.
import { ownWrite, SharedReads, type SharedReadsOptions } from '../shared-reads.ts';
import type { AuthorizationPort, ManagedIdentity, MsiPort, RoleAssignment, SharedAuthorizationPort, SharedMsiPort } from './arm-port.ts';
import { scopeKey } from './desired.ts';

/** The one list of identities a resource group has. */
const IDENTITIES = 'identities';

/** Whether an assignment at `scope` shows in a list for `listed`: at, above or below it. */
function related(listed: string, scope: string): boolean {
  const [a, b] = [scopeKey(listed), scopeKey(scope)];
  const within = (outer: string, inner: string) => outer === '/' || inner === outer || inner.startsWith(`${outer}/`);
  return within(a, b) || within(b, a);
}

export function shareArmReads(msi: MsiPort, authorization: AuthorizationPort, opts: SharedReadsOptions): { msi: SharedMsiPort; authorization: SharedAuthorizationPort } {
  const identities = new SharedReads<readonly ManagedIdentity[]>(opts);
  const assignments = new SharedReads<readonly RoleAssignment[]>(opts);
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  const withoutIdentity = (name: string) => (list: readonly ManagedIdentity[]) => list.filter((i) => !same(i.name, name));
  const withoutAssignment = (name: string, scope: string) => (list: readonly RoleAssignment[]) => list.filter((a) => !(same(a.name, name) && scopeKey(a.scope) === scopeKey(scope)));
  const dropIdentities = () => identities.drop(IDENTITIES);

  return {
    msi: {
      sharedIdentities: () => identities.read(IDENTITIES, () => msi.listIdentities()),
      listIdentities: async () => [...(await identities.fresh(IDENTITIES, () => msi.listIdentities()))],
      getIdentity: async (name) => {
        const identity = await msi.getIdentity(name);
        // A direct read is newer than the list: a lagging list learns the identity, a stale one forgets it.
        identities.amend(IDENTITIES, (list) => (identity ? [...withoutIdentity(name)(list), identity] : withoutIdentity(name)(list)));
        return identity;
      },
      putIdentity: (name, input) =>
        ownWrite(
          () => msi.putIdentity(name, input),
          (identity) => identities.update(IDENTITIES, (list) => [...withoutIdentity(name)(list), identity]),
          dropIdentities,
        ),
      deleteIdentity: (name) =>
        ownWrite(
          () => msi.deleteIdentity(name),
          () => identities.update(IDENTITIES, withoutIdentity(name)),
          dropIdentities,
        ),
      listCredentials: (identityName) => msi.listCredentials(identityName),
      putCredential: (identityName, credential) => msi.putCredential(identityName, credential),
      deleteCredential: (identityName, credentialName) => msi.deleteCredential(identityName, credentialName),
    },
    authorization: {
      sharedRoleAssignments: (scope) => assignments.read(scopeKey(scope), () => authorization.listRoleAssignments(scope)),
      findRoleDefinitions: (scope, roleName) => authorization.findRoleDefinitions(scope, roleName),
      listRoleAssignments: (scope, principalId) => authorization.listRoleAssignments(scope, principalId),
      createRoleAssignment: (scope, name, input) =>
        ownWrite(
          () => authorization.createRoleAssignment(scope, name, input),
          (created) => assignments.updateWhere((listed) => related(listed, scope), (list) => [...withoutAssignment(name, scope)(list), created]),
          () => assignments.dropWhere((listed) => related(listed, scope)),
        ),
      deleteRoleAssignment: (scope, name) =>
        ownWrite(
          () => authorization.deleteRoleAssignment(scope, name),
          () => assignments.updateWhere((listed) => related(listed, scope), withoutAssignment(name, scope)),
          () => assignments.dropWhere((listed) => related(listed, scope)),
        ),
    },
  };
}
