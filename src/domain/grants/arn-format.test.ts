import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { arnFormatAdmits } from './arn-format.ts';

const OBJECT = 'arn:${Partition}:s3:::${BucketName}/${ObjectName}';
const BUCKET = 'arn:${Partition}:s3:::${BucketName}';
const QUEUE = 'arn:${Partition}:sqs:${Region}:${Account}:${QueueName}';

describe('arnFormatAdmits', () => {
  const cases: [string, string, boolean, string][] = [
    [OBJECT, 'arn:aws:s3:::covers/*', true, 'objects of a bucket'],
    [OBJECT, 'arn:aws:s3:::covers/a/b.png', true, 'an object key with slashes'],
    [OBJECT, 'arn:aws:s3:::covers', false, 'a bucket ARN is not an object'],
    [BUCKET, 'arn:aws:s3:::covers', true, 'a bucket'],
    [BUCKET, 'arn:aws:s3:::covers/*', false, 'a bucket name has no slash'],
    [BUCKET, 'arn:aws:s3:::*', true, 'any bucket'],
    [OBJECT, 'arn:aws:s3:::*', true, 'the pattern * spans the slash'],
    [QUEUE, 'arn:aws:sqs:us-east-1:123456789012:orders', true, 'a queue'],
    [QUEUE, 'arn:aws:s3:::covers/*', false, 'another service'],
    [QUEUE, 'arn:aws:sqs:*:*:orders', true, 'wildcard region and account'],
    [QUEUE, 'arn:aws:sqs:us-east-1::orders', false, 'an empty account matches no placeholder'],
    [OBJECT, 'ARN:AWS:S3:::covers/x', true, 'case-insensitive'],
  ];
  for (const [format, pattern, expected, why] of cases) {
    it(`${pattern} ${expected ? 'can' : 'cannot'} name ${format}: ${why}`, () => {
      assert.equal(arnFormatAdmits(format, pattern), expected);
    });
  }
});
