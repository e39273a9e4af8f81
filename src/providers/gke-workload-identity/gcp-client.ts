// GcpPort over Google's REST clients: @googleapis/iam (service accounts and their policies — @google-cloud/iam
// has no IAM admin v1), @googleapis/cloudresourcemanager v3 (project policies), @googleapis/storage (bucket
// policies), @googleapis/secretmanager (secret policies), and Pub/Sub's REST :getIamPolicy/:setIamPolicy through
// the authenticated client (no @googleapis/pubsub package exists). One transport, one error type (GaxiosError).
// Built-in client retries are off: the controller's backoff decides (cloud-apis.md §5).
import { cloudresourcemanager, type cloudresourcemanager_v3 } from '@googleapis/cloudresourcemanager';
import { iam, type iam_v1 } from '@googleapis/iam';
import { secretmanager, type secretmanager_v1 } from '@googleapis/secretmanager';
import { storage, type storage_v1 } from '@googleapis/storage';
import type { AuthClient, GoogleAuth } from 'google-auth-library';
import { CloudError, isCloudError } from '../cloud-error.ts';
import type { CloudCall } from '../instrument.ts';
import type { FederationPort, WorkloadIdentityPoolProvider } from './federation-port.ts';
import type { GcpPort, GoogleServiceAccount } from './gcp-port.ts';
import type { IamPolicy } from './policy.ts';
import type { PolicyTarget } from './resources.ts';

export const DEFAULT_ROOT_URLS = {
  iam: 'https://iam.googleapis.com/',
  cloudresourcemanager: 'https://cloudresourcemanager.googleapis.com/',
  storage: 'https://storage.googleapis.com/',
  secretmanager: 'https://secretmanager.googleapis.com/',
  pubsub: 'https://pubsub.googleapis.com/',
} as const;

export type RootUrls = Record<keyof typeof DEFAULT_ROOT_URLS, string>;

/** Requested on every read and written on every policy: conditional bindings need version 3. */
const POLICY_VERSION = 3;
/** The most service accounts IAM returns per page. */
const LIST_PAGE_SIZE = 100;
/** Per-request options: the signal cancels the request when its call's deadline passes. */
const perCall = (signal: AbortSignal) => ({ retry: false, signal }) as const;

function toServiceAccount(sa: iam_v1.Schema$ServiceAccount): GoogleServiceAccount {
  return {
    email: sa.email ?? '',
    uniqueId: sa.uniqueId ?? '',
    displayName: sa.displayName ?? '',
    description: sa.description ?? '',
    disabled: sa.disabled ?? false,
  };
}

function resourceName(target: Exclude<PolicyTarget, { kind: 'bucket' }>): string {
  switch (target.kind) {
    case 'project':
      return `projects/${target.project}`;
    case 'serviceAccount':
      return `projects/${target.project}/serviceAccounts/${target.email}`;
    case 'topic':
      return `projects/${target.project}/topics/${target.topic}`;
    case 'secret':
      return `projects/${target.project}/secrets/${target.secret}`;
  }
}

/** The clients type `auth` against their own google-auth-library copy; any AuthClient or GoogleAuth works at runtime. */
type ClientAuth = iam_v1.Options['auth'];

