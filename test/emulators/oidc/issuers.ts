// The OIDC issuers an emulated cloud can verify tokens from, each with a source of its signing keys. A real cloud
// fetches `{issuer}/.well-known/openid-configuration` and its jwks_uri over the internet; the local control plane
// serves them only to authenticated clients on 127.0.0.1, so the emulators are handed a source instead: a
// function (tests: an authenticated GET through the test kubeconfig) or the JWKS itself (the admin routes).
// Keys are cached and fetched again when a token names a key the cache lacks, as clouds do after a rotation.
import { checkSignature, type DecodedJwt, type Jwks, type SignatureCheck } from './jwt.ts';

export interface IssuerSource {
  issuer: string;
  jwks(): Promise<Jwks>;
}

export function staticIssuer(issuer: string, jwks: Jwks): IssuerSource {
  return { issuer, jwks: () => Promise.resolve(jwks) };
}

/** An admin route's `{issuer, jwks}` body, checked enough that a typo fails at registration, not at exchange. */
export function issuerFromJson(body: unknown): IssuerSource {
  const { issuer, jwks } = (body ?? {}) as { issuer?: unknown; jwks?: unknown };
  if (typeof issuer !== 'string' || !issuer.startsWith('https://')) throw new Error('issuer must be an https URL');
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as Jwks).keys)) throw new Error('jwks must be a JSON Web Key Set ({"keys": [...]})');
  return staticIssuer(issuer, jwks as Jwks);
}

export type IssuerSignatureCheck = SignatureCheck | 'unknown-issuer';

export class TrustedIssuers {
  readonly #sources = new Map<string, IssuerSource>();
  readonly #cache = new Map<string, Jwks>();

  constructor(sources: IssuerSource[] = []) {
    for (const s of sources) this.add(s);
  }

  add(source: IssuerSource): void {
    this.#sources.set(source.issuer, source);
    this.#cache.delete(source.issuer);
  }

  has(issuer: string): boolean {
    return this.#sources.has(issuer);
  }

  /**
   * The token's signature against the keys `issuer` publishes. A fetch that fails counts as an unknown key: the
   * cloud could not retrieve the verification key, which is how AWS words it too.
   */
  async verify(jwt: DecodedJwt, issuer: string): Promise<IssuerSignatureCheck> {
    const source = this.#sources.get(issuer);
    if (!source) return 'unknown-issuer';
    const cached = this.#cache.get(issuer);
    if (cached) {
      const first = checkSignature(jwt, cached);
      if (first !== 'unknown-key') return first;
    }
    let fresh: Jwks;
    try {
      fresh = await source.jwks();
    } catch {
      return 'unknown-key';
    }
    this.#cache.set(issuer, fresh);
    return checkSignature(jwt, fresh);
  }
}
