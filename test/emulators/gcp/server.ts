// An HTTP emulator of the Google APIs Keyless calls, serving the real REST clients over their real wire format
// (cloud-apis.md §3): IAM v1 service accounts and their policies, Resource Manager v1/v3 project policies, Cloud
// Storage bucket policies, Pub/Sub topic policies and Secret Manager secret policies, and the lists of each resource
// type (kubectl keyless migrate looks for grants with them), on one root URL. Errors
// use Google's JSON error format. The same root serves GKE Workload Identity's token exchanges (tokens.ts): STS
// POST /v1/token and IAM Credentials generateAccessToken; IAM v1's workload identity pools and providers with their
// long-running operations (pools.ts), whose providers STS exchanges tokens of any cluster against; and
// testIamPermissions on projects and buckets for the tokens it issued (permissions.ts). `/__emulator/...` is the test-facing admin API: seed
// projects and resources, switch faults on, read the call log and every policy version written; trust an issuer
// (POST issuers {issuer, jwks}), declare a workload pool (POST pools {pool, issuer[, jwks][, identityProvider]}),
// move the token clock (POST clock {offsetSeconds}) and look up whom an issued access token stands for
// (GET access-tokens/TOKEN).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { issuerFromJson, TrustedIssuers, type IssuerSource } from '../oidc/issuers.ts';
import { GcpState, GoogleError, type Binding, type Faults, type ServiceAccount, type StoredPolicy } from './state.ts';
import type { FederationPools } from './pools.ts';
import { GcpTokens, OAuthError, type WorkloadPool } from './tokens.ts';

export interface GcpEmulator {
  endpoint: string;
  state: GcpState;
  tokens: GcpTokens;
  close(): Promise<void>;
}

interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  /** The bearer token. */
  caller: string;
}

interface Answer {
  status?: number;
  body: unknown;
}

type Route = [method: string | string[], pattern: RegExp, operation: string, handler: (m: string[], req: Request) => Answer | StoredPolicy | ServiceAccount | object];

function publicServiceAccount(sa: ServiceAccount): object {
  const { name, projectId, uniqueId, email, displayName, description, oauth2ClientId, disabled } = sa;
  return { name, projectId, uniqueId, email, displayName, description, oauth2ClientId, disabled, etag: 'MDEwMjE5MjA=' };
}

/** How a caller asks for a policy version: a JSON body (Resource Manager) or a query parameter (the rest). */
function requestedVersion(req: Request): number {
  const fromBody = (req.body as { options?: { requestedPolicyVersion?: number } } | undefined)?.options?.requestedPolicyVersion;
  const fromQuery = req.query.get('options.requestedPolicyVersion') ?? req.query.get('optionsRequestedPolicyVersion');
  return Number(fromBody ?? fromQuery ?? 0);
}

function policyBody(req: Request): { version?: number; etag?: string; bindings?: Binding[] } | undefined {
  return (req.body as { policy?: { version?: number; etag?: string; bindings?: Binding[] } } | undefined)?.policy;
}

/** The JSON of a policy as Google returns it: empty bindings are left out. */
function wirePolicy(p: StoredPolicy, extra: object = {}): object {
  return { ...extra, version: p.version, etag: p.etag, ...(p.bindings.length ? { bindings: p.bindings } : {}) };
}

const aborted = () => new GoogleError(409, 'ABORTED', 'There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.');
/** Cloud Storage signals a stale etag as a failed precondition, in its own error dialect. */
const preconditionFailed = () => new GoogleError(412, 'conditionNotMet', 'Precondition Failed');

/** One page of a list, as IAM pages them: `pageSize` (default 50), `pageToken` an offset here. */
function paged<T>(key: string, all: T[], req: Request, render: (t: T) => object): object {
  const size = Math.min(Number(req.query.get('pageSize') ?? 50) || 50, 1000);
  const from = Number(req.query.get('pageToken') ?? 0) || 0;
  const page = all.slice(from, from + size);
  return { ...(page.length ? { [key]: page.map(render) } : {}), ...(from + size < all.length ? { nextPageToken: String(from + size) } : {}) };
}

const LOCATION = '/v1/projects/([^/:]+)/locations/global/workloadIdentityPools';

