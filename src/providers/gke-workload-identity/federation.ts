// Workload Identity Federation for a cluster that is not GKE (EKS, AKS, self-managed), all pure. The CloudAccount names
// a workload identity pool provider that trusts this cluster's ServiceAccount token issuer with the attribute mapping
// google.subject=assertion.sub, so the Kubernetes ServiceAccount is the principal
//   principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL/subject/system:serviceaccount:NS:SA
// Nothing on the node serves tokens (there is no GKE metadata server): a pod's Google client library reads an
// external_account credential configuration (AIP-4117, https://google.aip.dev/auth/4117, "file-sourced credentials";
// the file `gcloud iam workload-identity-pools create-cred-config --credential-source-file=...` writes) naming the
// provider as the STS audience, the projected ServiceAccount token as the subject token, and — in ServiceAccount
// mode — the Google service account to impersonate. Keyless writes that file into a ConfigMap next to the
// WorkloadIdentity; the pod mounts it together with the token in one projected volume
// (https://cloud.google.com/iam/docs/workload-identity-federation-with-kubernetes).
import { boundedName, identityKey } from '../../domain/naming.ts';
import type { GcpCloudAccountSpec } from '../../api/types.ts';

export interface FederationProvider {
  /** `projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER`. */
  name: string;
  projectNumber: string;
  /** The pool id. */
  pool: string;
  provider: string;
}

/** Pool and provider ids: 4–32 lowercase letters, digits and hyphens; the gcp- prefix is Google's. */
const PROVIDER_NAME = /^projects\/([0-9]{1,20})\/locations\/global\/workloadIdentityPools\/([a-z0-9-]{4,32})\/providers\/([a-z0-9-]{4,32})$/;

export function parseWorkloadIdentityProvider(name: string | undefined): FederationProvider | undefined {
  const m = name === undefined ? null : PROVIDER_NAME.exec(name);
  if (!m || !name) return undefined;
  const [, projectNumber = '', pool = '', provider = ''] = m;
  if (pool.startsWith('gcp-') || provider.startsWith('gcp-')) return undefined;
  return { name, projectNumber, pool, provider };
}

/** The CloudAccount's federation provider; undefined for GKE's pool. Throws on a name the CRD should have refused. */
export function federationOf(account: Pick<GcpCloudAccountSpec, 'workloadIdentityProvider'>): FederationProvider | undefined {
  if (!account.workloadIdentityProvider) return undefined;
  const parsed = parseWorkloadIdentityProvider(account.workloadIdentityProvider);
  if (!parsed) throw new Error(`spec.gcp.workloadIdentityProvider "${account.workloadIdentityProvider}" is not a workload identity pool provider name`);
  return parsed;
}

/** What is wrong with a CloudAccount's federation settings, each a sentence; the CRD checks the same. */
export function federationProblems(account: GcpCloudAccountSpec): string[] {
  const name = account.workloadIdentityProvider;
  if (!name) return [];
  const parsed = parseWorkloadIdentityProvider(name);
  if (!parsed) {
    return [`spec.gcp.workloadIdentityProvider "${name}" is not projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider> (pool and provider ids: 4 to 32 lowercase letters, digits and hyphens, not starting with gcp-)`];
  }
  const problems: string[] = [];
  if (parsed.projectNumber !== account.projectNumber) {
    problems.push(`spec.gcp.workloadIdentityProvider names project number ${parsed.projectNumber}, but spec.gcp.projectNumber is ${account.projectNumber}: the pool must be in the CloudAccount's project`);
  }
  if (account.workloadPool) problems.push('spec.gcp.workloadPool is GKE\'s pool and cannot be combined with spec.gcp.workloadIdentityProvider: remove one');
  return problems;
}

/**
 * IAM's limit on google.subject (WorkloadIdentityPoolProvider.attributeMapping: "Cannot exceed 127 bytes"): a longer
 * `system:serviceaccount:NS:SA` is refused by Security Token Service for every token.
 */
export const GOOGLE_SUBJECT_MAX_BYTES = 127;

/** The Kubernetes ServiceAccount as the pool's principal, with google.subject=assertion.sub. */
export function federatedPrincipal(provider: Pick<FederationProvider, 'projectNumber' | 'pool'>, subject: string): string {
  return `principal://iam.googleapis.com/projects/${provider.projectNumber}/locations/global/workloadIdentityPools/${provider.pool}/subject/${subject}`;
}

/** The STS `audience` parameter: the provider's full resource name (STS token reference, `audience`). */
export function stsAudience(provider: Pick<FederationProvider, 'name'>): string {
  return `//iam.googleapis.com/${provider.name}`;
}

