// The clouds the benchmark runs against, each started only when a scenario needs it: the project's emulators (moto
// and the Pod Identity emulator for AWS, test/emulators/gcp and test/emulators/azure, started as the end-to-end
// suites start them), a counting proxy with the cloud's write limit in front of each (cloud-proxy.ts), the
// CloudAccounts, and per mechanism what one bench identity asks for and the fewest cloud writes that takes.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ListPodIdentityAssociationsCommand, CreateClusterCommand, type EKSClient } from '@aws-sdk/client-eks';
import { CreateOpenIDConnectProviderCommand, ListRolesCommand, ListRoleTagsCommand, type IAMClient } from '@aws-sdk/client-iam';
import { MARKER } from '../src/api/constants.ts';
import { emulatorTls } from '../test/emulators/azure/tls.ts';
import { startAwsEmulator, TEST_ACCOUNT_ID } from '../test/support/aws.ts';
import { DATA_RESOURCE_GROUP, TEST_RESOURCE_GROUP, TEST_SUBSCRIPTION, TEST_TENANT, startTestAzure, type TestAzure } from '../test/support/azure.ts';
import { kubectl } from '../test/support/cluster.ts';
import { startGcpTestEmulator, type GcpTestEmulator } from '../test/support/gcp.ts';
import { awsEnv, azureEnv, gcpEnv } from '../test/support/operator.ts';
import { armDialect, awsDialect, gcpDialect } from './cloud-dialects.ts';
import { startCloudProxy, type CloudProxy, type ProxySettings } from './cloud-proxy.ts';
import { startIamEmulator, type IamEmulator } from './iam-emulator.ts';
import type { Options } from './options.ts';

/** KEYLESS_CLUSTER_NAME of every bench operator (bench/operator.ts): the ownership marker's cluster. */
export const CLUSTER_NAME = 'bench';

/** One mechanism as the create, steady-state and delete scenarios drive it. */
export interface Mechanism {
  /** The key of its results in the report. */
  key: 'irsa' | 'podIdentity' | 'gkeServiceAccount' | 'gkeDirectPrincipal' | 'aks';
  label: string;
  namespace: string;
  account: string;
  n: number;
  proxy: CloudProxy;
  /** Where the proxy sends this mechanism's calls. */
  upstream: string;
  /** The cloud section of the i-th WorkloadIdentity's spec, e.g. `{ aws: { mechanism, policy } }`. */
  spec(i: number): Record<string, unknown>;
  /** The fewest cloud writes one identity takes against the limit, to create and to revoke (docs/benchmarks.md). */
  floor: { create: number; delete: number };
  /** Operations only the CloudAccount check makes: reported apart from the identities' calls. */
  accountChecks: string[];
  /** Owned cloud objects of this mechanism's namespace still in the cloud: 0 each after a delete. */
  ownedLeft(): Promise<Record<string, number>>;
}

export interface Cloud {
  accounts: string[];
  /** What points the operator's clients at this cloud's proxy. */
  operatorEnv: Record<string, string>;
  stop(): Promise<void>;
}

async function applyAccounts(accounts: { name: string; spec: Record<string, unknown> }[]): Promise<void> {
  await kubectl(['apply', '-f', '-'], accounts.map(({ name, spec }) => JSON.stringify({ apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name }, spec })).join('\n'));
}

function proxySettings(opts: Options, upstream: string): ProxySettings {
  return { latencyMs: opts.latencyMs, writeRate: opts.writeRate, writeBurst: opts.writeBurst, upstream };
}

// ---------------------------------------------------------------------------------------------------------------
// AWS

export const AWS_ACCOUNT = { irsa: 'bench-irsa', pod: 'bench-pod', scale: 'bench-scale' } as const;
export const AWS_NAMESPACE = { irsa: 'bench-irsa', pod: 'bench-pod', scale: 'bench-scale' } as const;

/** Each identity its own prefix of one bucket: an inline policy per role, nothing shared. */
export function awsPolicyFor(i: number): Record<string, unknown>[] {
  return [{ effect: 'Allow', actions: ['s3:GetObject'], resources: [`arn:aws:s3:::bench-bucket/${i}/*`] }];
}

export interface AwsCloud extends Cloud {
  irsa: Mechanism;
  podIdentity: Mechanism;
  proxy: CloudProxy;
  /** The in-bench IAM of the scale scenario (moto is too slow there; docs/benchmarks.md). */
  scaleIam: IamEmulator;
  /** Clients straight to moto and the Pod Identity emulator, past the proxy: for checks that must not be faulted. */
  direct: { iam: IAMClient; eks: EKSClient };
  providerArn: string;
}

