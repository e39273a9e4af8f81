// IssuerReachable: can a cloud fetch this cluster's OIDC discovery document and signing keys the way it does to verify
// a ServiceAccount token — anonymously, over HTTPS, from outside the cluster? AWS STS (IRSA) and Microsoft Entra ID
// fetch `{issuer}/.well-known/openid-configuration` and the `jwks_uri` it names for every exchange; a self-managed
// cluster that serves them only inside the cluster (the API server's own endpoints need credentials) has identities
// that look Ready and pods whose exchanges all fail.
//
// The check is a warning, never part of Ready: it runs from the operator's network, which is not the cloud's (an
// operator without internet egress sees a reachable issuer as unreachable, one with cluster DNS may reach what the
// cloud cannot), and a blip must never make existing identities lose their trust. What it judges is pure and
// table-tested; the fetching is the AnonymousGet port.
import { ACCOUNT_CONDITION, REASON, type Reason } from '../../api/constants.ts';
import type { Cloud } from '../../api/types.ts';
import type { ConditionInput } from '../../domain/conditions.ts';

export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * A GET with no credentials of any kind (no cluster token, no cloud signature), a deadline and a bounded body.
 * Rejects with a short, sanitized Error message when no answer arrives (DNS, TCP, TLS, timeout, size).
 */
export type AnonymousGet = (url: string) => Promise<HttpAnswer>;

/** Who fetches the issuer's documents, per cloud, for messages. */
const FETCHER: Record<Cloud, string> = {
  aws: 'AWS STS',
  azure: 'Microsoft Entra ID',
  gcp: "Google Cloud's Security Token Service",
};

/**
 * OpenID Connect Discovery 1.0 §4: "If the Issuer value contains a path component, any terminating / MUST be
 * removed before appending /.well-known/openid-configuration."
 */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

function isHttpsUrl(value: string): boolean {
  try {
    return new URL(value).protocol === 'https:';
  } catch {
    return false;
  }
}

function condition(ok: boolean, reason: Reason, message: string): ConditionInput {
  return { type: ACCOUNT_CONDITION.issuerReachable, status: ok ? 'True' : 'False', reason, message };
}

/** What every failure message ends with: what it means, and what it does not. */
function impact(fetcher: string, url: string): string {
  return (
    ` Until ${fetcher} can fetch it, every token exchange of this account's identities fails, although they show Ready. ` +
    `This is a warning and changes nothing in the cloud. Keyless checks from the operator's own network: if the operator has no route to the internet, confirm from outside the cluster (curl -sS ${url}).`
  );
}

const PUBLISH =
  'Serve the discovery document and the JWKS at a public HTTPS URL (an S3 bucket or any static site; kubectl get --raw /.well-known/openid-configuration and /openid/v1/jwks give their content), and make that URL the API server\'s --service-account-issuer.';

