import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  credentialConfigMapData,
  credentialConfigMapName,
  credentialConfiguration,
  federatedPrincipal,
  federationProblems,
  GOOGLE_EXCHANGE_URLS,
  parseWorkloadIdentityProvider,
  podMountHint,
  stsAudience,
  tokenAudience,
} from './federation.ts';

const NAME = 'projects/123456789012/locations/global/workloadIdentityPools/my-clusters/providers/prod-eks';

describe('Workload Identity Federation names', () => {
  it('parses a provider name into its project number, pool and provider', () => {
    assert.deepEqual(parseWorkloadIdentityProvider(NAME), { name: NAME, projectNumber: '123456789012', pool: 'my-clusters', provider: 'prod-eks' });
  });

  const malformed: [string, string][] = [
    ['a project id instead of a number', NAME.replace('123456789012', 'my-project')],
    ['a regional location', NAME.replace('/global/', '/us-central1/')],
    ['a pool id of 3 characters', NAME.replace('my-clusters', 'abc')],
    ['a pool id of 33 characters', NAME.replace('my-clusters', 'a'.repeat(33))],
    ['uppercase in the provider id', NAME.replace('prod-eks', 'Prod-EKS')],
    ['the reserved gcp- prefix on the pool', NAME.replace('my-clusters', 'gcp-clusters')],
    ['the reserved gcp- prefix on the provider', NAME.replace('prod-eks', 'gcp-eks')],
    ['the pool without a provider', 'projects/123456789012/locations/global/workloadIdentityPools/my-clusters'],
    ['a full resource name with the //iam.googleapis.com/ prefix', `//iam.googleapis.com/${NAME}`],
  ];
  for (const [what, name] of malformed) {
    it(`refuses ${what}`, () => {
      assert.equal(parseWorkloadIdentityProvider(name), undefined);
      assert.match(federationProblems({ projectId: 'my-project', projectNumber: '123456789012', workloadIdentityProvider: name })[0] ?? '', /is not projects\/<number>\/locations\/global/);
    });
  }

  it('refuses a provider in another project than the CloudAccount’s', () => {
    assert.deepEqual(federationProblems({ projectId: 'my-project', projectNumber: '999', workloadIdentityProvider: NAME }), [
      'spec.gcp.workloadIdentityProvider names project number 123456789012, but spec.gcp.projectNumber is 999: the pool must be in the CloudAccount\'s project',
    ]);
  });

  it('refuses GKE’s workloadPool beside a federation provider', () => {
    assert.match(federationProblems({ projectId: 'my-project', projectNumber: '123456789012', workloadPool: 'my-project.svc.id.goog', workloadIdentityProvider: NAME }).join(' '), /cannot be combined/);
  });

  it('finds nothing wrong with a GKE account or a well-formed provider of the project', () => {
    assert.deepEqual(federationProblems({ projectId: 'my-project', projectNumber: '123456789012' }), []);
    assert.deepEqual(federationProblems({ projectId: 'my-project', projectNumber: '123456789012', workloadIdentityProvider: NAME }), []);
  });

  it('names the ServiceAccount as the pool’s principal for exactly its token subject', () => {
    const parsed = parseWorkloadIdentityProvider(NAME);
    assert.ok(parsed);
    assert.equal(
      federatedPrincipal(parsed, 'system:serviceaccount:bookstore:catalog-sa'),
      'principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/my-clusters/subject/system:serviceaccount:bookstore:catalog-sa',
    );
  });

  it('uses the provider’s full name as the STS audience, and its https form for the token', () => {
    assert.equal(stsAudience({ name: NAME }), `//iam.googleapis.com/${NAME}`);
    assert.equal(tokenAudience({ name: NAME }), `https://iam.googleapis.com/${NAME}`);
  });

  it('names the ConfigMap after the WorkloadIdentity, and cuts a long name to 253 characters with a hash', () => {
    assert.equal(credentialConfigMapName('c1', 'bookstore', 'catalog'), 'catalog-gcp-credentials');
    const long = 'a'.repeat(253);
    const name = credentialConfigMapName('c1', 'bookstore', long);
    assert.equal(name.length, 253);
    assert.match(name, /^a+-[0-9a-f]{8}-gcp-credentials$/);
    assert.notEqual(name, credentialConfigMapName('c2', 'bookstore', long), 'another cluster, another hash');
  });
});

describe('the external_account credential configuration', () => {
  it('exchanges the projected token at STS and impersonates the Google service account', () => {
    const email = 'bookstore-catalog-1234abcd@my-project.iam.gserviceaccount.com';
    assert.deepEqual(credentialConfiguration({ name: NAME }, GOOGLE_EXCHANGE_URLS, email), {
      universe_domain: 'googleapis.com',
      type: 'external_account',
      audience: `//iam.googleapis.com/${NAME}`,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: 'https://sts.googleapis.com/v1/token',
      service_account_impersonation_url: `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${email}:generateAccessToken`,
      credential_source: { file: '/var/run/secrets/keyless.dev/gcp/token', format: { type: 'text' } },
    });
  });

  it('acts as the principal itself without a Google service account (DirectPrincipal)', () => {
    const config = credentialConfiguration({ name: NAME }, GOOGLE_EXCHANGE_URLS, undefined);
    assert.equal('service_account_impersonation_url' in config, false);
  });

  it('names the endpoints the operator was configured with (an emulator)', () => {
    const config = credentialConfiguration({ name: NAME }, { sts: 'http://127.0.0.1:8085/', iamcredentials: 'http://127.0.0.1:8085/' }, 'x@p.iam.gserviceaccount.com');
    assert.equal(config['token_url'], 'http://127.0.0.1:8085/v1/token');
    assert.equal(config['service_account_impersonation_url'], 'http://127.0.0.1:8085/v1/projects/-/serviceAccounts/x@p.iam.gserviceaccount.com:generateAccessToken');
  });

  it('is stored as credential-configuration.json, the file GOOGLE_APPLICATION_CREDENTIALS names in the hint', () => {
    const data = credentialConfigMapData({ type: 'external_account' });
    assert.deepEqual(Object.keys(data), ['credential-configuration.json']);
    assert.deepEqual(JSON.parse(data['credential-configuration.json'] ?? ''), { type: 'external_account' });
    const hint = podMountHint('catalog-gcp-credentials', tokenAudience({ name: NAME }), 'my-project');
    assert.match(hint, /GOOGLE_APPLICATION_CREDENTIALS=\/var\/run\/secrets\/keyless\.dev\/gcp\/credential-configuration\.json and GOOGLE_CLOUD_PROJECT=my-project\.$/);
    assert.match(hint, new RegExp(`audience: https://iam\\.googleapis\\.com/${NAME.replace(/\//g, '\\/')}`));
  });
});