/** Roles under /keyless/ in moto whose tags say they belong to this bench cluster. */
async function ownedRolesInMoto(iam: IAMClient): Promise<number> {
  let owned = 0;
  let marker: string | undefined;
  do {
    const page = await iam.send(new ListRolesCommand({ PathPrefix: '/keyless/', Marker: marker }));
    for (const role of page.Roles ?? []) {
      const tags = (await iam.send(new ListRoleTagsCommand({ RoleName: role.RoleName }))).Tags ?? [];
      if (tags.some((t) => t.Key === MARKER.cluster && t.Value === CLUSTER_NAME)) owned++;
    }
    marker = page.IsTruncated ? page.Marker : undefined;
  } while (marker);
  return owned;
}

async function associationsLeft(eks: EKSClient): Promise<number> {
  let count = 0;
  let nextToken: string | undefined;
  do {
    const page = await eks.send(new ListPodIdentityAssociationsCommand({ clusterName: CLUSTER_NAME, nextToken }));
    count += page.associations?.length ?? 0;
    nextToken = page.nextToken;
  } while (nextToken);
  return count;
}

/**
 * moto behind the Pod Identity emulator, with the cluster's OIDC provider and EKS cluster; the in-bench IAM for
 * scale. IRSA and Pod Identity both write CreateRole (trust, tags and boundary in one call) and PutRolePolicy per
 * identity, and revoke with DeleteRolePolicy and DeleteRole; the association is a write on EKS's own limit.
 */
