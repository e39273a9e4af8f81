// Workload Identity Federation's two token exchanges, checked the way Google checks them:
//
//   sts.googleapis.com POST /v1/token (RFC 8693 token exchange, form or JSON), for GKE: the KSA token's audience is
//     the workload pool (PROJECT.svc.id.goog) and the request's `audience` is `identitynamespace:POOL:PROVIDER`, the
//     form GKE's metadata server and fleet credential configurations use; the pool must trust the token's issuer
//     (signature against its keys, expiry). The federated token stands for
//     principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/subject/ns/NS/sa/SA,
//     also known to IAM as serviceAccount:POOL[NS/SA].
//   The same endpoint for any other cluster: the request's `audience` is a workload identity pool provider's full name
//     (//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/providers/P, pools.ts); the token
//     must come from the provider's issuer, be signed by its keys (jwksJson, or what the issuer publishes), carry one
//     of the provider's audiences, and pass its attribute mapping and condition. The federated token stands for
//     principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/subject/<google.subject>
//     and for the pool's principalSets (all of it, its groups and attributes).
//   iamcredentials.googleapis.com POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken: the caller's
//     federated token must hold iam.serviceAccounts.getAccessToken on the Google service account, i.e. one of its
//     members has roles/iam.workloadIdentityUser (or serviceAccountTokenCreator) in that account's own policy.
//
// Errors: STS answers OAuth errors ({"error","error_description"}: invalid_request, invalid_target, invalid_grant,
// texts from public reports unless marked [unverified]); IAM Credentials answers Google JSON errors (403
// PERMISSION_DENIED "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).").
import { randomBytes } from 'node:crypto';
import { TrustedIssuers } from '../oidc/issuers.ts';
import { audiences, checkSignature, checkTimes, decodeJwt } from '../oidc/jwt.ts';
import { StatusError } from '../http.ts';
import { grantedPermissions } from './permissions.ts';
import { FederationPools } from './pools.ts';
import { GoogleError, type GcpState } from './state.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const SUBJECT_TOKEN_TYPES = ['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token'];
const IMPERSONATION_ROLES = ['roles/iam.workloadIdentityUser', 'roles/iam.serviceAccountTokenCreator'];
const FEDERATED_LIFETIME_SECONDS = 3600;

/** An OAuth 2.0 error response (RFC 6749 §5.2), as STS answers them: the status, the `error` code, its description. */
export class OAuthError extends StatusError {
  get error(): string {
    return this.code;
  }
}

export interface WorkloadPool {
  /** PROJECT_ID.svc.id.goog */
  pool: string;
  /** The issuer of the cluster's ServiceAccount tokens. */
  issuer: string;
  /** The identity provider named after the pool in `identitynamespace:POOL:PROVIDER`; any when unset. */
  identityProvider?: string;
}

export interface IssuedToken {
  kind: 'federated' | 'serviceAccount';
  /** The federated principal (principal://…) or the service account member (serviceAccount:EMAIL). */
  principal: string;
  /** IAM members the token acts as. */
  members: string[];
  expiresAt: number;
}

export class GcpTokens {
  readonly issuers: TrustedIssuers;
  readonly pools = new Map<string, WorkloadPool>();
  /** Workload identity pools and providers (IAM v1), for clusters that are not GKE. */
  readonly federation: FederationPools;
  readonly issued = new Map<string, IssuedToken>();
  clockOffsetSeconds = 0;
  readonly #state: GcpState;

  constructor(state: GcpState, issuers = new TrustedIssuers()) {
    this.#state = state;
    this.issuers = issuers;
    this.federation = new FederationPools(state);
  }

  now(): number {
    return Math.floor(Date.now() / 1000) + this.clockOffsetSeconds;
  }

  addPool(pool: WorkloadPool): void {
    this.pools.set(pool.pool, pool);
  }