function federationRoutes(pools: FederationPools): Route[] {
  const showDeleted = (req: Request) => req.query.get('showDeleted') === 'true';
  const mask = (req: Request) => req.query.get('updateMask') ?? '';
  const m1 = (m: string[]) => m[1] ?? '';
  const m2 = (m: string[]) => m[2] ?? '';
  const m3 = (m: string[]) => m[3] ?? '';
  return [
    ['POST', new RegExp(`^${LOCATION}$`), 'workloadIdentityPools.create', (m, req) => pools.createPool(m1(m), req.query.get('workloadIdentityPoolId') ?? '', req.body ?? {})],
    ['GET', new RegExp(`^${LOCATION}$`), 'workloadIdentityPools.list', (m, req) => paged('workloadIdentityPools', pools.listPools(m1(m), showDeleted(req)), req, (p) => pools.publicPool(p))],
    ['GET', new RegExp(`^${LOCATION}/([^/:]+)$`), 'workloadIdentityPools.get', (m) => pools.publicPool(pools.pool(m1(m), m2(m)))],
    ['PATCH', new RegExp(`^${LOCATION}/([^/:]+)$`), 'workloadIdentityPools.patch', (m, req) => pools.patchPool(m1(m), m2(m), req.body ?? {}, mask(req))],
    ['DELETE', new RegExp(`^${LOCATION}/([^/:]+)$`), 'workloadIdentityPools.delete', (m) => pools.deletePool(m1(m), m2(m))],
    ['POST', new RegExp(`^${LOCATION}/([^/:]+):undelete$`), 'workloadIdentityPools.undelete', (m) => pools.undeletePool(m1(m), m2(m))],
    ['POST', new RegExp(`^${LOCATION}/([^/:]+)/providers$`), 'workloadIdentityPools.providers.create', (m, req) =>
      pools.createProvider(m1(m), m2(m), req.query.get('workloadIdentityPoolProviderId') ?? '', req.body ?? {})],
    ['GET', new RegExp(`^${LOCATION}/([^/:]+)/providers$`), 'workloadIdentityPools.providers.list', (m, req) =>
      paged('workloadIdentityPoolProviders', pools.listProviders(m1(m), m2(m), showDeleted(req)), req, (p) => pools.publicProvider(p))],
    ['GET', new RegExp(`^${LOCATION}/([^/:]+)/providers/([^/:]+)$`), 'workloadIdentityPools.providers.get', (m) => pools.publicProvider(pools.provider(m1(m), m2(m), m3(m)))],
    ['PATCH', new RegExp(`^${LOCATION}/([^/:]+)/providers/([^/:]+)$`), 'workloadIdentityPools.providers.patch', (m, req) =>
      pools.patchProvider(m1(m), m2(m), m3(m), req.body ?? {}, mask(req))],
    ['DELETE', new RegExp(`^${LOCATION}/([^/:]+)/providers/([^/:]+)$`), 'workloadIdentityPools.providers.delete', (m) => pools.deleteProvider(m1(m), m2(m), m3(m))],
    ['POST', new RegExp(`^${LOCATION}/([^/:]+)/providers/([^/:]+):undelete$`), 'workloadIdentityPools.providers.undelete', (m) => pools.undeleteProvider(m1(m), m2(m), m3(m))],
    ['GET', /^\/v1\/projects\/([^/:]+)\/locations\/global\/(workloadIdentityPools\/[^/:]+(?:\/providers\/[^/:]+)?\/operations\/[^/:]+)$/, 'workloadIdentityPools.operations.get', (m) =>
      pools.getOperation(m1(m), `locations/global/${m2(m)}`)],
  ];
}

