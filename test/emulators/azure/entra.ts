// Microsoft Entra ID's token endpoint for workload identity federation, as @azure/identity's
// WorkloadIdentityCredential and ClientAssertionCredential (MSAL Node) call it with AZURE_AUTHORITY_HOST pointed
// here: the tenant's OpenID configuration (GET /{tenant}/v2.0/.well-known/openid-configuration; MSAL accepts its
// issuer only on the authority's own host) and the OAuth 2.0 v2 token endpoint (POST /{tenant}/oauth2/v2.0/token,
// client_credentials with a jwt-bearer client_assertion). The client_id must be a user-assigned managed identity of
// the tenant; one of its federated identity credentials must match the assertion's issuer, subject and audience
// exactly (case-sensitive); the assertion must verify against the issuer's keys and be within its validity window.
// Errors are Entra's JSON (error, error_description "AADSTSnnn: …", error_codes, timestamp, trace_id,
// correlation_id, error_uri), codes and texts from public reports, e.g.
// AADSTS700213 (Azure/azure-workload-identity#1200), AADSTS700024 (AzureAD/microsoft-authentication-library-for-java#984),
// AADSTS7000272 (Azure/azure-workload-identity#1232), AADSTS700016; [unverified] where marked.
//
// MSAL first asks login.microsoftonline.com for instance discovery of any authority it does not know; with no
// route there the credential needs `disableInstanceDiscovery: true`, which makes MSAL trust this host as given.
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { TrustedIssuers } from '../oidc/issuers.ts';
import { audiences, checkTimes, decodeJwt } from '../oidc/jwt.ts';
import type { ArmState, StoredIdentity } from './arm.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ACCESS_TOKEN_LIFETIME_SECONDS = 3599;

export interface EntraReply {
  status: number;
  body: unknown;
}

class EntraError extends Error {
  readonly status: number;
  readonly error: string;
  readonly code: number;
  constructor(status: number, error: string, code: number, message: string) {
    super(message);
    this.status = status;
    this.error = error;
    this.code = code;
  }
}

/** 2025-04-22 01:01:11Z, the timestamp format of Entra's error bodies. */
const entraTimestamp = (d: Date) => `${d.toISOString().slice(0, 19).replace('T', ' ')}Z`;
/** 2024-10-02T22:05:03.6755165Z, the format AADSTS700024 quotes times in. */
const ticks = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');

const FIC_HINT = 'Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation';

export class Entra {
  readonly issuers: TrustedIssuers;
  clockOffsetSeconds = 0;
  readonly #state: ArmState;
  readonly #key: KeyObject;
  readonly #kid = randomUUID();
  readonly #jwk: object;

  constructor(state: ArmState, issuers = new TrustedIssuers()) {
    this.#state = state;
    this.issuers = issuers;
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.#key = privateKey;
    this.#jwk = { ...publicKey.export({ format: 'jwk' }), kid: this.#kid, use: 'sig', alg: 'RS256' };
  }

  now(): number {
    return Math.floor(Date.now() / 1000) + this.clockOffsetSeconds;
  }

