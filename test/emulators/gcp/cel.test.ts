// The CEL subset the GCP emulator evaluates attribute mappings and conditions with, and what it refuses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CelError, compile, type Value } from './cel.ts';

const assertion = { sub: 'system:serviceaccount:shop:catalog-sa', iss: 'https://issuer.test', 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'catalog-sa' } } };
const bindings: Record<string, Value> = { assertion, google: { subject: assertion.sub, groups: ['admins'] }, attribute: { namespace: 'shop' } };

describe('the GCP emulator’s CEL subset', () => {
  const values: [string, Value][] = [
    ['assertion.sub', 'system:serviceaccount:shop:catalog-sa'],
    ["assertion['kubernetes.io']['namespace']", 'shop'],
    ["assertion['kubernetes.io'].serviceaccount.name", 'catalog-sa'],
    ["assertion.sub == 'system:serviceaccount:shop:catalog-sa'", true],
    ['assertion.sub != "x"', true],
    ["assertion.sub.startsWith('system:serviceaccount:shop:')", true],
    ["assertion.sub.startsWith('system:serviceaccount:other:')", false],
    ["assertion.sub.endsWith(':catalog-sa')", true],
    ["assertion.sub.contains(':shop:')", true],
    ["'admins' in google.groups", true],
    ["attribute.namespace in ['shop', 'books']", true],
    ["attribute.namespace == 'shop' && !(google.subject == 'x')", true],
    ["attribute.namespace == 'other' || assertion.iss == 'https://issuer.test'", true],
    ['true', true],
    ["assertion.sub == 'it\\'s'", false],
  ];
  for (const [source, expected] of values) it(`evaluates ${source}`, () => assert.deepEqual(compile(source).evaluate(bindings), expected));

  it('fails evaluation on a claim the token lacks, as CEL does (a condition then refuses the token)', () => {
    assert.throws(() => compile('assertion.email == "x"').evaluate(bindings), CelError);
  });

  const refused: [string, RegExp][] = [
    ["assertion.sub.matches('^system:')", /unsupported function matches/],
    ['size(assertion.sub) == 1', /unsupported name size/],
    ['assertion.exp > 5', /unsupported character ">"/],
    ['request.time', /unsupported name request/],
    ["assertion.sub == 'x' &&", /unexpected end/],
    ["assertion.sub == 'x", /unterminated string/],
  ];
  for (const [source, message] of refused) it(`refuses ${source} when it is compiled`, () => assert.throws(() => compile(source), message));
});
