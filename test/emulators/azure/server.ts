// The Azure Resource Manager emulator over HTTPS: routes exactly as @azure/arm-msi 2.2.0 and
// @azure/arm-authorization 9.0.0 call them, ARM error JSON, the success codes each operation declares (core-client
// treats any other status as an error, even a 2xx), a required api-version, paged lists with absolute nextLinks,
// a request log, and fault injection. Admin routes under /__emulator/ (no auth):
//   GET  /__emulator/requests         the request log          DELETE /__emulator/requests   clears it
//   GET  /__emulator/state            identities, credentials, role assignments
//   GET  /__emulator/faults           POST one FaultSpec        DELETE /__emulator/faults     clears them
//   PATCH /__emulator/config          partial EmulatorConfig
//   POST /__emulator/resource-groups  {subscriptionId, name}
//   POST /__emulator/issuers          {issuer, jwks}: an OIDC issuer whose tokens Entra can verify
//   POST /__emulator/clock            {offsetSeconds}: moves Entra's clock (expiry tests)
// The same host is also the tenant's Entra ID authority (entra.ts): point AZURE_AUTHORITY_HOST at `endpoint`.
import { randomUUID } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { issuerFromJson, TrustedIssuers, type IssuerSource } from '../oidc/issuers.ts';
import { ArmError, ArmState, type EmulatorConfig, type Reply } from './arm.ts';
import { Entra } from './entra.ts';
import type { EmulatorTls } from './tls.ts';

export const MSI_API_VERSION = '2024-11-30';
export const AUTHORIZATION_API_VERSION = '2022-04-01';

/** A fault: answers matching requests with an ARM error instead of serving them. */
export interface FaultSpec {
  /** An operation ID such as `FederatedIdentityCredentials_CreateOrUpdate`; every ARM operation when absent. */
  operation?: string;
  status: number;
  code: string;
  message?: string;
  /** Sent as the Retry-After header (seconds) when set. */
  retryAfterSeconds?: number;
  /** Fails the 1st, (every+1)th, (2·every+1)th … matching request; 1 (the default) fails all of them. */
  every?: number;
  /** Stops after failing this many requests. */
  times?: number;
}

export interface Fault extends FaultSpec {
  id: string;
  matched: number;
  fired: number;
}

export interface RequestRecord {
  seq: number;
  at: number;
  method: string;
  /** Path without the query, duplicate slashes collapsed. */
  path: string;
  operation: string;
  status: number;
  code?: string;
  /** True when a fault answered instead of the emulated service. */
  fault?: boolean;
}

export interface AzureEmulatorOptions {
  tls: EmulatorTls;
  port?: number;
  tenantId?: string;
  resourceGroups?: { subscriptionId: string; name: string }[];
  config?: Partial<EmulatorConfig>;
  /** Issuers whose tokens Entra accepts as federated credentials (their keys verify the assertions). */
  issuers?: IssuerSource[];
}

export interface AzureEmulator {
  endpoint: string;
  port: number;
  state: ArmState;
  entra: Entra;
  requests: RequestRecord[];
  faults: Fault[];
  addFault(spec: FaultSpec): Fault;
  clearFaults(): void;
  close(): Promise<void>;
}

interface Route {
  operation: string;
  apiVersion: string;
  handle: (body: unknown) => Reply | Promise<Reply>;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-ms-request-id': randomUUID(), 'x-ms-correlation-request-id': randomUUID(), ...headers });
  res.end(text);
};

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The ARM operation a request is, and what serves it from `state`; `page` answers a list. Undefined for a path or
 * method ARM has no operation for here.
 */
