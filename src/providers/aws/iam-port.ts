// The narrow slice of IAM that Keyless uses. Implemented over @aws-sdk/client-iam by iam-client.ts and by an
// in-memory fake for unit tests. Methods throw CloudError; reads of a missing object return undefined and
// deletes of a missing object succeed.

export interface IamRole {
  name: string;
  arn: string;
  path: string;
  /** Parsed (URL-decoded) trust policy. */
  trustPolicy: unknown;
  maxSessionDuration: number;
  description?: string;
  permissionsBoundaryArn?: string;
  tags: Record<string, string>;
}

/**
 * A role as GetAccountAuthorizationDetails describes it (the RoleDetail type): everything on the role and its grants
 * except MaxSessionDuration and Description, which RoleDetail does not carry.
 */
export interface IamRoleDetail {
  name: string;
  arn: string;
  path: string;
  /** Parsed (URL-decoded) trust policy. */
  trustPolicy: unknown;
  permissionsBoundaryArn?: string;
  tags: Record<string, string>;
  /** Inline policies by name, parsed. */
  inlinePolicies: Record<string, unknown>;
  managedPolicyArns: string[];
}

/** A role as ListRoles describes it: no tags and no permissions boundary (ListRoles API reference). */
export type IamListedRole = Pick<IamRole, 'name' | 'arn' | 'path' | 'maxSessionDuration' | 'description'>;

/** One page of an IAM list: `marker` (where the next page starts) is absent on the last page. */
export interface IamPage<T> {
  items: T[];
  marker?: string;
}

/** Which page to ask for: IAM accepts 1 to 1,000 items a page and may answer fewer while more remain. */
export interface IamPageRequest {
  maxItems: number;
  marker?: string;
}

export interface CreateRoleInput {
  name: string;
  path: string;
  trustPolicy: string;
  description: string;
  maxSessionDuration: number;
  permissionsBoundaryArn?: string;
  tags: Record<string, string>;
}

/** An IAM OIDC identity provider as GetOpenIDConnectProvider describes it. */
export interface IamOidcProvider {
  arn: string;
  /** The issuer as IAM stores it: without https://. */
  url: string;
  /** The audiences it accepts (IRSA needs sts.amazonaws.com). */
  clientIds: string[];
  thumbprints: string[];
  tags: Record<string, string>;
}

export interface CreateOidcProviderInput {
  /** The issuer URL, https:// included. */
  url: string;
  clientIds: string[];
  tags: Record<string, string>;
}

export interface IamPort {
  getRole(name: string): Promise<IamRole | undefined>;
  createRole(input: CreateRoleInput): Promise<IamRole>;
  updateAssumeRolePolicy(roleName: string, policy: string): Promise<void>;
  updateRole(roleName: string, update: { maxSessionDuration: number; description: string }): Promise<void>;
  putRolePermissionsBoundary(roleName: string, boundaryArn: string): Promise<void>;
  deleteRolePermissionsBoundary(roleName: string): Promise<void>;
  tagRole(roleName: string, tags: Record<string, string>): Promise<void>;
  listRolePolicies(roleName: string): Promise<string[]>;
  /** The parsed inline policy document, or undefined when the role has no policy of that name. */
  getRolePolicy(roleName: string, policyName: string): Promise<unknown>;
  putRolePolicy(roleName: string, policyName: string, policy: string): Promise<void>;
  deleteRolePolicy(roleName: string, policyName: string): Promise<void>;
  listAttachedRolePolicies(roleName: string): Promise<string[]>;
  attachRolePolicy(roleName: string, policyArn: string): Promise<void>;
  detachRolePolicy(roleName: string, policyArn: string): Promise<void>;
  listInstanceProfilesForRole(roleName: string): Promise<string[]>;
  removeRoleFromInstanceProfile(instanceProfileName: string, roleName: string): Promise<void>;
  deleteRole(roleName: string): Promise<void>;
  /** One page of every role in the account with its grants (GetAccountAuthorizationDetails, Filter=Role). */
  getAccountAuthorizationDetails(page: IamPageRequest): Promise<IamPage<IamRoleDetail>>;
  /** One page of the roles whose path starts with `pathPrefix`. */
  listRoles(pathPrefix: string, page: IamPageRequest): Promise<IamPage<IamListedRole>>;
  /** ARNs of the account's IAM OIDC identity providers. */
  listOpenIDConnectProviders(): Promise<string[]>;
  getOpenIDConnectProvider(arn: string): Promise<IamOidcProvider | undefined>;
  /** Creates the provider and returns its ARN. */
  createOpenIDConnectProvider(input: CreateOidcProviderInput): Promise<string>;
  tagOpenIDConnectProvider(arn: string, tags: Record<string, string>): Promise<void>;
  deleteOpenIDConnectProvider(arn: string): Promise<void>;
}