  /** STS token exchange; `params` are the request's fields, snake_case as on the wire. */
  async exchange(params: Record<string, string | undefined>): Promise<object> {
    if (params['grant_type'] !== TOKEN_EXCHANGE_GRANT) throw new OAuthError(400, 'unsupported_grant_type', `Unsupported grant type: ${params['grant_type'] ?? ''}.`);
    if (params['requested_token_type'] !== ACCESS_TOKEN_TYPE) {
      throw new OAuthError(400, 'invalid_request', 'Invalid value for "requested_token_type". This value must be "urn:ietf:params:oauth:token-type:access_token".');
    }
    if (!SUBJECT_TOKEN_TYPES.includes(params['subject_token_type'] ?? '')) {
      throw new OAuthError(400, 'invalid_request', `Invalid value for "subject_token_type": ${params['subject_token_type'] ?? ''}.`);
    }
    const audience = params['audience'] ?? '';
    if (audience.startsWith('//iam.googleapis.com/')) return this.#exchangeFederated(audience, params['subject_token'] ?? '');
    const namespaced = /^identitynamespace:([^:]+):(.+)$/.exec(audience);
    if (!namespaced) {
      throw new OAuthError(400, 'invalid_request', 'Invalid value for "audience". This value should be the full resource name of the Identity Provider. See https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token for the list of possible formats.');
    }
    const [, poolName = '', provider = ''] = namespaced;
    const pool = this.pools.get(poolName);
    if (!pool || (pool.identityProvider !== undefined && pool.identityProvider !== provider)) {
      throw new OAuthError(400, 'invalid_target', 'The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn\'t exist.');
    }
    const jwt = decodeJwt(params['subject_token'] ?? '');
    // [unverified] texts of the invalid_grant answers below, except the stale-token one.
    if (!jwt) throw new OAuthError(400, 'invalid_grant', 'Unable to parse the ID Token.');
    if (jwt.claims.iss !== pool.issuer) throw new OAuthError(400, 'invalid_grant', `The issuer in ID Token ${String(jwt.claims.iss)} does not match the expected ones [${pool.issuer}].`);
    const signature = await this.issuers.verify(jwt, pool.issuer);
    if (signature !== 'valid') throw new OAuthError(400, 'invalid_grant', 'Invalid JWT signature.');
    const time = checkTimes(jwt.claims, this.now());
    if (time !== 'current') throw new OAuthError(400, 'invalid_grant', `ID Token issued at ${jwt.claims.iat ?? 0} is stale to sign-in.`);
    const aud = audiences(jwt.claims);
    if (!aud.includes(pool.pool)) throw new OAuthError(400, 'invalid_grant', `The audience in ID Token [${aud.join(', ')}] does not match the expected audience ${pool.pool}.`);
    const ksa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(jwt.claims.sub ?? '');
    if (!ksa) throw new OAuthError(400, 'invalid_grant', `The subject in ID Token ${String(jwt.claims.sub)} is not a Kubernetes ServiceAccount.`);
    const [, ns = '', sa = ''] = ksa;
    const projectId = pool.pool.replace(/\.svc\.id\.goog$/, '');
    const projectNumber = this.#state.projects.get(projectId)?.projectNumber;
    const principal = `principal://iam.googleapis.com/projects/${projectNumber ?? projectId}/locations/global/workloadIdentityPools/${pool.pool}/subject/ns/${ns}/sa/${sa}`;
    const token = this.#issue({ kind: 'federated', principal, members: [principal, `serviceAccount:${pool.pool}[${ns}/${sa}]`] }, FEDERATED_LIFETIME_SECONDS);
    return { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: FEDERATED_LIFETIME_SECONDS };
  }

