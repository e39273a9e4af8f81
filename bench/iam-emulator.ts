// A minimal in-memory IAM for the scale scenario only: moto answers ~400 calls/s with a few thousand roles and
// slows to ~170 calls/s near 10,000 (docs/benchmarks.md has the measurement), which would make the benchmark time
// moto instead of the operator. This serves the real @aws-sdk/client-iam wire format (cloud-apis.md §1): awsQuery
// form bodies, `<{Op}Response><{Op}Result>` XML, URL-encoded policy documents, ErrorResponse codes and statuses,
// case-insensitive role names, DeleteConflict while a role still has policies, and MaxItems/Marker paging of the
// account snapshot's reads (GetAccountAuthorizationDetails, ListRoles). Only the operations the operator calls are
// implemented; anything else is answered 400 InvalidAction.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { StatusError } from '../test/emulators/http.ts';

interface Role {
  name: string;
  path: string;
  id: string;
  createdAt: string;
  trust: string;
  description: string;
  maxSessionDuration: number;
  boundary: string | undefined;
  tags: Map<string, string>;
  inline: Map<string, string>;
  attached: Set<string>;
}

export interface IamEmulator {
  endpoint: string;
  /** Roles whose tags include every entry of `tags`. */
  countRoles(tags: Record<string, string>): number;
  stop(): Promise<void>;
}

class IamError extends StatusError {}

const NS = 'https://iam.amazonaws.com/doc/2010-05-08/';

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function tagsOf(params: URLSearchParams): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 1; params.has(`Tags.member.${i}.Key`); i++) out.push([params.get(`Tags.member.${i}.Key`) ?? '', params.get(`Tags.member.${i}.Value`) ?? '']);
  return out;
}