/** The discovery document, parsed, or the reason it is not one. */
function parseObject(body: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** How many usable keys a JWKS body has, or why it is not a JWKS (RFC 7517 §5: an object with a "keys" array). */
export function jwksKeys(body: string): number | string {
  const doc = parseObject(body);
  if (!doc) return 'it is not a JSON object';
  const keys = doc['keys'];
  if (!Array.isArray(keys)) return 'it has no "keys" array';
  const usable = keys.filter((k: unknown) => typeof k === 'object' && k !== null && typeof (k as { kty?: unknown }).kty === 'string');
  if (usable.length === 0) return keys.length === 0 ? 'its "keys" array is empty' : 'none of its keys has a "kty"';
  return usable.length;
}

/** Fetches the discovery document and the JWKS as `cloud` would, and says what it found. */
export async function checkIssuerReachable(get: AnonymousGet, issuer: string, cloud: Cloud): Promise<ConditionInput> {
  const fetcher = FETCHER[cloud];
  if (!isHttpsUrl(issuer)) {
    return condition(false, REASON.NotHttps, `Issuer ${issuer} is not an https:// URL; ${fetcher} fetches the issuer's keys over HTTPS only. ${PUBLISH}`);
  }
  const discovery = discoveryUrl(issuer);
  let answer: HttpAnswer;
  try {
    answer = await get(discovery);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return condition(false, REASON.DiscoveryUnreachable, `The discovery document ${discovery} could not be fetched anonymously: ${why}. ${PUBLISH}${impact(fetcher, discovery)}`);
  }
  if (answer.status !== 200) {
    const hint = answer.status === 401 || answer.status === 403 ? ' (the API server serves it only to authenticated clients)' : '';
    return condition(false, REASON.DiscoveryUnreachable, `The discovery document ${discovery} answered HTTP ${answer.status} to an anonymous GET${hint}. ${PUBLISH}${impact(fetcher, discovery)}`);
  }
  const doc = parseObject(answer.body);
  if (!doc) {
    return condition(false, REASON.DiscoveryInvalid, `The discovery document ${discovery} is not a JSON object.${impact(fetcher, discovery)}`);
  }
  const named = doc['issuer'];
  if (named !== issuer) {
    const slash = typeof named === 'string' && named.replace(/\/+$/, '') === issuer.replace(/\/+$/, '') ? ' They differ only in the trailing slash, which counts: tokens carry the API server\'s exact --service-account-issuer.' : '';
    return condition(
      false,
      REASON.IssuerMismatch,
      `The discovery document ${discovery} names issuer ${typeof named === 'string' ? named : '(none)'}, not ${issuer}: ${fetcher} requires them to be identical and refuses tokens otherwise.${slash} Set the CloudAccount's issuer to the API server's --service-account-issuer exactly (kubectl get --raw /.well-known/openid-configuration | jq -r .issuer), or fix the published document.`,
    );
  }
  const jwksUri = doc['jwks_uri'];
  if (typeof jwksUri !== 'string' || jwksUri === '') {
    return condition(false, REASON.DiscoveryInvalid, `The discovery document ${discovery} has no jwks_uri, so ${fetcher} cannot find the keys that sign this cluster's tokens.${impact(fetcher, discovery)}`);
  }
  if (!isHttpsUrl(jwksUri)) {
    return condition(false, REASON.NotHttps, `The discovery document ${discovery} names jwks_uri ${jwksUri}, which is not an https:// URL; ${fetcher} fetches keys over HTTPS only. Publish the JWKS at an HTTPS URL and name it in jwks_uri (the API server's --service-account-jwks-uri).`);
  }
  let keys: HttpAnswer;
  try {
    keys = await get(jwksUri);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return condition(false, REASON.JwksUnreachable, `The JWKS ${jwksUri} (jwks_uri of ${discovery}) could not be fetched anonymously: ${why}. ${PUBLISH}${impact(fetcher, jwksUri)}`);
  }
  if (keys.status !== 200) {
    return condition(false, REASON.JwksUnreachable, `The JWKS ${jwksUri} (jwks_uri of ${discovery}) answered HTTP ${keys.status} to an anonymous GET. ${PUBLISH}${impact(fetcher, jwksUri)}`);
  }
  const count = jwksKeys(keys.body);
  if (typeof count === 'string') {
    return condition(
      false,
      REASON.JwksInvalid,
      `The JWKS ${jwksUri} is not a JSON Web Key Set with a key: ${count}. Publish the API server's keys there (kubectl get --raw /openid/v1/jwks).${impact(fetcher, jwksUri)}`,
    );
  }
  return condition(
    true,
    REASON.Reachable,
    `The discovery document ${discovery} names this issuer and its JWKS ${jwksUri} has ${count} key${count === 1 ? '' : 's'}, both fetched anonymously from the operator's network, as ${fetcher} fetches them.`,
  );
}

/** The condition when there is nothing to fetch, or nothing to fetch yet. */
export function issuerNotChecked(issuer: string | undefined): ConditionInput {
  if (issuer === undefined) {
    return { type: ACCOUNT_CONDITION.issuerReachable, status: 'Unknown', reason: REASON.Pending, message: 'Checked once the account knows its issuer (see Ready).' };
  }
  return {
    type: ACCOUNT_CONDITION.issuerReachable,
    status: 'True',
    reason: REASON.NotRequired,
    message: `This cloud does not fetch a discovery document for ${issuer}: it trusts the cluster through ${issuer} itself, so there is nothing to check.`,
  };
}
