// Names that are part of Keyless's public contract: API coordinates, the finalizer, annotation and tag keys,
// condition types and reasons. Reasons are stable CamelCase constants: alerts, Argo CD health checks and the
// troubleshooting docs match on them, so renaming one is a breaking change.

export const GROUP = 'keyless.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const WORKLOAD_IDENTITY_PLURAL = 'workloadidentities';
export const CLOUD_ACCOUNT_PLURAL = 'cloudaccounts';

/** Added before the first cloud write; removed only once the cloud confirms the revocation. */
export const FINALIZER = 'keyless.dev/revoke';

/** On a CloudAccount while WorkloadIdentities use it: their finalizers need the account to revoke anything. */
export const CLOUD_ACCOUNT_FINALIZER = 'keyless.dev/in-use';

/** The field manager for the operator's writes: status, finalizers, workload restarts. */
export const FIELD_MANAGER = 'keyless';

/**
 * The field manager for a ServiceAccount's annotations, one per cloud: a ServiceAccount may have an AWS and an
 * Azure identity at once, and server-side apply removes whatever a manager owned but left out of its next apply.
 */
export function serviceAccountFieldManager(cloud: 'aws' | 'gcp' | 'azure'): string {
  return `${FIELD_MANAGER}-${cloud}`;
}

/** Ownership marker keys: cloud tags, labels or description fields, depending on the cloud. */
export const MARKER = {
  cluster: 'keyless.dev/cluster',
  namespace: 'keyless.dev/namespace',
  name: 'keyless.dev/name',
  /**
   * On what Keyless creates for a CloudAccount itself (the opt-in IAM OIDC provider), next to `cluster`: the
   * CloudAccount it belongs to. Cluster-scoped objects have no namespace.
   */
  cloudAccount: 'keyless.dev/cloud-account',
} as const;

/** Annotations a person puts on a WorkloadIdentity. */
export const WORKLOAD_IDENTITY_ANNOTATION = {
  /**
   * Take over a cloud identity that carries no Keyless marker, if the CloudAccount allows adoption: "true" for the one
   * with the derived name, or the identifier of an existing one (an IAM role ARN, a Google service account email, a
   * managed identity resource ID), which must already trust exactly this WorkloadIdentity's ServiceAccount.
   */
  adopt: 'keyless.dev/adopt',
  /** "true": once Ready, rollout-restart the Deployments/StatefulSets/DaemonSets whose pods predate the identity. */
  restartWorkloads: 'keyless.dev/restart-workloads',
  /**
   * "true": server-side apply the ServiceAccount annotations with force, taking them over from the other field
   * manager (kubectl annotate, Helm, client-side apply) that set them first.
   */
  takeOverAnnotations: 'keyless.dev/take-over-annotations',
} as const;

export const SERVICE_ACCOUNT_ANNOTATION = {
  awsRoleArn: 'eks.amazonaws.com/role-arn',
  gcpServiceAccount: 'iam.gke.io/gcp-service-account',
  azureClientId: 'azure.workload.identity/client-id',
  azureTenantId: 'azure.workload.identity/tenant-id',
} as const;

export const AUDIENCE = {
  irsa: 'sts.amazonaws.com',
  azure: 'api://AzureADTokenExchange',
} as const;

export const CONDITION = {
  identityReady: 'IdentityReady',
  trustReady: 'TrustReady',
  permissionsReady: 'PermissionsReady',
  serviceAccountReady: 'ServiceAccountReady',
  /** Informational, not part of Ready: whether running pods use the identity as it is now. */
  workloadsUpToDate: 'WorkloadsUpToDate',
  /** Opt-in (CloudAccount spec.verification), not part of Ready: whether the real token exchange succeeds. */
  credentialsVerified: 'CredentialsVerified',
  ready: 'Ready',
} as const;
export type ConditionType = (typeof CONDITION)[keyof typeof CONDITION];

/** CloudAccount conditions besides Ready. Neither is part of Ready: both warn, neither takes trust away. */
export const ACCOUNT_CONDITION = {
  /** Whether the issuer's discovery document and JWKS can be fetched anonymously, as the cloud fetches them. */
  issuerReachable: 'IssuerReachable',
  /**
   * AWS spec.aws.manageOidcProvider, GCP spec.gcp.manageWorkloadIdentityProvider: whether Keyless manages the IAM OIDC
   * provider, or the workload identity pool and provider, that trust the issuer.
   */
  oidcProviderManaged: 'OIDCProviderManaged',
} as const;

