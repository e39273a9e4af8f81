// The ConfigMap a mechanism's pods mount, through the whole WorkloadIdentity pipeline: the GKE provider over a
// federated CloudAccount (Workload Identity Federation off GKE) and the in-memory cluster. Recorded before it is
// created, owned and labelled, repaired, never taken from someone else, deleted on delete and on a cloud switch, kept
// under Orphan.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { REASON } from '../../api/constants.ts';
import type { WorkloadIdentity } from '../../api/types.ts';
import { FakeCloud, FakeProvider, placeOf } from '../../providers/fake/provider.ts';
import { FakeGcpExchange } from '../../providers/gke-workload-identity/fake/exchange.ts';
import { FakeGcp } from '../../providers/gke-workload-identity/fake/gcp.ts';
import { GkeWorkloadIdentityProvider } from '../../providers/gke-workload-identity/provider.ts';
import { shareGcpReads } from '../../providers/gke-workload-identity/shared-port.ts';
import { providerRegistry } from '../../providers/registry.ts';
import { labelValue, markerLabels } from './config-map.ts';
import { aReadyAccount, aWorkloadIdentity, CLUSTER, harness, type Harness } from './fixtures.ts';

const PROJECT = 'proj-123';
const PROVIDER = 'projects/42/locations/global/workloadIdentityPools/clusters/providers/prod';
const FEDERATED = aReadyAccount('prod-gcp', { gcp: { projectId: PROJECT, projectNumber: '42', workloadIdentityProvider: PROVIDER } });
const AWS = aReadyAccount('prod-aws', { aws: { accountId: '111111111111', region: 'us-east-1' } });
const KEY = 'shop/catalog';
const CM = 'catalog-gcp-credentials';

function setup(): { h: Harness; gcp: FakeGcp } {
  const gcp = new FakeGcp(PROJECT);
  const port = shareGcpReads(gcp, { maxAgeMs: 0 });
  const cloud = new FakeCloud();
  const urls = { sts: 'http://sts.test/', iamcredentials: 'http://iamcredentials.test/' };
  const h = harness(
    providerRegistry({
      'gcp/ServiceAccount': () => new GkeWorkloadIdentityProvider('ServiceAccount', port, new FakeGcpExchange(gcp), { urls, federated: true }),
      'gcp/DirectPrincipal': () => new GkeWorkloadIdentityProvider('DirectPrincipal', port, new FakeGcpExchange(gcp), { urls, federated: true }),
      'aws/IRSA': (account) => new FakeProvider('aws', 'IRSA', cloud, placeOf(account)),
    }),
  );
  h.cluster.putNamespace('shop');
  h.cluster.putAccount(FEDERATED);
  h.cluster.putAccount(AWS);
  h.cluster.createServiceAccount('shop', 'catalog-sa');
  return { h, gcp };
}

const federated = () => aWorkloadIdentity('catalog').inAccount('prod-gcp').gcp(['roles/cloudtrace.agent']);
const condition = (wi: WorkloadIdentity | undefined, type: string) => wi?.status?.conditions?.find((c) => c.type === type);

