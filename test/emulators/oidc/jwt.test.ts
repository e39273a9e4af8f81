// The token checks every emulated exchange starts from: a JWT is read without trusting it, verified (RS256) only
// against the key its issuer publishes under the header's kid, and judged against the emulator's clock.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { TrustedIssuers, staticIssuer, type IssuerSource } from './issuers.ts';
import { audiences, checkSignature, checkTimes, decodeJwt, type Jwks } from './jwt.ts';

const ISSUER = 'https://issuer.test';

function keyPair(kid: string): { privateKey: KeyObject; jwks: Jwks } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey, jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }] } };
}

function jwt(privateKey: KeyObject, header: object, claims: object): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

const current = { kid: 'k1', ...keyPair('k1') };
const other = keyPair('k1');
const claims = { iss: ISSUER, sub: 'system:serviceaccount:ns:sa', aud: ['sts.amazonaws.com'], iat: 1000, nbf: 1000, exp: 1600 };

describe('JWT checks for the emulated token exchanges', () => {
  it('reads the header and claims of a compact JWS, and nothing else', () => {
    const decoded = decodeJwt(jwt(current.privateKey, { alg: 'RS256', kid: 'k1' }, claims));
    assert.deepEqual(decoded?.claims, claims);
    assert.equal(decoded?.header.kid, 'k1');
    for (const malformed of ['', 'a.b', 'a.b.c.d', '!!.??.**', 'eyJ9.eyJ9.x']) assert.equal(decodeJwt(malformed), undefined, malformed);
  });

  it('takes aud as one string or a list', () => {
    assert.deepEqual(audiences({ aud: 'x' }), ['x']);
    assert.deepEqual(audiences({ aud: ['x', 'y'] }), ['x', 'y']);
    assert.deepEqual(audiences({}), []);
  });

  const signatures: [string, string, Jwks, string][] = [
    ['signed by the published key', jwt(current.privateKey, { alg: 'RS256', kid: 'k1' }, claims), current.jwks, 'valid'],
    ['signed by another key under the same kid', jwt(other.privateKey, { alg: 'RS256', kid: 'k1' }, claims), current.jwks, 'bad-signature'],
    ['naming a key the issuer does not publish', jwt(current.privateKey, { alg: 'RS256', kid: 'k2' }, claims), current.jwks, 'unknown-key'],
    ['with alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`, current.jwks, 'unsupported-algorithm'],
  ];
  for (const [what, token, jwks, expected] of signatures) {
    it(`judges a token ${what}: ${expected}`, () => {
      const decoded = decodeJwt(token);
      assert.ok(decoded);
      assert.equal(checkSignature(decoded, jwks), expected);
    });
  }

  const times: [number, string][] = [
    [999, 'not-yet-valid'],
    [1000, 'current'],
    [1599, 'current'],
    [1600, 'expired'],
  ];
  for (const [now, expected] of times) it(`judges exp/nbf at ${now} as ${expected}`, () => assert.equal(checkTimes(claims, now), expected));

  it('fetches the keys again when a token names a key the cache lacks, as after a rotation', async () => {
    let published = current.jwks;
    let fetches = 0;
    const source: IssuerSource = { issuer: ISSUER, jwks: () => Promise.resolve((fetches++, published)) };
    const issuers = new TrustedIssuers([source]);
    const before = decodeJwt(jwt(current.privateKey, { alg: 'RS256', kid: 'k1' }, claims));
    assert.ok(before);
    assert.equal(await issuers.verify(before, ISSUER), 'valid');
    const rotated = keyPair('k2');
    published = { keys: [...current.jwks.keys, ...rotated.jwks.keys] };
    const after = decodeJwt(jwt(rotated.privateKey, { alg: 'RS256', kid: 'k2' }, claims));
    assert.ok(after);
    assert.equal(await issuers.verify(after, ISSUER), 'valid');
    assert.equal(fetches, 2);
  });

  it('knows only the issuers it was given', async () => {
    const issuers = new TrustedIssuers([staticIssuer(ISSUER, current.jwks)]);
    const token = decodeJwt(jwt(current.privateKey, { alg: 'RS256', kid: 'k1' }, claims));
    assert.ok(token);
    assert.equal(await issuers.verify(token, 'https://elsewhere.test'), 'unknown-issuer');
  });
});
