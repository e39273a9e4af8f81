// Unsigned JWTs with the claims a ServiceAccount token carries, for the in-memory fakes of token exchanges.
export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string;
}

export function fakeToken(claims: TokenClaims): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none' })}.${part(claims)}.`;
}

export function claimsOf(token: string): TokenClaims {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as TokenClaims;
}
