import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  carriesMarker,
  deletedGsaMemberPrefix,
  describeMarker,
  directPrincipal,
  gcpServiceAccountId,
  GSA_ID_PATTERN,
  gsaDescription,
  gsaDisplayName,
  gsaMember,
  kubernetesServiceAccountMember,
  ownershipMarker,
  serviceAccountEmail,
  workloadPool,
} from './naming.ts';

describe('gcpServiceAccountId', () => {
  it('is readable, ends in a hash of the identity, and fits IAM\'s 6–30 character pattern', () => {
    const id = gcpServiceAccountId('c1', 'bookstore', 'catalog');
    assert.match(id, /^bookstore-catalog-[0-9a-f]{8}$/);
    assert.match(id, GSA_ID_PATTERN);
  });

  it('is deterministic and differs per cluster, namespace and name', () => {
    const ids = new Set([
      gcpServiceAccountId('c1', 'ns', 'app'),
      gcpServiceAccountId('c2', 'ns', 'app'),
      gcpServiceAccountId('c1', 'ns2', 'app'),
      gcpServiceAccountId('c1', 'ns', 'app2'),
      gcpServiceAccountId('c1', 'ns-app', ''),
    ]);
    assert.equal(ids.size, 5);
    assert.equal(gcpServiceAccountId('c1', 'ns', 'app'), gcpServiceAccountId('c1', 'ns', 'app'));
  });

  const cases: [string, string, string][] = [
    ['long names are cut, never past 30 characters', 'a-very-long-namespace-name-for-testing', 'and-an-even-longer-workload-identity-name'],
    ['dots in a WorkloadIdentity name become hyphens', 'ns', 'my.app.v2'],
    ['a namespace starting with a digit gets a letter in front', '1team', 'app'],
    ['a cut that lands on a hyphen drops it', 'abcdefghijklmnopqrst', 'x'],
    ['runs of separators collapse', 'ns', 'a..b--c'],
  ];
  for (const [what, ns, name] of cases) {
    it(what, () => {
      const id = gcpServiceAccountId('cluster', ns, name);
      assert.match(id, GSA_ID_PATTERN, id);
      assert.ok(id.length >= 6 && id.length <= 30, id);
      assert.doesNotMatch(id, /--/, id);
    });
  }
});

describe('member strings', () => {
  it('names the Google service account, its deleted form and the Kubernetes ServiceAccount', () => {
    const email = serviceAccountEmail('bookstore-catalog-12345678', 'my-project');
    assert.equal(email, 'bookstore-catalog-12345678@my-project.iam.gserviceaccount.com');
    assert.equal(gsaMember(email), `serviceAccount:${email}`);
    assert.equal(deletedGsaMemberPrefix(email), `deleted:serviceAccount:${email}?uid=`);
    assert.equal(kubernetesServiceAccountMember('my-project.svc.id.goog', 'bookstore', 'catalog-sa'), 'serviceAccount:my-project.svc.id.goog[bookstore/catalog-sa]');
  });

  it('builds the direct principal from the project number and the pool', () => {
    assert.equal(
      directPrincipal('123456789012', 'my-project.svc.id.goog', 'bookstore', 'catalog-sa'),
      'principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/my-project.svc.id.goog/subject/ns/bookstore/sa/catalog-sa',
    );
  });

  it('defaults the pool to PROJECT.svc.id.goog and honours a fleet pool', () => {
    assert.equal(workloadPool('my-project', undefined), 'my-project.svc.id.goog');
    assert.equal(workloadPool('my-project', ''), 'my-project.svc.id.goog');
    assert.equal(workloadPool('my-project', 'fleet-host.svc.id.goog'), 'fleet-host.svc.id.goog');
  });
});

describe('ownership marker', () => {
  it('matches only the exact cluster, namespace and name', () => {
    const marker = ownershipMarker('c1', 'ns', 'app');
    const description = gsaDescription(marker);
    assert.ok(carriesMarker(description, marker));
    assert.equal(carriesMarker(description, ownershipMarker('c1', 'ns', 'ap')), false, 'a name prefix is not a match');
    assert.equal(carriesMarker(description, ownershipMarker('c2', 'ns', 'app')), false);
    assert.equal(carriesMarker('', marker), false);
    assert.equal(carriesMarker(undefined, marker), false);
    assert.equal(describeMarker(description), 'ns/app (cluster c1)');
  });

  it('falls back to a digest when the names do not fit the 256-byte description', () => {
    const marker = ownershipMarker('c'.repeat(128), 'n'.repeat(63), 'w'.repeat(253));
    assert.match(marker, /^keyless\.dev\/identity=[0-9a-f]{32}$/);
    assert.ok(Buffer.byteLength(gsaDescription(marker)) <= 256);
  });

  it('keeps the display name within 100 bytes', () => {
    assert.equal(gsaDisplayName('ns', 'app'), 'ns/app');
    assert.equal(Buffer.byteLength(gsaDisplayName('n'.repeat(63), 'w'.repeat(253))), 100);
  });
});