function armRoute(state: ArmState, method: string, url: URL, segments: string[], page: (items: unknown[]) => Reply): Route | undefined {
  const lc = segments.map((s) => s.toLowerCase());
  const authz = lc.lastIndexOf('microsoft.authorization');
  if (authz >= 1 && lc[authz - 1] === 'providers') {
    const scope = `/${segments.slice(0, authz - 1).join('/')}`;
    const [kind, name, ...extra] = lc.slice(authz + 1);
    const rawName = segments[authz + 2] ?? '';
    if (extra.length) return undefined;
    const filter = url.searchParams.get('$filter') ?? undefined;
    const av = AUTHORIZATION_API_VERSION;
    if (kind === 'roleassignments' && name === undefined && method === 'GET') {
      return { operation: 'RoleAssignments_ListForScope', apiVersion: av, handle: () => page(state.listAssignments(scope, filter)) };
    }
    if (kind === 'roleassignments' && name !== undefined) {
      if (method === 'GET') return { operation: 'RoleAssignments_Get', apiVersion: av, handle: () => state.getAssignment(scope, rawName) };
      if (method === 'PUT') return { operation: 'RoleAssignments_Create', apiVersion: av, handle: (body) => state.putAssignment(scope, rawName, body) };
      if (method === 'DELETE') return { operation: 'RoleAssignments_Delete', apiVersion: av, handle: () => state.deleteAssignment(scope, rawName) };
    }
    if (kind === 'roledefinitions' && name === undefined && method === 'GET') {
      return { operation: 'RoleDefinitions_List', apiVersion: av, handle: () => page(state.listRoleDefinitions(scope, filter)) };
    }
    if (kind === 'roledefinitions' && name !== undefined && method === 'GET') {
      return { operation: 'RoleDefinitions_Get', apiVersion: av, handle: () => state.getRoleDefinition(scope, rawName) };
    }
    return undefined;
  }
  if (segments.length === 5 && method === 'GET' && lc[0] === 'subscriptions' && lc[2] === 'providers' && lc[3] === 'microsoft.managedidentity' && lc[4] === 'userassignedidentities') {
    return { operation: 'UserAssignedIdentities_ListBySubscription', apiVersion: MSI_API_VERSION, handle: () => page(state.listIdentitiesInSubscription(segments[1] ?? '')) };
  }
  const msi = lc[0] === 'subscriptions' && lc[2] === 'resourcegroups' && lc[4] === 'providers' && lc[5] === 'microsoft.managedidentity' && lc[6] === 'userassignedidentities';
  if (!msi) return undefined;
  const [sub = '', , rg = ''] = segments.slice(1);
  const name = segments[7];
  const fic = segments[9];
  const av = MSI_API_VERSION;
  if (segments.length === 7 && method === 'GET') {
    return { operation: 'UserAssignedIdentities_ListByResourceGroup', apiVersion: av, handle: () => page(state.listIdentities(sub, rg)) };
  }
  if (segments.length === 8 && name) {
    if (method === 'GET') return { operation: 'UserAssignedIdentities_Get', apiVersion: av, handle: () => state.getIdentity(sub, rg, name) };
    if (method === 'PUT') return { operation: 'UserAssignedIdentities_CreateOrUpdate', apiVersion: av, handle: (body) => state.putIdentity(sub, rg, name, body) };
    if (method === 'PATCH') return { operation: 'UserAssignedIdentities_Update', apiVersion: av, handle: (body) => state.patchIdentity(sub, rg, name, body) };
    if (method === 'DELETE') return { operation: 'UserAssignedIdentities_Delete', apiVersion: av, handle: () => state.deleteIdentity(sub, rg, name) };
  }
  if (lc[8] !== 'federatedidentitycredentials' || !name) return undefined;
  if (segments.length === 9 && method === 'GET') {
    return { operation: 'FederatedIdentityCredentials_List', apiVersion: av, handle: () => page(state.listCredentials(sub, rg, name)) };
  }
  if (segments.length === 10 && fic) {
    if (method === 'GET') return { operation: 'FederatedIdentityCredentials_Get', apiVersion: av, handle: () => state.getCredential(sub, rg, name, fic) };
    if (method === 'PUT') return { operation: 'FederatedIdentityCredentials_CreateOrUpdate', apiVersion: av, handle: (body) => state.putCredential(sub, rg, name, fic, body) };
    if (method === 'DELETE') return { operation: 'FederatedIdentityCredentials_Delete', apiVersion: av, handle: () => state.deleteCredential(sub, rg, name, fic) };
  }
  return undefined;
}