/** testIamPermissions for the access tokens the emulator issued (STS, generateAccessToken). */
function permissionRoutes(state: GcpState, tokens: GcpTokens): Route[] {
  const requested = (req: Request) => ((req.body as { permissions?: unknown } | undefined)?.permissions as string[] | undefined) ?? [];
  return [
    ['POST', /^\/v[13]\/projects\/([^/:]+):testIamPermissions$/, 'projects.testIamPermissions', (m, req) => {
      const permissions = tokens.testPermissions(req.caller, [`project/${state.project(m[1] ?? '').projectId}`], requested(req));
      return permissions.length ? { permissions } : {};
    }],
    ['GET', /^\/storage\/v1\/b\/([^/]+)\/iam\/testPermissions$/, 'buckets.testIamPermissions', (m, req) => {
      const bucket = m[1] ?? '';
      state.policy(`bucket/${bucket}`, `The specified bucket ${bucket}`);
      const project = state.bucketProjects.get(bucket);
      const permissions = tokens.testPermissions(req.caller, [`bucket/${bucket}`, ...(project ? [`project/${project}`] : [])], req.query.getAll('permissions'));
      return { kind: 'storage#testIamPermissionsResponse', ...(permissions.length ? { permissions } : {}) };
    }],
  ];
}

function routes(state: GcpState, tokens: GcpTokens): Route[] {
  const policyRoutes = (kind: string, pattern: RegExp, key: (m: string[]) => string, what: (m: string[]) => string, check?: (m: string[]) => void): Route[] => [
    [['GET', 'POST'], new RegExp(`${pattern.source}:getIamPolicy$`), `${kind}.getIamPolicy`, (m, req) => {
      check?.(m);
      return wirePolicy(state.readPolicy(key(m), what(m), requestedVersion(req)));
    }],
    ['POST', new RegExp(`${pattern.source}:setIamPolicy$`), `${kind}.setIamPolicy`, (m, req) => {
      check?.(m);
      return wirePolicy(state.writePolicy(key(m), what(m), policyBody(req), aborted));
    }],
  ];
  const sa = (m: string[]) => state.getServiceAccount(m[1] ?? '', m[2] ?? '');
  return [
    ['POST', /^\/v1\/projects\/([^/:]+)\/serviceAccounts$/, 'CreateServiceAccount', (m, req) => publicServiceAccount(state.createServiceAccount(m[1] ?? '', (req.body ?? {})))],
    ['GET', /^\/v1\/projects\/([^/:]+)\/serviceAccounts$/, 'ListServiceAccounts', (m, req) => {
      const all = state.listServiceAccounts(m[1] ?? '');
      const size = Math.min(Number(req.query.get('pageSize') ?? 20) || 20, 100);
      const from = Number(req.query.get('pageToken') ?? 0) || 0;
      const page = all.slice(from, from + size);
      return { ...(page.length ? { accounts: page.map(publicServiceAccount) } : {}), ...(from + size < all.length ? { nextPageToken: String(from + size) } : {}) };
    }],
    ['GET', /^\/v1\/projects\/([^/:]+)\/serviceAccounts\/([^/:]+)$/, 'GetServiceAccount', (m) => publicServiceAccount(sa(m))],
    ['PATCH', /^\/v1\/projects\/([^/:]+)\/serviceAccounts\/([^/:]+)$/, 'PatchServiceAccount', (m, req) => publicServiceAccount(state.patchServiceAccount(m[1] ?? '', m[2] ?? '', (req.body ?? {})))],
    ['DELETE', /^\/v1\/projects\/([^/:]+)\/serviceAccounts\/([^/:]+)$/, 'DeleteServiceAccount', (m) => {
      state.deleteServiceAccount(m[1] ?? '', m[2] ?? '');
      return {};
    }],
    ...policyRoutes('serviceAccounts', /^\/v1\/projects\/([^/:]+)\/serviceAccounts\/([^/:]+)/, (m) => `serviceAccount/${sa(m).email}`, (m) => `Service account ${m[2] ?? ''}`),
    ...policyRoutes('topics', /^\/v1\/projects\/([^/:]+)\/topics\/([^/:]+)/, (m) => `topic/projects/${m[1] ?? ''}/topics/${m[2] ?? ''}`, (m) => `Resource projects/${m[1] ?? ''}/topics/${m[2] ?? ''}`),
    ...policyRoutes('secrets', /^\/v1\/projects\/([^/:]+)\/secrets\/([^/:]+)/, (m) => `secret/projects/${m[1] ?? ''}/secrets/${m[2] ?? ''}`, (m) => `Secret [projects/${m[1] ?? ''}/secrets/${m[2] ?? ''}]`),
    ...policyRoutes('projects', /^\/v[13]\/projects\/([^/:]+)/, (m) => `project/${state.project(m[1] ?? '').projectId}`, (m) => `Project ${m[1] ?? ''}`),
    ['GET', /^\/v[13]\/projects\/([^/:]+)$/, 'projects.get', (m) => {
      const p = state.project(m[1] ?? '');
      return { name: `projects/${p.projectNumber}`, projectId: p.projectId, projectNumber: p.projectNumber, state: 'ACTIVE', lifecycleState: 'ACTIVE', displayName: p.projectId };
    }],
    ['GET', /^\/v1\/projects\/([^/:]+)\/topics$/, 'topics.list', (m) => ({ topics: state.resourcesUnder(`topic/projects/${state.project(m[1] ?? '').projectId}/topics/`).map((t) => ({ name: `projects/${m[1] ?? ''}/topics/${t}` })) })],
    ['GET', /^\/v1\/projects\/([^/:]+)\/secrets$/, 'secrets.list', (m) => {
      const secrets = state.resourcesUnder(`secret/projects/${state.project(m[1] ?? '').projectId}/secrets/`);
      return { secrets: secrets.map((name) => ({ name: `projects/${m[1] ?? ''}/secrets/${name}` })), totalSize: secrets.length };
    }],
    ['GET', /^\/storage\/v1\/b$/, 'buckets.list', (_m, req) => {
      const project = state.project(req.query.get('project') ?? '').projectId;
      const buckets = state.resourcesUnder('bucket/').filter((b) => (state.bucketProjects.get(b) ?? project) === project);
      return { kind: 'storage#buckets', items: buckets.map((name) => ({ kind: 'storage#bucket', id: name, name })) };
    }],
    ['GET', /^\/storage\/v1\/b\/([^/]+)\/iam$/, 'buckets.getIamPolicy', (m, req) =>
      wirePolicy(state.readPolicy(`bucket/${m[1] ?? ''}`, `The specified bucket ${m[1] ?? ''}`, requestedVersion(req)), { kind: 'storage#policy', resourceId: `projects/_/buckets/${m[1] ?? ''}` })],
    ['PUT', /^\/storage\/v1\/b\/([^/]+)\/iam$/, 'buckets.setIamPolicy', (m, req) =>
      wirePolicy(state.writePolicy(`bucket/${m[1] ?? ''}`, `The specified bucket ${m[1] ?? ''}`, req.body as Parameters<GcpState['writePolicy']>[2], preconditionFailed), { kind: 'storage#policy', resourceId: `projects/_/buckets/${m[1] ?? ''}` })],
    ...federationRoutes(tokens.federation),
    ...permissionRoutes(state, tokens),
  ];
}

