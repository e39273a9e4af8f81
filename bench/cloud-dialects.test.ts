// The bench's write limits answer as Google and ARM do, so the operator meets the throttling it would meet in
// production: Google's 429 RESOURCE_EXHAUSTED error JSON (no retry by the REST clients), ARM's 429 with Retry-After
// and its error body (retried by the SDK after that many seconds). Reads, getIamPolicy (a POST) and list-like POSTs
// are never limited; stale-etag answers are counted as conflicts. No timings are asserted.
// Run: node --test 'bench/**/*.test.ts'
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import { OAuth2Client } from 'google-auth-library';
import { createMsiPort } from '../src/providers/aks-workload-identity/arm-client.ts';
import { classifyAzureError } from '../src/providers/aks-workload-identity/errors.ts';
import { isCloudError } from '../src/providers/cloud-error.ts';
import { classifyGcpError } from '../src/providers/gke-workload-identity/errors.ts';
import { createGcpPort } from '../src/providers/gke-workload-identity/gcp-client.ts';
import type { CloudCall, Classify } from '../src/providers/instrument.ts';
import { emulatorTls } from '../test/emulators/azure/tls.ts';
import { TEST_RESOURCE_GROUP, TEST_SUBSCRIPTION, startTestAzure, type TestAzure } from '../test/support/azure.ts';
import { startGcpTestEmulator, type GcpTestEmulator } from '../test/support/gcp.ts';
import { armDialect, gcpDialect } from './cloud-dialects.ts';
import { startCloudProxy, type CloudProxy } from './cloud-proxy.ts';

/** The operator's way of calling: its classifier turns SDK errors into CloudError. */
const calling =
  (classify: Classify): CloudCall =>
  async (operation, fn) => {
    try {
      return await fn(new AbortController().signal);
    } catch (err) {
      throw classify(operation, err);
    }
  };

/** A limit that lets one write through and then none for a long while. */
const ONE_WRITE = { writeRate: 0.001, writeBurst: 1 };

describe('which requests are writes', () => {
  const cases: [string, ReturnType<typeof gcpDialect.classify>['bucket'], string, string][] = [
    ['a Google getIamPolicy is a POST that reads', undefined, 'POST', '/v1/projects/p:getIamPolicy'],
    ['a Google setIamPolicy writes', 'gcp', 'POST', '/v1/projects/p:setIamPolicy'],
    ['a Cloud Storage policy PUT writes', 'gcp', 'PUT', '/storage/v1/b/bucket/iam'],
    ['creating a Google service account writes', 'gcp', 'POST', '/v1/projects/p/serviceAccounts'],
    ['reading a Google service account reads', undefined, 'GET', '/v1/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com'],
  ];
  for (const [name, bucket, method, url] of cases) it(name, () => assert.equal(gcpDialect.classify(method, url, '').bucket, bucket));

  const rg = `/subscriptions/${TEST_SUBSCRIPTION}/resourceGroups/${TEST_RESOURCE_GROUP}`;
  const armCases: [string, string | undefined, string, string][] = [
    ['an ARM PUT writes', 'arm', 'PUT', `${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a?api-version=2024-11-30`],
    ['an ARM DELETE writes', 'arm', 'DELETE', `${rg}/providers/Microsoft.Authorization/roleAssignments/b?api-version=2022-04-01`],
    ['an ARM action POST writes', 'arm', 'POST', `${rg}/providers/Microsoft.Compute/virtualMachines/vm/restart?api-version=2024-07-01`],
    ['a list-like ARM POST reads', undefined, 'POST', `${rg}/providers/Microsoft.Storage/storageAccounts/s/listKeys?api-version=2023-05-01`],
    ['an ARM GET reads', undefined, 'GET', `${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a?api-version=2024-11-30`],
    ["Entra's token endpoint on the same host is not ARM", undefined, 'POST', '/tenant/oauth2/v2.0/token'],
  ];
  for (const [name, bucket, method, url] of armCases) it(name, () => assert.equal(armDialect.classify(method, url, '').bucket, bucket));
});

