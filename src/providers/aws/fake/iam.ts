// An in-memory IamPort for unit tests: IAM's observable rules (case-insensitive names, delete conflicts while
// policies are attached, not-found semantics, MaxItems/Marker paging) without a network. Integration tests use moto
// instead.
import { CloudError } from '../../cloud-error.ts';
import type { CreateOidcProviderInput, CreateRoleInput, IamListedRole, IamOidcProvider, IamPage, IamPageRequest, IamPort, IamRole, IamRoleDetail } from '../iam-port.ts';

interface StoredRole extends IamRole {
  inline: Map<string, unknown>;
  attached: Set<string>;
  profiles: Set<string>;
}

/** The role as GetRole answers it: an empty description is absent, as in the SDK port. */
function asRole(role: StoredRole): IamRole {
  return {
    name: role.name,
    arn: role.arn,
    path: role.path,
    trustPolicy: structuredClone(role.trustPolicy),
    maxSessionDuration: role.maxSessionDuration,
    ...(role.description ? { description: role.description } : {}),
    ...(role.permissionsBoundaryArn ? { permissionsBoundaryArn: role.permissionsBoundaryArn } : {}),
    tags: { ...role.tags },
  };
}

export class FakeIam implements IamPort {
  readonly roles = new Map<string, StoredRole>();
  /** The account's OIDC provider ARNs; one pushed here without `seedOidcProvider` accepts sts.amazonaws.com, untagged. */
  readonly oidcProviders: string[] = [];
  readonly #oidcDetails = new Map<string, IamOidcProvider>();
  /** Every mutating call, in order, as `Operation:roleName`. */
  readonly writes: string[] = [];
  readonly accountId: string;
  /** IAM may answer fewer than MaxItems while more remain: pages are cut to this size (only IsTruncated tells). */
  pageLimit = Number.POSITIVE_INFINITY;

  constructor(accountId = '123456789012') {
    this.accountId = accountId;
  }

