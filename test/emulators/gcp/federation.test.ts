// The GCP emulator's Workload Identity Federation routes through the real clients: @googleapis/iam for workload
// identity pools, providers and their operations; google-auth-library's IdentityPoolClient for the STS exchange and
// impersonation, as a pod's client library performs them; testIamPermissions with the tokens it issued.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { iam, type iam_v1 } from '@googleapis/iam';
import { IdentityPoolClient, OAuth2Client } from 'google-auth-library';
import { staticIssuer } from '../oidc/issuers.ts';
import type { Jwks } from '../oidc/jwt.ts';
import { startGcpEmulator, type GcpEmulator } from './server.ts';
import { GoogleError } from './state.ts';

const PROJECT = 'fed-project';
const NUMBER = '424242';
const ISSUER = 'https://cluster.issuer.test';
const POOL = `projects/${NUMBER}/locations/global/workloadIdentityPools/clusters`;
const PROVIDER = `${POOL}/providers/prod`;
const STS_AUDIENCE = `//iam.googleapis.com/${PROVIDER}`;
const SUBJECT = 'system:serviceaccount:shop:catalog-sa';
const PRINCIPAL = `principal://iam.googleapis.com/${POOL}/subject/${SUBJECT}`;
const stale = () => new GoogleError(409, 'ABORTED', 'stale');

function keyPair(kid: string): { privateKey: KeyObject; jwks: Jwks } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }] } };
}

const cluster = keyPair('k1');
const other = keyPair('k1');

function jwt(claims: object, key = cluster.privateKey): string {
  const input = `${Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'k1' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

/** A ServiceAccount token as the cluster issues it for a projected volume. */
function serviceAccountToken(over: { sub?: string; aud?: string; iss?: string; key?: KeyObject } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const sub = over.sub ?? SUBJECT;
  const [, , namespace = '', name = ''] = sub.split(':');
  return jwt({ iss: over.iss ?? ISSUER, sub, aud: [over.aud ?? `https://iam.googleapis.com/${PROVIDER}`], iat: now, nbf: now, exp: now + 600, 'kubernetes.io': { namespace, serviceaccount: { name } } }, over.key);
}

