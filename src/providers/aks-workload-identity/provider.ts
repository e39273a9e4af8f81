// AKS workload identity: a user-assigned managed identity owned by one WorkloadIdentity, one federated identity
// credential trusting exactly this cluster's issuer, the derived subject and the audience api://AzureADTokenExchange,
// the role assignments the spec lists, and the ServiceAccount annotations the AKS webhook reads.
import { AUDIENCE, SERVICE_ACCOUNT_ANNOTATION, REASON } from '../../api/constants.ts';
import { notAdoptable } from '../adoption.ts';
import { CloudError, isCloudError } from '../cloud-error.ts';
import { describeTaggedOwner, isOwned, markerTags, notOwned, unmarked } from '../ownership.ts';
import { beforeFirstWrite, changedSinceListed } from '../shared-reads.ts';
import { stepRunner } from '../steps.ts';
import { ProviderError, type Change, type CloudRecord, type CredentialCheck, type IdentityContext, type Owner, type Provider, type Provisioned, type Revoked } from '../types.ts';
import type { FederatedCredential, ManagedIdentity, RoleAssignment, SharedAuthorizationPort, SharedMsiPort } from './arm-port.ts';
import {
  assignmentRoleGuid,
  azureAccount,
  desiredAks,
  grants,
  identityNameOf,
  roleAssignmentName,
  roleDefinitionId,
  roleGuidOf,
  sameCredential,
  validateAzureSpec,
  type AksDesired,
} from './desired.ts';
import { azureCredentialCheck } from './credential-check.ts';
import { CREDENTIAL_LIMIT_CODE } from './errors.ts';
import type { AzureExchangePort } from './exchange-port.ts';
import type { KeyedMutex } from '../keyed-mutex.ts';
import { AZURE_POD_CREDENTIALS } from './pods.ts';

/** Entra's hard limit of federated identity credentials per managed identity (no increase possible). */
export const CREDENTIAL_LIMIT = 20;

export const POD_LABEL_HINT =
  'Pods must also carry the label azure.workload.identity/use: "true" (in the pod template, not on the Deployment) for the AKS workload identity webhook to inject the token; the annotations alone do nothing.';

export interface AksObserved {
  identity: ManagedIdentity | undefined;
  /** `identity` is the shared list's copy: it is read again before anything is written for it. */
  listed: boolean;
  owned: boolean;
  /** Federated credentials on our identity (empty when it is missing or not ours). */
  credentials: FederatedCredential[];
  /** Role assignments of our identity's principal in the subscriptions we look at. */
  assignments: RoleAssignment[];
}

export interface AksDeps {
  /** With the reads every identity of the account shares (shared-port.ts). */
  msi: SharedMsiPort;
  authorization: SharedAuthorizationPort;
  exchange: AzureExchangePort;
  /** Shared by every provider in the process: serializes federated-credential writes per identity. */
  credentialWrites: KeyedMutex;
  /** Role name → role definition GUID for this account, filled on first use. */
  roleIds: Map<string, string>;
}

const asStep = stepRunner({
  cloud: 'Azure',
  hints: {
    identity: "Check the CloudAccount's subscriptionId, resourceGroup and location, and that the operator may create managed identities there (Managed Identity Contributor).",
    trust: "Check the CloudAccount's oidcIssuer.",
    permissions: 'Fix spec.azure.roleAssignments, and check that the operator may assign roles at those scopes (Role Based Access Control Administrator or User Access Administrator).',
  },
});