export function createGcpPort(auth: AuthClient | GoogleAuth, call: CloudCall, rootUrls: RootUrls = DEFAULT_ROOT_URLS): GcpPort {
  const clientAuth = auth as unknown as ClientAuth;
  const iamClient = iam({ version: 'v1', auth: clientAuth, rootUrl: rootUrls.iam });
  const crm = cloudresourcemanager({ version: 'v3', auth: clientAuth, rootUrl: rootUrls.cloudresourcemanager });
  const gcs = storage({ version: 'v1', auth: clientAuth, rootUrl: rootUrls.storage });
  const sm = secretmanager({ version: 'v1', auth: clientAuth, rootUrl: rootUrls.secretmanager });
  const accounts = iamClient.projects.serviceAccounts;
  const pubsubUrl = (resource: string, verb: string) => new URL(`v1/${resource}:${verb}`, rootUrls.pubsub).href;

  return {
    async getServiceAccount(project, email) {
      try {
        const res = await call('GetServiceAccount', (signal) => accounts.get({ name: `projects/${project}/serviceAccounts/${email}` }, perCall(signal)));
        return toServiceAccount(res.data);
      } catch (err) {
        if (isCloudError(err, 'notFound')) return undefined;
        throw err;
      }
    },
    async listServiceAccounts(project) {
      const listed: GoogleServiceAccount[] = [];
      let pageToken: string | undefined;
      do {
        const page = { name: `projects/${project}`, pageSize: LIST_PAGE_SIZE, ...(pageToken ? { pageToken } : {}) };
        const res = await call('ListServiceAccounts', (signal) => accounts.list(page, perCall(signal)));
        listed.push(...(res.data.accounts ?? []).map(toServiceAccount));
        pageToken = res.data.nextPageToken || undefined;
      } while (pageToken);
      return listed;
    },
    async createServiceAccount(project, accountId, fields) {
      const res = await call('CreateServiceAccount', (signal) =>
        accounts.create({ name: `projects/${project}`, requestBody: { accountId, serviceAccount: { displayName: fields.displayName, description: fields.description } } }, perCall(signal)),
      );
      return toServiceAccount(res.data);
    },
    async patchServiceAccount(project, email, fields) {
      await call('PatchServiceAccount', (signal) =>
        accounts.patch(
          {
            name: `projects/${project}/serviceAccounts/${email}`,
            requestBody:
              fields.description === undefined
                ? { serviceAccount: { displayName: fields.displayName }, updateMask: 'displayName' }
                : { serviceAccount: { displayName: fields.displayName, description: fields.description }, updateMask: 'displayName,description' },
          },
          perCall(signal),
        ),
      );
    },
    async deleteServiceAccount(project, email) {
      try {
        await call('DeleteServiceAccount', (signal) => accounts.delete({ name: `projects/${project}/serviceAccounts/${email}` }, perCall(signal)));
      } catch (err) {
        if (!isCloudError(err, 'notFound')) throw err;
      }
    },
    async getIamPolicy(target) {
      switch (target.kind) {
        case 'project':
          return (await call('projects.getIamPolicy', (signal) => crm.projects.getIamPolicy({ resource: resourceName(target), requestBody: { options: { requestedPolicyVersion: POLICY_VERSION } } }, perCall(signal)))).data as IamPolicy;
        case 'serviceAccount':
          return (await call('serviceAccounts.getIamPolicy', (signal) => accounts.getIamPolicy({ resource: resourceName(target), 'options.requestedPolicyVersion': POLICY_VERSION }, perCall(signal)))).data as IamPolicy;
        case 'bucket':
          return (await call('buckets.getIamPolicy', (signal) => gcs.buckets.getIamPolicy({ bucket: target.bucket, optionsRequestedPolicyVersion: POLICY_VERSION }, perCall(signal)))).data as IamPolicy;
        case 'secret':
          return (await call('secrets.getIamPolicy', (signal) => sm.projects.secrets.getIamPolicy({ resource: resourceName(target), 'options.requestedPolicyVersion': POLICY_VERSION }, perCall(signal)))).data as IamPolicy;
        case 'topic':
          return (
            await call('topics.getIamPolicy', (signal) =>
              auth.request<IamPolicy>({ url: pubsubUrl(resourceName(target), 'getIamPolicy'), method: 'GET', params: { 'options.requestedPolicyVersion': POLICY_VERSION }, retry: false, signal }),
            )
          ).data;
      }
    },
    async setIamPolicy(target, policy) {
      switch (target.kind) {
        case 'project':
          return (await call('projects.setIamPolicy', (signal) => crm.projects.setIamPolicy({ resource: resourceName(target), requestBody: { policy: policy as cloudresourcemanager_v3.Schema$Policy, updateMask: 'bindings,etag' } }, perCall(signal)))).data as IamPolicy;
        case 'serviceAccount':
          return (await call('serviceAccounts.setIamPolicy', (signal) => accounts.setIamPolicy({ resource: resourceName(target), requestBody: { policy: policy as iam_v1.Schema$Policy } }, perCall(signal)))).data as IamPolicy;
        case 'bucket':
          return (await call('buckets.setIamPolicy', (signal) => gcs.buckets.setIamPolicy({ bucket: target.bucket, requestBody: policy as storage_v1.Schema$Policy }, perCall(signal)))).data as IamPolicy;
        case 'secret':
          return (await call('secrets.setIamPolicy', (signal) => sm.projects.secrets.setIamPolicy({ resource: resourceName(target), requestBody: { policy: policy as secretmanager_v1.Schema$Policy, updateMask: 'bindings,etag' } }, perCall(signal)))).data as IamPolicy;
        case 'topic':
          return (
            await call('topics.setIamPolicy', (signal) =>
              auth.request<IamPolicy>({ url: pubsubUrl(resourceName(target), 'setIamPolicy'), method: 'POST', data: { policy }, retry: false, signal }),
            )
          ).data;
      }
    },
  };
}