/**
 * The audience of the projected ServiceAccount token. With no allowedAudiences on the provider, Google accepts the
 * provider's full name with or without the https: prefix (Oidc.allowedAudiences); Google's Kubernetes guide projects
 * the https form, which is also what a platform team lists when it sets allowedAudiences.
 */
export function tokenAudience(provider: Pick<FederationProvider, 'name'>): string {
  return `https://iam.googleapis.com/${provider.name}`;
}

/** Where the pod mounts the projected volume holding both the token and the credential configuration. */
export const POD_CREDENTIALS = {
  volume: 'keyless-gcp',
  mountPath: '/var/run/secrets/keyless.dev/gcp',
  tokenPath: 'token',
  configurationKey: 'credential-configuration.json',
  /** The kubelet refreshes a projected token at 80% of its life; an hour is what Google's guide uses. */
  expirationSeconds: 3600,
} as const;

export const TOKEN_FILE = `${POD_CREDENTIALS.mountPath}/${POD_CREDENTIALS.tokenPath}`;
export const CREDENTIALS_FILE = `${POD_CREDENTIALS.mountPath}/${POD_CREDENTIALS.configurationKey}`;

/** DNS-1123 subdomain names: at most 253 characters. */
const CONFIG_MAP_NAME_MAX = 253;
const CONFIG_MAP_SUFFIX = '-gcp-credentials';

/** `<name>-gcp-credentials`, cut to fit with a hash of the identity when the WorkloadIdentity's name is long. */
export function credentialConfigMapName(cluster: string, namespace: string, name: string): string {
  if (name.length + CONFIG_MAP_SUFFIX.length <= CONFIG_MAP_NAME_MAX) return `${name}${CONFIG_MAP_SUFFIX}`;
  return `${boundedName(name, identityKey(cluster, namespace, name), CONFIG_MAP_NAME_MAX - CONFIG_MAP_SUFFIX.length)}${CONFIG_MAP_SUFFIX}`;
}

/** Where pods exchange tokens: Security Token Service and IAM Credentials (overridden for an emulator). */
export interface ExchangeUrls {
  sts: string;
  iamcredentials: string;
}

/** Google's own: STS's token endpoint is `https://sts.googleapis.com/v1/token`. */
export const GOOGLE_EXCHANGE_URLS: ExchangeUrls = { sts: 'https://sts.googleapis.com/', iamcredentials: 'https://iamcredentials.googleapis.com/' };

/**
 * The external_account credential configuration (AIP-4117): STS exchanges the file-sourced token for a federated
 * access token; with `impersonate`, IAM Credentials then issues the Google service account's token.
 */
export function credentialConfiguration(provider: Pick<FederationProvider, 'name'>, urls: ExchangeUrls, impersonate: string | undefined): Record<string, unknown> {
  return {
    // What `gcloud iam workload-identity-pools create-cred-config` writes (gcloud 528), field for field.
    universe_domain: 'googleapis.com',
    type: 'external_account',
    audience: stsAudience(provider),
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    token_url: new URL('v1/token', urls.sts).href,
    ...(impersonate ? { service_account_impersonation_url: new URL(`v1/projects/-/serviceAccounts/${impersonate}:generateAccessToken`, urls.iamcredentials).href } : {}),
    credential_source: { file: TOKEN_FILE, format: { type: 'text' } },
  };
}

/** The ConfigMap's data: the configuration as `gcloud ... create-cred-config` would write it (two-space JSON). */
export function credentialConfigMapData(configuration: Record<string, unknown>): Record<string, string> {
  return { [POD_CREDENTIALS.configurationKey]: `${JSON.stringify(configuration, null, 2)}\n` };
}

/**
 * What a pod spec needs, in one sentence of YAML-ish fragments, for the ServiceAccountReady message. GOOGLE_CLOUD_PROJECT
 * spares the client libraries a lookup: without it, google-auth-library resolves the project number of the audience
 * through Resource Manager with the pod's own token (GoogleAuth.getClient), which fails unless the identity also holds
 * resourcemanager.projects.get.
 */
export function podMountHint(configMap: string, audience: string, projectId: string): string {
  return (
    `Pods need (no webhook adds it): a projected volume ${POD_CREDENTIALS.volume} with sources serviceAccountToken {audience: ${audience}, ` +
    `expirationSeconds: ${POD_CREDENTIALS.expirationSeconds}, path: ${POD_CREDENTIALS.tokenPath}} and configMap {name: ${configMap}}, ` +
    `mounted read-only at ${POD_CREDENTIALS.mountPath}, and the environment variables GOOGLE_APPLICATION_CREDENTIALS=${CREDENTIALS_FILE} and GOOGLE_CLOUD_PROJECT=${projectId}.`
  );
}