/** The request's path segments, URL-decoded. */
function pathSegments(url: URL): string[] {
  return url.pathname.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
}

/** Only for naming requests: nothing is ever served from it. */
const NAMING_STATE = new ArmState({ tenantId: '', config: { principalReplicationDelayMs: 0, ficWriteLatencyMs: 0, pageSize: 1 } });

/**
 * The operation ID of an ARM request (`url` its path and query), as this emulator logs it and the operator counts
 * it: UserAssignedIdentities_CreateOrUpdate, RoleAssignments_Create, ...; undefined when it is not an ARM operation.
 */
export function armOperation(method: string, url: string): string | undefined {
  const u = new URL(url, 'https://arm');
  return armRoute(NAMING_STATE, method, u, pathSegments(u), () => ({ status: 200 }))?.operation;
}

export async function startAzureEmulator(opts: AzureEmulatorOptions): Promise<AzureEmulator> {
  const state = new ArmState({
    tenantId: opts.tenantId ?? randomUUID(),
    config: { principalReplicationDelayMs: 0, ficWriteLatencyMs: 0, pageSize: 100, ...opts.config },
  });
  for (const rg of opts.resourceGroups ?? []) state.addResourceGroup(rg.subscriptionId, rg.name);
  const entra = new Entra(state, new TrustedIssuers(opts.issuers));
  const requests: RequestRecord[] = [];
  const faults: Fault[] = [];
  let seq = 0;

  const addFault = (spec: FaultSpec): Fault => {
    const fault: Fault = { ...spec, id: randomUUID(), matched: 0, fired: 0 };
    faults.push(fault);
    return fault;
  };

  /** A paged ARM list: `pageSize` items, then an absolute nextLink back to this emulator. */
  const page = (req: IncomingMessage, url: URL, items: unknown[]): Reply => {
    const skip = Number(url.searchParams.get('$skiptoken') ?? '0');
    const size = state.config.pageSize;
    const value = items.slice(skip, skip + size);
    if (skip + size >= items.length) return { status: 200, body: { value } };
    const next = new URL(url.toString());
    next.searchParams.set('$skiptoken', String(skip + size));
    return { status: 200, body: { value, nextLink: `https://${req.headers.host ?? '127.0.0.1'}${next.pathname}${next.search}` } };
  };

  const admin = async (req: IncomingMessage, res: ServerResponse, what: string) => {
    const method = req.method ?? 'GET';
    const raw = await readBody(req);
    const body: unknown = raw ? JSON.parse(raw) : undefined;
    if (what === 'requests' && method === 'GET') return json(res, 200, requests);
    if (what === 'requests' && method === 'DELETE') {
      requests.length = 0;
      return json(res, 200, {});
    }
    if (what === 'state' && method === 'GET') {
      return json(res, 200, {
        tenantId: state.tenantId,
        identities: [...state.identities.values()].map((i) => ({ ...(state.identityJson(i) as object), credentials: [...i.credentials.values()] })),
        roleAssignments: [...state.assignments.values()],
      });
    }
    if (what === 'faults' && method === 'GET') return json(res, 200, faults);
    if (what === 'faults' && method === 'POST') return json(res, 201, addFault(body as FaultSpec));
    if (what === 'faults' && method === 'DELETE') {
      faults.length = 0;
      return json(res, 200, {});
    }
    if (what === 'config' && method === 'PATCH') {
      Object.assign(state.config, body);
      return json(res, 200, state.config);
    }
    if (what === 'issuers' && method === 'POST') {
      try {
        entra.issuers.add(issuerFromJson(body));
      } catch (err) {
        return json(res, 400, { error: { code: 'BadRequest', message: err instanceof Error ? err.message : String(err) } });
      }
      return json(res, 200, {});
    }
    if (what === 'clock' && method === 'POST') {
      entra.clockOffsetSeconds = Number((body as { offsetSeconds?: number } | undefined)?.offsetSeconds ?? 0);
      return json(res, 200, { offsetSeconds: entra.clockOffsetSeconds });
    }
    if (what === 'resource-groups' && method === 'POST') {
      const { subscriptionId, name } = body as { subscriptionId: string; name: string };
      state.addResourceGroup(subscriptionId, name);
      return json(res, 201, { subscriptionId, name });
    }
    return json(res, 404, { error: { code: 'NotFound', message: `no admin route ${method} /__emulator/${what}` } });
  };

  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'https://emulator');
    const segments = pathSegments(url);
    if (segments[0] === '__emulator') return admin(req, res, segments.slice(1).join('/'));

    const method = req.method ?? 'GET';
    const record: RequestRecord = { seq: ++seq, at: Date.now(), method, path: `/${segments.join('/')}`, operation: `${method} unknown`, status: 0 };
    requests.push(record);
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      const code = (body as { error?: { code?: string } } | undefined)?.error?.code;
      if (code) record.code = code;
      json(res, status, body, headers);
    };
    const fail = (err: ArmError, headers: Record<string, string> = {}) => answer(err.status, { error: { code: err.code, message: err.message } }, headers);

    const raw = await readBody(req);
    const [tenant = '', ...rest] = segments;
    const entraPath = rest.join('/');
    const entraRoute =
      method === 'GET' && entraPath === 'v2.0/.well-known/openid-configuration'
        ? 'Entra_OpenIdConfiguration'
        : method === 'GET' && entraPath === 'discovery/v2.0/keys'
          ? 'Entra_Keys'
          : method === 'POST' && entraPath === 'oauth2/v2.0/token'
            ? 'Entra_Token'
            : undefined;
    if (entraRoute) {
      record.operation = entraRoute;
      const reply =
        entraRoute === 'Entra_OpenIdConfiguration'
          ? entra.openidConfiguration(`https://${req.headers.host ?? '127.0.0.1'}`, tenant)
          : entraRoute === 'Entra_Keys'
            ? entra.keys()
            : await entra.token(tenant, new URLSearchParams(raw), String(req.headers['client-request-id'] ?? randomUUID()));
      answer(reply.status, reply.body, { 'cache-control': 'no-store, no-cache' });
      const [code] = (reply.body as { error_codes?: number[] }).error_codes ?? [];
      if (code !== undefined) record.code = `AADSTS${code}`;
      return;
    }
    if (!/^Bearer \S+/.test(req.headers.authorization ?? '')) {
      return fail(new ArmError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing."));
    }
    const r = armRoute(state, method, url, segments, (items) => page(req, url, items));
    if (!r) return fail(new ArmError(404, 'InvalidResourceType', `No route for ${method} ${record.path} in the Keyless Azure emulator.`));
    record.operation = r.operation;

    const apiVersion = url.searchParams.get('api-version');
    if (!apiVersion) return fail(new ArmError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.'));
    if (apiVersion !== r.apiVersion) {
      return fail(new ArmError(400, 'InvalidApiVersionParameter', `The api-version '${apiVersion}' is invalid. The supported versions are '${r.apiVersion}'.`));
    }

    for (const fault of faults) {
      if (fault.operation && fault.operation !== r.operation) continue;
      if (fault.times !== undefined && fault.fired >= fault.times) continue;
      const n = fault.matched++;
      if (n % (fault.every ?? 1) !== 0) continue;
      fault.fired++;
      record.fault = true;
      const headers: Record<string, string> = fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {};
      return fail(new ArmError(fault.status, fault.code, fault.message ?? `Injected fault ${fault.code}.`), headers);
    }

    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      return fail(new ArmError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.'));
    }
    try {
      const reply = await r.handle(body);
      answer(reply.status, reply.body);
    } catch (err) {
      if (err instanceof ArmError) return fail(err);
      return fail(new ArmError(500, 'InternalServerError', err instanceof Error ? err.message : String(err)));
    }
  };

  const server = https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, (req, res) => {
    serve(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: { code: 'InternalServerError', message: String(err) } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `https://127.0.0.1:${port}`,
    port,
    state,
    entra,
    requests,
    faults,
    addFault,
    clearFaults: () => {
      faults.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
