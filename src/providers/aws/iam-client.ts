// IamPort over @aws-sdk/client-iam. Endpoint and credentials come from the SDK's default chains
// (AWS_ENDPOINT_URL_IAM points it at an emulator); calls go through the account's rate limiter, deadline and metrics.
import {
  AttachRolePolicyCommand,
  CreateOpenIDConnectProviderCommand,
  CreateRoleCommand,
  DeleteOpenIDConnectProviderCommand,
  DeleteRoleCommand,
  DeleteRolePermissionsBoundaryCommand,
  DeleteRolePolicyCommand,
  DetachRolePolicyCommand,
  GetAccountAuthorizationDetailsCommand,
  GetOpenIDConnectProviderCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  type IAMClient,
  ListAttachedRolePoliciesCommand,
  ListInstanceProfilesForRoleCommand,
  ListOpenIDConnectProvidersCommand,
  ListRolePoliciesCommand,
  ListRolesCommand,
  PutRolePermissionsBoundaryCommand,
  PutRolePolicyCommand,
  RemoveRoleFromInstanceProfileCommand,
  TagOpenIDConnectProviderCommand,
  TagRoleCommand,
  UpdateAssumeRolePolicyCommand,
  UpdateRoleCommand,
  type Role,
  type RoleDetail,
} from '@aws-sdk/client-iam';
import type { CloudCall } from '../instrument.ts';
import { orUndefined } from '../cloud-error.ts';
import type { IamListedRole, IamPage, IamPort, IamRole, IamRoleDetail } from './iam-port.ts';
import { parseIamDocument } from './policy-document.ts';