export const REASON = {
  // Success.
  Ready: 'Ready',
  Created: 'Created',
  UpToDate: 'UpToDate',
  Annotated: 'Annotated',
  NotRequired: 'NotRequired',
  // In progress.
  Reconciling: 'Reconciling',
  Deleting: 'Deleting',
  /** Revoking what the record holds and the spec (or the CloudAccount) no longer allows, before anything else. */
  Revoking: 'Revoking',
  /** A CloudAccount being deleted waits for the WorkloadIdentities that still use it. */
  InUse: 'InUse',
  Pending: 'Pending',
  // The cluster or account side is not there yet.
  CloudAccountNotFound: 'CloudAccountNotFound',
  CloudAccountNotReady: 'CloudAccountNotReady',
  CloudMismatch: 'CloudMismatch',
  IssuerNotFound: 'IssuerNotFound',
  OIDCProviderNotFound: 'OIDCProviderNotFound',
  ServiceAccountNotFound: 'ServiceAccountNotFound',
  /** Running pods started before the identity (or its latest change) and must be restarted to use it. */
  PodsNeedRestart: 'PodsNeedRestart',
  ResourceGroupNotFound: 'ResourceGroupNotFound',
  // The user must change something.
  InvalidSpec: 'InvalidSpec',
  CloudRejected: 'CloudRejected',
  Conflict: 'Conflict',
  NotOwned: 'NotOwned',
  /** Another field manager (kubectl annotate, Helm, client-side apply) owns a ServiceAccount annotation Keyless needs. */
  AnnotationConflict: 'AnnotationConflict',
  /** The spec asks for more than the CloudAccount's guardrails allow. */
  GuardrailViolation: 'GuardrailViolation',
  /** Part of the spec grants nothing: an action on a resource it does not apply to, a role on a resource of another service. */
  GrantsNothing: 'GrantsNothing',
  /** The CloudAccount's namespaceSelector does not admit this namespace. */
  NamespaceNotAllowed: 'NamespaceNotAllowed',
  /** A cloud quota (e.g. Google service accounts per project) leaves no room for the identity. */
  QuotaExceeded: 'QuotaExceeded',
  /** A resource the spec grants on (a bucket, topic, secret or project) does not exist or is not visible. */
  ResourceNotFound: 'ResourceNotFound',
  // Transient: retried with backoff.
  CloudError: 'CloudError',
  Throttled: 'Throttled',
  // A step waits for an earlier one.
  Blocked: 'Blocked',
  // CredentialsVerified.
  /** The real token exchange for the ServiceAccount succeeded. */
  Verified: 'Verified',
  /** The identity changed moments ago; clouds take a while to honour a new trust, so a failure is retried quietly. */
  VerificationPending: 'VerificationPending',
  /** The cloud does not trust this cluster's issuer for the exchange (no IAM OIDC provider, no pool for it). */
  IssuerNotTrusted: 'IssuerNotTrusted',
  /** The cloud trusts the issuer but not this ServiceAccount's subject or audience for this identity. */
  TrustRejected: 'TrustRejected',
  /** The exchange failed for another reason; the message quotes the cloud. */
  ExchangeFailed: 'ExchangeFailed',
  // IssuerReachable (CloudAccount).
  /** The discovery document and the JWKS were fetched anonymously and agree with the configured issuer. */
  Reachable: 'Reachable',
  /** The issuer, or the jwks_uri its discovery document names, is not an https:// URL: clouds fetch only HTTPS. */
  NotHttps: 'NotHttps',
  /** `{issuer}/.well-known/openid-configuration` could not be fetched anonymously (network, TLS, HTTP status). */
  DiscoveryUnreachable: 'DiscoveryUnreachable',
  /** The discovery document is not a JSON object with a jwks_uri. */
  DiscoveryInvalid: 'DiscoveryInvalid',
  /** The discovery document's `issuer` is not exactly the configured issuer (a trailing slash counts). */
  IssuerMismatch: 'IssuerMismatch',
  /** The jwks_uri could not be fetched anonymously. */
  JwksUnreachable: 'JwksUnreachable',
  /** The JWKS is not a JSON Web Key Set with at least one key. */
  JwksInvalid: 'JwksInvalid',
  // OIDCProviderManaged (CloudAccount, AWS and GCP).
  /**
   * Keyless created the IAM OIDC provider for the issuer (or the workload identity pool provider), with its marker,
   * and deletes it with the account.
   */
  Managed: 'Managed',
  /**
   * An IAM OIDC provider for the issuer (or the named workload identity pool provider) existed without this account's
   * marker: used as it is, never changed.
   */
  ExistingProvider: 'ExistingProvider',
  /** The IAM OIDC provider for the issuer lacks the client ID sts.amazonaws.com, so STS refuses IRSA tokens for it. */
  AudienceMissing: 'AudienceMissing',
} as const;
export type Reason = (typeof REASON)[keyof typeof REASON];
