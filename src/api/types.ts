import type { V1ObjectMeta } from '@kubernetes/client-node';

// TypeScript shapes of the keyless.dev/v1alpha1 resources. crds/ is the source of truth; src/api/types.test.ts
// checks that every field here exists in the CRD schema and vice versa.

/**
 * client-node's ObjectMeta with a required name. Its timestamps are typed `Date`, but custom objects arrive as
 * raw JSON, so at runtime they are RFC 3339 strings: compare them through `new Date(...)`, never directly.
 */
export type ObjectMeta = V1ObjectMeta & { name: string };

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export type DeletionPolicy = 'Delete' | 'Orphan';
export type AwsMechanism = 'IRSA' | 'PodIdentity';
export type GcpMechanism = 'ServiceAccount' | 'DirectPrincipal';
export type Cloud = 'aws' | 'gcp' | 'azure';

// ---------------------------------------------------------------------------------------------------------------
// WorkloadIdentity (namespaced)

/** One IAM policy statement; rendered to `{Effect, Action, Resource, Condition}`. */
export interface AwsPolicyStatement {
  sid?: string;
  effect: 'Allow' | 'Deny';
  actions: string[];
  resources: string[];
  /** IAM condition block: operator → condition key → values. */
  conditions?: Record<string, Record<string, string[]>>;
}

export interface AwsWorkloadIdentitySpec {
  mechanism?: AwsMechanism;
  policy?: AwsPolicyStatement[];
  managedPolicyArns?: string[];
  /** A duration between 1h and 12h, e.g. "1h", "90m". */
  maxSessionDuration?: string;
}

export interface GcpRoleGrant {
  role: string;
  /** Full resource name; the project when absent. */
  resource?: string;
  condition?: { title: string; description?: string; expression: string };
}

export interface GcpWorkloadIdentitySpec {
  mechanism?: GcpMechanism;
  roles?: GcpRoleGrant[];
}

export interface AzureRoleAssignment {
  /** A built-in role name or a role definition GUID. */
  role: string;
  scope: string;
}

export interface AzureWorkloadIdentitySpec {
  roleAssignments?: AzureRoleAssignment[];
}

export interface WorkloadIdentitySpec {
  serviceAccountName: string;
  cloudAccountRef: { name: string };
  deletionPolicy?: DeletionPolicy;
  aws?: AwsWorkloadIdentitySpec;
  gcp?: GcpWorkloadIdentitySpec;
  azure?: AzureWorkloadIdentitySpec;
}

/** One role Keyless granted on a Google Cloud resource's IAM policy, to one member. */
export interface GcpRecordedGrant {
  member: string;
  /** Full resource name of the policy the binding is in. */
  resource: string;
  role: string;
  condition?: { title?: string; description?: string; expression: string };
}

/**
 * What Keyless may have created or granted for one WorkloadIdentity, written before the cloud write that creates
 * it (DESIGN §3). Teardown and "remove what the spec no longer asks for" read this, never the spec of the moment:
 * it carries the account coordinates as they were, so revocation works after the spec switched cloud, the
 * CloudAccount changed or disappeared, or the guardrails tightened.
 */
export interface ProvisionedRecord {
  cloud: Cloud;
  cloudAccount: string;
  mechanism: string;
  /** The ServiceAccount annotations Keyless set for this identity, with their values. */
  serviceAccountAnnotations?: Record<string, string>;
  /** The ConfigMap Keyless may have written in the identity's namespace for its pods (a credential configuration). */
  configMap?: { name: string };
  aws?: { accountId: string; region: string; roleName: string; roleArn: string; clusterName?: string };
  gcp?: {
    projectId: string;
    projectNumber: string;
    workloadPool: string;
    /** Workload Identity Federation for a cluster that is not GKE: the provider's full resource name. */
    workloadIdentityProvider?: string;
    serviceAccountEmail?: string;
    grants?: GcpRecordedGrant[];
  };
  azure?: { subscriptionId: string; tenantId: string; resourceGroup: string; identityName: string; identityId?: string; subscriptions?: string[] };
}

export interface WorkloadIdentityStatus {
  observedGeneration?: number;
  cloud?: Cloud;
  mechanism?: string;
  /** The identity a person looks for: role ARN, Google service account email, or Azure client id. */
  identity?: string;
  subject?: string;
  issuer?: string;
  audience?: string;
  aws?: { roleArn?: string; roleName?: string; associationId?: string };
  gcp?: { serviceAccountEmail?: string; member?: string; credentialConfigMap?: string };
  azure?: { clientId?: string; principalId?: string; tenantId?: string; identityId?: string };
  provisioned?: ProvisionedRecord;
  conditions?: Condition[];
}