describe('the credential configuration ConfigMap of a federated GCP identity', () => {
  let h: Harness;
  let gcp: FakeGcp;
  beforeEach(() => ({ h, gcp } = setup()));

  it('is created owned by the WorkloadIdentity, labelled with its marker, and named in status', async () => {
    h.cluster.applyIdentity(federated().build());
    await h.settle(KEY);
    const wi = h.cluster.identity(KEY);
    const cm = h.cluster.configMap('shop', CM);
    assert.ok(cm && wi);
    assert.deepEqual(cm.metadata?.labels, { 'app.kubernetes.io/managed-by': 'keyless', 'keyless.dev/cluster': CLUSTER, 'keyless.dev/namespace': 'shop', 'keyless.dev/name': 'catalog' });
    assert.deepEqual(cm.metadata?.ownerReferences, [{ apiVersion: 'keyless.dev/v1alpha1', kind: 'WorkloadIdentity', name: 'catalog', uid: wi.metadata.uid, controller: true }]);
    const config = JSON.parse(cm.data?.['credential-configuration.json'] ?? '{}') as { audience?: string; service_account_impersonation_url?: string };
    assert.equal(config.audience, `//iam.googleapis.com/${PROVIDER}`);
    assert.match(config.service_account_impersonation_url ?? '', new RegExp(`${wi.status?.gcp?.serviceAccountEmail ?? 'missing'}:generateAccessToken$`));
    assert.equal(wi.status?.gcp?.credentialConfigMap, CM);
    assert.deepEqual(wi.status?.provisioned?.configMap, { name: CM });
    assert.equal(condition(wi, 'Ready')?.status, 'True');
    assert.match(condition(wi, 'ServiceAccountReady')?.message ?? '', /^ConfigMap shop\/catalog-gcp-credentials holds credential-configuration\.json\. ServiceAccount shop\/catalog-sa needs no annotation for this mechanism\. Pods need \(no webhook adds it\): a projected volume/);
    assert.equal(h.cluster.serviceAccountAnnotations('shop', 'catalog-sa')?.['iam.gke.io/gcp-service-account'], undefined);
  });

  it('is in the record before it is created', async () => {
    h.cluster.applyIdentity(federated().build());
    await h.settle(KEY);
    const writes = h.cluster.writes;
    const created = writes.indexOf(`create:configmaps/shop/${CM}`);
    const firstStatus = writes.findIndex((w) => w.startsWith('status:'));
    assert.ok(firstStatus >= 0 && firstStatus < created, writes.join(', '));
    const versions = (h.cluster.versions.get(KEY) ?? []).filter((v): v is WorkloadIdentity => v !== null);
    const firstRecord = versions.find((v) => v.status?.provisioned !== undefined);
    assert.deepEqual(firstRecord?.status?.provisioned?.configMap, { name: CM }, 'the first record written already names the ConfigMap');
  });

  it('costs no Kubernetes write at steady state', async () => {
    h.cluster.applyIdentity(federated().build());
    await h.settle(KEY);
    h.cluster.writes.length = 0;
    await h.settle(KEY);
    assert.deepEqual(h.cluster.writes, []);
  });

  it('is restored when someone edits or deletes it', async () => {
    h.cluster.applyIdentity(federated().build());
    await h.settle(KEY);
    const original = h.cluster.configMap('shop', CM);
    assert.ok(original);
    h.cluster.putConfigMap({ ...original, data: { 'credential-configuration.json': '{"type":"service_account"}' } });
    await h.settle(KEY);
    assert.deepEqual(h.cluster.configMap('shop', CM)?.data, original.data);
    h.cluster.removeConfigMap('shop', CM);
    await h.settle(KEY);
    assert.deepEqual(h.cluster.configMap('shop', CM)?.data, original.data);
  });

  it('follows a mechanism switch: DirectPrincipal pods act as the principal, without impersonation', async () => {
    h.cluster.applyIdentity(federated().build());
    await h.settle(KEY);
    h.cluster.applyIdentity(federated().withSpec((s) => ({ ...s, gcp: { ...s.gcp, mechanism: 'DirectPrincipal' } })).build());
    await h.settle(KEY);
    const config = JSON.parse(h.cluster.configMap('shop', CM)?.data?.['credential-configuration.json'] ?? '{}') as Record<string, unknown>;
    assert.equal('service_account_impersonation_url' in config, false);
    assert.equal(gcp.serviceAccounts.size, 0);
  });

  it('is never taken from someone else: a foreign ConfigMap of that name is NotOwned and left as it is', async () => {
    h.cluster.putConfigMap({ metadata: { name: CM, namespace: 'shop', labels: { team: 'books' } }, data: { mine: 'yes' } });
    h.cluster.applyIdentity(federated().build());
    await h.settle(KEY);
    const wi = h.cluster.identity(KEY);
    assert.equal(condition(wi, 'ServiceAccountReady')?.reason, REASON.NotOwned);
    assert.match(condition(wi, 'ServiceAccountReady')?.message ?? '', /ConfigMap shop\/catalog-gcp-credentials already exists and is not owned by this WorkloadIdentity\. It carries no Keyless ownership labels/);
    assert.equal(condition(wi, 'Ready')?.status, 'False');
    assert.deepEqual(h.cluster.configMap('shop', CM)?.data, { mine: 'yes' });
    h.cluster.deleteIdentity(KEY);
    await h.settle(KEY);
    assert.equal(h.cluster.identity(KEY), undefined);
    assert.deepEqual(h.cluster.configMap('shop', CM)?.data, { mine: 'yes' }, 'revocation leaves the foreign ConfigMap too');
  });

  it('is not recreated in a namespace that is being deleted', async () => {
    h.cluster.applyIdentity(federated().build());
    await h.settle(KEY);
    h.cluster.putNamespace('shop', {}, true);
    h.cluster.removeConfigMap('shop', CM);
    h.cluster.writes.length = 0;
    await h.reconcile(KEY);
    assert.equal(h.cluster.configMap('shop', CM), undefined);
    assert.deepEqual(h.cluster.writes.filter((w) => w.includes('configmaps')), []);
    assert.equal(condition(h.cluster.identity(KEY), 'ServiceAccountReady')?.reason, REASON.Deleting);
  });

  it('is deleted with the WorkloadIdentity, before the cloud objects go', async () => {
    h.cluster.applyIdentity(federated().build());
    await h.settle(KEY);
    h.cluster.writes.length = 0;
    h.cluster.deleteIdentity(KEY);
    await h.settle(KEY);
    assert.equal(h.cluster.identity(KEY), undefined);
    assert.equal(h.cluster.configMap('shop', CM), undefined);
    assert.equal(h.cluster.writes[0], `delete:configmaps/shop/${CM}`);
    assert.equal(gcp.serviceAccounts.size, 0);
  });

  it('is deleted when the spec switches cloud, with the rest of the record', async () => {
    h.cluster.applyIdentity(federated().build());
    await h.settle(KEY);
    h.cluster.applyIdentity(aWorkloadIdentity('catalog').inAccount('prod-aws').aws(['s3:GetObject']).build());
    await h.settle(KEY);
    const wi = h.cluster.identity(KEY);
    assert.equal(h.cluster.configMap('shop', CM), undefined);
    assert.equal(wi?.status?.provisioned?.cloud, 'aws');
    assert.equal(wi?.status?.provisioned?.configMap, undefined);
    assert.equal(gcp.serviceAccounts.size, 0);
  });

  it('is kept, without its owner reference, under deletionPolicy Orphan', async () => {
    h.cluster.applyIdentity(federated().withSpec((s) => ({ ...s, deletionPolicy: 'Orphan' })).build());
    await h.settle(KEY);
    h.cluster.deleteIdentity(KEY);
    await h.settle(KEY);
    assert.equal(h.cluster.identity(KEY), undefined);
    const cm = h.cluster.configMap('shop', CM);
    assert.ok(cm, 'the pods keep their credential configuration');
    assert.deepEqual(cm.metadata?.ownerReferences, []);
    assert.match(h.cluster.events.find((e) => e.reason === 'Orphaned')?.message ?? '', /ConfigMap shop\/catalog-gcp-credentials/);
  });
});

describe('ConfigMap marker labels', () => {
  it('keep a value that is a valid label value, and cut anything else to 63 characters with a hash', () => {
    assert.equal(labelValue('catalog'), 'catalog');
    const long = labelValue('x'.repeat(200));
    assert.equal(long.length, 63);
    assert.match(long, /^x+-[0-9a-f]{8}$/);
    assert.match(labelValue('prod/eu cluster'), /^prod-eu-cluster-[0-9a-f]{8}$/);
    assert.notEqual(labelValue('x'.repeat(200)), labelValue(`${'x'.repeat(199)}y`));
  });

  it('name the cluster, namespace and WorkloadIdentity', () => {
    const wi = { apiVersion: 'keyless.dev/v1alpha1', kind: 'WorkloadIdentity', metadata: { name: 'catalog', namespace: 'shop' }, spec: { serviceAccountName: 's', cloudAccountRef: { name: 'a' } } } as const;
    assert.deepEqual(markerLabels('c1', wi), { 'app.kubernetes.io/managed-by': 'keyless', 'keyless.dev/cluster': 'c1', 'keyless.dev/namespace': 'shop', 'keyless.dev/name': 'catalog' });
  });
});
