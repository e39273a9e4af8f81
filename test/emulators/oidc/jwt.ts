// What every emulated token exchange needs from the presented token, before each cloud applies its own rules and
// error dialect: the JWT's parts (read without trusting them), an RS256 signature check against the issuer's
// published keys, and the validity window. Which check runs first and which error each failure becomes is the
// cloud's business, so nothing here decides an answer.
import { createPublicKey, verify, type JsonWebKey } from 'node:crypto';

export interface JwtClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  [claim: string]: unknown;
}

export interface DecodedJwt {
  header: { alg?: string; kid?: string; typ?: string };
  claims: JwtClaims;
  signingInput: string;
  signature: Buffer;
}

/** A JSON Web Key Set as an issuer publishes it (RFC 7517 §5): Kubernetes serves one at /openid/v1/jwks. */
export interface Jwks {
  keys: (JsonWebKey & { kid?: string })[];
}

function base64urlJson(part: string): unknown {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** The three parts of a compact JWS, or undefined when `token` is not one (malformed: a cloud's first refusal). */
export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.trim().split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) return undefined;
  const [head = '', body = '', sig = ''] = parts;
  try {
    const header = base64urlJson(head);
    const claims = base64urlJson(body);
    if (typeof header !== 'object' || header === null || typeof claims !== 'object' || claims === null || Array.isArray(claims)) return undefined;
    return { header, claims: claims as JwtClaims, signingInput: `${head}.${body}`, signature: Buffer.from(sig, 'base64url') };
  } catch {
    return undefined;
  }
}

/** The token's audiences as a list: `aud` may be one string or several (RFC 7519 §4.1.3). */
export function audiences(claims: JwtClaims): string[] {
  if (typeof claims.aud === 'string') return [claims.aud];
  return Array.isArray(claims.aud) ? claims.aud.filter((a): a is string => typeof a === 'string') : [];
}

export type SignatureCheck = 'valid' | 'unsupported-algorithm' | 'unknown-key' | 'bad-signature';

/** RS256 only, as Kubernetes signs ServiceAccount tokens; the key is the one the header's `kid` names. */
export function checkSignature(jwt: DecodedJwt, jwks: Jwks): SignatureCheck {
  if (jwt.header.alg !== 'RS256') return 'unsupported-algorithm';
  const jwk = jwks.keys.find((k) => k.kty === 'RSA' && (jwt.header.kid === undefined || k.kid === jwt.header.kid));
  if (!jwk) return 'unknown-key';
  const key = createPublicKey({ key: { kty: jwk.kty, n: jwk.n, e: jwk.e }, format: 'jwk' });
  return verify('sha256', Buffer.from(jwt.signingInput), key, jwt.signature) ? 'valid' : 'bad-signature';
}

export type TimeCheck = 'current' | 'expired' | 'not-yet-valid' | 'no-expiry';

/** `exp` and `nbf` against `nowSeconds` (the emulator's clock, which a test may move forward). */
export function checkTimes(claims: JwtClaims, nowSeconds: number): TimeCheck {
  if (typeof claims.exp !== 'number') return 'no-expiry';
  if (nowSeconds >= claims.exp) return 'expired';
  if (typeof claims.nbf === 'number' && nowSeconds < claims.nbf) return 'not-yet-valid';
  return 'current';
}
