// The WorkloadIdentity reconciler against an in-memory cluster and a fake provider: each behaviour of the pipeline
// (resolve, admit, revoke, provision, bind, report), in milliseconds. The providers' own suites cover the clouds.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { FINALIZER, REASON, SERVICE_ACCOUNT_ANNOTATION, WORKLOAD_IDENTITY_ANNOTATION } from '../../api/constants.ts';
import type { WorkloadIdentity } from '../../api/types.ts';
import { TerminalError } from '../../controller/errors.ts';
import { CloudError } from '../../providers/cloud-error.ts';
import { FakeCloud, FakeProvider, placeOf } from '../../providers/fake/provider.ts';
import { providerRegistry } from '../../providers/registry.ts';
import { aReadyAccount, aWorkloadIdentity, harness, type Harness } from './fixtures.ts';

const AWS = aReadyAccount('prod-aws', { aws: { accountId: '111111111111', region: 'us-east-1' } });
const GCP = aReadyAccount('prod-gcp', { gcp: { projectId: 'proj', projectNumber: '1' } });
const ROLE_ARN = SERVICE_ACCOUNT_ANNOTATION.awsRoleArn;
const KEY = 'shop/catalog';

function setup(): { h: Harness; cloud: FakeCloud } {
  const cloud = new FakeCloud();
  const factories = Object.fromEntries(
    (
      [
        ['aws', 'IRSA'],
        ['aws', 'PodIdentity'],
        ['gcp', 'ServiceAccount'],
        ['gcp', 'DirectPrincipal'],
        ['azure', 'WorkloadIdentity'],
      ] as const
    ).map(([c, m]) => [`${c}/${m}`, (account: Parameters<typeof placeOf>[0]) => new FakeProvider(c, m, cloud, placeOf(account))]),
  );
  const h = harness(providerRegistry(factories));
  h.cluster.putNamespace('shop', { team: 'books' });
  h.cluster.putAccount(AWS);
  h.cluster.putAccount(GCP);
  h.cluster.createServiceAccount('shop', 'catalog-sa');
  return { h, cloud };
}

const condition = (wi: WorkloadIdentity | undefined, type: string) => wi?.status?.conditions?.find((c) => c.type === type);

