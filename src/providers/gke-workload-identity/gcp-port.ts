// The slice of Google Cloud the GKE provider uses: IAM service accounts and the IAM policies of the resources it
// grants on. Implemented over the REST clients in gcp-client.ts and in memory in fake/gcp.ts. Every method
// throws CloudError; a missing service account reads as undefined. shared-port.ts adds the reads every identity of
// a CloudAccount shares.
import type { IamPolicy } from './policy.ts';
import type { PolicyTarget } from './resources.ts';

export interface GoogleServiceAccount {
  email: string;
  uniqueId: string;
  displayName: string;
  description: string;
  disabled: boolean;
}

export interface GcpPort {
  getServiceAccount(project: string, email: string): Promise<GoogleServiceAccount | undefined>;
  /** Every service account of the project, all pages (each carries what getServiceAccount does). */
  listServiceAccounts(project: string): Promise<GoogleServiceAccount[]>;
  createServiceAccount(project: string, accountId: string, fields: { displayName: string; description: string }): Promise<GoogleServiceAccount>;
  /** Sets the displayName, and the description when given (adoption puts the ownership marker there). */
  patchServiceAccount(project: string, email: string, fields: { displayName: string; description?: string }): Promise<void>;
  /** Resolves once the account is gone (already gone included). */
  deleteServiceAccount(project: string, email: string): Promise<void>;
  /** Always asks for version 3 so conditional bindings come back whole. Missing resource: CloudError notFound. */
  getIamPolicy(target: PolicyTarget): Promise<IamPolicy>;
  /** Writes with the policy's etag: a stale etag fails with CloudError conflict. */
  setIamPolicy(target: PolicyTarget, policy: IamPolicy): Promise<IamPolicy>;
}

/**
 * The reads every identity of one CloudAccount shares (../shared-reads.ts): a copy at most a max age old, or as
 * Keyless's own last write through the same port left it.
 */
export interface GcpSharedReads {
  /** A resource's IAM policy; undefined when the resource does not exist. */
  sharedIamPolicy(target: PolicyTarget): Promise<IamPolicy | undefined>;
  /** The project's service accounts (none for a project that does not exist). */
  sharedServiceAccounts(project: string): Promise<readonly GoogleServiceAccount[]>;
}

/** What a provider gets: the port, whose every write keeps the shared copies current, and the shared reads. */
export type SharedGcpPort = GcpPort & GcpSharedReads;
