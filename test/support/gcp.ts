// The GCP side of the end-to-end tests: the in-project emulator (test/emulators/gcp) in this process, driven
// through its HTTP admin API like any other client would, and the real Google REST clients for the tests' own
// reads. The tests read with their own token, so the emulator's call log tells the operator's calls apart.
import type { IssuerSource } from '../emulators/oidc/issuers.ts';
import { startGcpEmulator } from '../emulators/gcp/server.ts';
import type { Faults, GcpState, LoggedCall, PolicyWrite } from '../emulators/gcp/state.ts';
import type { IssuedToken, WorkloadPool } from '../emulators/gcp/tokens.ts';
import { iam, type iam_v1 } from '@googleapis/iam';
import { OAuth2Client } from 'google-auth-library';
import { createGcpPort } from '../../src/providers/gke-workload-identity/gcp-client.ts';
import { classifyGcpError } from '../../src/providers/gke-workload-identity/errors.ts';
import type { GcpPort } from '../../src/providers/gke-workload-identity/gcp-port.ts';
import type { IamBinding } from '../../src/providers/gke-workload-identity/policy.ts';
import type { PolicyTarget } from '../../src/providers/gke-workload-identity/resources.ts';
import { isCloudError } from '../../src/providers/cloud-error.ts';
import type { CloudCall } from '../../src/providers/instrument.ts';

/** The operator's bearer token (operator.ts gcpEnv); the tests read as someone else. */
export const OPERATOR_TOKEN = 'keyless-operator';
const TEST_TOKEN = 'keyless-test-reader';

export interface GcpTestEmulator {
  endpoint: string;
  /** The emulator's own state, in this process: for checks that read everything at once. */
  state: GcpState;
  /** Real Google REST clients pointed at the emulator, authenticated as the test. */
  client: GcpPort;
  addProject(projectId: string, projectNumber: string): Promise<void>;
  addBucket(name: string): Promise<void>;
  addTopic(project: string, topic: string): Promise<void>;
  addSecret(project: string, secret: string): Promise<void>;
  setFaults(faults: Partial<Faults>): Promise<void>;
  /** Someone else's read-modify-write of a policy's bindings, redone on a stale etag like any well-behaved client. */
  editByHand(target: PolicyTarget, change: (bindings: IamBinding[]) => IamBinding[]): Promise<void>;
  /** The operator's calls since the log was last cleared. */
  operatorCalls(): Promise<LoggedCall[]>;
  clearLog(): Promise<void>;
  /** Every policy version written so far, by anyone, in order. */
  policyWrites(): Promise<PolicyWrite[]>;
  /** Moves the clock STS and IAM Credentials judge token expiry by. */
  setClock(offsetSeconds: number): Promise<void>;
  /** Whom an access token issued by STS or generateAccessToken stands for; undefined for one it never issued. */
  accessToken(token: string): Promise<IssuedToken | undefined>;
  stop(): Promise<void>;
}

export function isWrite(call: Pick<LoggedCall, 'method' | 'operation'>): boolean {
  return call.method !== 'GET' && !call.operation.endsWith('getIamPolicy');
}