describe('WorkloadIdentityReconciler', () => {
  let h: Harness;
  let cloud: FakeCloud;
  beforeEach(() => ({ h, cloud } = setup()));

  describe('provisioning', () => {
    it('adds the finalizer, records the identity, converges it, annotates the ServiceAccount and reports Ready', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      assert.deepEqual(await h.settle(KEY), { requeueAfterMs: undefined });
      const wi = h.cluster.identity(KEY);
      assert.deepEqual(wi?.metadata.finalizers, [FINALIZER]);
      assert.equal(condition(wi, 'Ready')?.status, 'True');
      assert.deepEqual(wi?.status?.provisioned, {
        cloud: 'aws',
        cloudAccount: 'prod-aws',
        mechanism: 'IRSA',
        serviceAccountAnnotations: { [ROLE_ARN]: 'arn:aws:iam::111111111111:role/shop-catalog' },
        aws: { accountId: '111111111111', region: 'us-east-1', roleName: 'shop-catalog', roleArn: 'arn:aws:iam::111111111111:role/shop-catalog' },
      });
      assert.deepEqual(cloud.identities.get('aws:111111111111:shop-catalog'), { owner: 'c1/shop/catalog', grants: ['s3:GetObject'] });
      assert.equal(h.cluster.serviceAccountAnnotations('shop', 'catalog-sa')?.[ROLE_ARN], 'arn:aws:iam::111111111111:role/shop-catalog');
    });

    it('writes the record before the cloud write, so a failed ensure leaves it for teardown', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      cloud.failures.push({ operation: 'ensure', error: new CloudError('retryable', 'InternalFailure', 'CreateRole', 'boom') });
      const { error } = await h.reconcile(KEY);
      assert.ok(error instanceof CloudError);
      const wi = h.cluster.identity(KEY);
      assert.equal(wi?.status?.provisioned?.aws?.roleName, 'shop-catalog');
      assert.equal(condition(wi, 'Ready')?.reason, REASON.Reconciling);
    });

    it('creates with at most 4 Kubernetes writes and deletes with at most 2, Events included', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      assert.deepEqual(h.cluster.writes, [`finalizers:workloadidentities/${KEY}`, `status:workloadidentities/${KEY}`, 'apply:serviceaccounts/shop/catalog-sa', `status:workloadidentities/${KEY}`]);
      assert.deepEqual(h.cluster.events, [], 'a first provisioning is routine: its progress is in the conditions');
      h.cluster.writes.length = 0;
      h.cluster.deleteIdentity(KEY);
      await h.settle(KEY);
      assert.equal(h.cluster.identity(KEY), undefined);
      assert.equal(cloud.identities.size, 0);
      assert.deepEqual(h.cluster.writes, ['apply:serviceaccounts/shop/catalog-sa', `finalizers:workloadidentities/${KEY}`]);
      assert.deepEqual(h.cluster.events, []);
    });

    it('does not revoke twice when a reconcile queued during the delete reads the object from a lagging cache', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      h.cluster.deleteIdentity(KEY);
      // The informer will not deliver the deletion for a while: it keeps showing the object, finalizer and all.
      h.cluster.lag(KEY);
      await h.reconcile(KEY);
      assert.equal(cloud.identities.size, 0);
      cloud.calls.length = 0;
      await h.reconcile(KEY);
      assert.deepEqual(cloud.calls, [], 'no second revoke (and so no second annotation apply or finalizer patch)');
    });

    it('still records Events for changes to an identity that exists: a spec edit and a drift repair', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject', 's3:PutObject']).build());
      await h.settle(KEY);
      assert.ok(h.cluster.events.length > 0, 'the spec change is an Event');
      assert.ok(h.cluster.events.every((e) => e.type === 'Normal'));
    });

    it('writes nothing to Kubernetes or the cloud identity in steady state', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      h.cluster.writes.length = 0;
      h.cluster.events.length = 0;
      await h.settle(KEY);
      assert.deepEqual(h.cluster.writes, []);
      assert.deepEqual(h.cluster.events, []);
    });

    it('never reports Ready for a statement that grants nothing, and says what the action needs', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').withSpec((s) => ({ ...s, aws: { policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::your-org-book-covers'] }] } })).build());
      await h.settle(KEY);
      const wi = h.cluster.identity(KEY);
      const permissions = condition(wi, 'PermissionsReady');
      assert.equal(permissions?.reason, REASON.GrantsNothing);
      assert.match(permissions?.message ?? '', /s3:GetObject grants nothing on arn:aws:s3:::your-org-book-covers: it applies to .*\$\{BucketName\}\/\$\{ObjectName\}/);
      assert.equal(condition(wi, 'Ready')?.reason, REASON.GrantsNothing);
      assert.equal(cloud.identities.size, 1, 'the cloud side is provisioned as written');
      assert.ok(h.cluster.events.some((e) => e.type === 'Warning' && e.reason === REASON.GrantsNothing));
    });

    it('names the endpoint and operation of a timed-out cloud call in the condition of a new identity', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      cloud.failures.push({ operation: 'observe', error: new CloudError('retryable', 'Timeout', 'GetRole', 'GetRole at https://iam.amazonaws.com did not answer within 30s') });
      await h.reconcile(KEY);
      assert.match(condition(h.cluster.identity(KEY), 'Ready')?.message ?? '', /GetRole at https:\/\/iam\.amazonaws\.com did not answer within 30s/);
    });
  });

  describe('ServiceAccount annotations', () => {
    it('reports an annotation another tool owns with another value, naming the tool and the way out', async () => {
      h.cluster.annotate('shop', 'catalog-sa', ROLE_ARN, 'arn:aws:iam::111111111111:role/hand-made');
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      const { error } = await h.settle(KEY);
      assert.equal(error, undefined, 'a condition, not a retry loop');
      const wi = h.cluster.identity(KEY);
      const sa = condition(wi, 'ServiceAccountReady');
      assert.equal(sa?.reason, REASON.AnnotationConflict);
      assert.match(sa?.message ?? '', /set by field manager kubectl-annotate/);
      assert.match(sa?.message ?? '', /keyless\.dev\/take-over-annotations=true/);
      assert.equal(condition(wi, 'Ready')?.reason, REASON.AnnotationConflict);
      assert.equal(condition(wi, 'IdentityReady')?.status, 'True');
      assert.equal(h.cluster.serviceAccountAnnotations('shop', 'catalog-sa')?.[ROLE_ARN], 'arn:aws:iam::111111111111:role/hand-made');
    });

    it('takes the annotation over when asked, and then owns it', async () => {
      h.cluster.annotate('shop', 'catalog-sa', ROLE_ARN, 'arn:aws:iam::111111111111:role/hand-made');
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).annotated(WORKLOAD_IDENTITY_ANNOTATION.takeOverAnnotations, 'true').build());
      await h.settle(KEY);
      assert.equal(condition(h.cluster.identity(KEY), 'Ready')?.status, 'True');
      assert.equal(h.cluster.serviceAccountAnnotations('shop', 'catalog-sa')?.[ROLE_ARN], 'arn:aws:iam::111111111111:role/shop-catalog');
    });

    it('shares an annotation that already carries exactly our value', async () => {
      h.cluster.annotate('shop', 'catalog-sa', ROLE_ARN, 'arn:aws:iam::111111111111:role/shop-catalog');
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      assert.equal(condition(h.cluster.identity(KEY), 'Ready')?.status, 'True');
    });
  });

  describe('revocation under edits', () => {
    it('a cloud switch revokes the old cloud and its annotation at once, says so, and deletion then completes', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').gcp(['roles/viewer']).build());
      const { error } = await h.settle(KEY);
      assert.ok(error instanceof TerminalError);
      const wi = h.cluster.identity(KEY);
      assert.equal(cloud.identities.size, 0);
      assert.equal(h.cluster.serviceAccountAnnotations('shop', 'catalog-sa')?.[ROLE_ARN], undefined);
      assert.equal(wi?.status?.provisioned, undefined);
      const ready = condition(wi, 'Ready');
      assert.equal(ready?.reason, REASON.CloudMismatch);
      assert.match(ready?.message ?? '', /no cloud identity and revokes any it had/);
      assert.ok(h.cluster.events.some((e) => e.reason === 'Revoked' && /Keyless revoked what this WorkloadIdentity had in aws: deleted aws:111111111111:shop-catalog/.test(e.message)));

      h.cluster.deleteIdentity(KEY);
      await h.settle(KEY);
      assert.equal(h.cluster.identity(KEY), undefined, 'the finalizer came off');
    });

    it('a namespace the account no longer admits loses its identity, and gets it back when admitted again', async () => {
      h.cluster.putAccount({ ...AWS, spec: { ...AWS.spec, namespaceSelector: { matchLabels: { team: 'books' } } } });
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      h.cluster.putNamespace('shop', {});
      await h.settle(KEY);
      let wi = h.cluster.identity(KEY);
      assert.equal(cloud.identities.size, 0);
      assert.equal(condition(wi, 'Ready')?.reason, REASON.NamespaceNotAllowed);
      assert.match(condition(wi, 'Ready')?.message ?? '', /revokes any it had/);
      h.cluster.putNamespace('shop', { team: 'books' });
      await h.settle(KEY);
      wi = h.cluster.identity(KEY);
      assert.equal(condition(wi, 'Ready')?.status, 'True');
      assert.equal(cloud.identities.size, 1);
    });

    it('a lowered per-namespace quota revokes the newest identity beyond it', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('first').aws(['s3:GetObject']).build());
      h.cluster.applyIdentity(aWorkloadIdentity('second').aws(['s3:GetObject']).build());
      await h.settle('shop/first');
      await h.settle('shop/second');
      h.cluster.putAccount({ ...AWS, spec: { ...AWS.spec, guardrails: { maxIdentitiesPerNamespace: 1 } } });
      await h.settle('shop/first');
      await h.settle('shop/second');
      assert.deepEqual([...cloud.identities.keys()], ['aws:111111111111:shop-first']);
      assert.equal(condition(h.cluster.identity('shop/second'), 'Ready')?.reason, REASON.GuardrailViolation);
    });

    it('an account that now places identities elsewhere gets the old one revoked before the new one is made', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      h.cluster.putAccount({ ...AWS, spec: { aws: { accountId: '222222222222', region: 'us-east-1' } } });
      await h.settle(KEY);
      assert.deepEqual([...cloud.identities.keys()], ['aws:222222222222:shop-catalog']);
      assert.ok(cloud.calls.indexOf('revoke:aws:111111111111:shop-catalog') < cloud.calls.indexOf('ensure:aws:222222222222:shop-catalog'));
      assert.equal(h.cluster.identity(KEY)?.status?.provisioned?.aws?.accountId, '222222222222');
    });

    it('keeps the record and says Revoking while the cloud has not confirmed', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      cloud.revokeLag = 1;
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').gcp(['roles/viewer']).build());
      assert.equal((await h.reconcile(KEY)).requeueAfterMs, 5_000);
      const wi = h.cluster.identity(KEY);
      assert.equal(condition(wi, 'Ready')?.reason, REASON.Revoking);
      assert.ok(wi?.status?.provisioned, 'the record stays until the cloud confirms');
      await h.settle(KEY);
      assert.equal(h.cluster.identity(KEY)?.status?.provisioned, undefined);
    });

    it('reports a failing revocation against the record and retries', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      cloud.failures.push({ operation: 'revoke', error: new CloudError('retryable', 'ServiceFailure', 'DeleteRole', 'boom') });
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').gcp(['roles/viewer']).build());
      const { error } = await h.reconcile(KEY);
      assert.ok(error instanceof CloudError);
      const ready = condition(h.cluster.identity(KEY), 'Ready');
      assert.equal(ready?.reason, REASON.Revoking);
      assert.match(ready?.message ?? '', /Revocation failed: the cloud asked us to retry \(ServiceFailure\)/);
    });
  });

  describe('conflicts', () => {
    it('the loser never provisions, and deleting it leaves the winner\'s annotation alone', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      h.cluster.applyIdentity(aWorkloadIdentity('rival').forServiceAccount('catalog-sa').aws(['s3:PutObject']).withFinalizer(FINALIZER).build());
      await h.settle('shop/rival');
      assert.equal(condition(h.cluster.identity('shop/rival'), 'Ready')?.reason, REASON.Conflict);
      assert.equal(cloud.identities.size, 1);
      h.cluster.deleteIdentity('shop/rival');
      await h.settle('shop/rival');
      assert.equal(h.cluster.identity('shop/rival'), undefined);
      assert.equal(h.cluster.serviceAccountAnnotations('shop', 'catalog-sa')?.[ROLE_ARN], 'arn:aws:iam::111111111111:role/shop-catalog');
      assert.ok(!cloud.calls.some((c) => c.includes('shop-rival')), 'no cloud call for the loser');
    });

    it('the identity that holds a cloud keeps it when an older rival switches into that cloud', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('older').forServiceAccount('catalog-sa').inAccount('prod-gcp').gcp(['roles/viewer']).build());
      h.cluster.applyIdentity(aWorkloadIdentity('newer').forServiceAccount('catalog-sa').aws(['s3:GetObject']).build());
      await h.settle('shop/older');
      await h.settle('shop/newer');
      // The older one now asks for AWS too (through another account of that cloud).
      h.cluster.applyIdentity(aWorkloadIdentity('older').forServiceAccount('catalog-sa').inAccount('prod-aws').aws(['s3:PutObject']).build());
      await h.settle('shop/older');
      await h.settle('shop/newer');
      assert.equal(condition(h.cluster.identity('shop/newer'), 'Ready')?.status, 'True');
      assert.equal(condition(h.cluster.identity('shop/older'), 'Ready')?.reason, REASON.Conflict);
      assert.equal(h.cluster.serviceAccountAnnotations('shop', 'catalog-sa')?.[ROLE_ARN], 'arn:aws:iam::111111111111:role/shop-newer');
    });
  });

  describe('deletion', () => {
    it('revokes from the record after the CloudAccount is gone', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      h.cluster.removeAccount('prod-aws');
      h.cluster.deleteIdentity(KEY);
      await h.settle(KEY);
      assert.equal(h.cluster.identity(KEY), undefined);
      assert.equal(cloud.identities.size, 0);
      assert.equal(h.cluster.serviceAccountAnnotations('shop', 'catalog-sa')?.[ROLE_ARN], undefined);
    });

    it('releases an identity that never provisioned without a cloud call', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').inAccount('missing').aws(['s3:GetObject']).withFinalizer(FINALIZER).build());
      await h.settle(KEY);
      h.cluster.deleteIdentity(KEY);
      await h.settle(KEY);
      assert.equal(h.cluster.identity(KEY), undefined);
      assert.deepEqual(cloud.calls, []);
    });

    it('leaves the cloud objects with deletionPolicy Orphan, and says so', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).withSpec((s) => ({ ...s, deletionPolicy: 'Orphan' })).build());
      await h.settle(KEY);
      h.cluster.deleteIdentity(KEY);
      await h.settle(KEY);
      assert.equal(h.cluster.identity(KEY), undefined);
      assert.equal(cloud.identities.size, 1);
      assert.ok(h.cluster.events.some((e) => e.reason === 'Orphaned'));
    });

    it('treats an object deleted in the middle of a reconcile as gone, not as a failure', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      h.cluster.deleteIdentity(KEY);
      // The informer still shows the object being deleted while the first reconcile releases it.
      h.cluster.lag(KEY);
      assert.deepEqual(await h.reconcile(KEY), { requeueAfterMs: undefined });
      assert.equal(h.cluster.identity(KEY), undefined);
      // A second reconcile from the same stale copy writes to an object that no longer exists: a state, not an error.
      assert.deepEqual(await h.reconcile(KEY), { requeueAfterMs: undefined });
      h.cluster.catchUp();
    });
  });

  describe('CredentialsVerified', () => {
    const verifying = { ...AWS, spec: { ...AWS.spec, verification: { enabled: true } } };

    it('is not reported, and no token is minted, unless the CloudAccount asks for it', async () => {
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      assert.equal(condition(h.cluster.identity(KEY), 'CredentialsVerified'), undefined);
      assert.deepEqual(cloud.exchanged, []);
    });

    it('mints a token with the mechanism audience and reports the exchange, without touching Ready', async () => {
      h.cluster.putAccount(verifying);
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      const wi = h.cluster.identity(KEY);
      assert.deepEqual(condition(wi, 'CredentialsVerified') && { status: condition(wi, 'CredentialsVerified')?.status, reason: condition(wi, 'CredentialsVerified')?.reason }, { status: 'True', reason: REASON.Verified });
      assert.equal(cloud.exchanged[0]?.audience, 'aws-audience');
      assert.equal(condition(wi, 'Ready')?.status, 'True');
    });

    it('says pending, and looks again soon, while the cloud has not caught up with a new identity; then reports the refusal', async () => {
      h.cluster.putAccount(verifying);
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      const refused = { ok: false, reason: REASON.TrustRejected, message: 'STS refused it. Trace ID: 1234-abcd Correlation ID: 99ff Timestamp: 2026-06-01 00:00:01Z' };
      cloud.verdicts.push(refused, refused);
      assert.equal((await h.reconcile(KEY)).requeueAfterMs, 10_000);
      let verified = condition(h.cluster.identity(KEY), 'CredentialsVerified');
      assert.equal(verified?.status, 'Unknown');
      assert.equal(verified?.reason, REASON.VerificationPending);
      h.advance(5 * 60_000);
      assert.equal((await h.reconcile(KEY)).requeueAfterMs, undefined);
      verified = condition(h.cluster.identity(KEY), 'CredentialsVerified');
      assert.equal(verified?.status, 'False');
      assert.equal(verified?.reason, REASON.TrustRejected);
      assert.equal(verified?.message, 'STS refused it.', 'request-specific ids are left out, so the condition settles');
      assert.equal(condition(h.cluster.identity(KEY), 'Ready')?.status, 'True');
    });

    it('verifies an existing identity as found: a trust refused before the reconcile repairs it shows, then clears', async () => {
      h.cluster.putAccount(verifying);
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      h.advance(5 * 60_000);
      // Someone edits the identity behind Keyless's back; the exchange pods make now is refused.
      const identity = cloud.identities.get('aws:111111111111:shop-catalog');
      if (identity) identity.grants = ['s3:*'];
      cloud.verdicts.push({ ok: false, reason: REASON.TrustRejected, message: 'refused as found' });
      assert.equal((await h.reconcile(KEY)).requeueAfterMs, 10_000, 'repaired: look again soon');
      assert.deepEqual(cloud.identities.get('aws:111111111111:shop-catalog')?.grants, ['s3:GetObject'], 'repaired in the same reconcile');
      const found = condition(h.cluster.identity(KEY), 'CredentialsVerified');
      assert.equal(found?.reason, REASON.TrustRejected);
      assert.equal(found?.message, 'refused as found');
      await h.reconcile(KEY);
      assert.equal(condition(h.cluster.identity(KEY), 'CredentialsVerified')?.reason, REASON.Verified);
      assert.equal(cloud.exchanged.length, 3, 'one exchange per reconcile');
    });

    it('says how to allow token requests when the API server refuses them', async () => {
      h.cluster.putAccount(verifying);
      h.cluster.tokenRequestsForbidden = true;
      h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
      await h.settle(KEY);
      const verified = condition(h.cluster.identity(KEY), 'CredentialsVerified');
      assert.equal(verified?.reason, REASON.ExchangeFailed);
      assert.match(verified?.message ?? '', /kubectl apply -k config\/verification/);
    });
  });

  it('turns a streak of failures into a Warning Event on the object', async () => {
    h.cluster.applyIdentity(aWorkloadIdentity('catalog').aws(['s3:GetObject']).build());
    await h.reconciler.reportRepeatedFailure(KEY, new Error('still broken'), 5);
    const event = h.cluster.events.find((e) => e.reason === 'ReconcileFailing');
    assert.equal(event?.type, 'Warning');
    assert.match(event?.message ?? '', /The last 5 reconciles failed.*still broken/);
  });
});
