import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closest, globMatches, globsIntersect } from './patterns.ts';

describe('glob patterns', () => {
  it('matches * and ? and nothing else specially', () => {
    assert.ok(globMatches('s3:Get*', 's3:GetObject'));
    assert.ok(globMatches('arn:aws:s3:::team-a-*', 'arn:aws:s3:::team-a-*'), 'a narrower-or-equal pattern taken literally');
    assert.ok(!globMatches('arn:aws:s3:::team-a-*', 'arn:aws:s3:::*'), 'a broader pattern does not fit');
    assert.ok(globMatches('iam:Put?olePolicy', 'iam:PutRolePolicy'));
    assert.ok(!globMatches('a.b', 'aXb'), 'regex characters are literal');
    assert.ok(globMatches('S3:GET*', 's3:getobject', true));
  });

  it('tells whether two patterns share a match', () => {
    assert.ok(globsIntersect('arn:aws:s3:::*', 'arn:aws:s3:::audit-*'));
    assert.ok(globsIntersect('arn:aws:s3:::audit-logs/*', 'arn:aws:s3:::audit-*'));
    assert.ok(!globsIntersect('arn:aws:s3:::team-a-*', 'arn:aws:s3:::audit-*'));
    assert.ok(globsIntersect('*', 'x'));
    assert.ok(!globsIntersect('a?c', 'abd'));
  });

  it('suggests the closest name for a typo, and nothing for unrelated words', () => {
    assert.equal(closest('GetObjects', ['GetObject', 'PutObject', 'ListBucket']), 'GetObject');
    assert.equal(closest('Frobnicate', ['GetObject', 'PutObject']), undefined);
  });
});
