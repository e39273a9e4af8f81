import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IAM_ROLE_NAME_MAX, awsRoleName, boundedName, serviceAccountSubject } from './naming.ts';

describe('awsRoleName', () => {
  it('is readable and deterministic for short names', () => {
    const a = awsRoleName('keyless-', 'c1', 'bookstore', 'catalog');
    assert.match(a, /^keyless-bookstore-catalog-[0-9a-f]{8}$/);
    assert.equal(awsRoleName('keyless-', 'c1', 'bookstore', 'catalog'), a);
  });

  it('differs between clusters sharing an account', () => {
    assert.notEqual(awsRoleName('keyless-', 'c1', 'ns', 'n'), awsRoleName('keyless-', 'c2', 'ns', 'n'));
  });

  it('fits 64 characters and stays unique when the readable part is truncated', () => {
    const ns = 'n'.repeat(63);
    const a = awsRoleName('keyless-', 'c', ns, 'a'.repeat(200));
    const b = awsRoleName('keyless-', 'c', ns, `${'a'.repeat(199)}b`);
    assert.equal(a.length, IAM_ROLE_NAME_MAX);
    assert.equal(b.length, IAM_ROLE_NAME_MAX);
    assert.notEqual(a, b);
    assert.match(a, /^[\w+=,.@-]+$/);
  });
});

describe('boundedName', () => {
  it('never leaves a dangling separator before the hash', () => {
    const name = boundedName('abc-----------', 'id', 12);
    assert.match(name, /^abc-[0-9a-f]{8}$/);
  });
});

describe('serviceAccountSubject', () => {
  it('is the exact Kubernetes token subject', () => {
    assert.equal(serviceAccountSubject('bookstore', 'catalog-sa'), 'system:serviceaccount:bookstore:catalog-sa');
  });
});
