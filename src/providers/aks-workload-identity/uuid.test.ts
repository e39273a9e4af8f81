import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DNS_NAMESPACE, KEYLESS_NAMESPACE, isUuid, uuidv5 } from './uuid.ts';

describe('uuidv5', () => {
  it('matches the RFC 9562 test vector (www.example.com in the DNS name space)', () => {
    assert.equal(uuidv5(DNS_NAMESPACE, 'www.example.com'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  it('is deterministic, version 5 and RFC variant', () => {
    const a = uuidv5(KEYLESS_NAMESPACE, 'scope|role|principal');
    assert.equal(a, uuidv5(KEYLESS_NAMESPACE, 'scope|role|principal'));
    assert.notEqual(a, uuidv5(KEYLESS_NAMESPACE, 'scope|role|other'));
    assert.ok(isUuid(a));
    assert.equal(a[14], '5');
    assert.match(a[19] ?? '', /[89ab]/);
  });

  it('accepts an upper-case name space and refuses a non-UUID one', () => {
    assert.equal(uuidv5(DNS_NAMESPACE.toUpperCase(), 'www.example.com'), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
    assert.throws(() => uuidv5('not-a-uuid', 'x'), RangeError);
  });
});
