import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WorkloadIdentitySpec } from '../../api/types.ts';
import { iamDataCatalogue } from '../../providers/aws/action-catalogue.ts';
import { describeIneffective, ineffectiveGrants } from './index.ts';

const catalogue = iamDataCatalogue();
const base = { serviceAccountName: 'sa', cloudAccountRef: { name: 'a' } };
const aws = (actions: string[], resources: string[], effect: 'Allow' | 'Deny' = 'Allow'): WorkloadIdentitySpec => ({ ...base, aws: { policy: [{ effect, actions, resources }] } });
const found = async (spec: WorkloadIdentitySpec) => (await ineffectiveGrants(spec, catalogue)).map(describeIneffective);

describe('grants that grant nothing', () => {
  it('AWS: s3:GetObject on a bucket ARN, naming the object ARN it needs', async () => {
    const [finding, ...rest] = await found(aws(['s3:GetObject'], ['arn:aws:s3:::covers']));
    assert.equal(rest.length, 0);
    assert.match(finding ?? '', /s3:GetObject grants nothing on arn:aws:s3:::covers: it applies to .*arn:\$\{Partition\}:s3:::\$\{BucketName\}\/\$\{ObjectName\}/);
  });

  it('AWS: s3:ListBucket on objects, naming the bucket ARN it needs', async () => {
    assert.match((await found(aws(['s3:ListBucket'], ['arn:aws:s3:::covers/*'])))[0] ?? '', /arn:\$\{Partition\}:s3:::\$\{BucketName\}/);
  });

  it('AWS: an action without resource-level permissions needs "*"', async () => {
    assert.match((await found(aws(['s3:ListAllMyBuckets'], ['arn:aws:s3:::covers'])))[0] ?? '', /"\*"/);
  });

  it('AWS: right pairs, one matching resource among several, "*", wildcard actions that cover a fitting one, Deny, and policy variables are fine', async () => {
    assert.deepEqual(await found(aws(['s3:GetObject'], ['arn:aws:s3:::covers/*'])), []);
    assert.deepEqual(await found(aws(['s3:GetObject', 's3:ListBucket'], ['arn:aws:s3:::covers', 'arn:aws:s3:::covers/*'])), []);
    assert.deepEqual(await found(aws(['s3:ListAllMyBuckets'], ['*'])), []);
    assert.deepEqual(await found(aws(['s3:Get*'], ['arn:aws:s3:::covers'])), [], 's3:GetBucketLocation applies to a bucket');
    assert.deepEqual(await found(aws(['s3:GetObject'], ['arn:aws:s3:::covers'], 'Deny')), []);
    assert.deepEqual(await found(aws(['s3:GetObject'], ['arn:aws:s3:::covers/${aws:username}'])), []);
    assert.deepEqual(await found(aws(['sqs:SendMessage'], ['arn:aws:sqs:us-east-1:123456789012:orders'])), []);
  });

  it('AWS: a queue action on an S3 ARN', async () => {
    assert.match((await found(aws(['sqs:SendMessage'], ['arn:aws:s3:::covers/*'])))[0] ?? '', /arn:\$\{Partition\}:sqs:\$\{Region\}:\$\{Account\}:\$\{QueueName\}/);
  });

  it('GCP: a storage role on a Pub/Sub topic; the same role on a bucket or the project is fine', async () => {
    const gcp = (resource?: string): WorkloadIdentitySpec => ({ ...base, gcp: { roles: [{ role: 'roles/storage.objectViewer', ...(resource ? { resource } : {}) }] } });
    assert.match((await found(gcp('//pubsub.googleapis.com/projects/p/topics/orders')))[0] ?? '', /takes only roles\/pubsub\.\* roles/);
    assert.deepEqual(await found(gcp('//storage.googleapis.com/projects/_/buckets/covers')), []);
    assert.deepEqual(await found(gcp()), []);
  });

  it('Azure: a storage data role on a key vault, by name and by GUID; at a resource group it is fine', async () => {
    const vault = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v';
    const azure = (role: string, scope: string): WorkloadIdentitySpec => ({ ...base, azure: { roleAssignments: [{ role, scope }] } });
    assert.match((await found(azure('Storage Blob Data Reader', vault)))[0] ?? '', /acts on Microsoft\.Storage resources/);
    assert.equal((await found(azure('2a2b9908-6ea1-4ae2-8e65-a410df84e7d1', vault))).length, 1);
    assert.deepEqual(await found(azure('Storage Blob Data Reader', '/subscriptions/s/resourceGroups/rg')), []);
    assert.deepEqual(await found(azure('Reader', vault)), []);
  });
});