describe('Google Cloud behind the bench proxy', () => {
  let gcp: GcpTestEmulator;
  let proxy: CloudProxy;
  before(async () => {
    gcp = await startGcpTestEmulator();
    await gcp.addProject('bench-test', '1234');
    proxy = await startCloudProxy(gcpDialect, { latencyMs: 0, writeRate: 0, writeBurst: 1, upstream: gcp.endpoint });
  });
  after(async () => {
    await proxy.stop();
    await gcp.stop();
  });
  const port = () => {
    const auth = new OAuth2Client();
    auth.setCredentials({ access_token: 'bench-test', expiry_date: Date.now() + 3_600_000 });
    const root = `${proxy.endpoint}/`;
    return createGcpPort(auth, calling(classifyGcpError), { iam: root, cloudresourcemanager: root, storage: root, secretmanager: root, pubsub: root });
  };
  const project = { kind: 'project', project: 'bench-test' } as const;

  it("answers a write beyond the limit 429 with Google's RESOURCE_EXHAUSTED error JSON, and never a read", async () => {
    proxy.configure(ONE_WRITE);
    try {
      const p = port();
      const policy = await p.getIamPolicy(project);
      await p.setIamPolicy(project, { ...policy, bindings: [{ role: 'roles/viewer', members: ['user:a@example.com'] }] });
      const res = await fetch(`${proxy.endpoint}/v1/projects/bench-test:setIamPolicy`, { method: 'POST', headers: { authorization: 'Bearer t', 'content-type': 'application/json' }, body: '{"policy":{}}' });
      assert.equal(res.status, 429);
      const body = (await res.json()) as { error: Record<string, unknown> };
      assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'status']);
      assert.equal(body.error['code'], 429);
      assert.equal(body.error['status'], 'RESOURCE_EXHAUSTED');
      assert.match(String(body.error['message']), /^Quota exceeded for quota metric .* of service 'cloudresourcemanager\.googleapis\.com'/);
      await assert.rejects(p.createServiceAccount('bench-test', 'throttled-sa', { displayName: 'x', description: 'y' }), (err) => isCloudError(err, 'throttled') && err.code === 'RESOURCE_EXHAUSTED');
      assert.ok(await p.getIamPolicy(project), 'getIamPolicy is a POST but a read: never limited');
      const counts = proxy.snapshot();
      assert.equal(counts.byOperation['projects.setIamPolicy']?.throttled, 1);
      assert.equal(counts.byOperation['CreateServiceAccount']?.throttled, 1);
      assert.equal(counts.byOperation['projects.getIamPolicy']?.throttled, 0);
      assert.equal(counts.acceptedWrites['gcp'], 1);
    } finally {
      proxy.configure({ writeRate: 0 });
    }
  });

  it('counts a write on a stale etag (409 ABORTED) as a conflict', async () => {
    const p = port();
    const before = proxy.snapshot().conflicts;
    const stale = await p.getIamPolicy(project);
    await p.setIamPolicy(project, { ...stale, bindings: [{ role: 'roles/viewer', members: ['user:b@example.com'] }] });
    await assert.rejects(p.setIamPolicy(project, { ...stale, bindings: [{ role: 'roles/viewer', members: ['user:c@example.com'] }] }), (err) => isCloudError(err, 'conflict'));
    assert.equal(proxy.snapshot().conflicts - before, 1);
    assert.equal(proxy.snapshot().errors['projects.setIamPolicy 409 ABORTED'], 1);
  });
});

describe('Azure Resource Manager behind the bench proxy', () => {
  let azure: TestAzure;
  let proxy: CloudProxy;
  let dir: string;
  let ca: string;
  before(async () => {
    azure = await startTestAzure();
    dir = mkdtempSync(path.join(os.tmpdir(), 'keyless-bench-test-'));
    const tls = emulatorTls(dir);
    ca = tls.ca;
    proxy = await startCloudProxy(armDialect, { latencyMs: 0, writeRate: 0, writeBurst: 1, upstream: azure.emulator.endpoint }, { cert: tls.cert, key: tls.key, upstreamCa: azure.ca });
  });
  after(async () => {
    await proxy.stop();
    await azure.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const msi = (maxRetries: number) =>
    createMsiPort(
      new ManagedServiceIdentityClient({ getToken: () => Promise.resolve({ token: 't', expiresOnTimestamp: Date.now() + 60_000 }) }, TEST_SUBSCRIPTION, {
        endpoint: proxy.endpoint,
        tlsOptions: { ca },
        retryOptions: { maxRetries },
      }),
      TEST_RESOURCE_GROUP,
      calling(classifyAzureError),
    );
  /** The raw answer to an identity PUT: status, headers and body as ARM sends them. */
  const rawPut = (name: string) =>
    new Promise<{ status: number; retryAfter: string | undefined; body: unknown }>((resolve, reject) => {
      const url = new URL(`${proxy.endpoint}/subscriptions/${TEST_SUBSCRIPTION}/resourceGroups/${TEST_RESOURCE_GROUP}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}?api-version=2024-11-30`);
      const req = https.request(url, { method: 'PUT', ca, headers: { authorization: 'Bearer t', 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ location: 'eastus' }));
    });

  it('answers a write beyond the limit 429 with Retry-After and the ARM error body TooManyRequests, and never a read', async () => {
    proxy.configure(ONE_WRITE);
    try {
      const p = msi(0);
      await p.putIdentity('first', { location: 'eastus', tags: {} });
      const raw = await rawPut('second');
      assert.equal(raw.status, 429);
      assert.match(raw.retryAfter ?? '', /^[1-9][0-9]*$/, 'Retry-After in whole seconds');
      assert.deepEqual(Object.keys((raw.body as { error: object }).error).sort(), ['code', 'message']);
      assert.equal((raw.body as { error: { code: string } }).error.code, 'TooManyRequests');
      await assert.rejects(p.putIdentity('third', { location: 'eastus', tags: {} }), (err) => isCloudError(err, 'throttled') && err.code === 'TooManyRequests');
      assert.ok(await p.getIdentity('first'), 'reads are never limited');
      const counts = proxy.snapshot();
      assert.equal(counts.byOperation['UserAssignedIdentities_CreateOrUpdate']?.throttled, 2);
      assert.equal(counts.byOperation['UserAssignedIdentities_Get']?.throttled, 0);
    } finally {
      proxy.configure({ writeRate: 0 });
    }
  });

  it("is retried by the SDK after the Retry-After it carries, each attempt counted", async () => {
    proxy.configure({ writeRate: 1, writeBurst: 1 });
    try {
      const p = msi(1);
      const before = proxy.snapshot().byOperation['UserAssignedIdentities_CreateOrUpdate']?.calls ?? 0;
      await p.putIdentity('paced-one', { location: 'eastus', tags: {} });
      await p.putIdentity('paced-two', { location: 'eastus', tags: {} });
      const after = proxy.snapshot().byOperation['UserAssignedIdentities_CreateOrUpdate'];
      assert.equal((after?.calls ?? 0) - before, 3, 'the second PUT was throttled once and retried');
      assert.ok(await p.getIdentity('paced-two'));
    } finally {
      proxy.configure({ writeRate: 0 });
    }
  });
});
