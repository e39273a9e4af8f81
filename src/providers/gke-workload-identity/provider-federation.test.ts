// The GKE provider for a cluster that is not GKE: a CloudAccount with spec.gcp.workloadIdentityProvider. The same two
// mechanisms, with the pool's principal for the exact token subject as the trusted member, no annotation, and the
// credential configuration the pods mount.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CloudAccount, GcpMechanism } from '../../api/types.ts';
import { converge, revokeIntended } from '../fake/contract.ts';
import { accountForRecord } from '../registry.ts';
import { fakeToken } from '../fake/token.ts';
import type { IdentityContext } from '../types.ts';
import { checkGcpAccount } from './account-check.ts';
import { FakeGcpExchange } from './fake/exchange.ts';
import { FakeFederation } from './fake/federation.ts';
import { FakeGcp } from './fake/gcp.ts';
import { GkeWorkloadIdentityProvider } from './provider.ts';
import type { PolicyTarget } from './resources.ts';
import { shareGcpReads } from './shared-port.ts';

const PROJECT = 'my-project';
const NUMBER = '123456789012';
const PROVIDER = `projects/${NUMBER}/locations/global/workloadIdentityPools/my-clusters/providers/prod-eks`;
const ISSUER = 'https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE';
const SUBJECT = 'system:serviceaccount:bookstore:catalog-sa';
const PRINCIPAL = `principal://iam.googleapis.com/projects/${NUMBER}/locations/global/workloadIdentityPools/my-clusters/subject/${SUBJECT}`;
const TOKEN_AUDIENCE = `https://iam.googleapis.com/${PROVIDER}`;
const URLS = { sts: 'http://sts.test/', iamcredentials: 'http://iamcredentials.test/' };
const project: PolicyTarget = { kind: 'project', project: PROJECT };

function federatedAccount(gcp: Partial<NonNullable<CloudAccount['spec']['gcp']>> = {}): CloudAccount {
  return {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'CloudAccount',
    metadata: { name: 'prod-gcp' },
    spec: { gcp: { projectId: PROJECT, projectNumber: NUMBER, workloadIdentityProvider: PROVIDER, ...gcp } },
    status: { issuer: ISSUER },
  };
}

function context(account = federatedAccount(), serviceAccountName = 'catalog-sa', namespace = 'bookstore'): IdentityContext {
  return {
    cluster: 'c1',
    namespace,
    name: 'catalog',
    uid: 'uid-1',
    serviceAccountName,
    subject: `system:serviceaccount:${namespace}:${serviceAccountName}`,
    issuer: ISSUER,
    account,
    serviceAccountAnnotations: undefined,
    spec: { serviceAccountName, cloudAccountRef: { name: 'prod-gcp' }, gcp: { roles: [{ role: 'roles/cloudtrace.agent' }] } },
  };
}

function world(): FakeGcp {
  const gcp = new FakeGcp(PROJECT);
  gcp.addResource(project, { version: 1, bindings: [{ role: 'roles/owner', members: ['user:root@example.com'] }] });
  return gcp;
}

const provider = (mode: GcpMechanism, gcp: FakeGcp) => new GkeWorkloadIdentityProvider(mode, shareGcpReads(gcp, { maxAgeMs: 0 }), new FakeGcpExchange(gcp), { urls: URLS, federated: true });
const members = (gcp: FakeGcp, target: PolicyTarget) => (gcp.policy(target).bindings ?? []).map((b) => ({ role: b.role, members: b.members }));
const configuration = (data: Record<string, string> | undefined) => JSON.parse(data?.['credential-configuration.json'] ?? '{}') as Record<string, unknown>;