function toProvider(data: iam_v1.Schema$WorkloadIdentityPoolProvider, name: string): WorkloadIdentityPoolProvider {
  return {
    name: data.name ?? name,
    state: data.state ?? 'STATE_UNSPECIFIED',
    disabled: data.disabled ?? false,
    description: data.description ?? '',
    attributeMapping: data.attributeMapping ?? {},
    attributeCondition: data.attributeCondition || undefined,
    oidc: data.oidc ? { issuerUri: data.oidc.issuerUri ?? '', allowedAudiences: data.oidc.allowedAudiences ?? [], jwksJson: Boolean(data.oidc.jwksJson) } : undefined,
  };
}

/** The parent of a pool or provider name, and its last id. */
function split(name: string): { parent: string; id: string } {
  const at = name.lastIndexOf('/');
  return { parent: name.slice(0, name.lastIndexOf('/', at - 1)), id: name.slice(at + 1) };
}

/** Workload Identity Federation over @googleapis/iam: the reads of the CloudAccount check, and the managed provider's writes. */
export function createFederationPort(auth: AuthClient | GoogleAuth, call: CloudCall, rootUrl: string = DEFAULT_ROOT_URLS.iam): FederationPort {
  const pools = iam({ version: 'v1', auth: auth as unknown as ClientAuth, rootUrl }).projects.locations.workloadIdentityPools;
  const orMissing = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch (err) {
      if (isCloudError(err, 'notFound')) return undefined;
      throw err;
    }
  };
  /**
   * Every write of IAM v1's workload identity pools answers with a long-running Operation
   * (https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools/create): it is
   * asked once more (operations.get) when not done at once; still running, the reconcile is retried with backoff
   * rather than waited for, and the next one re-reads the pool or provider.
   */
  const settle = async (operation: string, op: iam_v1.Schema$Operation): Promise<void> => {
    let current = op;
    if (!current.done && current.name) {
      const name = current.name;
      current = (await call(`${operation}.operations.get`, (signal) => (name.includes('/providers/') ? pools.providers.operations.get({ name }, perCall(signal)) : pools.operations.get({ name }, perCall(signal))))).data;
    }
    if (current.error) {
      const status = current.error.code === 6 ? 'alreadyExists' : current.error.code === 5 ? 'notFound' : 'retryable';
      throw new CloudError(status, String(current.error.code ?? 'UNKNOWN'), operation, `${operation}: ${current.error.message ?? 'the operation failed'}`);
    }
    if (!current.done) throw new CloudError('retryable', 'OPERATION_RUNNING', operation, `${operation}: operation ${current.name ?? ''} is still running`, { quiet: true });
  };
  return {
    getWorkloadIdentityPool: (name) =>
      orMissing(async () => {
        const { data } = await call('GetWorkloadIdentityPool', (signal) => pools.get({ name }, perCall(signal)));
        return { name: data.name ?? name, state: data.state ?? 'STATE_UNSPECIFIED', disabled: data.disabled ?? false, description: data.description ?? '' };
      }),
    getWorkloadIdentityPoolProvider: (name) =>
      orMissing(async () => {
        const { data } = await call('GetWorkloadIdentityPoolProvider', (signal) => pools.providers.get({ name }, perCall(signal)));
        return toProvider(data, name);
      }),
    async listWorkloadIdentityPoolProviders(pool) {
      const listed: WorkloadIdentityPoolProvider[] = [];
      let pageToken: string | undefined;
      do {
        const page = { parent: pool, ...(pageToken ? { pageToken } : {}) };
        const { data } = await call('ListWorkloadIdentityPoolProviders', (signal) => pools.providers.list(page, perCall(signal)));
        listed.push(...(data.workloadIdentityPoolProviders ?? []).map((p) => toProvider(p, p.name ?? '')));
        pageToken = data.nextPageToken || undefined;
      } while (pageToken);
      return listed;
    },
    async createWorkloadIdentityPool(name, fields) {
      const { parent, id } = split(name);
      const { data } = await call('CreateWorkloadIdentityPool', (signal) => pools.create({ parent, workloadIdentityPoolId: id, requestBody: fields }, perCall(signal)));
      await settle('CreateWorkloadIdentityPool', data);
    },
    async createWorkloadIdentityPoolProvider(name, fields) {
      const { parent, id } = split(name);
      const requestBody = { displayName: fields.displayName, description: fields.description, attributeMapping: fields.attributeMapping, oidc: { issuerUri: fields.issuerUri } };
      const { data } = await call('CreateWorkloadIdentityPoolProvider', (signal) => pools.providers.create({ parent, workloadIdentityPoolProviderId: id, requestBody }, perCall(signal)));
      await settle('CreateWorkloadIdentityPoolProvider', data);
    },
    async updateWorkloadIdentityPoolProvider(name, fields) {
      const requestBody = { attributeMapping: fields.attributeMapping, oidc: { issuerUri: fields.issuerUri } };
      const { data } = await call('UpdateWorkloadIdentityPoolProvider', (signal) => pools.providers.patch({ name, updateMask: 'attributeMapping,oidc.issuerUri', requestBody }, perCall(signal)));
      await settle('UpdateWorkloadIdentityPoolProvider', data);
    },
    async deleteWorkloadIdentityPool(name) {
      const { data } = await call('DeleteWorkloadIdentityPool', (signal) => pools.delete({ name }, perCall(signal)));
      await settle('DeleteWorkloadIdentityPool', data);
    },
    async deleteWorkloadIdentityPoolProvider(name) {
      const { data } = await call('DeleteWorkloadIdentityPoolProvider', (signal) => pools.providers.delete({ name }, perCall(signal)));
      await settle('DeleteWorkloadIdentityPoolProvider', data);
    },
    async undeleteWorkloadIdentityPool(name) {
      const { data } = await call('UndeleteWorkloadIdentityPool', (signal) => pools.undelete({ name, requestBody: {} }, perCall(signal)));
      await settle('UndeleteWorkloadIdentityPool', data);
    },
    async undeleteWorkloadIdentityPoolProvider(name) {
      const { data } = await call('UndeleteWorkloadIdentityPoolProvider', (signal) => pools.providers.undelete({ name, requestBody: {} }, perCall(signal)));
      await settle('UndeleteWorkloadIdentityPoolProvider', data);
    },
  };
}
