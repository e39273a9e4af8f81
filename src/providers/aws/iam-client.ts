// IamPort over @aws-sdk/client-iam. Endpoint and credentials come from the SDK's default chains
// (AWS_ENDPOINT_URL_IAM points it at an emulator); calls go through the account's rate limiter and metrics.
import {
  AttachRolePolicyCommand,
  CreateRoleCommand,
  DeleteRoleCommand,
  DeleteRolePermissionsBoundaryCommand,
  DeleteRolePolicyCommand,
  DetachRolePolicyCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  type IAMClient,
  ListAttachedRolePoliciesCommand,
  ListInstanceProfilesForRoleCommand,
  ListOpenIDConnectProvidersCommand,
  ListRolePoliciesCommand,
  PutRolePermissionsBoundaryCommand,
  PutRolePolicyCommand,
  RemoveRoleFromInstanceProfileCommand,
  TagRoleCommand,
  UpdateAssumeRolePolicyCommand,
  UpdateRoleCommand,
  type Role,
} from '@aws-sdk/client-iam';
import type { CloudCall } from '../instrument.ts';
import { orUndefined } from '../cloud-error.ts';
import type { IamPort, IamRole } from './iam-port.ts';
import { parseIamDocument } from './policy-document.ts';

function toRole(role: Role): IamRole {
  return {
    name: role.RoleName ?? '',
    arn: role.Arn ?? '',
    path: role.Path ?? '/',
    trustPolicy: role.AssumeRolePolicyDocument ? parseIamDocument(role.AssumeRolePolicyDocument) : undefined,
    maxSessionDuration: role.MaxSessionDuration ?? 3600,
    ...(role.Description ? { description: role.Description } : {}),
    ...(role.PermissionsBoundary?.PermissionsBoundaryArn ? { permissionsBoundaryArn: role.PermissionsBoundary.PermissionsBoundaryArn } : {}),
    tags: Object.fromEntries((role.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])),
  };
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
      const out = await orUndefined(call('GetRole', () => send(new GetRoleCommand({ RoleName: name }))));
      return out?.Role ? toRole(out.Role) : undefined;
    },
    async createRole(input) {
      const out = await call('CreateRole', () =>
        send(
          new CreateRoleCommand({
            RoleName: input.name,
            Path: input.path,
            AssumeRolePolicyDocument: input.trustPolicy,
            Description: input.description,
            MaxSessionDuration: input.maxSessionDuration,
            ...(input.permissionsBoundaryArn ? { PermissionsBoundary: input.permissionsBoundaryArn } : {}),
            Tags: Object.entries(input.tags).map(([Key, Value]) => ({ Key, Value })),
          }),
        ),
      );
      if (!out.Role) throw new Error('CreateRole returned no role');
      return toRole(out.Role);
    },
    async updateAssumeRolePolicy(roleName, policy) {
      await call('UpdateAssumeRolePolicy', () => send(new UpdateAssumeRolePolicyCommand({ RoleName: roleName, PolicyDocument: policy })));
    },
    async updateRole(roleName, update) {
      await call('UpdateRole', () =>
        send(new UpdateRoleCommand({ RoleName: roleName, MaxSessionDuration: update.maxSessionDuration, Description: update.description })),
      );
    },
    async putRolePermissionsBoundary(roleName, boundaryArn) {
      await call('PutRolePermissionsBoundary', () => send(new PutRolePermissionsBoundaryCommand({ RoleName: roleName, PermissionsBoundary: boundaryArn })));
    },
    async deleteRolePermissionsBoundary(roleName) {
      await ignoreNotFound(call('DeleteRolePermissionsBoundary', () => send(new DeleteRolePermissionsBoundaryCommand({ RoleName: roleName }))));
    },
    async tagRole(roleName, tags) {
      await call('TagRole', () => send(new TagRoleCommand({ RoleName: roleName, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) })));
    },
    async listRolePolicies(roleName) {
      return paginate(async (Marker) => {
        const out = await call('ListRolePolicies', () => send(new ListRolePoliciesCommand({ RoleName: roleName, Marker })));
        return { items: out.PolicyNames ?? [], marker: out.Marker, truncated: out.IsTruncated };
      });
    },
    async getRolePolicy(roleName, policyName) {
      const out = await orUndefined(call('GetRolePolicy', () => send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: policyName }))));
      return out?.PolicyDocument ? parseIamDocument(out.PolicyDocument) : undefined;
    },
    async putRolePolicy(roleName, policyName, policy) {
      await call('PutRolePolicy', () => send(new PutRolePolicyCommand({ RoleName: roleName, PolicyName: policyName, PolicyDocument: policy })));
    },
    async deleteRolePolicy(roleName, policyName) {
      await ignoreNotFound(call('DeleteRolePolicy', () => send(new DeleteRolePolicyCommand({ RoleName: roleName, PolicyName: policyName }))));
    },
    async listAttachedRolePolicies(roleName) {
      return paginate(async (Marker) => {
        const out = await call('ListAttachedRolePolicies', () => send(new ListAttachedRolePoliciesCommand({ RoleName: roleName, Marker })));
        return { items: (out.AttachedPolicies ?? []).map((p) => p.PolicyArn ?? ''), marker: out.Marker, truncated: out.IsTruncated };
      });
    },
    async attachRolePolicy(roleName, policyArn) {
      await call('AttachRolePolicy', () => send(new AttachRolePolicyCommand({ RoleName: roleName, PolicyArn: policyArn })));
    },
    async detachRolePolicy(roleName, policyArn) {
      await ignoreNotFound(call('DetachRolePolicy', () => send(new DetachRolePolicyCommand({ RoleName: roleName, PolicyArn: policyArn }))));
    },
    async listInstanceProfilesForRole(roleName) {
      return paginate(async (Marker) => {
        const out = await call('ListInstanceProfilesForRole', () => send(new ListInstanceProfilesForRoleCommand({ RoleName: roleName, Marker })));
        return { items: (out.InstanceProfiles ?? []).map((p) => p.InstanceProfileName ?? ''), marker: out.Marker, truncated: out.IsTruncated };
      });
    },
    async removeRoleFromInstanceProfile(instanceProfileName, roleName) {
      await ignoreNotFound(
        call('RemoveRoleFromInstanceProfile', () => send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: instanceProfileName, RoleName: roleName }))),
      );
    },
    async deleteRole(roleName) {
      await ignoreNotFound(call('DeleteRole', () => send(new DeleteRoleCommand({ RoleName: roleName }))));
    },
    async listOpenIDConnectProviders() {
      const out = await call('ListOpenIDConnectProviders', () => send(new ListOpenIDConnectProvidersCommand({})));
      return (out.OpenIDConnectProviderList ?? []).map((p) => p.Arn ?? '');
    },
  };
}