  #knownTenant(tenant: string): boolean {
    return tenant.toLowerCase() === this.#state.tenantId.toLowerCase();
  }

  #tenantNotFound(tenant: string): EntraError {
    return new EntraError(
      400,
      'invalid_tenant',
      90002,
      `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
    );
  }

  #errorReply(err: EntraError, correlationId: string): EntraReply {
    const when = new Date();
    const traceId = randomUUID();
    return {
      status: err.status,
      body: {
        error: err.error,
        error_description: `AADSTS${err.code}: ${err.message} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${entraTimestamp(when)}`,
        error_codes: [err.code],
        timestamp: entraTimestamp(when),
        trace_id: traceId,
        correlation_id: correlationId,
        error_uri: `https://login.microsoftonline.com/error?code=${err.code}`,
      },
    };
  }

  /** GET /{tenant}/v2.0/.well-known/openid-configuration, on `origin` (https://host:port). */
  openidConfiguration(origin: string, tenant: string): EntraReply {
    if (!this.#knownTenant(tenant)) return this.#errorReply(this.#tenantNotFound(tenant), randomUUID());
    const base = `${origin}/${tenant}`;
    return {
      status: 200,
      body: {
        token_endpoint: `${base}/oauth2/v2.0/token`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        jwks_uri: `${origin}/${tenant}/discovery/v2.0/keys`,
        response_modes_supported: ['query', 'fragment', 'form_post'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        issuer: `${base}/v2.0`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        tenant_region_scope: 'NA',
      },
    };
  }

  /** GET /{tenant}/discovery/v2.0/keys: the keys the access tokens below are signed with. */
  keys(): EntraReply {
    return { status: 200, body: { keys: [this.#jwk] } };
  }

  /** POST /{tenant}/oauth2/v2.0/token with the form fields; the verified checks run before anything is issued. */
  async token(tenant: string, form: URLSearchParams, correlationId: string): Promise<EntraReply> {
    try {
      const identity = await this.#admit(tenant, form);
      return { status: 200, body: this.#issue(identity, form.get('scope') ?? '') };
    } catch (err) {
      if (!(err instanceof EntraError)) throw err;
      return this.#errorReply(err, correlationId);
    }
  }

  async #admit(tenant: string, form: URLSearchParams): Promise<StoredIdentity> {
    if (!this.#knownTenant(tenant)) throw this.#tenantNotFound(tenant);
    if (form.get('grant_type') !== 'client_credentials') {
      throw new EntraError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${form.get('grant_type') ?? ''}'.`);
    }
    const clientId = form.get('client_id') ?? '';
    const identity = [...this.#state.identities.values()].find((i) => i.clientId.toLowerCase() === clientId.toLowerCase() && this.#knownTenant(i.tenantId));
    if (!identity) {
      throw new EntraError(
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      );
    }
    if (form.get('client_assertion_type') !== JWT_BEARER) {
      throw new EntraError(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    const jwt = decodeJwt(form.get('client_assertion') ?? '');
    if (!jwt || typeof jwt.claims.iss !== 'string') throw new EntraError(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.');
    const { iss, sub } = jwt.claims;
    const aud = audiences(jwt.claims);
    const credentials = [...identity.credentials.values()];
    const byIssuer = credentials.filter((c) => c.issuer === iss);
    if (!byIssuer.length) throw new EntraError(401, 'invalid_client', 700211, `No matching federated identity record found for presented assertion issuer '${iss}'. ${FIC_HINT}`);
    const bySubject = byIssuer.filter((c) => c.subject === sub);
    if (!bySubject.length) throw new EntraError(401, 'invalid_client', 700213, `No matching federated identity record found for presented assertion subject '${sub ?? ''}'. ${FIC_HINT}`);
    if (!bySubject.some((c) => c.audiences.some((a) => aud.includes(a)))) {
      // [unverified] code and text, by analogy with AADSTS700211 and AADSTS700213.
      throw new EntraError(401, 'invalid_client', 700212, `No matching federated identity record found for presented assertion audience '${aud.join(', ')}'. ${FIC_HINT}`);
    }
    const signature = await this.issuers.verify(jwt, iss);
    if (signature === 'unknown-issuer' || signature === 'unknown-key') {
      throw new EntraError(
        401,
        'invalid_client',
        7000272,
        `The certificate with identifier ${jwt.header.kid ?? ''} used to sign the federated credential could not be found in the metadata of identity provider ${iss}. Please validate that your Identity Provider's metadata exposes the key used to sign the incoming token.`,
      );
    }
    // [unverified] code and text for a signature that does not verify with a published key.
    if (signature !== 'valid') throw new EntraError(401, 'invalid_client', 7000274, 'Assertion failed signature validation.');
    const time = checkTimes(jwt.claims, this.now());
    if (time !== 'current') {
      throw new EntraError(
        401,
        'invalid_client',
        700024,
        `Client assertion is not within its valid time range. Current time: ${ticks(this.now())}, assertion valid from ${ticks(jwt.claims.nbf ?? jwt.claims.iat ?? 0)}, expiry time of assertion ${ticks(jwt.claims.exp ?? 0)}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .`,
      );
    }
    return identity;
  }

  /** A v1 access token for the scope's resource, signed with this emulator's key, naming the managed identity. */
  #issue(identity: StoredIdentity, scope: string): object {
    const resource = scope.split(' ')[0]?.replace(/\/\.default$/, '') ?? '';
    const iat = this.now();
    const issuer = `https://sts.windows.net/${identity.tenantId}/`;
    const header = { typ: 'JWT', alg: 'RS256', kid: this.#kid };
    const claims = {
      aud: resource,
      iss: issuer,
      iat,
      nbf: iat,
      exp: iat + ACCESS_TOKEN_LIFETIME_SECONDS,
      appid: identity.clientId,
      appidacr: '2',
      idp: issuer,
      idtyp: 'app',
      oid: identity.principalId,
      sub: identity.principalId,
      tid: identity.tenantId,
      ver: '1.0',
      xms_mirid: this.#state.identityId(identity),
    };
    const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const signature = sign('sha256', Buffer.from(input), this.#key).toString('base64url');
    return { token_type: 'Bearer', expires_in: ACCESS_TOKEN_LIFETIME_SECONDS, ext_expires_in: ACCESS_TOKEN_LIFETIME_SECONDS, access_token: `${input}.${signature}` };
  }
}