  #role(name: string, operation: string): StoredRole {
    const role = this.roles.get(name.toLowerCase());
    if (!role) throw new CloudError('notFound', 'NoSuchEntity', operation, `The role with name ${name} cannot be found.`);
    return role;
  }

  #write(operation: string, name: string): void {
    this.writes.push(`${operation}:${name}`);
  }

  async getRole(name: string): Promise<IamRole | undefined> {
    const role = this.roles.get(name.toLowerCase());
    return role ? asRole(role) : undefined;
  }

  /** Test helper: a role created outside Keyless (or by Keyless for another object). */
  seedRole(input: CreateRoleInput): void {
    this.roles.set(input.name.toLowerCase(), this.#toStored(input));
  }

  #toStored(input: CreateRoleInput): StoredRole {
    return {
      name: input.name,
      path: input.path,
      arn: `arn:aws:iam::${this.accountId}:role${input.path}${input.name}`,
      trustPolicy: JSON.parse(input.trustPolicy) as unknown,
      maxSessionDuration: input.maxSessionDuration,
      description: input.description,
      ...(input.permissionsBoundaryArn ? { permissionsBoundaryArn: input.permissionsBoundaryArn } : {}),
      tags: { ...input.tags },
      inline: new Map(),
      attached: new Set(),
      profiles: new Set(),
    };
  }

  async createRole(input: CreateRoleInput): Promise<IamRole> {
    if (this.roles.has(input.name.toLowerCase())) {
      throw new CloudError('alreadyExists', 'EntityAlreadyExists', 'CreateRole', `Role with name ${input.name} already exists.`);
    }
    this.#write('CreateRole', input.name);
    const role = this.#toStored(input);
    this.roles.set(input.name.toLowerCase(), role);
    return asRole(role);
  }

  async updateAssumeRolePolicy(roleName: string, policy: string): Promise<void> {
    this.#role(roleName, 'UpdateAssumeRolePolicy').trustPolicy = JSON.parse(policy) as unknown;
    this.#write('UpdateAssumeRolePolicy', roleName);
  }

  async updateRole(roleName: string, update: { maxSessionDuration: number; description: string }): Promise<void> {
    Object.assign(this.#role(roleName, 'UpdateRole'), update);
    this.#write('UpdateRole', roleName);
  }

  async putRolePermissionsBoundary(roleName: string, boundaryArn: string): Promise<void> {
    this.#role(roleName, 'PutRolePermissionsBoundary').permissionsBoundaryArn = boundaryArn;
    this.#write('PutRolePermissionsBoundary', roleName);
  }

  async deleteRolePermissionsBoundary(roleName: string): Promise<void> {
    delete this.#role(roleName, 'DeleteRolePermissionsBoundary').permissionsBoundaryArn;
    this.#write('DeleteRolePermissionsBoundary', roleName);
  }

  async tagRole(roleName: string, tags: Record<string, string>): Promise<void> {
    Object.assign(this.#role(roleName, 'TagRole').tags, tags);
    this.#write('TagRole', roleName);
  }

  async listRolePolicies(roleName: string): Promise<string[]> {
    return [...this.#role(roleName, 'ListRolePolicies').inline.keys()];
  }

  async getRolePolicy(roleName: string, policyName: string): Promise<unknown> {
    return this.roles.get(roleName.toLowerCase())?.inline.get(policyName);
  }

  async putRolePolicy(roleName: string, policyName: string, policy: string): Promise<void> {
    this.#role(roleName, 'PutRolePolicy').inline.set(policyName, JSON.parse(policy));
    this.#write('PutRolePolicy', roleName);
  }

  async deleteRolePolicy(roleName: string, policyName: string): Promise<void> {
    this.roles.get(roleName.toLowerCase())?.inline.delete(policyName);
    this.#write('DeleteRolePolicy', roleName);
  }

  async listAttachedRolePolicies(roleName: string): Promise<string[]> {
    return [...this.#role(roleName, 'ListAttachedRolePolicies').attached];
  }

  async attachRolePolicy(roleName: string, policyArn: string): Promise<void> {
    this.#role(roleName, 'AttachRolePolicy').attached.add(policyArn);
    this.#write('AttachRolePolicy', roleName);
  }

  async detachRolePolicy(roleName: string, policyArn: string): Promise<void> {
    this.roles.get(roleName.toLowerCase())?.attached.delete(policyArn);
    this.#write('DetachRolePolicy', roleName);
  }

  async listInstanceProfilesForRole(roleName: string): Promise<string[]> {
    return [...this.#role(roleName, 'ListInstanceProfilesForRole').profiles];
  }

  async removeRoleFromInstanceProfile(instanceProfileName: string, roleName: string): Promise<void> {
    this.roles.get(roleName.toLowerCase())?.profiles.delete(instanceProfileName);
    this.#write('RemoveRoleFromInstanceProfile', roleName);
  }

  async deleteRole(roleName: string): Promise<void> {
    const role = this.roles.get(roleName.toLowerCase());
    if (!role) return;
    if (role.inline.size || role.attached.size || role.profiles.size) {
      throw new CloudError('retryable', 'DeleteConflict', 'DeleteRole', 'Cannot delete entity, must delete policies first.');
    }
    this.roles.delete(roleName.toLowerCase());
    this.#write('DeleteRole', roleName);
  }

  /**
   * One page of `items` (sorted by name). The marker is opaque to callers and names the last role returned, so a
   * role created or deleted between pages moves no other role across a page boundary.
   */
  #page<T extends { name: string }>(operation: string, items: T[], { maxItems, marker }: IamPageRequest): IamPage<T> {
    if (!Number.isInteger(maxItems) || maxItems < 1 || maxItems > 1000) {
      throw new CloudError('terminal', 'ValidationError', operation, `1 validation error detected: Value '${maxItems}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000`);
    }
    const after = marker === undefined ? undefined : Buffer.from(marker, 'base64url').toString();
    const rest = items
      .sort((a, b) => (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1))
      .filter((item) => after === undefined || item.name.toLowerCase() > after);
    const page = rest.slice(0, Math.min(maxItems, this.pageLimit));
    const last = page.at(-1);
    return { items: page, ...(rest.length > page.length && last ? { marker: Buffer.from(last.name.toLowerCase()).toString('base64url') } : {}) };
  }

  async getAccountAuthorizationDetails(request: IamPageRequest): Promise<IamPage<IamRoleDetail>> {
    const roles = [...this.roles.values()].map((role) => ({
      name: role.name,
      arn: role.arn,
      path: role.path,
      trustPolicy: structuredClone(role.trustPolicy),
      ...(role.permissionsBoundaryArn ? { permissionsBoundaryArn: role.permissionsBoundaryArn } : {}),
      tags: { ...role.tags },
      inlinePolicies: Object.fromEntries([...role.inline].map(([name, doc]) => [name, structuredClone(doc)])),
      managedPolicyArns: [...role.attached],
    }));
    return this.#page('GetAccountAuthorizationDetails', roles, request);
  }

  async listRoles(pathPrefix: string, request: IamPageRequest): Promise<IamPage<IamListedRole>> {
    const roles = [...this.roles.values()]
      .filter((role) => role.path.startsWith(pathPrefix))
      .map((role) => ({ name: role.name, arn: role.arn, path: role.path, maxSessionDuration: role.maxSessionDuration, ...(role.description ? { description: role.description } : {}) }));
    return this.#page('ListRoles', roles, request);
  }

  async listOpenIDConnectProviders(): Promise<string[]> {
    return [...this.oidcProviders];
  }

  /** Test helper: an OIDC provider created outside Keyless (or by another CloudAccount). */
  seedOidcProvider(provider: Omit<IamOidcProvider, 'arn' | 'thumbprints'> & { thumbprints?: string[] }): string {
    const arn = `arn:aws:iam::${this.accountId}:oidc-provider/${provider.url.replace(/^https:\/\//, '')}`;
    this.oidcProviders.push(arn);
    this.#oidcDetails.set(arn, { thumbprints: [], ...structuredClone(provider), arn, url: provider.url.replace(/^https:\/\//, '') });
    return arn;
  }

  async getOpenIDConnectProvider(arn: string): Promise<IamOidcProvider | undefined> {
    if (!this.oidcProviders.includes(arn)) return undefined;
    const detail = this.#oidcDetails.get(arn) ?? { arn, url: arn.replace(/^arn:[^:]+:iam::\d+:oidc-provider\//, ''), clientIds: ['sts.amazonaws.com'], thumbprints: [], tags: {} };
    return structuredClone(detail);
  }

  async createOpenIDConnectProvider(input: CreateOidcProviderInput): Promise<string> {
    const url = input.url.replace(/^https:\/\//, '');
    const arn = `arn:aws:iam::${this.accountId}:oidc-provider/${url}`;
    if (this.oidcProviders.includes(arn)) throw new CloudError('alreadyExists', 'EntityAlreadyExists', 'CreateOpenIDConnectProvider', `Provider with url ${input.url} already exists.`);
    this.#write('CreateOpenIDConnectProvider', arn);
    this.oidcProviders.push(arn);
    this.#oidcDetails.set(arn, { arn, url, clientIds: [...input.clientIds], thumbprints: [], tags: { ...input.tags } });
    return arn;
  }

  async tagOpenIDConnectProvider(arn: string, tags: Record<string, string>): Promise<void> {
    const detail = await this.getOpenIDConnectProvider(arn);
    if (!detail) throw new CloudError('notFound', 'NoSuchEntity', 'TagOpenIDConnectProvider', `OpenIDConnect Provider not found for arn ${arn}`);
    this.#write('TagOpenIDConnectProvider', arn);
    this.#oidcDetails.set(arn, { ...detail, tags: { ...detail.tags, ...tags } });
  }

  async deleteOpenIDConnectProvider(arn: string): Promise<void> {
    const i = this.oidcProviders.indexOf(arn);
    if (i < 0) return;
    this.#write('DeleteOpenIDConnectProvider', arn);
    this.oidcProviders.splice(i, 1);
    this.#oidcDetails.delete(arn);
  }
}