/** `issuers` and `pools`: GKE Workload Identity, the workload pools and the issuers of their clusters' tokens. */
export async function startGcpTestEmulator(opts: { issuers?: IssuerSource[]; pools?: WorkloadPool[] } = {}): Promise<GcpTestEmulator> {
  const emulator = await startGcpEmulator({ issuers: opts.issuers ?? [], pools: opts.pools ?? [] });
  const { endpoint } = emulator;
  const adminCall = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${endpoint}/__emulator/${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    if (!res.ok) throw new Error(`emulator admin ${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: TEST_TOKEN, expiry_date: Date.now() + 24 * 3600 * 1000 });
  const call: CloudCall = async (operation, fn) => {
    try {
      return await fn(new AbortController().signal);
    } catch (err) {
      throw classifyGcpError(operation, err);
    }
  };
  const root = `${endpoint}/`;
  const client = createGcpPort(auth, call, { iam: root, cloudresourcemanager: root, storage: root, secretmanager: root, pubsub: root });
  return {
    endpoint,
    state: emulator.state,
    client,
    addProject: async (projectId, projectNumber) => void (await adminCall('POST', 'projects', { projectId, projectNumber })),
    addBucket: async (name) => void (await adminCall('POST', 'buckets', { name })),
    addTopic: async (project, topic) => void (await adminCall('POST', 'topics', { project, topic })),
    addSecret: async (project, secret) => void (await adminCall('POST', 'secrets', { project, secret })),
    setFaults: async (faults) => void (await adminCall('POST', 'faults', faults)),
    editByHand: async (target, change) => {
      for (;;) {
        const p = await client.getIamPolicy(target);
        try {
          await client.setIamPolicy(target, { ...p, bindings: change(p.bindings ?? []) });
          return;
        } catch (err) {
          if (!isCloudError(err, 'conflict')) throw err;
        }
      }
    },
    operatorCalls: async () => ((await adminCall('GET', 'log')) as { calls: LoggedCall[] }).calls.filter((c) => c.caller === OPERATOR_TOKEN),
    clearLog: async () => void (await adminCall('DELETE', 'log')),
    policyWrites: async () => ((await adminCall('GET', 'policy-writes')) as { writes: PolicyWrite[] }).writes,
    setClock: async (offsetSeconds) => void (await adminCall('POST', 'clock', { offsetSeconds })),
    accessToken: async (token) => {
      const res = await fetch(`${endpoint}/__emulator/access-tokens/${encodeURIComponent(token)}`);
      return res.status === 404 ? undefined : ((await res.json()) as IssuedToken);
    },
    stop: () => emulator.close(),
  };
}

export interface FederationProviderSpec {
  /** Project id or number. */
  project: string;
  pool: string;
  provider: string;
  issuer: string;
  /** Keys to upload (jwksJson), for an issuer Google cannot reach; without it the issuer's published keys are used. */
  jwks?: object;
  attributeCondition?: string;
}

/**
 * What a platform team does once per cluster for Workload Identity Federation: a workload identity pool and an OIDC
 * provider trusting the cluster's issuer with google.subject=assertion.sub, through IAM v1 like any client (here
 * @googleapis/iam; gcloud iam workload-identity-pools does the same). Idempotent. The provider's full name.
 */
export async function createWorkloadIdentityProvider(endpoint: string, accessToken: string, spec: FederationProviderSpec): Promise<string> {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: accessToken, expiry_date: Date.now() + 3600 * 1000 });
  const pools = iam({ version: 'v1', auth: auth as unknown as iam_v1.Options['auth'], rootUrl: `${endpoint.replace(/\/*$/, '')}/` }).projects.locations.workloadIdentityPools;
  const exists = (err: unknown) => (err as { status?: number }).status === 409;
  const parent = `projects/${spec.project}/locations/global`;
  await pools.create({ parent, workloadIdentityPoolId: spec.pool, requestBody: { displayName: spec.pool.slice(0, 32) } }).catch((err: unknown) => {
    if (!exists(err)) throw err;
  });
  await pools.providers
    .create({
      parent: `${parent}/workloadIdentityPools/${spec.pool}`,
      workloadIdentityPoolProviderId: spec.provider,
      requestBody: {
        attributeMapping: { 'google.subject': 'assertion.sub' },
        ...(spec.attributeCondition ? { attributeCondition: spec.attributeCondition } : {}),
        oidc: { issuerUri: spec.issuer, ...(spec.jwks ? { jwksJson: JSON.stringify(spec.jwks) } : {}) },
      },
    })
    .catch((err: unknown) => {
      if (!exists(err)) throw err;
    });
  const { data } = await pools.providers.get({ name: `${parent}/workloadIdentityPools/${spec.pool}/providers/${spec.provider}` });
  return data.name ?? '';
}