export async function startAws(opts: Options, issuer: string): Promise<AwsCloud> {
  const providerArn = `arn:aws:iam::${TEST_ACCOUNT_ID}:oidc-provider/${issuer.replace(/^https:\/\//, '')}`;
  const aws = await startAwsEmulator();
  await aws.iam().send(new CreateOpenIDConnectProviderCommand({ Url: issuer, ClientIDList: ['sts.amazonaws.com'], ThumbprintList: ['9e99a48a9960b14926bb7f3b02e22da2b0ab7280'] }));
  await aws.eks().send(new CreateClusterCommand({ name: CLUSTER_NAME, roleArn: `arn:aws:iam::${TEST_ACCOUNT_ID}:role/eks`, resourcesVpcConfig: { subnetIds: ['subnet-1'] } }));
  const scaleIam = await startIamEmulator({ accountId: TEST_ACCOUNT_ID, oidcProviderArns: [providerArn] });
  const proxy = await startCloudProxy(awsDialect, proxySettings(opts, aws.eksEndpoint));
  const accountSpec = (spec: Record<string, unknown>) => ({ aws: { accountId: TEST_ACCOUNT_ID, region: 'us-east-1', oidcIssuer: issuer, ...spec } });
  await applyAccounts([
    { name: AWS_ACCOUNT.irsa, spec: accountSpec({ mechanism: 'IRSA' }) },
    { name: AWS_ACCOUNT.pod, spec: accountSpec({ mechanism: 'PodIdentity', clusterName: CLUSTER_NAME }) },
    { name: AWS_ACCOUNT.scale, spec: accountSpec({ mechanism: 'IRSA' }) },
  ]);
  const motoIam = aws.iam();
  const eks = aws.eks();
  const mechanism = (key: 'irsa' | 'podIdentity', label: string, namespace: string, account: string, n: number): Mechanism => ({
    key,
    label,
    namespace,
    account,
    n,
    proxy,
    upstream: aws.eksEndpoint,
    spec: (i) => ({ aws: { mechanism: key === 'irsa' ? 'IRSA' : 'PodIdentity', policy: awsPolicyFor(i) } }),
    floor: { create: 2, delete: 2 },
    accountChecks: ['ListOpenIDConnectProviders'],
    ownedLeft: async () => ({ roles: await ownedRolesInMoto(motoIam), ...(key === 'podIdentity' ? { associations: await associationsLeft(eks) } : {}) }),
  });
  return {
    accounts: Object.values(AWS_ACCOUNT),
    operatorEnv: awsEnv(proxy.endpoint),
    irsa: mechanism('irsa', 'IRSA', AWS_NAMESPACE.irsa, AWS_ACCOUNT.irsa, opts.n),
    podIdentity: mechanism('podIdentity', 'Pod Identity', AWS_NAMESPACE.pod, AWS_ACCOUNT.pod, opts.podN),
    proxy,
    scaleIam,
    direct: { iam: motoIam, eks },
    providerArn,
    stop: async () => {
      await proxy.stop();
      await scaleIam.stop();
      await aws.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Google Cloud

export const GCP_PROJECT = { id: 'keyless-bench', number: '424242424242' } as const;
export const GCP_BUCKET = 'keyless-bench-shared';
const GCP_ACCOUNT = 'bench-gcp';

/**
 * What every GKE bench identity is granted, as real fleets grant: the same roles on the same shared project and
 * bucket, so every identity edits the same two IAM policies (one etag each).
 */
export const GCP_ROLES = [{ role: 'roles/storage.objectViewer', resource: `//storage.googleapis.com/projects/_/buckets/${GCP_BUCKET}` }, { role: 'roles/monitoring.metricWriter' }];
/** One setIamPolicy per policy, however many roles it grants there. */
const GCP_GRANT_POLICIES = new Set(GCP_ROLES.map((r) => r.resource ?? 'project')).size;

export interface GcpCloud extends Cloud {
  serviceAccount: Mechanism;
  directPrincipal: Mechanism;
  proxy: CloudProxy;
  /** The emulator itself, past the proxy. */
  emulator: GcpTestEmulator;
}

/**
 * The GCP emulator with the bench project and bucket and IAM's service account quota lifted (a real project allows
 * 100 by default: ServiceAccount mode at more than 100 identities needs a quota increase), one CloudAccount for both
 * modes. Floors (docs/benchmarks.md): ServiceAccount mode creates with CreateServiceAccount, the
 * workloadIdentityUser binding on it (serviceAccounts.setIamPolicy) and one setIamPolicy per granted policy, and
 * revokes with one setIamPolicy per granted policy and DeleteServiceAccount (its own policy goes with it);
 * DirectPrincipal mode writes only the granted policies, both ways.
 */
export async function startGcp(opts: Options): Promise<GcpCloud> {
  const gcp = await startGcpTestEmulator();
  await gcp.addProject(GCP_PROJECT.id, GCP_PROJECT.number);
  await gcp.addBucket(GCP_BUCKET);
  await gcp.setFaults({ serviceAccountQuota: 1_000_000 });
  const proxy = await startCloudProxy(gcpDialect, proxySettings(opts, gcp.endpoint));
  await applyAccounts([{ name: GCP_ACCOUNT, spec: { gcp: { projectId: GCP_PROJECT.id, projectNumber: GCP_PROJECT.number } } }]);

  /** Google service accounts of `namespace` (by the ownership marker in their description), read through IAM's list. */
  const serviceAccountsOf = async (namespace: string) => {
    let count = 0;
    let pageToken = '';
    do {
      const res = await fetch(`${gcp.endpoint}/v1/projects/${GCP_PROJECT.id}/serviceAccounts?pageSize=100${pageToken ? `&pageToken=${pageToken}` : ''}`, { headers: { authorization: 'Bearer keyless-bench' } });
      const page = (await res.json()) as { accounts?: { description?: string }[]; nextPageToken?: string };
      count += (page.accounts ?? []).filter((a) => (a.description ?? '').split(/\s+/).includes(`${MARKER.namespace}=${namespace}`)).length;
      pageToken = page.nextPageToken ?? '';
    } while (pageToken);
    return count;
  };
  /** Members of `namespace` left in the shared policies: its service accounts (deleted: ghosts too) or principals. */
  const bindingsOf = async (namespace: string) => {
    let count = 0;
    for (const target of [{ kind: 'project', project: GCP_PROJECT.id } as const, { kind: 'bucket', bucket: GCP_BUCKET } as const]) {
      const policy = await gcp.client.getIamPolicy(target);
      for (const b of policy.bindings ?? []) count += (b.members ?? []).filter((m) => m.includes(namespace)).length;
    }
    return count;
  };
  const mechanism = (key: 'gkeServiceAccount' | 'gkeDirectPrincipal', mode: 'ServiceAccount' | 'DirectPrincipal', namespace: string): Mechanism => ({
    key,
    label: `GKE ${mode}`,
    namespace,
    account: GCP_ACCOUNT,
    n: opts.gcpN,
    proxy,
    upstream: gcp.endpoint,
    spec: () => ({ gcp: { mechanism: mode, roles: GCP_ROLES } }),
    floor: mode === 'ServiceAccount' ? { create: 2 + GCP_GRANT_POLICIES, delete: GCP_GRANT_POLICIES + 1 } : { create: GCP_GRANT_POLICIES, delete: GCP_GRANT_POLICIES },
    // The check reads the project's policy, which the identities read too: it stays in their figures.
    accountChecks: [],
    ownedLeft: async () => ({ serviceAccounts: await serviceAccountsOf(namespace), bindings: await bindingsOf(namespace) }),
  });
  return {
    accounts: [GCP_ACCOUNT],
    operatorEnv: gcpEnv(proxy.endpoint),
    // The namespace is in every member an identity is granted as: the account id starts with it, the principal names it.
    serviceAccount: mechanism('gkeServiceAccount', 'ServiceAccount', 'bench-gke-sa'),
    directPrincipal: mechanism('gkeDirectPrincipal', 'DirectPrincipal', 'bench-gke-dp'),
    proxy,
    emulator: gcp,
    stop: async () => {
      await proxy.stop();
      await gcp.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Azure

const AZURE_ACCOUNT = 'bench-azure';
const AZURE_NAMESPACE = 'bench-aks';
/** The shared scope every AKS bench identity is assigned its roles at, as a fleet's apps share a data resource group. */
export const AZURE_SCOPE = `/subscriptions/${TEST_SUBSCRIPTION}/resourceGroups/${DATA_RESOURCE_GROUP}`;
export const AZURE_ROLES = ['Storage Blob Data Reader', 'Reader'].map((role) => ({ role, scope: AZURE_SCOPE }));

export interface AzureCloud extends Cloud {
  aks: Mechanism;
  proxy: CloudProxy;
  /** The emulator and its SDK clients, past the proxy. */
  test: TestAzure;
}

/**
 * The ARM emulator over HTTPS, and the proxy over HTTPS too (ARM bearer tokens are refused over http) with a CA of
 * its own the operator trusts. Floors (docs/benchmarks.md): UserAssignedIdentities_CreateOrUpdate,
 * FederatedIdentityCredentials_CreateOrUpdate and one RoleAssignments_Create per role to create; one
 * RoleAssignments_Delete per role (assignments outlive their principal) and UserAssignedIdentities_Delete (its
 * federated credentials go with it) to revoke.
 */
export async function startAzure(opts: Options, issuer: string): Promise<AzureCloud> {
  const azure = await startTestAzure();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keyless-bench-arm-proxy-'));
  const tls = emulatorTls(dir);
  const proxy = await startCloudProxy(armDialect, proxySettings(opts, azure.emulator.endpoint), { cert: tls.cert, key: tls.key, upstreamCa: azure.ca });
  await applyAccounts([
    { name: AZURE_ACCOUNT, spec: { azure: { subscriptionId: TEST_SUBSCRIPTION, tenantId: TEST_TENANT, resourceGroup: TEST_RESOURCE_GROUP, location: 'eastus', oidcIssuer: issuer } } },
  ]);
  const { state } = azure.emulator;
  const identitiesOf = (namespace: string) => [...state.identities.values()].filter((i) => i.tags[MARKER.cluster] === CLUSTER_NAME && i.tags[MARKER.namespace] === namespace);
  const aks: Mechanism = {
    key: 'aks',
    label: 'AKS',
    namespace: AZURE_NAMESPACE,
    account: AZURE_ACCOUNT,
    n: opts.azureN,
    proxy,
    upstream: azure.emulator.endpoint,
    spec: () => ({ azure: { roleAssignments: AZURE_ROLES } }),
    floor: { create: 2 + AZURE_ROLES.length, delete: AZURE_ROLES.length + 1 },
    accountChecks: ['UserAssignedIdentities_ListByResourceGroup'],
    ownedLeft: () =>
      Promise.resolve({
        identities: identitiesOf(AZURE_NAMESPACE).length,
        federatedCredentials: identitiesOf(AZURE_NAMESPACE).reduce((sum, i) => sum + i.credentials.size, 0),
        // Only AKS bench identities are assigned roles at the shared scope.
        roleAssignments: [...state.assignments.values()].filter((a) => a.scope.toLowerCase() === AZURE_SCOPE.toLowerCase()).length,
      }),
  };
  return {
    accounts: [AZURE_ACCOUNT],
    operatorEnv: azureEnv(proxy.endpoint, tls.caFile),
    aks,
    proxy,
    test: azure,
    stop: async () => {
      await proxy.stop();
      await azure.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
