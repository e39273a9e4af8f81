import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REASON } from '../../api/constants.ts';
import { checkIssuerReachable, discoveryUrl, issuerNotChecked, jwksKeys, type AnonymousGet, type HttpAnswer } from './reachability.ts';

const ISSUER = 'https://oidc.example.com/cluster-1';
const JWKS_URI = 'https://oidc.example.com/cluster-1/keys.json';
const KEY = { kty: 'RSA', kid: 'k1', alg: 'RS256', use: 'sig', n: 'AQAB', e: 'AQAB' };

/** An issuer host: a map from URL to answer; an Error rejects like a network failure; anything else is a 404. */
function host(routes: Record<string, HttpAnswer | Error>): AnonymousGet & { asked: string[] } {
  const asked: string[] = [];
  const get = (url: string) => {
    asked.push(url);
    const route = routes[url];
    return route instanceof Error ? Promise.reject(route) : Promise.resolve(route ?? { status: 404, body: 'not found' });
  };
  return Object.assign(get, { asked });
}

const json = (value: unknown): HttpAnswer => ({ status: 200, body: JSON.stringify(value) });
const discovery = (doc: Record<string, unknown>) => ({ [discoveryUrl(ISSUER)]: json(doc) });
const good = { issuer: ISSUER, jwks_uri: JWKS_URI, response_types_supported: ['id_token'] };

describe('discoveryUrl', () => {
  it('appends the well-known path, dropping a trailing slash first (OIDC Discovery §4)', () => {
    assert.equal(discoveryUrl('https://a.example/x/'), 'https://a.example/x/.well-known/openid-configuration');
    assert.equal(discoveryUrl('https://a.example'), 'https://a.example/.well-known/openid-configuration');
  });
});

describe('jwksKeys', () => {
  const rows: [string, string, number | RegExp][] = [
    ['one RSA key', JSON.stringify({ keys: [KEY] }), 1],
    ['keys without kty are not counted', JSON.stringify({ keys: [KEY, { kid: 'x' }] }), 1],
    ['not JSON', '<html>', /not a JSON object/],
    ['an array, not a key set', JSON.stringify([KEY]), /not a JSON object/],
    ['no keys member', JSON.stringify({ key: KEY }), /no "keys" array/],
    ['an empty key set', JSON.stringify({ keys: [] }), /empty/],
    ['keys that are not keys', JSON.stringify({ keys: ['a', { kid: 'x' }] }), /none of its keys has a "kty"/],
  ];
  for (const [what, body, expected] of rows) {
    it(what, () => {
      const got = jwksKeys(body);
      if (typeof expected === 'number') assert.equal(got, expected);
      else assert.match(String(got), expected);
    });
  }
});

