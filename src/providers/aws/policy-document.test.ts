import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalPolicy, parseIamDocument, policySize, renderInlinePolicy, samePolicy } from './policy-document.ts';

describe('renderInlinePolicy', () => {
  it('renders statements with conditions, and nothing for an empty policy', () => {
    assert.equal(renderInlinePolicy([]), undefined);
    assert.deepEqual(
      renderInlinePolicy([{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::b/*'], conditions: { StringEquals: { 's3:prefix': ['covers/'] } } }]),
      {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::b/*'], Condition: { StringEquals: { 's3:prefix': ['covers/'] } } }],
      },
    );
  });
});

describe('parseIamDocument', () => {
  it('decodes the URL-encoded form IAM returns', () => {
    const doc = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/a b%' }] };
    assert.deepEqual(parseIamDocument(encodeURIComponent(JSON.stringify(doc))), doc);
    assert.deepEqual(parseIamDocument(JSON.stringify(doc)), doc);
  });
});

describe('samePolicy', () => {
  const ours = renderInlinePolicy([{ effect: 'Allow', actions: ['s3:GetObject', 's3:ListBucket'], resources: ['arn:aws:s3:::b'] }]);

  it('treats IAM reshaping as equal: single-element arrays as strings, reordered lists and keys', () => {
    const reshaped = { Statement: { Resource: 'arn:aws:s3:::b', Action: ['s3:ListBucket', 's3:GetObject'], Effect: 'Allow' }, Version: '2012-10-17' };
    assert.ok(samePolicy(ours, reshaped));
  });

  it('tells a widened policy apart', () => {
    const widened = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:*'], Resource: ['arn:aws:s3:::b'] }] };
    assert.ok(!samePolicy(ours, widened));
  });

  it('compares trust conditions value by value', () => {
    const trust = (sub: string | string[]) => ({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Federated: 'arn:x' }, Action: 'sts:AssumeRoleWithWebIdentity', Condition: { StringEquals: { 'i:sub': sub } } }],
    });
    assert.ok(samePolicy(trust('a'), trust(['a'])));
    assert.ok(!samePolicy(trust('a'), trust(['a', 'b'])));
    assert.notEqual(canonicalPolicy(trust('a')), canonicalPolicy(trust('b')));
  });
});

describe('policySize', () => {
  it('counts characters without whitespace', () => {
    assert.equal(policySize({ a: 'x y' }), '{"a":"xy"}'.length);
  });
});