describe('GkeWorkloadIdentityProvider through Workload Identity Federation, ServiceAccount mode', () => {
  it('lets exactly the federated principal of the ServiceAccount impersonate the Google service account, and annotates nothing', async () => {
    const gcp = world();
    const result = await converge(provider('ServiceAccount', gcp), context());
    const [sa] = [...gcp.serviceAccounts.values()];
    assert.ok(sa);
    assert.deepEqual(members(gcp, { kind: 'serviceAccount', project: PROJECT, email: sa.email }), [{ role: 'roles/iam.workloadIdentityUser', members: [PRINCIPAL] }]);
    assert.deepEqual(members(gcp, project), [
      { role: 'roles/owner', members: ['user:root@example.com'] },
      { role: 'roles/cloudtrace.agent', members: [`serviceAccount:${sa.email}`] },
    ]);
    assert.deepEqual(result.serviceAccountAnnotations, {}, 'nothing reads iam.gke.io/gcp-service-account off GKE');
    assert.deepEqual(result.status, { identity: sa.email, audience: TOKEN_AUDIENCE, gcp: { serviceAccountEmail: sa.email, member: `serviceAccount:${sa.email}`, credentialConfigMap: 'catalog-gcp-credentials' } });
    assert.match(result.messages.trust, new RegExp(`lets ${PRINCIPAL.replace(/[./]/g, '\\$&')} impersonate it`));
  });

  it('hands the pods a credential configuration that exchanges at STS and impersonates the service account', async () => {
    const gcp = world();
    const result = await converge(provider('ServiceAccount', gcp), context());
    const email = result.status.gcp?.serviceAccountEmail ?? '';
    assert.equal(result.configMap?.name, 'catalog-gcp-credentials');
    assert.deepEqual(configuration(result.configMap?.data), {
      universe_domain: 'googleapis.com',
      type: 'external_account',
      audience: `//iam.googleapis.com/${PROVIDER}`,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: 'http://sts.test/v1/token',
      service_account_impersonation_url: `http://iamcredentials.test/v1/projects/-/serviceAccounts/${email}:generateAccessToken`,
      credential_source: { file: '/var/run/secrets/keyless.dev/gcp/token', format: { type: 'text' } },
    });
    assert.match(result.serviceAccountHint ?? '', /configMap \{name: catalog-gcp-credentials\}/);
  });

  it('removes a principalSet (or any other member) someone added to the service account’s workloadIdentityUser binding', async () => {
    const gcp = world();
    const p = provider('ServiceAccount', gcp);
    const first = await converge(p, context());
    const target: PolicyTarget = { kind: 'serviceAccount', project: PROJECT, email: first.status.gcp?.serviceAccountEmail ?? '' };
    const everyone = `principalSet://iam.googleapis.com/projects/${NUMBER}/locations/global/workloadIdentityPools/my-clusters/*`;
    gcp.foreignWrite(target, (pol) => ({ ...pol, bindings: [{ role: 'roles/iam.workloadIdentityUser', members: [PRINCIPAL, everyone] }] }));
    const again = await converge(p, { ...context(), record: first.record });
    assert.deepEqual(again.changes.map((c) => c.action), ['TrustRestricted']);
    assert.deepEqual(members(gcp, target), [{ role: 'roles/iam.workloadIdentityUser', members: [PRINCIPAL] }]);
  });

  it('records the ConfigMap with the service account and the grants before anything is created', async () => {
    const gcp = world();
    const p = provider('ServiceAccount', gcp);
    const desired = p.desired(context());
    const intent = p.intent(desired, await p.observe(desired));
    assert.deepEqual(intent.configMap, { name: 'catalog-gcp-credentials' });
    assert.equal(intent.gcp?.workloadIdentityProvider, PROVIDER);
    assert.equal(intent.gcp?.workloadPool, 'my-clusters');
    assert.deepEqual(gcp.writes, []);
  });

  it('revokes from the record alone: the federated principal’s trust, the grants, the service account', async () => {
    const gcp = world();
    const p = provider('ServiceAccount', gcp);
    const { record } = await converge(p, context());
    const revoked = await p.revoke(record, context());
    assert.equal(revoked.complete, true);
    assert.deepEqual(revoked.changes.map((c) => c.action), ['TrustRevoked', 'RoleRevoked', 'Deleted']);
    assert.equal(gcp.serviceAccounts.size, 0);
    assert.deepEqual(members(gcp, project), [{ role: 'roles/owner', members: ['user:root@example.com'] }]);
  });
});

describe('GkeWorkloadIdentityProvider through Workload Identity Federation, DirectPrincipal', () => {
  it('grants to the pool’s principal for the exact subject, never a principalSet, and revokes exactly that', async () => {
    const gcp = world();
    const p = provider('DirectPrincipal', gcp);
    const result = await converge(p, context());
    assert.deepEqual(members(gcp, project), [
      { role: 'roles/owner', members: ['user:root@example.com'] },
      { role: 'roles/cloudtrace.agent', members: [PRINCIPAL] },
    ]);
    assert.equal(result.status.identity, PRINCIPAL);
    assert.equal('service_account_impersonation_url' in configuration(result.configMap?.data), false, 'the pod acts as the principal itself');
    assert.equal(gcp.serviceAccounts.size, 0);
    await revokeIntended(p, { ...context(), record: result.record });
    assert.deepEqual(members(gcp, project), [{ role: 'roles/owner', members: ['user:root@example.com'] }]);
  });

  it('refuses a ServiceAccount whose token subject exceeds google.subject’s 127 bytes', () => {
    const ctx = context(federatedAccount(), 's'.repeat(90), 'team-with-a-long-namespace-name');
    assert.match(provider('DirectPrincipal', world()).validate(ctx).join(' '), /refuses a google\.subject over 127/);
    const gke = context({ ...federatedAccount(), spec: { gcp: { projectId: PROJECT, projectNumber: NUMBER } } }, 's'.repeat(90), 'team-with-a-long-namespace-name');
    assert.deepEqual(provider('DirectPrincipal', world()).validate(gke), [], 'GKE names the principal after namespace and name, not the subject');
  });
});