const lockKey = (identity: ManagedIdentity) => identity.id.toLowerCase();
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export class AksWorkloadIdentityProvider implements Provider<AksDesired, AksObserved> {
  readonly cloud = 'azure' as const;
  readonly mechanism = 'WorkloadIdentity';
  readonly pods = AZURE_POD_CREDENTIALS;
  readonly credentials: CredentialCheck;
  readonly #d: AksDeps;

  /** One provider per CloudAccount: the ports carry that account's subscription, resource group and rate limiter. */
  constructor(deps: AksDeps) {
    this.#d = deps;
    this.credentials = azureCredentialCheck(deps.exchange);
  }

  /** The same managed identity: same subscription, resource group and name (ARM names are case-insensitive). */
  continues(record: CloudRecord, ctx: IdentityContext): boolean {
    const r = record.azure;
    const account = azureAccount(ctx);
    return (
      r !== undefined &&
      same(r.subscriptionId, account.subscriptionId) &&
      same(r.resourceGroup, account.resourceGroup) &&
      same(r.identityName, identityNameOf(ctx))
    );
  }

  validate(ctx: IdentityContext): string[] {
    return validateAzureSpec(ctx);
  }

  desired(ctx: IdentityContext): AksDesired {
    return desiredAks(ctx);
  }

  /**
   * The identity from the resource group's shared list and the assignments from each subscription's, filtered to our
   * principal; only the federated credentials are read for this identity alone.
   */
  async observe(desired: AksDesired): Promise<AksObserved> {
    let identity = (await this.#d.msi.sharedIdentities()).find((i) => same(i.name, desired.identityName));
    const listed = identity !== undefined;
    // Not listed: the list may lag a create; ask for the identity itself before calling it missing.
    identity ??= await this.#d.msi.getIdentity(desired.identityName);
    if (!identity || !isOwned(identity.tags, desired.marker)) return { identity, listed, owned: false, credentials: [], assignments: [] };
    const [credentials, assignments] = await Promise.all([this.#credentialsOf(identity, listed), this.#assignmentsOf(desired.listScopes, identity.principalId, 'shared')]);
    // Listed, but gone: the list predates a deletion.
    if (!credentials) return { identity: undefined, listed: false, owned: false, credentials: [], assignments: [] };
    return { identity, listed, owned: true, credentials, assignments };
  }

  /** undefined when a listed identity turns out to be gone. */
  async #credentialsOf(identity: ManagedIdentity, listed: boolean): Promise<FederatedCredential[] | undefined> {
    try {
      return await this.#d.msi.listCredentials(identity.name);
    } catch (err) {
      if (!listed || !isCloudError(err, 'notFound') || (await this.#d.msi.getIdentity(identity.name))) throw err;
      return undefined;
    }
  }

  /** The identity, and every subscription where assignments may exist: those recorded and those the spec names. */
  intent(desired: AksDesired, observed: AksObserved): CloudRecord {
    return this.#record(desired, observed.owned ? observed.identity?.id : undefined, desired.listScopes.map((scope) => scope.slice('/subscriptions/'.length)));
  }

  #record(desired: AksDesired, identityId: string | undefined, subscriptions: string[]): CloudRecord {
    return {
      azure: {
        subscriptionId: desired.subscriptionId,
        tenantId: desired.tenantId,
        resourceGroup: desired.resourceGroup,
        identityName: desired.identityName,
        ...(identityId ? { identityId } : {}),
        subscriptions,
      },
    };
  }

  async ensure(desired: AksDesired, observed: AksObserved): Promise<Provisioned> {
    const changes: Change[] = [];
    let current = observed;
    if (observed.identity && !observed.owned) {
      if (!desired.adopt || !unmarked(observed.identity.tags)) {
        throw notOwned('identity', `Managed identity ${observed.identity.id}`, describeTaggedOwner(observed.identity.tags), 'delete or rename that identity, use a different WorkloadIdentity name', { adoptable: true });
      }
      if (desired.adoptOnlyIfTrusted) await this.#assertTrusts(desired, observed.identity);
      current = await this.#adopt(desired, observed.identity);
      changes.push({ step: 'identity', action: 'Adopted', message: `Adopted the existing managed identity ${observed.identity.id} (keyless.dev/adopt) and tagged it as owned` });
    }
    // Before the first write for a listed identity (a credential, an assignment), ARM confirms it is still ours.
    const confirm = beforeFirstWrite(async () => {
      const listed = current.identity;
      if (!current.listed || !listed) return;
      const now = await this.#d.msi.getIdentity(listed.name);
      if (now?.principalId === listed.principalId && isOwned(now.tags, desired.marker)) return;
      throw changedSinceListed('UserAssignedIdentities_Get', `Managed identity ${listed.id}`);
    });
    const fresh = !current.identity;
    // PUT is create-or-update: a crash after it finds the same identity again by its deterministic name.
    const identity = current.identity ?? (await asStep('identity', () => this.#d.msi.putIdentity(desired.identityName, { location: desired.location, tags: desired.marker })));
    if (fresh) changes.push({ step: 'identity', action: 'Created', message: `Created managed identity ${identity.id} (client ID ${identity.clientId})` });
    // A principal created a moment ago has no credentials and no assignments: nothing to read back.
    changes.push(...(await this.#ensureTrust(desired, identity, fresh ? [] : current.credentials, confirm)));
    const permissions = await this.#ensurePermissions(desired, identity, fresh ? [] : current.assignments, confirm);
    changes.push(...permissions.changes);

    const tenantId = identity.tenantId || desired.tenantId;
    const c = desired.credential;
    return {
      status: { identity: identity.clientId, audience: AUDIENCE.azure, azure: { clientId: identity.clientId, principalId: identity.principalId, tenantId, identityId: identity.id } },
      // Assignments outside the spec's subscriptions were removed above, so only those remain to look in.
      record: this.#record(desired, identity.id, desired.subscriptions),
      serviceAccountAnnotations: { [SERVICE_ACCOUNT_ANNOTATION.azureClientId]: identity.clientId, [SERVICE_ACCOUNT_ANNOTATION.azureTenantId]: tenantId },
      serviceAccountHint: POD_LABEL_HINT,
      messages: {
        identity: `Managed identity ${identity.id} exists (client ID ${identity.clientId}, principal ID ${identity.principalId})`,
        trust: `Federated credential ${c.name} on managed identity ${identity.name} trusts issuer ${c.issuer} for subject ${c.subject} with audience ${c.audiences.join(', ')} only`,
        permissions: permissions.granted.length
          ? `Managed identity ${identity.name} has ${permissions.granted.join('; ')}`
          : `Managed identity ${identity.name} has no role assignments (the spec lists none)`,
      },
      changes,
    };
  }

  /**
   * From the record alone: federated credentials, then role assignments in every recorded subscription, then the
   * identity, each confirmed by reading back; complete only once ARM no longer finds the identity. An identity we do
   * not own is left untouched.
   */
  async revoke(record: CloudRecord, owner: Owner): Promise<Revoked> {
    const r = record.azure;
    if (!r) return { complete: true, message: 'No Azure objects were recorded', changes: [] };
    const { msi, authorization } = this.#d;
    const identity = await msi.getIdentity(r.identityName);
    if (!identity) return { complete: true, message: `Managed identity ${r.identityName} is gone`, changes: [] };
    if (!isOwned(identity.tags, markerTags(owner))) {
      return { complete: true, message: `Managed identity ${identity.id} is not owned by this WorkloadIdentity and was left untouched`, changes: [] };
    }
    const changes: Change[] = [];
    const waiting = (what: string): Revoked => ({ complete: false, message: `Deleting managed identity ${identity.id}: waiting for Azure to confirm that ${what} are gone`, changes });

    const credentialsLeft = await this.#d.credentialWrites.run(lockKey(identity), async () => {
      for (const c of await msi.listCredentials(identity.name)) {
        await msi.deleteCredential(identity.name, c.name);
        changes.push({ step: 'trust', action: 'Deleted', message: `Deleted federated credential ${c.name} (issuer ${c.issuer}, subject ${c.subject}) from managed identity ${identity.name}` });
      }
      return (await msi.listCredentials(identity.name)).length;
    });
    if (credentialsLeft) return waiting('its federated credentials');

    const scopes = [...new Set([r.subscriptionId, ...(r.subscriptions ?? [])].map((sub) => `/subscriptions/${sub.toLowerCase()}`))];
    for (const a of await this.#assignmentsOf(scopes, identity.principalId, 'direct')) {
      await authorization.deleteRoleAssignment(a.scope, a.name);
      changes.push({ step: 'permissions', action: 'Deleted', message: `Deleted role assignment ${a.name} (role ${assignmentRoleGuid(a)}) at ${a.scope}` });
    }
    if ((await this.#assignmentsOf(scopes, identity.principalId, 'direct')).length) return waiting('its role assignments');

    await msi.deleteIdentity(identity.name);
    changes.push({ step: 'identity', action: 'Deleted', message: `Deleted managed identity ${identity.id}` });
    if (await msi.getIdentity(identity.name)) return waiting('the identity itself');
    return { complete: true, message: `Deleted managed identity ${identity.id}, its federated credential and its role assignments`, changes };
  }

  /**
   * Puts the marker on an identity created outside Keyless (its own tags and location stay), then reads what it
   * carries: from here on it is ours like any other, so foreign credentials and unlisted grants are removed.
   */
  async #adopt(desired: AksDesired, listed: ManagedIdentity): Promise<AksObserved> {
    // Taken over only as it is now, not as a list showed it.
    const identity = await this.#d.msi.getIdentity(listed.name);
    if (!identity || identity.principalId !== listed.principalId || !unmarked(identity.tags)) throw changedSinceListed('UserAssignedIdentities_Get', `Managed identity ${listed.id}`);
    const tagged = await asStep('identity', () => this.#d.msi.putIdentity(identity.name, { location: identity.location, tags: { ...identity.tags, ...desired.marker } }));
    const [credentials, assignments] = await Promise.all([this.#d.msi.listCredentials(tagged.name), this.#assignmentsOf(desired.listScopes, tagged.principalId, 'shared')]);
    return { identity: tagged, listed: false, owned: true, credentials, assignments };
  }

  /** An identity named in keyless.dev/adopt must already have a federated credential for this issuer and subject. */
  async #assertTrusts(desired: AksDesired, identity: ManagedIdentity): Promise<void> {
    const want = desired.credential;
    const credentials = await asStep('trust', () => this.#d.msi.listCredentials(identity.name));
    if (credentials.some((c) => c.issuer === want.issuer && c.subject === want.subject)) return;
    throw notAdoptable(
      'identity',
      `Managed identity ${identity.id}`,
      `none of its federated credentials trusts subject ${want.subject} from issuer ${want.issuer}`,
      'name the managed identity this ServiceAccount uses today, or remove the annotation to let Keyless create one of its own',
    );
  }

  /**
   * Our principal's assignments in every subscription we look at, from the account's shared lists or read directly
   * (a revoke confirms its deletes); the principal is checked here, never trusted to a filter.
   */
  async #assignmentsOf(scopes: string[], principalId: string, from: 'shared' | 'direct'): Promise<RoleAssignment[]> {
    const { authorization } = this.#d;
    const lists = await Promise.all(scopes.map((scope) => (from === 'shared' ? authorization.sharedRoleAssignments(scope) : authorization.listRoleAssignments(scope, principalId))));
    const seen = new Set<string>();
    return lists.flat().filter((a) => {
      if (a.principalId.toLowerCase() !== principalId.toLowerCase() || seen.has(a.name.toLowerCase())) return false;
      seen.add(a.name.toLowerCase());
      return true;
    });
  }

  /** Exactly one credential on our identity: ours. Any other one would let another subject in. */
  async #ensureTrust(desired: AksDesired, identity: ManagedIdentity, credentials: FederatedCredential[], confirm: () => Promise<void>): Promise<Change[]> {
    const want = desired.credential;
    // A credential that already says exactly what ours would (one made by hand on an adopted identity) is kept as
    // ours: replacing it would leave pods without a trusted credential until Entra honours the new one.
    const ours = credentials.find((c) => c.name.toLowerCase() === want.name.toLowerCase()) ?? credentials.find((c) => sameCredential(c, want));
    const foreign = credentials.filter((c) => c !== ours);
    if (ours && !foreign.length && sameCredential(ours, want)) return [];
    await confirm();
    return this.#d.credentialWrites.run(lockKey(identity), () =>
      asStep('trust', async () => {
        const changes: Change[] = [];
        for (const c of foreign) {
          await this.#d.msi.deleteCredential(identity.name, c.name);
          changes.push({ step: 'trust', action: 'CredentialRemoved', message: `Removed federated credential ${c.name} (issuer ${c.issuer}, subject ${c.subject}) from managed identity ${identity.name}: only ${want.subject} may use it` });
        }
        if (ours && sameCredential(ours, want)) return changes;
        if (!ours && credentials.length - foreign.length >= CREDENTIAL_LIMIT) throw this.#limitReached(identity);
        try {
          await this.#d.msi.putCredential(identity.name, want);
        } catch (err) {
          if (isCloudError(err) && err.code === CREDENTIAL_LIMIT_CODE) throw this.#limitReached(identity, err);
          throw err;
        }
        changes.push(
          ours
            ? { step: 'trust', action: 'TrustUpdated', message: `Updated federated credential ${want.name} on managed identity ${identity.name} to issuer ${want.issuer}, subject ${want.subject}` }
            : { step: 'trust', action: 'TrustCreated', message: `Created federated credential ${want.name} on managed identity ${identity.name} for issuer ${want.issuer}, subject ${want.subject}` },
        );
        return changes;
      }),
    );
  }

  async #ensurePermissions(desired: AksDesired, identity: ManagedIdentity, existing: RoleAssignment[], confirm: () => Promise<void>): Promise<{ changes: Change[]; granted: string[] }> {
    const changes: Change[] = [];
    const granted: string[] = [];
    const wanted: { scope: string; guid: string; role: string }[] = [];
    for (const g of desired.grants) {
      const guid = await this.#roleGuid(desired, g.role);
      // A role named twice (by name and by GUID) at one scope is one assignment.
      if (!wanted.some((w) => w.guid === guid && w.scope.toLowerCase() === g.scope.toLowerCase())) wanted.push({ scope: g.scope, guid, role: g.role });
    }
    const principal = identity.principalId;
    for (const w of wanted) {
      granted.push(`${w.role} on ${w.scope}`);
      if (existing.some((a) => grants(a, w.scope, w.guid, principal))) continue;
      await confirm();
      const name = roleAssignmentName(w.scope, w.guid, principal);
      const created = await asStep('permissions', () => this.#createAssignment(w.scope, name, w.guid, principal, identity));
      if (created) changes.push({ step: 'permissions', action: 'RoleAssigned', message: `Assigned ${w.role} to managed identity ${identity.name} at ${w.scope} (role assignment ${name})` });
    }
    for (const a of existing) {
      if (wanted.some((w) => grants(a, w.scope, w.guid, principal))) continue;
      await confirm();
      await asStep('permissions', () => this.#d.authorization.deleteRoleAssignment(a.scope, a.name));
      changes.push({ step: 'permissions', action: 'RoleUnassigned', message: `Removed role assignment ${a.name} (role ${assignmentRoleGuid(a)}) at ${a.scope} from managed identity ${identity.name}: it is not in the spec` });
    }
    return { changes, granted };
  }

  /** Creates the assignment; false when an equal one (same principal, role and scope) already existed and is adopted. */
  async #createAssignment(scope: string, name: string, guid: string, principalId: string, identity: ManagedIdentity): Promise<boolean> {
    try {
      await this.#d.authorization.createRoleAssignment(scope, name, { roleDefinitionId: roleDefinitionId(scope, guid), principalId });
      return true;
    } catch (err) {
      if (isCloudError(err, 'alreadyExists')) {
        // RoleAssignmentExists: an assignment with another name gives this exact grant. It is ours to keep only
        // if it really names our principal, this role and this scope.
        const around = await this.#d.authorization.listRoleAssignments(scope, principalId);
        if (around.some((a) => grants(a, scope, guid, principalId))) return false;
        throw new CloudError('retryable', err.code, err.operation, `${err.message} (not yet visible in the role assignment list)`, { cause: err });
      }
      if (isCloudError(err) && err.code === 'RoleAssignmentUpdateNotPermitted') {
        throw new ProviderError(
          'permissions',
          REASON.NotOwned,
          `Role assignment ${name} at ${scope} already exists for another principal, role or scope than managed identity ${identity.name}. Keyless never changes an assignment it does not own: delete that role assignment (az role assignment delete --ids ${scope}/providers/Microsoft.Authorization/roleAssignments/${name}).`,
          false,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** The role definition GUID for a spec role: given directly, or looked up by name once per account. */
  async #roleGuid(desired: AksDesired, role: string): Promise<string> {
    const direct = roleGuidOf(role);
    if (direct) return direct;
    const cached = this.#d.roleIds.get(role.toLowerCase());
    if (cached) return cached;
    const scope = `/subscriptions/${desired.subscriptionId}`;
    const found = await asStep('permissions', () => this.#d.authorization.findRoleDefinitions(scope, role));
    const guid = found[0];
    if (!guid) {
      throw new ProviderError('permissions', REASON.InvalidSpec, `Role "${role}" does not exist in subscription ${desired.subscriptionId}. Use a role name exactly as az role definition list --query "[].roleName" prints it, or the role definition GUID.`, false);
    }
    if (found.length > 1) {
      throw new ProviderError('permissions', REASON.InvalidSpec, `Role name "${role}" matches ${found.length} role definitions (${found.join(', ')}) in subscription ${desired.subscriptionId}; name the one you mean by its GUID.`, false);
    }
    this.#d.roleIds.set(role.toLowerCase(), guid);
    return guid;
  }

  #limitReached(identity: ManagedIdentity, cause?: unknown): ProviderError {
    return new ProviderError(
      'trust',
      REASON.QuotaExceeded,
      `Managed identity ${identity.name} already has ${CREDENTIAL_LIMIT} federated identity credentials, the Entra limit per identity (it cannot be raised). Keyless removes credentials it did not create on its own identities; if this persists, another writer keeps adding them: az identity federated-credential list --identity-name ${identity.name}.`,
      false,
      { cause },
    );
  }
}
