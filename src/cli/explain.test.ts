import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import type { WorkloadIdentity } from '../api/types.ts';
import { explain, renderExplain, type ExplainInput, type Link } from './explain.ts';
import { aPod, aServiceAccount, aWorkloadIdentity, AZURE_STATUS, condition, IRSA_STATUS } from './fake/fixtures.ts';

const ROLE = IRSA_STATUS.aws?.roleArn ?? '';
const IRSA_ENV = { AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token' };
const IRSA_VOLUME = { name: 'aws-iam-token', mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount', audience: 'sts.amazonaws.com' };
const AZURE_ENV = { AZURE_CLIENT_ID: AZURE_STATUS.azure?.clientId ?? '', AZURE_TENANT_ID: 'tenant', AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token' };
const AZURE_VOLUME = { name: 'azure-identity-token', mountPath: '/var/run/secrets/azure/tokens', audience: 'api://AzureADTokenExchange' };

function input(pods: V1Pod[], identities: WorkloadIdentity[], serviceAccount: V1ServiceAccount | undefined, kind = 'deployment'): ExplainInput {
  return { namespace: 'bookstore', workload: { kind, name: 'catalog' }, pods, serviceAccountName: 'catalog-sa', serviceAccount, identities, webhooks: ['pod-identity-webhook.amazonaws.com', 'mutation.azure-workload-identity.io'] };
}

const catalog = (status = IRSA_STATUS, overrides: Parameters<typeof aWorkloadIdentity>[2] = []) => {
  const wi = aWorkloadIdentity('catalog', status, overrides);
  wi.spec.serviceAccountName = 'catalog-sa';
  return wi;
};
const annotated = (at = '2026-01-01T10:00:00Z') => aServiceAccount('catalog-sa', { 'eks.amazonaws.com/role-arn': ROLE }, at);
const link = (links: Link[], name: string) => links.find((l) => l.link === name);

describe('explain', () => {
  it('marks every link OK for a pod the webhook injected for a Ready identity', () => {
    const pod = aPod('catalog-7d9f4-abcde', { at: '2026-01-01T11:00:00Z', env: IRSA_ENV, tokenVolume: IRSA_VOLUME });
    const [chain] = explain(input([pod], [catalog(IRSA_STATUS, [condition('CredentialsVerified', 'True', 'Verified')])], annotated()));
    assert.deepEqual(
      chain?.links.map((l) => [l.link, l.state]),
      [
        ['ServiceAccount', 'OK'],
        ['WorkloadIdentity', 'OK'],
        ['cloud identity', 'OK'],
        ['trust', 'OK'],
        ['permissions', 'OK'],
        ['annotation', 'OK'],
        ['injection', 'OK'],
        ['token audience', 'OK'],
        ['CredentialsVerified', 'OK'],
      ],
    );
    assert.equal(link(chain?.links ?? [], 'token audience')?.detail, `sts.amazonaws.com (AWS_WEB_IDENTITY_TOKEN_FILE=${IRSA_ENV.AWS_WEB_IDENTITY_TOKEN_FILE})`);
  });

  it('says a pod created before the annotation got nothing, and restarts its Deployment', () => {
    const pod = aPod('catalog-7d9f4-abcde', { at: '2026-01-01T09:00:00Z' });
    const [chain] = explain(input([pod], [catalog()], annotated('2026-01-01T10:00:00Z'), 'pod'));
    const injection = link(chain?.links ?? [], 'injection');
    assert.equal(injection?.state, 'BROKEN');
    assert.match(injection?.detail ?? '', /it was created at 2026-01-01T09:00:00Z, before the annotation eks\.amazonaws\.com\/role-arn was set at 2026-01-01T10:00:00Z/);
    assert.equal(injection?.fix, 'kubectl rollout restart -n bookstore deployment/catalog', 'the Deployment, found from the pod');
    assert.equal(link(chain?.links ?? [], 'token audience')?.state, '-');
  });

  it('blames the missing webhook when a pod newer than the annotation got nothing', () => {
    const pod = aPod('catalog-7d9f4-abcde', { at: '2026-01-01T11:00:00Z' });
    const [chain] = explain({ ...input([pod], [catalog()], annotated()), webhooks: [] });
    assert.match(link(chain?.links ?? [], 'injection')?.detail ?? '', /no mutating webhook pod-identity-webhook\.amazonaws\.com is registered/);
  });

  it('says an Azure pod lacks the label the webhook selects on', () => {
    const pod = aPod('catalog-7d9f4-abcde', { at: '2026-01-01T11:00:00Z' });
    const sa = aServiceAccount('catalog-sa', { 'azure.workload.identity/client-id': AZURE_STATUS.azure?.clientId ?? '' }, '2026-01-01T10:00:00Z', 'keyless-azure');
    const [chain] = explain(input([pod], [catalog(AZURE_STATUS)], sa));
    const injection = link(chain?.links ?? [], 'injection');
    assert.match(injection?.detail ?? '', /lacks the label azure\.workload\.identity\/use: "true"/);
    assert.match(injection?.fix ?? '', /pod template's labels .* kubectl rollout restart -n bookstore deployment\/catalog$/);
  });

  it('catches a token projected for another audience', () => {
    const pod = aPod('catalog-7d9f4-abcde', { env: AZURE_ENV, labels: { 'azure.workload.identity/use': 'true' }, tokenVolume: { ...AZURE_VOLUME, audience: 'sts.amazonaws.com' } });
    const sa = aServiceAccount('catalog-sa', { 'azure.workload.identity/client-id': AZURE_STATUS.azure?.clientId ?? '' });
    const [chain] = explain(input([pod], [catalog(AZURE_STATUS)], sa));
    assert.equal(link(chain?.links ?? [], 'injection')?.state, 'OK');
    assert.match(link(chain?.links ?? [], 'token audience')?.detail ?? '', /^sts\.amazonaws\.com, but WorkloadIdentity needs api:\/\/AzureADTokenExchange$/);
  });

  it('follows a broken identity to its failed step and an annotation it could not set', () => {
    const wi = catalog(IRSA_STATUS, [condition('ServiceAccountReady', 'False', 'AnnotationConflict', 'kubectl-annotate owns eks.amazonaws.com/role-arn'), condition('Ready', 'False', 'AnnotationConflict')]);
    const sa = aServiceAccount('catalog-sa', { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/by-hand' });
    const [chain] = explain(input([], [wi], sa));
    assert.match(link(chain?.links ?? [], 'WorkloadIdentity')?.detail ?? '', /ServiceAccountReady=False AnnotationConflict/);
    const annotation = link(chain?.links ?? [], 'annotation');
    assert.equal(annotation?.state, 'BROKEN');
    assert.equal(annotation?.fix, 'kubectl-annotate owns eks.amazonaws.com/role-arn');
  });

  it('points a ServiceAccount with an identity set by hand to migrate', () => {
    const pod = aPod('catalog-7d9f4-abcde', { env: IRSA_ENV, tokenVolume: IRSA_VOLUME });
    const [chain] = explain(input([pod], [], aServiceAccount('catalog-sa', { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/by-hand' })));
    assert.equal(chain?.identity, undefined);
    assert.match(link(chain?.links ?? [], 'WorkloadIdentity')?.fix ?? '', /^kubectl keyless migrate -n bookstore/);
    assert.equal(link(chain?.links ?? [], 'injection')?.state, 'WARN', 'its credentials are not Keyless\'s');
  });

  it('says a GKE pod on the host network gets the node\'s identity', () => {
    const gke = { cloud: 'gcp' as const, mechanism: 'ServiceAccount', identity: 'app@p.iam.gserviceaccount.com', gcp: { serviceAccountEmail: 'app@p.iam.gserviceaccount.com' } };
    const sa = aServiceAccount('catalog-sa', { 'iam.gke.io/gcp-service-account': 'app@p.iam.gserviceaccount.com' });
    const [onHost] = explain(input([aPod('p', { hostNetwork: true })], [catalog(gke)], sa));
    assert.equal(link(onHost?.links ?? [], 'injection')?.state, 'BROKEN');
    const [plain] = explain(input([aPod('p')], [catalog(gke)], sa));
    assert.equal(link(plain?.links ?? [], 'injection')?.state, 'OK');
  });

  it('checks what a federated GCP pod mounts itself: the configuration and the token of the provider’s audience', () => {
    const audience = 'https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/clusters/providers/prod';
    const federated = { cloud: 'gcp' as const, mechanism: 'ServiceAccount', identity: 'app@p.iam.gserviceaccount.com', audience, gcp: { serviceAccountEmail: 'app@p.iam.gserviceaccount.com', credentialConfigMap: 'catalog-gcp-credentials' } };
    const mounted = (configMap: string, tokenAudience: string): V1Pod => {
      const pod = aPod('p', { env: { GOOGLE_APPLICATION_CREDENTIALS: '/var/run/secrets/keyless.dev/gcp/credential-configuration.json' } });
      const container = pod.spec?.containers[0];
      if (!pod.spec || !container) throw new Error('aPod has a container');
      container.volumeMounts = [{ name: 'keyless-gcp', mountPath: '/var/run/secrets/keyless.dev/gcp', readOnly: true }];
      pod.spec.volumes = [{ name: 'keyless-gcp', projected: { sources: [{ serviceAccountToken: { audience: tokenAudience, expirationSeconds: 3600, path: 'token' } }, { configMap: { name: configMap } }] } }];
      return pod;
    };
    const states = (pod: V1Pod) => {
      const links = explain(input([pod], [catalog(federated)], aServiceAccount('catalog-sa')))[0]?.links ?? [];
      return ['annotation', 'injection', 'token audience'].map((n) => link(links, n)?.state);
    };
    assert.deepEqual(states(mounted('catalog-gcp-credentials', audience)), ['-', 'OK', 'OK'], 'no annotation needed, both mounts right');
    assert.deepEqual(states(mounted('other-gcp-credentials', audience)), ['-', 'BROKEN', 'OK'], 'another ConfigMap');
    assert.deepEqual(states(mounted('catalog-gcp-credentials', 'sts.amazonaws.com')), ['-', 'OK', 'BROKEN'], 'a token for another audience');
    assert.deepEqual(states(aPod('p')), ['-', 'BROKEN', 'BROKEN'], 'nothing mounted');
  });

  it('renders one table per identity and counts the broken links', () => {
    const pod = aPod('catalog-7d9f4-abcde', { at: '2026-01-01T09:00:00Z' });
    const i = input([pod], [catalog()], annotated());
    const text = renderExplain(i, explain(i));
    assert.match(text, /^deployment\/catalog in namespace bookstore: ServiceAccount catalog-sa, pods catalog-7d9f4-abcde\n\nWorkloadIdentity bookstore\/catalog\nSTATE {4}LINK/);
    assert.match(text, /\n {31}fix: kubectl rollout restart -n bookstore deployment\/catalog\n/);
    assert.match(text, /\n1 broken link\(s\)\.\n$/);
  });
});