describe('checkIssuerReachable', () => {
  const rows: { what: string; issuer?: string; routes: Record<string, HttpAnswer | Error>; reason: string; status: string; message: RegExp }[] = [
    {
      what: 'a discovery document naming the issuer and a JWKS with a key is Reachable',
      routes: { ...discovery(good), [JWKS_URI]: json({ keys: [KEY, KEY] }) },
      reason: REASON.Reachable,
      status: 'True',
      message: /JWKS https:\/\/oidc\.example\.com\/cluster-1\/keys\.json has 2 keys/,
    },
    {
      what: 'an http issuer is NotHttps, without a fetch',
      issuer: 'http://oidc.example.com/cluster-1',
      routes: {},
      reason: REASON.NotHttps,
      status: 'False',
      message: /not an https:\/\/ URL; AWS STS fetches/,
    },
    {
      what: 'a network failure is DiscoveryUnreachable and quotes it',
      routes: { [discoveryUrl(ISSUER)]: new Error('the host name does not resolve (ENOTFOUND)') },
      reason: REASON.DiscoveryUnreachable,
      status: 'False',
      message: /could not be fetched anonymously: the host name does not resolve \(ENOTFOUND\)\. Serve the discovery document/,
    },
    {
      what: 'an API server that wants credentials is DiscoveryUnreachable and says so',
      routes: { [discoveryUrl(ISSUER)]: { status: 401, body: '{"kind":"Status"}' } },
      reason: REASON.DiscoveryUnreachable,
      status: 'False',
      message: /answered HTTP 401 to an anonymous GET \(the API server serves it only to authenticated clients\)/,
    },
    {
      what: 'a missing document is DiscoveryUnreachable',
      routes: {},
      reason: REASON.DiscoveryUnreachable,
      status: 'False',
      message: /answered HTTP 404/,
    },
    {
      what: 'a document that is not JSON is DiscoveryInvalid',
      routes: { [discoveryUrl(ISSUER)]: { status: 200, body: '<html>login</html>' } },
      reason: REASON.DiscoveryInvalid,
      status: 'False',
      message: /is not a JSON object/,
    },
    {
      what: 'another issuer in the document is IssuerMismatch, naming both',
      routes: discovery({ ...good, issuer: 'https://kubernetes.default.svc' }),
      reason: REASON.IssuerMismatch,
      status: 'False',
      message: /names issuer https:\/\/kubernetes\.default\.svc, not https:\/\/oidc\.example\.com\/cluster-1: AWS STS requires them to be identical/,
    },
    {
      what: 'a trailing slash is a mismatch too, and the message says that is all',
      routes: discovery({ ...good, issuer: `${ISSUER}/` }),
      reason: REASON.IssuerMismatch,
      status: 'False',
      message: /differ only in the trailing slash/,
    },
    {
      what: 'a document without jwks_uri is DiscoveryInvalid',
      routes: discovery({ issuer: ISSUER }),
      reason: REASON.DiscoveryInvalid,
      status: 'False',
      message: /has no jwks_uri/,
    },
    {
      what: 'an http jwks_uri is NotHttps',
      routes: discovery({ ...good, jwks_uri: 'http://oidc.example.com/keys' }),
      reason: REASON.NotHttps,
      status: 'False',
      message: /names jwks_uri http:\/\/oidc\.example\.com\/keys, which is not an https:\/\/ URL/,
    },
    {
      what: 'an unreachable JWKS is JwksUnreachable',
      routes: { ...discovery(good), [JWKS_URI]: new Error('no answer within 5s') },
      reason: REASON.JwksUnreachable,
      status: 'False',
      message: /JWKS https:\/\/oidc\.example\.com\/cluster-1\/keys\.json \(jwks_uri of .*\) could not be fetched anonymously: no answer within 5s/,
    },
    {
      what: 'a JWKS answering 403 is JwksUnreachable',
      routes: { ...discovery(good), [JWKS_URI]: { status: 403, body: '' } },
      reason: REASON.JwksUnreachable,
      status: 'False',
      message: /answered HTTP 403/,
    },
    {
      what: 'a JWKS that does not parse is JwksInvalid',
      routes: { ...discovery(good), [JWKS_URI]: { status: 200, body: 'keys: [' } },
      reason: REASON.JwksInvalid,
      status: 'False',
      message: /is not a JSON Web Key Set with a key: it is not a JSON object/,
    },
    {
      what: 'an empty JWKS is JwksInvalid',
      routes: { ...discovery(good), [JWKS_URI]: json({ keys: [] }) },
      reason: REASON.JwksInvalid,
      status: 'False',
      message: /its "keys" array is empty/,
    },
  ];
  for (const row of rows) {
    it(row.what, async () => {
      const got = await checkIssuerReachable(host(row.routes), row.issuer ?? ISSUER, 'aws');
      assert.equal(got.type, 'IssuerReachable');
      assert.equal(got.reason, row.reason, got.message);
      assert.equal(got.status, row.status);
      assert.match(got.message, row.message);
    });
  }

  it('says every failure leaves Ready and the cloud alone, and how to confirm from outside', async () => {
    const got = await checkIssuerReachable(host({}), ISSUER, 'azure');
    assert.match(got.message, /every token exchange of this account's identities fails, although they show Ready/);
    assert.match(got.message, /This is a warning and changes nothing in the cloud/);
    assert.match(got.message, /curl -sS https:\/\/oidc\.example\.com\/cluster-1\/\.well-known\/openid-configuration/);
    assert.match(got.message, /Microsoft Entra ID/);
  });

  it('fetches the discovery document, then the jwks_uri it names, and nothing else', async () => {
    const get = host({ ...discovery(good), [JWKS_URI]: json({ keys: [KEY] }) });
    await checkIssuerReachable(get, ISSUER, 'aws');
    assert.deepEqual(get.asked, [discoveryUrl(ISSUER), JWKS_URI]);
  });
});

describe('issuerNotChecked', () => {
  it('is Unknown while the account has no issuer', () => {
    assert.deepEqual(issuerNotChecked(undefined).status, 'Unknown');
  });

  it('is NotRequired where the cloud fetches nothing (a GKE workload identity pool)', () => {
    const got = issuerNotChecked('my-project.svc.id.goog');
    assert.equal(got.status, 'True');
    assert.equal(got.reason, REASON.NotRequired);
  });
});
