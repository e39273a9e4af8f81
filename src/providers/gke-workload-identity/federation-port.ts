// The reads of Workload Identity Federation the CloudAccount check makes: the pool and the provider the account names,
// so that Ready says whether this cluster's tokens can be exchanged at all, and with which issuer. Implemented over
// @googleapis/iam in gcp-client.ts and in memory in fake/federation.ts. A missing pool or provider reads as undefined;
// every other failure is a CloudError.

export interface WorkloadIdentityPool {
  name: string;
  /** ACTIVE or DELETED (a deleted pool is kept for 30 days and can be undeleted). */
  state: string;
  disabled: boolean;
}

export interface WorkloadIdentityPoolProvider {
  name: string;
  state: string;
  disabled: boolean;
  attributeMapping: Record<string, string>;
  attributeCondition: string | undefined;
  /** Undefined for an AWS, SAML or X.509 provider. */
  oidc: { issuerUri: string; allowedAudiences: string[]; jwksJson: boolean } | undefined;
}

export interface FederationPort {
  getWorkloadIdentityPool(name: string): Promise<WorkloadIdentityPool | undefined>;
  getWorkloadIdentityPoolProvider(name: string): Promise<WorkloadIdentityPoolProvider | undefined>;
}