function tagList(tags: Record<string, string>) {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

function tagMap(tags: { Key?: string | undefined; Value?: string | undefined }[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}

function names(role: Pick<RoleDetail, 'RoleName' | 'Arn' | 'Path'>) {
  return { name: role.RoleName ?? '', arn: role.Arn ?? '', path: role.Path ?? '/' };
}

/** What Role (GetRole) and RoleDetail (GetAccountAuthorizationDetails) both carry. */
function trustAndMarks(role: Pick<RoleDetail, 'AssumeRolePolicyDocument' | 'PermissionsBoundary' | 'Tags'>) {
  return {
    trustPolicy: role.AssumeRolePolicyDocument ? parseIamDocument(role.AssumeRolePolicyDocument) : undefined,
    ...(role.PermissionsBoundary?.PermissionsBoundaryArn ? { permissionsBoundaryArn: role.PermissionsBoundary.PermissionsBoundaryArn } : {}),
    tags: tagMap(role.Tags),
  };
}

/** What Role carries and RoleDetail does not. */
function session(role: Pick<Role, 'MaxSessionDuration' | 'Description'>) {
  return { maxSessionDuration: role.MaxSessionDuration ?? 3600, ...(role.Description ? { description: role.Description } : {}) };
}

function toRole(role: Role): IamRole {
  return { ...names(role), ...trustAndMarks(role), ...session(role) };
}

function toRoleDetail(role: RoleDetail): IamRoleDetail {
  return {
    ...names(role),
    ...trustAndMarks(role),
    inlinePolicies: Object.fromEntries((role.RolePolicyList ?? []).map((p) => [p.PolicyName ?? '', p.PolicyDocument ? parseIamDocument(p.PolicyDocument) : undefined])),
    managedPolicyArns: (role.AttachedManagedPolicies ?? []).map((p) => p.PolicyArn ?? ''),
  };
}

function toListedRole(role: Role): IamListedRole {
  return { ...names(role), ...session(role) };
}

/** One page's items and, when IAM says more remain, where the next starts. */
function pageOf<T>(items: T[], out: { IsTruncated?: boolean | undefined; Marker?: string | undefined }): IamPage<T> {
  return { items, ...(out.IsTruncated && out.Marker ? { marker: out.Marker } : {}) };
}

async function ignoreNotFound(p: Promise<unknown>): Promise<void> {
  await orUndefined(p);
}

/** Follows IsTruncated/Marker pagination of IAM list calls. */
async function paginate<T>(page: (marker: string | undefined) => Promise<{ items: T[]; marker?: string | undefined; truncated?: boolean | undefined }>): Promise<T[]> {
  const all: T[] = [];
  let marker: string | undefined;
  do {
    const result = await page(marker);
    all.push(...result.items);
    marker = result.truncated ? result.marker : undefined;
  } while (marker);
  return all;
}

export function createIamPort(client: IAMClient, call: CloudCall): IamPort {
  const send = client.send.bind(client);
  return {
    async getRole(name) {
      const out = await orUndefined(call('GetRole', (abortSignal) => send(new GetRoleCommand({ RoleName: name }), { abortSignal })));
      return out?.Role ? toRole(out.Role) : undefined;
    },
    async createRole(input) {
      const out = await call('CreateRole', (abortSignal) =>
        send(
          new CreateRoleCommand({
            RoleName: input.name,
            Path: input.path,
            AssumeRolePolicyDocument: input.trustPolicy,
            Description: input.description,
            MaxSessionDuration: input.maxSessionDuration,
            ...(input.permissionsBoundaryArn ? { PermissionsBoundary: input.permissionsBoundaryArn } : {}),
            Tags: tagList(input.tags),
          }),
          { abortSignal },
        ),
      );
      if (!out.Role) throw new Error('CreateRole returned no role');
      return toRole(out.Role);
    },
    async updateAssumeRolePolicy(roleName, policy) {
      await call('UpdateAssumeRolePolicy', (abortSignal) => send(new UpdateAssumeRolePolicyCommand({ RoleName: roleName, PolicyDocument: policy }), { abortSignal }));
    },
    async updateRole(roleName, update) {
      await call('UpdateRole', (abortSignal) =>
        send(new UpdateRoleCommand({ RoleName: roleName, MaxSessionDuration: update.maxSessionDuration, Description: update.description }), { abortSignal }),
      );
    },
    async putRolePermissionsBoundary(roleName, boundaryArn) {
      await call('PutRolePermissionsBoundary', (abortSignal) => send(new PutRolePermissionsBoundaryCommand({ RoleName: roleName, PermissionsBoundary: boundaryArn }), { abortSignal }));
    },
    async deleteRolePermissionsBoundary(roleName) {
      await ignoreNotFound(call('DeleteRolePermissionsBoundary', (abortSignal) => send(new DeleteRolePermissionsBoundaryCommand({ RoleName: roleName }), { abortSignal })));
    },
    async tagRole(roleName, tags) {
      await call('TagRole', (abortSignal) => send(new TagRoleCommand({ RoleName: roleName, Tags: tagList(tags) }), { abortSignal }));
    },
    async listRolePolicies(roleName) {
      return paginate(async (Marker) => {
        const out = await call('ListRolePolicies', (abortSignal) => send(new ListRolePoliciesCommand({ RoleName: roleName, Marker }), { abortSignal }));
        return { items: out.PolicyNames ?? [], marker: out.Marker, truncated: out.IsTruncated };
      });
    },
    async getRolePolicy(roleName, policyName) {
      const out = await orUndefined(call('GetRolePolicy', (abortSignal) => send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: policyName }), { abortSignal })));
      return out?.PolicyDocument ? parseIamDocument(out.PolicyDocument) : undefined;
    },
    async putRolePolicy(roleName, policyName, policy) {
      await call('PutRolePolicy', (abortSignal) => send(new PutRolePolicyCommand({ RoleName: roleName, PolicyName: policyName, PolicyDocument: policy }), { abortSignal }));
    },
    async deleteRolePolicy(roleName, policyName) {
      await ignoreNotFound(call('DeleteRolePolicy', (abortSignal) => send(new DeleteRolePolicyCommand({ RoleName: roleName, PolicyName: policyName }), { abortSignal })));
    },
    async listAttachedRolePolicies(roleName) {
      return paginate(async (Marker) => {
        const out = await call('ListAttachedRolePolicies', (abortSignal) => send(new ListAttachedRolePoliciesCommand({ RoleName: roleName, Marker }), { abortSignal }));
        return { items: (out.AttachedPolicies ?? []).map((p) => p.PolicyArn ?? ''), marker: out.Marker, truncated: out.IsTruncated };
      });
    },
    async attachRolePolicy(roleName, policyArn) {
      await call('AttachRolePolicy', (abortSignal) => send(new AttachRolePolicyCommand({ RoleName: roleName, PolicyArn: policyArn }), { abortSignal }));
    },
    async detachRolePolicy(roleName, policyArn) {
      await ignoreNotFound(call('DetachRolePolicy', (abortSignal) => send(new DetachRolePolicyCommand({ RoleName: roleName, PolicyArn: policyArn }), { abortSignal })));
    },
    async listInstanceProfilesForRole(roleName) {
      return paginate(async (Marker) => {
        const out = await call('ListInstanceProfilesForRole', (abortSignal) => send(new ListInstanceProfilesForRoleCommand({ RoleName: roleName, Marker }), { abortSignal }));
        return { items: (out.InstanceProfiles ?? []).map((p) => p.InstanceProfileName ?? ''), marker: out.Marker, truncated: out.IsTruncated };
      });
    },
    async removeRoleFromInstanceProfile(instanceProfileName, roleName) {
      await ignoreNotFound(
        call('RemoveRoleFromInstanceProfile', (abortSignal) => send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: instanceProfileName, RoleName: roleName }), { abortSignal })),
      );
    },
    async deleteRole(roleName) {
      await ignoreNotFound(call('DeleteRole', (abortSignal) => send(new DeleteRoleCommand({ RoleName: roleName }), { abortSignal })));
    },
    // https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccountAuthorizationDetails.html: every role of the
    // account (there is no path filter), MaxItems 1-1,000 with Marker/IsTruncated paging, and policy documents
    // URL-encoded (RFC 3986) as in GetRole. Its RoleDetail
    // (https://docs.aws.amazon.com/IAM/latest/APIReference/API_RoleDetail.html) carries the trust policy, tags,
    // permissions boundary, inline policies (RolePolicyList) and attached policies, but no MaxSessionDuration and
    // no Description: listRoles has those.
    async getAccountAuthorizationDetails({ maxItems, marker }) {
      const out = await call('GetAccountAuthorizationDetails', (abortSignal) =>
        send(new GetAccountAuthorizationDetailsCommand({ Filter: ['Role'], MaxItems: maxItems, Marker: marker }), { abortSignal }),
      );
      return pageOf((out.RoleDetailList ?? []).map(toRoleDetail), out);
    },
    // https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListRoles.html: roles by path prefix with
    // MaxSessionDuration and Description, but without PermissionsBoundary, RoleLastUsed and Tags.
    async listRoles(pathPrefix, { maxItems, marker }) {
      const out = await call('ListRoles', (abortSignal) => send(new ListRolesCommand({ PathPrefix: pathPrefix, MaxItems: maxItems, Marker: marker }), { abortSignal }));
      return pageOf((out.Roles ?? []).map(toListedRole), out);
    },
    async listOpenIDConnectProviders() {
      const out = await call('ListOpenIDConnectProviders', (abortSignal) => send(new ListOpenIDConnectProvidersCommand({}), { abortSignal }));
      return (out.OpenIDConnectProviderList ?? []).map((p) => p.Arn ?? '');
    },
    // https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetOpenIDConnectProvider.html: Url (without https://),
    // ClientIDList, ThumbprintList and Tags in one read; NoSuchEntity when there is none.
    async getOpenIDConnectProvider(arn) {
      const out = await orUndefined(call('GetOpenIDConnectProvider', (abortSignal) => send(new GetOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn }), { abortSignal })));
      if (!out) return undefined;
      return { arn, url: out.Url ?? '', clientIds: out.ClientIDList ?? [], thumbprints: out.ThumbprintList ?? [], tags: tagMap(out.Tags) };
    },
    // No ThumbprintList. The CreateOpenIDConnectProvider reference
    // (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateOpenIDConnectProvider.html) says it is optional:
    // "If it is not included, IAM will retrieve and use the top intermediate certificate authority (CA) thumbprint of
    // the OpenID Connect identity provider server certificate", and that AWS verifies the JWKS endpoint's TLS
    // certificate against its own library of trusted root CAs, using thumbprints only for a certificate none of them
    // signed. A thumbprint computed from where the operator runs (behind a proxy, say) could only be wrong.
    async createOpenIDConnectProvider(input) {
      const out = await call('CreateOpenIDConnectProvider', (abortSignal) =>
        send(new CreateOpenIDConnectProviderCommand({ Url: input.url, ClientIDList: input.clientIds, Tags: tagList(input.tags) }), { abortSignal }),
      );
      if (!out.OpenIDConnectProviderArn) throw new Error('CreateOpenIDConnectProvider returned no ARN');
      return out.OpenIDConnectProviderArn;
    },
    async tagOpenIDConnectProvider(arn, tags) {
      await call('TagOpenIDConnectProvider', (abortSignal) => send(new TagOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn, Tags: tagList(tags) }), { abortSignal }));
    },
    async deleteOpenIDConnectProvider(arn) {
      await ignoreNotFound(call('DeleteOpenIDConnectProvider', (abortSignal) => send(new DeleteOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn }), { abortSignal })));
    },
  };
}