describe('GkeWorkloadIdentityProvider records across the GKE and federation pools', () => {
  it('continues a record of the same pool through another provider, and nothing across GKE and federation', async () => {
    const gcp = world();
    const p = provider('DirectPrincipal', gcp);
    const { record } = await converge(p, context());
    assert.equal(p.continues(record, context()), true);
    const otherProvider = federatedAccount({ workloadIdentityProvider: PROVIDER.replace('prod-eks', 'prod-eks-2') });
    assert.equal(p.continues(record, context(otherProvider)), true, 'same pool, same principals');
    const otherPool = federatedAccount({ workloadIdentityProvider: PROVIDER.replace('my-clusters', 'other-pool') });
    assert.equal(p.continues(record, context(otherPool)), false);
    const gke = context({ ...federatedAccount(), spec: { gcp: { projectId: PROJECT, projectNumber: NUMBER } } });
    assert.equal(p.continues(record, gke), false, 'GKE’s pool names other members');
    const gkeRecord = (await converge(provider('DirectPrincipal', world()), gke)).record;
    assert.equal(p.continues(gkeRecord, context()), false);
  });

  it('rebuilds a federated account from the record once the CloudAccount is gone', async () => {
    const { record } = await converge(provider('DirectPrincipal', world()), context());
    const rebuilt = accountForRecord({ cloud: 'gcp', cloudAccount: 'prod-gcp', mechanism: 'DirectPrincipal', ...record }, undefined);
    assert.deepEqual(rebuilt.spec.gcp, { projectId: PROJECT, projectNumber: NUMBER, workloadIdentityProvider: PROVIDER });
  });
});

describe('GkeWorkloadIdentityProvider credentials through Workload Identity Federation', () => {
  const token = (sa: string, aud = TOKEN_AUDIENCE) => fakeToken({ iss: ISSUER, sub: `system:serviceaccount:bookstore:${sa}`, aud });

  it('projects the provider’s https name as the audience and impersonates as the pod would', async () => {
    const gcp = world();
    const p = provider('ServiceAccount', gcp);
    const { status } = await converge(p, context());
    assert.equal(p.credentials.audience(context()), TOKEN_AUDIENCE);
    const ok = await p.credentials.exchange(context(), status, token('catalog-sa'));
    assert.equal(ok.ok, true, ok.message);
    assert.match(ok.message, /through provider projects\//);
    assert.equal((await p.credentials.exchange(context(), status, token('intruder'))).reason, 'TrustRejected');
    assert.equal((await p.credentials.exchange(context(), status, token('catalog-sa', 'sts.amazonaws.com'))).reason, 'IssuerNotTrusted');
  });
});

describe('the CloudAccount check of a federated account', () => {
  const check = (federation: FakeFederation, account = federatedAccount()) => {
    const gcp = world();
    return checkGcpAccount(shareGcpReads(gcp, { maxAgeMs: 0 }), account, federation);
  };

  it('is Ready with the issuer the provider trusts', async () => {
    const federation = new FakeFederation();
    federation.add(PROVIDER, ISSUER);
    const verdict = await check(federation);
    assert.equal(verdict.ok, true, verdict.message);
    assert.equal(verdict.issuer, ISSUER);
  });

  const refusals: [string, (f: FakeFederation) => void, string, RegExp][] = [
    ['a provider that does not exist', () => undefined, 'OIDCProviderNotFound', /does not exist: create it/],
    ['a deleted provider', (f) => f.add(PROVIDER, ISSUER, (p) => ({ ...p, state: 'DELETED' })), 'OIDCProviderNotFound', /is DELETED/],
    ['a disabled provider', (f) => f.add(PROVIDER, ISSUER, (p) => ({ ...p, disabled: true })), 'IssuerNotTrusted', /is disabled/],
    ['a provider mapping google.subject from another claim', (f) => f.add(PROVIDER, ISSUER, (p) => ({ ...p, attributeMapping: { 'google.subject': 'assertion.email' } })), 'IssuerNotTrusted', /maps google\.subject=assertion\.email/],
    ['a provider whose allowed audiences leave out the pods’ audience', (f) => f.add(PROVIDER, ISSUER, (p) => ({ ...p, oidc: { issuerUri: ISSUER, allowedAudiences: ['sts.amazonaws.com'], jwksJson: false } })), 'IssuerNotTrusted', /accepts only the audiences sts\.amazonaws\.com/],
  ];
  for (const [what, arrange, reason, message] of refusals) {
    it(`is not Ready for ${what}: ${reason}`, async () => {
      const federation = new FakeFederation();
      arrange(federation);
      const verdict = await check(federation);
      assert.equal(verdict.ok, false);
      assert.equal(verdict.reason, reason);
      assert.match(verdict.message, message);
    });
  }

  it('refuses a provider of another project as an invalid spec before any call', async () => {
    const verdict = await check(new FakeFederation(), federatedAccount({ projectNumber: '999' }));
    assert.equal(verdict.reason, 'InvalidSpec');
  });
});