/** IAM Credentials' token minting, served beside the routes above (tokens.ts). */
const GENERATE_ACCESS_TOKEN = /^\/v1\/projects\/([^/:]+)\/serviceAccounts\/([^/:]+):generateAccessToken$/;

function findRoute(table: Route[], method: string, path: string): Route | undefined {
  return table.find(([m, p]) => (Array.isArray(m) ? m.includes(method) : m === method) && p.test(path));
}

/** Only for naming requests: the handlers of this table never run. */
const NAMING_STATE = new GcpState();
const NAMING_ROUTES = routes(NAMING_STATE, new GcpTokens(NAMING_STATE));

/**
 * The operation a request to Google's APIs names (`path` URL-decoded), as this emulator logs it and the operator
 * counts it: CreateServiceAccount, projects.setIamPolicy, buckets.getIamPolicy, ...; undefined when no route serves it.
 */
export function gcpOperation(method: string, path: string): string | undefined {
  if (method === 'POST' && path === '/v1/token') return 'sts.token';
  if (method === 'POST' && GENERATE_ACCESS_TOKEN.test(path)) return 'iamcredentials.generateAccessToken';
  return findRoute(NAMING_ROUTES, method, path)?.[2];
}

/** Google JSON errors; Cloud Storage's dialect has `errors[].reason` instead of a canonical `status`. */
function errorBody(err: GoogleError, storageApi: boolean): object {
  if (storageApi) return { error: { code: err.code, message: err.message, errors: [{ domain: 'global', reason: err.status === 'NOT_FOUND' ? 'notFound' : err.status, message: err.message }] } };
  return { error: { code: err.code, message: err.message, status: err.status } };
}

