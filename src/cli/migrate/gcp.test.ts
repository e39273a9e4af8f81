import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CloudAccount } from '../../api/types.ts';
import { FakeGcp } from '../../providers/gke-workload-identity/fake/gcp.ts';
import type { HandMade } from './candidates.ts';
import { planGcp, projectOf, readServiceAccount, type GcpFacts, type GcpReader } from './gcp.ts';

const PROJECT = 'my-project';
const EMAIL = `orders@${PROJECT}.iam.gserviceaccount.com`;
const KSA = `serviceAccount:${PROJECT}.svc.id.goog[shop/orders-sa]`;
const account: CloudAccount = { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: 'prod-gcp' }, spec: { gcp: { projectId: PROJECT, projectNumber: '123' }, guardrails: { allowAdoption: true } } };
const source: HandMade = { cloud: 'gcp', namespace: 'shop', serviceAccount: 'orders-sa', identity: EMAIL, annotations: { 'iam.gke.io/gcp-service-account': EMAIL }, sharedWith: [] };

/** The operator's fake GcpPort, plus the listing migrate adds. */
function reader(gcp: FakeGcp, lists: { buckets?: string[]; topics?: string[]; secrets?: string[] } = {}): GcpReader {
  return {
    getServiceAccount: (p, e) => gcp.getServiceAccount(p, e),
    getIamPolicy: (t) => gcp.getIamPolicy(t),
    listServiceAccounts: () => Promise.resolve([...gcp.serviceAccounts.keys()]),
    listBuckets: () => Promise.resolve(lists.buckets ?? []),
    listTopics: () => Promise.resolve(lists.topics ?? []),
    listSecrets: () => Promise.resolve(lists.secrets ?? []),
  };
}

async function world(impersonators: string[] = [KSA]): Promise<FakeGcp> {
  const gcp = new FakeGcp(PROJECT);
  await gcp.createServiceAccount(PROJECT, 'orders', { displayName: 'orders', description: 'by hand' });
  await gcp.createServiceAccount(PROJECT, 'invoicer', { displayName: 'invoicer', description: '' });
  const me = `serviceAccount:${EMAIL}`;
  gcp.foreignWrite({ kind: 'serviceAccount', project: PROJECT, email: EMAIL }, () => ({ bindings: [{ role: 'roles/iam.workloadIdentityUser', members: impersonators }] }));
  gcp.foreignWrite({ kind: 'project', project: PROJECT }, () => ({ bindings: [{ role: 'roles/cloudtrace.agent', members: [me, 'user:ops@example.com'] }] }));
  gcp.addResource({ kind: 'topic', project: PROJECT, topic: 'orders' }, { bindings: [{ role: 'roles/pubsub.publisher', members: [me] }] });
  gcp.addResource({ kind: 'bucket', bucket: 'invoices' }, { bindings: [{ role: 'roles/storage.objectViewer', members: [me], condition: { title: 'pdf', expression: 'resource.name.endsWith(".pdf")' } }] });
  gcp.foreignWrite({ kind: 'serviceAccount', project: PROJECT, email: `invoicer@${PROJECT}.iam.gserviceaccount.com` }, () => ({ bindings: [{ role: 'roles/iam.serviceAccountTokenCreator', members: [me] }] }));
  return gcp;
}

const read = async (gcp: FakeGcp): Promise<GcpFacts> => {
  const facts = await readServiceAccount(reader(gcp, { buckets: ['invoices'], topics: ['orders'] }), PROJECT, EMAIL);
  assert.ok(facts);
  return facts;
};

describe('migrate: GKE', () => {
  it('finds every grant in the project, its buckets, topics and service accounts, and writes none', async () => {
    const gcp = await world();
    const writes = gcp.writes.length;
    const plan = planGcp(source, account, await read(gcp));
    assert.equal(gcp.writes.length, writes, 'read only');
    assert.deepEqual(plan.blockers, []);
    assert.equal(plan.adopt, EMAIL);
    assert.deepEqual(plan.spec.gcp, {
      mechanism: 'ServiceAccount',
      roles: [
        { role: 'roles/cloudtrace.agent' },
        { role: 'roles/storage.objectViewer', resource: '//storage.googleapis.com/projects/_/buckets/invoices', condition: { title: 'pdf', expression: 'resource.name.endsWith(".pdf")' } },
        { role: 'roles/pubsub.publisher', resource: `//pubsub.googleapis.com/projects/${PROJECT}/topics/orders` },
      ],
    });
    assert.ok(plan.notes.some((n) => /roles\/iam\.serviceAccountTokenCreator on service account invoicer@.* stays as it is, unmanaged/.test(n)));
  });

  it('leaves alone an account another Kubernetes ServiceAccount may impersonate too', async () => {
    const plan = planGcp(source, account, await read(await world([KSA, `serviceAccount:${PROJECT}.svc.id.goog[shop/reports-sa]`])));
    assert.match(plan.blockers.join(' '), /\[shop\/reports-sa\] may also impersonate the service account/);
  });

  it('leaves alone an account this ServiceAccount may not impersonate', async () => {
    const plan = planGcp(source, account, await read(await world([`serviceAccount:${PROJECT}.svc.id.goog[other/orders-sa]`])));
    assert.match(plan.blockers.join(' '), /\[shop\/orders-sa\] may not impersonate the service account/);
  });

  it('reads only user-managed service accounts', () => {
    assert.equal(projectOf(EMAIL), PROJECT);
    assert.equal(projectOf('123456789-compute@developer.gserviceaccount.com'), undefined);
  });
});