describe('GCP emulator: Workload Identity Federation', () => {
  let emulator: GcpEmulator;
  let pools: iam_v1.Resource$Projects$Locations$Workloadidentitypools;
  let dir: string;

  /** What a pod's google-auth-library does with an external_account configuration and this token. */
  const exchange = async (token: string, opts: { audience?: string; impersonate?: string } = {}) => {
    const client = new IdentityPoolClient({
      type: 'external_account',
      audience: opts.audience ?? STS_AUDIENCE,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: `${emulator.endpoint}/v1/token`,
      subject_token_supplier: { getSubjectToken: () => Promise.resolve(token) },
      ...(opts.impersonate ? { service_account_impersonation_url: `${emulator.endpoint}/v1/projects/-/serviceAccounts/${opts.impersonate}:generateAccessToken` } : {}),
    });
    return (await client.getAccessToken()).token ?? '';
  };
  /** The STS error an exchange ends with: the OAuth `error` and its description. */
  const refusal = async (token: string, opts: { audience?: string } = {}) => {
    try {
      await exchange(token, opts);
    } catch (err) {
      const data = (err as { response?: { data?: { error?: string; error_description?: string } } }).response?.data;
      return `${data?.error ?? 'no error code'}: ${data?.error_description ?? (err as Error).message}`;
    }
    return 'accepted';
  };
  const googleError = async (call: () => Promise<unknown>) => {
    try {
      await call();
    } catch (err) {
      const e = err as { status?: number; response?: { data?: { error?: { status?: string; message?: string } } } };
      return `${e.status ?? 0} ${e.response?.data?.error?.status ?? ''}: ${e.response?.data?.error?.message ?? ''}`;
    }
    return 'accepted';
  };
  const provider = (over: Partial<iam_v1.Schema$WorkloadIdentityPoolProvider> = {}): iam_v1.Schema$WorkloadIdentityPoolProvider => ({
    attributeMapping: { 'google.subject': 'assertion.sub', 'attribute.namespace': "assertion['kubernetes.io']['namespace']" },
    oidc: { issuerUri: ISSUER },
    ...over,
  });
  const createProvider = async (id: string, body = provider(), parent = POOL) => pools.providers.create({ parent, workloadIdentityPoolProviderId: id, requestBody: body });
  const admin = new OAuth2Client();
  admin.setCredentials({ access_token: 'emulator-admin', expiry_date: Date.now() + 3600_000 });

  before(async () => {
    emulator = await startGcpEmulator({ projects: [{ projectId: PROJECT, projectNumber: NUMBER }], issuers: [staticIssuer(ISSUER, cluster.jwks)] });
    pools = iam({ version: 'v1', auth: admin as unknown as iam_v1.Options['auth'], rootUrl: `${emulator.endpoint}/` }).projects.locations.workloadIdentityPools;
    await pools.create({ parent: `projects/${PROJECT}/locations/global`, workloadIdentityPoolId: 'clusters', requestBody: { displayName: 'Clusters' } });
    await createProvider('prod');
    dir = mkdtempSync(path.join(os.tmpdir(), 'gcp-federation-'));
  });

  after(async () => {
    await emulator.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('workload identity pools and providers (IAM v1)', () => {
    it('answers a create with a long-running operation that operations.get reports done, with the pool named by project number', async () => {
      const { data: op } = await pools.create({ parent: `projects/${PROJECT}/locations/global`, workloadIdentityPoolId: 'ops-pool', requestBody: { description: 'ops' } });
      assert.equal(op.done, false);
      assert.match(op.name ?? '', new RegExp(`^projects/${NUMBER}/locations/global/workloadIdentityPools/ops-pool/operations/[0-9a-f]+$`));
      const { data: done } = await pools.operations.get({ name: op.name ?? '' });
      assert.equal(done.done, true);
      assert.equal((done.response as { name?: string } | undefined)?.name, `projects/${NUMBER}/locations/global/workloadIdentityPools/ops-pool`);
      const { data: pool } = await pools.get({ name: `projects/${PROJECT}/locations/global/workloadIdentityPools/ops-pool` });
      assert.deepEqual(pool, { name: `projects/${NUMBER}/locations/global/workloadIdentityPools/ops-pool`, displayName: '', description: 'ops', state: 'ACTIVE', disabled: false });
    });

    it('refuses a second pool of the same id and ids IAM does not allow', async () => {
      assert.match(await googleError(() => pools.create({ parent: `projects/${PROJECT}/locations/global`, workloadIdentityPoolId: 'clusters', requestBody: {} })), /^409 ALREADY_EXISTS/);
      for (const id of ['abc', 'gcp-pool', 'Upper-Case', 'x'.repeat(33)]) {
        assert.match(await googleError(() => pools.create({ parent: `projects/${PROJECT}/locations/global`, workloadIdentityPoolId: id, requestBody: {} })), /^400 INVALID_ARGUMENT: Invalid pool id/, id);
      }
    });

    it('keeps a deleted pool in state DELETED, listed only with showDeleted, until it is undeleted', async () => {
      const name = `projects/${PROJECT}/locations/global/workloadIdentityPools/short-lived`;
      await pools.create({ parent: `projects/${PROJECT}/locations/global`, workloadIdentityPoolId: 'short-lived', requestBody: {} });
      await pools.delete({ name });
      assert.equal((await pools.get({ name })).data.state, 'DELETED');
      const listed = async (showDeleted: boolean) => ((await pools.list({ parent: `projects/${PROJECT}/locations/global`, showDeleted })).data.workloadIdentityPools ?? []).map((p) => p.name?.split('/').pop());
      assert.ok(!(await listed(false)).includes('short-lived'));
      assert.ok((await listed(true)).includes('short-lived'));
      await pools.undelete({ name });
      assert.equal((await pools.get({ name })).data.state, 'ACTIVE');
    });

    it('returns the provider as written, with its mapping and issuer', async () => {
      const { data } = await pools.providers.get({ name: PROVIDER });
      assert.deepEqual(data, { name: PROVIDER, displayName: '', description: '', state: 'ACTIVE', disabled: false, attributeMapping: provider().attributeMapping, oidc: { issuerUri: ISSUER } });
    });

    const invalidProviders: [string, iam_v1.Schema$WorkloadIdentityPoolProvider, RegExp][] = [
      ['no google.subject mapping', provider({ attributeMapping: { 'attribute.ns': 'assertion.sub' } }), /must contain a mapping for google\.subject/],
      ['an http issuer', provider({ oidc: { issuerUri: 'http://cluster.issuer.test' } }), /must be an HTTPS endpoint/],
      ['a condition the emulator cannot evaluate', provider({ attributeCondition: "assertion.sub.matches('^system:')" }), /The GCP emulator cannot evaluate the attribute condition .*unsupported function matches/],
      ['a mapping key IAM does not know', provider({ attributeMapping: { 'google.subject': 'assertion.sub', 'attribute.Name-X': 'assertion.sub' } }), /Invalid attribute mapping key/],
      ['eleven allowed audiences', provider({ oidc: { issuerUri: ISSUER, allowedAudiences: Array.from({ length: 11 }, (_, i) => `aud-${i}`) } }), /At most 10 allowed audiences/],
    ];
    for (const [what, body, message] of invalidProviders) {
      it(`refuses a provider with ${what}`, async () => {
        assert.match(await googleError(() => createProvider('refused', body)), message);
      });
    }
  });

  describe('Security Token Service with a provider', () => {
    it('exchanges a token of the provider’s issuer for a federated token of the principal its subject names', async () => {
      const token = await exchange(serviceAccountToken());
      assert.equal(emulator.tokens.issued.get(token)?.principal, PRINCIPAL);
      assert.ok(emulator.tokens.issued.get(token)?.members.includes(`principalSet://iam.googleapis.com/${POOL}/attribute.namespace/shop`));
    });

    it('accepts the provider’s name without https: as the token audience too, by default', async () => {
      assert.equal(await refusal(serviceAccountToken({ aud: STS_AUDIENCE })), 'accepted');
    });

    it('reads the subject token from a file, as a pod’s credential_source does', async () => {
      const file = path.join(dir, 'token');
      writeFileSync(file, serviceAccountToken());
      const client = new IdentityPoolClient({ type: 'external_account', audience: STS_AUDIENCE, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt', token_url: `${emulator.endpoint}/v1/token`, credential_source: { file, format: { type: 'text' } } });
      const { token } = await client.getAccessToken();
      assert.equal(emulator.tokens.issued.get(token ?? '')?.principal, PRINCIPAL);
    });

    const refusals: [string, () => string, { audience?: string } | undefined, RegExp][] = [
      ['a token of another issuer', () => serviceAccountToken({ iss: 'https://other.issuer.test' }), undefined, /^invalid_grant: The issuer in ID Token https:\/\/other\.issuer\.test does not match the expected ones \[https:\/\/cluster\.issuer\.test\]\.$/],
      ['a token the issuer never signed', () => serviceAccountToken({ key: other.privateKey }), undefined, /^invalid_grant: Invalid JWT signature\.$/],
      ['a token for another audience', () => serviceAccountToken({ aud: 'sts.amazonaws.com' }), undefined, /^invalid_grant: The audience in ID Token \[sts\.amazonaws\.com\] does not match the expected audience/],
      ['a provider that does not exist', () => serviceAccountToken(), { audience: `${STS_AUDIENCE}-gone` }, /^invalid_target: The target service indicated by the "audience" parameters is invalid/],
      ['a subject over google.subject’s 127 bytes', () => serviceAccountToken({ sub: `system:serviceaccount:shop:${'s'.repeat(120)}` }), undefined, /^invalid_grant: The size of mapped attribute google\.subject exceeds the 127 bytes limit/],
    ];
    for (const [what, token, opts, message] of refusals) it(`refuses ${what}`, async () => assert.match(await refusal(token(), opts), message));

    it('holds a token to the provider’s allowedAudiences once it has some', async () => {
      await createProvider('audiences', provider({ oidc: { issuerUri: ISSUER, allowedAudiences: ['my-clusters'] } }));
      const audience = `//iam.googleapis.com/${POOL}/providers/audiences`;
      assert.match(await refusal(serviceAccountToken({ aud: `https://iam.googleapis.com/${POOL}/providers/audiences` }), { audience }), /^invalid_grant: The audience in ID Token .* does not match the expected audience my-clusters\.$/);
      assert.equal(await refusal(serviceAccountToken({ aud: 'my-clusters' }), { audience }), 'accepted');
    });

    it('applies the attribute condition: a ServiceAccount of another namespace is refused', async () => {
      await createProvider('shop-only', provider({ attributeCondition: "attribute.namespace == 'shop' && assertion.sub.startsWith('system:serviceaccount:')" }));
      const audience = `//iam.googleapis.com/${POOL}/providers/shop-only`;
      const aud = `https://iam.googleapis.com/${POOL}/providers/shop-only`;
      assert.equal(await refusal(serviceAccountToken({ aud }), { audience }), 'accepted');
      assert.match(await refusal(serviceAccountToken({ aud, sub: 'system:serviceaccount:kube-system:default' }), { audience }), /^invalid_grant: The given credential is rejected by the attribute condition\.$/);
    });

    it('verifies with the provider’s jwksJson instead of the issuer’s published keys when it has one', async () => {
      const uploaded = keyPair('k1');
      await createProvider('uploaded', provider({ oidc: { issuerUri: ISSUER, jwksJson: JSON.stringify(uploaded.jwks) } }));
      const audience = `//iam.googleapis.com/${POOL}/providers/uploaded`;
      const aud = `https://iam.googleapis.com/${POOL}/providers/uploaded`;
      assert.equal(await refusal(serviceAccountToken({ aud, key: uploaded.privateKey }), { audience }), 'accepted');
      assert.match(await refusal(serviceAccountToken({ aud }), { audience }), /^invalid_grant: Invalid JWT signature\.$/);
    });

    it('refuses every exchange through a disabled or deleted provider, and accepts again once it is back', async () => {
      await createProvider('toggled');
      const name = `${POOL}/providers/toggled`;
      const audience = `//iam.googleapis.com/${name}`;
      const token = () => serviceAccountToken({ aud: `https://iam.googleapis.com/${name}` });
      await pools.providers.patch({ name, updateMask: 'disabled', requestBody: { disabled: true } });
      assert.match(await refusal(token(), { audience }), /^invalid_target:/);
      await pools.providers.patch({ name, updateMask: 'disabled', requestBody: { disabled: false } });
      assert.equal(await refusal(token(), { audience }), 'accepted');
      await pools.providers.delete({ name });
      assert.match(await refusal(token(), { audience }), /^invalid_target:/);
      await pools.providers.undelete({ name });
      assert.equal(await refusal(token(), { audience }), 'accepted');
    });
  });

  describe('what a federated token may do', () => {
    const email = `impersonated@${PROJECT}.iam.gserviceaccount.com`;
    before(() => {
      emulator.state.createServiceAccount(PROJECT, { accountId: 'impersonated' });
      emulator.state.writePolicy(`serviceAccount/${email}`, 'sa', { bindings: [{ role: 'roles/iam.workloadIdentityUser', members: [PRINCIPAL] }] }, stale);
      emulator.state.addResource('bucket/covers');
      emulator.state.writePolicy('bucket/covers', 'bucket', { bindings: [{ role: 'roles/storage.objectViewer', members: [PRINCIPAL] }] }, stale);
    });

    it('impersonates a Google service account on which exactly its principal is a workloadIdentityUser', async () => {
      const token = await exchange(serviceAccountToken(), { impersonate: email });
      assert.equal(emulator.tokens.issued.get(token)?.principal, `serviceAccount:${email}`);
    });

    it('may not impersonate it as another ServiceAccount of the pool', async () => {
      const err = await exchange(serviceAccountToken({ sub: 'system:serviceaccount:shop:intruder' }), { impersonate: email }).then(
        () => undefined,
        (e: unknown) => e as { response?: { status?: number; data?: { error?: { status?: string } } } },
      );
      assert.equal(err?.response?.status, 403);
      assert.equal(err?.response?.data?.error?.status, 'PERMISSION_DENIED');
    });

    it('holds the permissions of the bindings that name its principal, and none elsewhere', async () => {
      const test = async (token: string, resource: string) => {
        const res = await fetch(`${emulator.endpoint}${resource}`, { headers: { authorization: `Bearer ${token}` } });
        return { status: res.status, body: (await res.json()) as { permissions?: string[] } };
      };
      const query = '?permissions=storage.objects.get&permissions=storage.objects.delete';
      const mine = await test(await exchange(serviceAccountToken()), `/storage/v1/b/covers/iam/testPermissions${query}`);
      assert.deepEqual(mine.body.permissions, ['storage.objects.get']);
      const theirs = await test(await exchange(serviceAccountToken({ sub: 'system:serviceaccount:shop:other-sa' })), `/storage/v1/b/covers/iam/testPermissions${query}`);
      assert.equal(theirs.body.permissions, undefined);
      assert.equal((await test('not-a-token', `/storage/v1/b/covers/iam/testPermissions${query}`)).status, 401);
    });
  });
});