const STATUS_NAMES: Record<number, string> = { 400: 'INVALID_ARGUMENT', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 409: 'ABORTED', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };

function admin(state: GcpState, tokens: GcpTokens, method: string, path: string, body: unknown, releaseHeld: () => void): Answer | undefined {
  const b = (body ?? {}) as Record<string, unknown>;
  const str = (k: string) => (typeof b[k] === 'string' ? b[k] : '');
  const accessToken = /^GET \/__emulator\/access-tokens\/(.+)$/.exec(`${method} ${path}`);
  if (accessToken) {
    const issued = tokens.issued.get(accessToken[1] ?? '');
    return issued ? { body: issued } : { status: 404, body: { error: { code: 404, message: 'No such access token.', status: 'NOT_FOUND' } } };
  }
  switch (`${method} ${path}`) {
    case 'GET /__emulator/health':
      return { body: { ok: true } };
    case 'GET /__emulator/log':
      return { body: { calls: state.log } };
    case 'DELETE /__emulator/log':
      state.log.length = 0;
      return { body: {} };
    case 'GET /__emulator/policy-writes':
      return { body: { writes: state.policyWrites } };
    case 'GET /__emulator/faults':
      return { body: state.faults };
    case 'POST /__emulator/faults':
      state.faults = { ...state.faults, ...(b as Partial<Faults>) };
      if ('delays' in b) releaseHeld();
      return { body: state.faults };
    case 'POST /__emulator/projects':
      state.addProject(str('projectId'), str('projectNumber'));
      return { body: {} };
    case 'POST /__emulator/buckets':
      state.addResource(`bucket/${str('name')}`);
      if (str('project')) state.bucketProjects.set(str('name'), str('project'));
      return { body: {} };
    case 'POST /__emulator/topics':
      state.addResource(`topic/projects/${str('project')}/topics/${str('topic')}`);
      return { body: {} };
    case 'POST /__emulator/secrets':
      state.addResource(`secret/projects/${str('project')}/secrets/${str('secret')}`);
      return { body: {} };
    case 'POST /__emulator/issuers':
      tokens.issuers.add(issuerFromJson(b));
      return { body: {} };
    case 'POST /__emulator/pools':
      if (!str('pool') || !str('issuer')) return { status: 400, body: { error: { code: 400, message: 'pool and issuer are required', status: 'INVALID_ARGUMENT' } } };
      if (b['jwks']) tokens.issuers.add(issuerFromJson(b));
      tokens.addPool({ pool: str('pool'), issuer: str('issuer'), ...(str('identityProvider') ? { identityProvider: str('identityProvider') } : {}) });
      return { body: {} };
    case 'POST /__emulator/clock':
      tokens.clockOffsetSeconds = Number(b['offsetSeconds'] ?? 0);
      return { body: { offsetSeconds: tokens.clockOffsetSeconds } };
    default:
      return undefined;
  }
}

/** An STS request's fields, snake_case: the form encoding google-auth-library sends, or the JSON one (camelCase). */
function stsParams(raw: string, contentType: string | undefined): Record<string, string | undefined> {
  if (!(contentType ?? '').includes('json')) return Object.fromEntries(new URLSearchParams(raw));
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(raw || '{}') as Record<string, unknown>;
  } catch {
    throw new OAuthError(400, 'invalid_request', 'Invalid JSON payload received.');
  }
  return Object.fromEntries(Object.entries(json).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), typeof v === 'string' ? v : undefined]));
}