  /** STS for a workload identity pool provider (pools.ts): the checks in the order Google makes them. */
  async #exchangeFederated(audience: string, subjectToken: string): Promise<object> {
    const target = this.federation.forAudience(audience);
    const { pool, provider, jwks } = target ?? {};
    if (!pool || !provider || pool.state !== 'ACTIVE' || provider.state !== 'ACTIVE' || pool.disabled || provider.disabled) {
      throw new OAuthError(400, 'invalid_target', 'The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn\'t exist.');
    }
    const jwt = decodeJwt(subjectToken);
    if (!jwt) throw new OAuthError(400, 'invalid_grant', 'Unable to parse the ID Token.');
    const issuer = provider.oidc.issuerUri;
    if (jwt.claims.iss !== issuer) throw new OAuthError(400, 'invalid_grant', `The issuer in ID Token ${String(jwt.claims.iss)} does not match the expected ones [${issuer}].`);
    const signature = jwks ? checkSignature(jwt, jwks) : await this.issuers.verify(jwt, issuer);
    // [unverified] wording: Google cannot fetch the discovery document or JWKS of the issuer.
    if (signature === 'unknown-issuer') throw new OAuthError(400, 'invalid_grant', `Unable to retrieve the public keys of issuer ${issuer}: its discovery document or JWKS is not reachable. Upload them as jwksJson instead.`);
    if (signature !== 'valid') throw new OAuthError(400, 'invalid_grant', 'Invalid JWT signature.');
    if (checkTimes(jwt.claims, this.now()) !== 'current') throw new OAuthError(400, 'invalid_grant', `ID Token issued at ${jwt.claims.iat ?? 0} is stale to sign-in.`);
    const aud = audiences(jwt.claims);
    const accepted = this.federation.audiencesOf(provider);
    if (!aud.some((a) => accepted.includes(a))) throw new OAuthError(400, 'invalid_grant', `The audience in ID Token [${aud.join(', ')}] does not match the expected audience ${accepted.join(', ')}.`);
    const mapped = this.federation.map(provider, jwt.claims);
    if (!mapped.ok) throw new OAuthError(400, 'invalid_grant', mapped.message);
    const base = `iam.googleapis.com/${pool.name}`;
    const principal = `principal://${base}/subject/${mapped.subject}`;
    const members = [
      principal,
      `principalSet://${base}/*`,
      ...mapped.groups.map((g) => `principalSet://${base}/group/${g}`),
      ...Object.entries(mapped.attributes).map(([k, v]) => `principalSet://${base}/attribute.${k}/${v}`),
    ];
    const token = this.#issue({ kind: 'federated', principal, members }, FEDERATED_LIFETIME_SECONDS);
    return { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: FEDERATED_LIFETIME_SECONDS };
  }

  /** IAM Credentials generateAccessToken for service account `id` (its email or unique id), called with `bearer`. */
  generateAccessToken(bearer: string, project: string, id: string, body: unknown): object {
    const caller = this.issued.get(bearer);
    if (!caller || caller.expiresAt <= this.now()) {
      throw new GoogleError(
        401,
        'UNAUTHENTICATED',
        'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
      );
    }
    const denied = new GoogleError(403, 'PERMISSION_DENIED', "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).");
    let account;
    try {
      account = this.#state.findServiceAccount(project, id);
    } catch {
      throw denied;
    }
    if (!account || account.disabled) throw denied;
    const policy = this.#state.policies.get(`serviceAccount/${account.email}`);
    const allowed = (policy?.bindings ?? []).some((b) => !b.condition && IMPERSONATION_ROLES.includes(b.role) && b.members.some((m) => caller.members.includes(m)));
    if (!allowed) throw denied;
    const lifetime = Number(/^(\d+)s$/.exec((body as { lifetime?: string } | undefined)?.lifetime ?? '3600s')?.[1] ?? 3600);
    if (lifetime > 3600) throw new GoogleError(400, 'INVALID_ARGUMENT', 'The lifetime must be at most 3600 seconds.');
    const member = `serviceAccount:${account.email}`;
    const token = this.#issue({ kind: 'serviceAccount', principal: member, members: [member] }, lifetime);
    return { accessToken: token, expireTime: new Date((this.now() + lifetime) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') };
  }

  /**
   * testIamPermissions with an access token this emulator issued: the requested permissions its members hold on the
   * policies under `keys` (a resource and the project it inherits from).
   */
  testPermissions(bearer: string, keys: string[], requested: string[]): string[] {
    const caller = this.issued.get(bearer);
    if (!caller || caller.expiresAt <= this.now()) throw new GoogleError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.');
    const policies = keys.flatMap((k) => {
      const p = this.#state.policies.get(k);
      return p ? [p] : [];
    });
    return grantedPermissions(policies, caller.members, requested);
  }

  #issue(token: Omit<IssuedToken, 'expiresAt'>, lifetimeSeconds: number): string {
    const value = `ya29.emulator-${randomBytes(24).toString('base64url')}`;
    this.issued.set(value, { ...token, expiresAt: this.now() + lifetimeSeconds });
    return value;
  }
}