export interface WorkloadIdentity {
  apiVersion: 'keyless.dev/v1alpha1';
  kind: 'WorkloadIdentity';
  metadata: ObjectMeta;
  spec: WorkloadIdentitySpec;
  status?: WorkloadIdentityStatus;
}

// ---------------------------------------------------------------------------------------------------------------
// CloudAccount (cluster-scoped)

export interface AwsCloudAccountSpec {
  accountId: string;
  region: string;
  clusterName?: string;
  oidcIssuer?: string;
  mechanism?: AwsMechanism;
  rolePath?: string;
  roleNamePrefix?: string;
  permissionsBoundaryArn?: string;
  tags?: Record<string, string>;
  /** Opt-in: create the IAM OIDC provider for the issuer when none exists, and delete it with the account. */
  manageOidcProvider?: boolean;
}

export interface GcpCloudAccountSpec {
  projectId: string;
  projectNumber: string;
  workloadPool?: string;
  mechanism?: GcpMechanism;
  /** `projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER`: federation for a cluster that is not GKE. */
  workloadIdentityProvider?: string;
  /**
   * Opt-in: Keyless creates the pool and the OIDC provider workloadIdentityProvider names when they are missing,
   * trusting oidcIssuer, and deletes only what it created once nothing needs it.
   */
  manageWorkloadIdentityProvider?: boolean;
  /** The issuer the managed provider trusts (this cluster's ServiceAccount token issuer); required when managing. */
  oidcIssuer?: string;
}

export interface AzureCloudAccountSpec {
  subscriptionId: string;
  tenantId: string;
  resourceGroup: string;
  location: string;
  oidcIssuer: string;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface AwsGuardrails {
  allowedActions?: string[];
  deniedActions?: string[];
  allowedResources?: string[];
  deniedResources?: string[];
  allowedManagedPolicyArns?: string[];
  requirePermissionsBoundary?: boolean;
  maxSessionDuration?: string;
  allowWildcards?: boolean;
  allowPrivilegeEscalation?: boolean;
  allowUnknownActions?: boolean;
}

export interface GcpGuardrails {
  allowedRoles?: string[];
  deniedRoles?: string[];
  allowedResources?: string[];
  deniedResources?: string[];
  allowPrivilegedRoles?: boolean;
}

export interface AzureGuardrails {
  allowedRoles?: string[];
  allowedScopePrefixes?: string[];
  allowPrivilegedRoles?: boolean;
}

export interface Guardrails {
  maxIdentitiesPerNamespace?: number;
  allowAdoption?: boolean;
  aws?: AwsGuardrails;
  gcp?: GcpGuardrails;
  azure?: AzureGuardrails;
}

export interface CloudAccountSpec {
  aws?: AwsCloudAccountSpec;
  gcp?: GcpCloudAccountSpec;
  azure?: AzureCloudAccountSpec;
  namespaceSelector?: LabelSelector;
  deletionPolicy?: DeletionPolicy;
  guardrails?: Guardrails;
  /** Opt-in: perform the real token exchange for each identity and report CredentialsVerified. */
  verification?: { enabled?: boolean };
}

export interface CloudAccountStatus {
  observedGeneration?: number;
  cloud?: Cloud;
  issuer?: string;
  /** IRSA: the IAM OIDC identity provider that trusts this cluster's issuer. */
  oidcProviderArn?: string;
  /** What Keyless created for the account's trust itself (opt-in) and deletes once nothing needs it. */
  managedTrust?: ManagedTrust;
  /** WorkloadIdentities that reference this account. */
  identities?: number;
  conditions?: Condition[];
}

/** Cloud objects Keyless created for a CloudAccount's own trust, each carrying the account's ownership marker. */
export interface ManagedTrust {
  /** AWS: the IAM OIDC providers Keyless created (spec.aws.manageOidcProvider) and has not deleted yet. */
  oidcProviderArns?: string[];
  /** GCP: the workload identity pools Keyless created (spec.gcp.manageWorkloadIdentityProvider) and has not deleted yet. */
  workloadIdentityPools?: string[];
  /** GCP: the workload identity pool providers Keyless created and has not deleted yet. */
  workloadIdentityProviders?: string[];
}

export interface CloudAccount {
  apiVersion: 'keyless.dev/v1alpha1';
  kind: 'CloudAccount';
  metadata: ObjectMeta;
  spec: CloudAccountSpec;
  status?: CloudAccountStatus;
}