export async function startGcpEmulator(
  opts: { port?: number; host?: string; projects?: { projectId: string; projectNumber: string }[]; state?: GcpState; issuers?: IssuerSource[]; pools?: WorkloadPool[] } = {},
): Promise<GcpEmulator> {
  const state = opts.state ?? new GcpState();
  for (const p of opts.projects ?? []) state.addProject(p.projectId, p.projectNumber);
  const tokens = new GcpTokens(state, new TrustedIssuers(opts.issuers));
  for (const p of opts.pools ?? []) tokens.addPool(p);
  const table = routes(state, tokens);
  /** Calls held by a delay fault, each with what serves it early. */
  const held = new Map<NodeJS.Timeout, () => void>();
  const releaseHeld = () => {
    for (const [timer, serve] of held) {
      clearTimeout(timer);
      serve();
    }
    held.clear();
  };
  const hold = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        held.delete(timer);
        resolve();
      }, ms);
      held.set(timer, resolve);
    });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void serve());
    const serve = async () => {
      const url = new URL(req.url ?? '/', 'http://emulator');
      const path = decodeURIComponent(url.pathname);
      const method = req.method ?? 'GET';
      const raw = Buffer.concat(chunks).toString();
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
        res.end(JSON.stringify(body));
      };
      if (method === 'POST' && path === '/v1/token') {
        let status = 200;
        let out: unknown;
        try {
          out = await tokens.exchange(stsParams(raw, req.headers['content-type']));
        } catch (err) {
          if (!(err instanceof OAuthError)) throw err;
          status = err.status;
          out = { error: err.error, error_description: err.message };
        }
        state.log.push({ seq: state.log.length + 1, operation: 'sts.token', method, path, status, caller: '' });
        send(status, out);
        return;
      }
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        send(400, { error: { code: 400, message: 'Invalid JSON payload received.', status: 'INVALID_ARGUMENT' } });
        return;
      }
      if (path.startsWith('/__emulator/')) {
        let answer: Answer | undefined;
        try {
          answer = admin(state, tokens, method, path, body, releaseHeld);
        } catch (err) {
          answer = { status: 400, body: { error: { code: 400, message: err instanceof Error ? err.message : String(err), status: 'INVALID_ARGUMENT' } } };
        }
        send(answer ? (answer.status ?? 200) : 404, answer?.body ?? { error: { code: 404, message: `no admin route ${method} ${path}`, status: 'NOT_FOUND' } });
        return;
      }
      const caller = (req.headers.authorization ?? '').replace(/^Bearer /i, '');
      const generate = method === 'POST' ? GENERATE_ACCESS_TOKEN.exec(path) : null;
      if (generate) {
        let status = 200;
        let out: unknown;
        try {
          out = tokens.generateAccessToken(caller, generate[1] ?? '', generate[2] ?? '', body);
        } catch (err) {
          if (!(err instanceof GoogleError)) throw err;
          status = err.code;
          out = errorBody(err, false);
          if (status === 403) {
            // What IAM attaches to a denied permission (google.rpc.ErrorInfo), for clients that read the reason.
            const details = [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'IAM_PERMISSION_DENIED', domain: 'iam.googleapis.com', metadata: { permission: 'iam.serviceAccounts.getAccessToken' } }];
            out = { error: { ...(out as { error: object }).error, details } };
          }
        }
        state.log.push({ seq: state.log.length + 1, operation: 'iamcredentials.generateAccessToken', method, path, status, caller });
        send(status, out);
        return;
      }
      const storageApi = path.startsWith('/storage/');
      let operation = `${method} ${path}`;
      let status = 200;
      let out: unknown;
      try {
        const route = findRoute(table, method, path);
        if (!route) throw new GoogleError(404, 'NOT_FOUND', `The emulator has no route for ${method} ${path}.`);
        operation = route[2];
        if (!caller) throw new GoogleError(401, 'UNAUTHENTICATED', 'Request is missing required authentication credential.');
        const delay = state.injectedDelay(operation);
        if (delay !== undefined) await hold(delay);
        const injected = state.injectedFailure(operation);
        if (injected) throw new GoogleError(injected, STATUS_NAMES[injected] ?? 'UNKNOWN', `Injected failure for ${operation}.`);
        out = route[3](route[1].exec(path)?.slice(0) ?? [], { method, path, query: url.searchParams, body, caller });
      } catch (err) {
        if (!(err instanceof GoogleError)) throw err;
        status = err.code;
        out = errorBody(err, storageApi);
      }
      state.log.push({ seq: state.log.length + 1, operation, method, path, status, caller });
      send(status, out);
    };
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    state,
    tokens,
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of held.keys()) clearTimeout(timer);
        held.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