export async function startIamEmulator(opts: { accountId: string; oidcProviderArns: string[] }): Promise<IamEmulator> {
  /** Keyed by the lower-cased name: IAM role names are unique case-insensitively. */
  const roles = new Map<string, Role>();

  const required = (params: URLSearchParams, name: string): string => {
    const value = params.get(name);
    if (!value) throw new IamError(400, 'ValidationError', `1 validation error detected: Value null at '${name}' failed to satisfy constraint: Member must not be null`);
    return value;
  };
  const roleOf = (params: URLSearchParams): Role => {
    const name = required(params, 'RoleName');
    const role = roles.get(name.toLowerCase());
    if (!role) throw new IamError(404, 'NoSuchEntity', `The role with name ${name} cannot be found.`);
    return role;
  };
  const arnOf = (role: Role) => `arn:aws:iam::${opts.accountId}:role${role.path}${role.name}`;
  const element = (tag: string, value: string | undefined) => (value ? `<${tag}>${xml(value)}</${tag}>` : '');
  const members = (tag: string, items: string[]) => `<${tag}>${items.map((item) => `<member>${item}</member>`).join('')}</${tag}>`;
  /** What Role (GetRole, ListRoles) and RoleDetail (GetAccountAuthorizationDetails) open with. */
  const roleHead = (role: Role) =>
    `<Path>${xml(role.path)}</Path><RoleName>${xml(role.name)}</RoleName><RoleId>${role.id}</RoleId><Arn>${xml(arnOf(role))}</Arn>` +
    `<CreateDate>${role.createdAt}</CreateDate><AssumeRolePolicyDocument>${encodeURIComponent(role.trust)}</AssumeRolePolicyDocument>`;
  const session = (role: Role) => element('Description', role.description) + `<MaxSessionDuration>${role.maxSessionDuration}</MaxSessionDuration>`;
  const boundaryXml = (role: Role) =>
    role.boundary ? `<PermissionsBoundary><PermissionsBoundaryType>PermissionsBoundaryPolicy</PermissionsBoundaryType>${element('PermissionsBoundaryArn', role.boundary)}</PermissionsBoundary>` : '';
  const tagsXml = (role: Role) => members('Tags', [...role.tags].map(([k, v]) => `${element('Key', k)}<Value>${xml(v)}</Value>`));
  const roleXml = (role: Role) => `<Role>${roleHead(role)}${session(role)}${boundaryXml(role)}${tagsXml(role)}</Role>`;
  /** RoleDetail has no Description or MaxSessionDuration (IAM API reference). */
  const roleDetailXml = (role: Role) =>
    roleHead(role) +
    '<InstanceProfileList/>' +
    members('RolePolicyList', [...role.inline].map(([name, doc]) => `${element('PolicyName', name)}<PolicyDocument>${encodeURIComponent(doc)}</PolicyDocument>`)) +
    members('AttachedManagedPolicies', [...role.attached].map((arn) => `${element('PolicyName', arn.slice(arn.lastIndexOf('/') + 1))}${element('PolicyArn', arn)}`)) +
    boundaryXml(role) +
    tagsXml(role) +
    '<RoleLastUsed/>';
  /**
   * One page of roles, in name order, after the opaque Marker (the last name of the page before): MaxItems 1-1,000,
   * 100 when not given, as IAM's. Returns the page and its closing IsTruncated/Marker elements.
   */
  const page = (params: URLSearchParams, candidates: Role[]) => {
    const maxItems = Number(params.get('MaxItems') ?? 100);
    if (!Number.isInteger(maxItems) || maxItems < 1 || maxItems > 1000) {
      throw new IamError(400, 'ValidationError', `1 validation error detected: Value '${params.get('MaxItems') ?? ''}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000`);
    }
    const marker = params.get('Marker');
    const after = marker ? Buffer.from(marker, 'base64url').toString() : '';
    const rest = candidates.map((role) => [role.name.toLowerCase(), role] as const).filter(([key]) => key > after).sort(([a], [b]) => (a < b ? -1 : 1));
    const items = rest.slice(0, maxItems);
    const last = items.at(-1)?.[0];
    const truncated = rest.length > items.length && last !== undefined;
    return { roles: items.map(([, role]) => role), end: `<IsTruncated>${truncated}</IsTruncated>${truncated ? `<Marker>${Buffer.from(last).toString('base64url')}</Marker>` : ''}` };
  };
  const list = (tag: string, items: string[]) => `<${tag}>${items.join('')}</${tag}><IsTruncated>false</IsTruncated>`;

  /** The Result element's content, or undefined for operations that answer without one. */
  const operations: Record<string, (p: URLSearchParams) => string | undefined> = {
    CreateRole(p) {
      const name = required(p, 'RoleName');
      if (roles.has(name.toLowerCase())) throw new IamError(409, 'EntityAlreadyExists', `Role with name ${name} already exists.`);
      const trust = required(p, 'AssumeRolePolicyDocument');
      try {
        JSON.parse(trust);
      } catch {
        throw new IamError(400, 'MalformedPolicyDocument', 'This policy contains invalid Json');
      }
      const role: Role = {
        name,
        path: p.get('Path') ?? '/',
        id: `AROA${randomBytes(8).toString('hex').toUpperCase()}`,
        createdAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        trust,
        description: p.get('Description') ?? '',
        maxSessionDuration: Number(p.get('MaxSessionDuration') ?? 3600),
        boundary: p.get('PermissionsBoundary') ?? undefined,
        tags: new Map(tagsOf(p)),
        inline: new Map(),
        attached: new Set(),
      };
      roles.set(name.toLowerCase(), role);
      return roleXml(role);
    },
    GetRole: (p) => roleXml(roleOf(p)),
    UpdateAssumeRolePolicy(p) {
      roleOf(p).trust = required(p, 'PolicyDocument');
      return undefined;
    },
    UpdateRole(p) {
      const role = roleOf(p);
      if (p.has('MaxSessionDuration')) role.maxSessionDuration = Number(p.get('MaxSessionDuration'));
      if (p.has('Description')) role.description = p.get('Description') ?? '';
      return '';
    },
    PutRolePermissionsBoundary(p) {
      roleOf(p).boundary = required(p, 'PermissionsBoundary');
      return undefined;
    },
    DeleteRolePermissionsBoundary(p) {
      roleOf(p).boundary = undefined;
      return undefined;
    },
    TagRole(p) {
      const role = roleOf(p);
      for (const [k, v] of tagsOf(p)) role.tags.set(k, v);
      return undefined;
    },
    ListRolePolicies: (p) => list('PolicyNames', [...roleOf(p).inline.keys()].map((n) => `<member>${xml(n)}</member>`)),
    GetRolePolicy(p) {
      const role = roleOf(p);
      const name = required(p, 'PolicyName');
      const doc = role.inline.get(name);
      if (doc === undefined) throw new IamError(404, 'NoSuchEntity', `The role policy with name ${name} cannot be found.`);
      return `<RoleName>${xml(role.name)}</RoleName><PolicyName>${xml(name)}</PolicyName><PolicyDocument>${encodeURIComponent(doc)}</PolicyDocument>`;
    },
    PutRolePolicy(p) {
      roleOf(p).inline.set(required(p, 'PolicyName'), required(p, 'PolicyDocument'));
      return undefined;
    },
    DeleteRolePolicy(p) {
      const role = roleOf(p);
      const name = required(p, 'PolicyName');
      if (!role.inline.delete(name)) throw new IamError(404, 'NoSuchEntity', `The role policy with name ${name} cannot be found.`);
      return undefined;
    },
    ListAttachedRolePolicies: (p) =>
      list('AttachedPolicies', [...roleOf(p).attached].map((arn) => `<member><PolicyName>${xml(arn.slice(arn.lastIndexOf('/') + 1))}</PolicyName><PolicyArn>${xml(arn)}</PolicyArn></member>`)),
    AttachRolePolicy(p) {
      roleOf(p).attached.add(required(p, 'PolicyArn'));
      return undefined;
    },
    DetachRolePolicy(p) {
      const arn = required(p, 'PolicyArn');
      if (!roleOf(p).attached.delete(arn)) throw new IamError(404, 'NoSuchEntity', `Policy ${arn} was not found.`);
      return undefined;
    },
    ListInstanceProfilesForRole(p) {
      roleOf(p);
      return list('InstanceProfiles', []);
    },
    DeleteRole(p) {
      const role = roleOf(p);
      if (role.inline.size) throw new IamError(409, 'DeleteConflict', 'Cannot delete entity, must delete policies first.');
      if (role.attached.size) throw new IamError(409, 'DeleteConflict', 'Cannot delete entity, must detach all policies first.');
      roles.delete(role.name.toLowerCase());
      return undefined;
    },
    GetAccountAuthorizationDetails(p) {
      const filter = [...p.entries()].filter(([key]) => key.startsWith('Filter.member.')).map(([, value]) => value);
      // Only roles live here: any other entity type filters to nothing.
      const { roles: listed, end } = page(p, filter.length === 0 || filter.includes('Role') ? [...roles.values()] : []);
      return `${members('RoleDetailList', listed.map(roleDetailXml))}<GroupDetailList/><UserDetailList/><Policies/>${end}`;
    },
    ListRoles(p) {
      const prefix = p.get('PathPrefix') ?? '/';
      const { roles: listed, end } = page(p, [...roles.values()].filter((role) => role.path.startsWith(prefix)));
      return `${members('Roles', listed.map((role) => roleHead(role) + session(role)))}${end}`;
    },
    ListOpenIDConnectProviders: () => `<OpenIDConnectProviderList>${opts.oidcProviderArns.map((arn) => `<member><Arn>${xml(arn)}</Arn></member>`).join('')}</OpenIDConnectProviderList>`,
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const params = new URLSearchParams(Buffer.concat(chunks).toString());
      const action = params.get('Action') ?? '';
      const requestId = randomBytes(16).toString('hex');
      const meta = `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata>`;
      let status = 200;
      let body: string;
      try {
        const handler = operations[action];
        if (!handler) throw new IamError(400, 'InvalidAction', `Could not find operation ${action} for version 2010-05-08`);
        const result = handler(params);
        body = `<${action}Response xmlns="${NS}">${result === undefined ? '' : `<${action}Result>${result}</${action}Result>`}${meta}</${action}Response>`;
      } catch (err) {
        if (!(err instanceof IamError)) throw err;
        status = err.status;
        const type = err.status >= 500 ? 'Receiver' : 'Sender';
        body = `<ErrorResponse xmlns="${NS}"><Error><Type>${type}</Type><Code>${err.code}</Code><Message>${xml(err.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
      }
      res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    countRoles: (tags) => [...roles.values()].filter((r) => Object.entries(tags).every(([k, v]) => r.tags.get(k) === v)).length,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
