// The calls Keyless makes on Workload Identity Federation: the reads of the CloudAccount check (the pool and the
// provider the account names, so that Ready says whether this cluster's tokens can be exchanged at all, and with which
// issuer), and — only for an account that sets spec.gcp.manageWorkloadIdentityProvider — the writes that create,
// undelete and delete the pool and provider Keyless manages (managed-provider.ts). Implemented over @googleapis/iam in
// gcp-client.ts and in memory in fake/federation.ts. A missing pool or provider reads as undefined; every other failure
// is a CloudError. Every write is a long-running operation in IAM v1: a write resolves once its operation is done, and
// throws a retryable CloudError while it is still running (the reconcile is retried with backoff, and re-reads).

export interface WorkloadIdentityPool {
  name: string;
  /** ACTIVE or DELETED (a deleted pool is kept for 30 days and can be undeleted). */
  state: string;
  disabled: boolean;
  /** Free text of at most 256 characters: where Keyless writes its ownership marker (pools have no labels). */
  description: string;
}

export interface WorkloadIdentityPoolProvider {
  name: string;
  state: string;
  disabled: boolean;
  description: string;
  attributeMapping: Record<string, string>;
  attributeCondition: string | undefined;
  /** Undefined for an AWS, SAML or X.509 provider. */
  oidc: { issuerUri: string; allowedAudiences: string[]; jwksJson: boolean } | undefined;
}

/** What Keyless creates: an OIDC provider for one issuer, with no allowed audiences of its own. */
export interface NewOidcProvider {
  displayName: string;
  description: string;
  issuerUri: string;
  attributeMapping: Record<string, string>;
}

export interface FederationPort {
  getWorkloadIdentityPool(name: string): Promise<WorkloadIdentityPool | undefined>;
  getWorkloadIdentityPoolProvider(name: string): Promise<WorkloadIdentityPoolProvider | undefined>;
  /** The pool's providers that are not deleted. */
  listWorkloadIdentityPoolProviders(pool: string): Promise<WorkloadIdentityPoolProvider[]>;
  /** `name` is `projects/N/locations/global/workloadIdentityPools/POOL`. */
  createWorkloadIdentityPool(name: string, fields: { displayName: string; description: string }): Promise<void>;
  /** `name` is the provider's full name; its pool must exist. */
  createWorkloadIdentityPoolProvider(name: string, fields: NewOidcProvider): Promise<void>;
  /** Sets the issuer and the attribute mapping of a provider (Keyless's own only). */
  updateWorkloadIdentityPoolProvider(name: string, fields: Pick<NewOidcProvider, 'issuerUri' | 'attributeMapping'>): Promise<void>;
  deleteWorkloadIdentityPool(name: string): Promise<void>;
  deleteWorkloadIdentityPoolProvider(name: string): Promise<void>;
  undeleteWorkloadIdentityPool(name: string): Promise<void>;
  undeleteWorkloadIdentityPoolProvider(name: string): Promise<void>;
}
