// The keyless.dev CRDs on a real API server: every static check in crds/ rejects what it should with the message a
// user will read, valid objects are accepted with the schema defaults, and kubectl explain and get read well.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, CLOUD_ACCOUNT_PLURAL, GROUP, VERSION, WORKLOAD_IDENTITY_PLURAL } from '../../src/api/constants.ts';
import type { CloudAccount, CloudAccountStatus, WorkloadIdentity, WorkloadIdentityStatus } from '../../src/api/types.ts';
import { eventually, freshNamespace, installCrds, kubeConfig, kubectl, statusCode } from '../support/cluster.ts';

type Json = Record<string, unknown>;
type Kind = 'WorkloadIdentity' | 'CloudAccount';

const guid = '00000000-0000-0000-0000-000000000000';

const awsIdentity: WorkloadIdentity = {
  apiVersion: API_VERSION,
  kind: 'WorkloadIdentity',
  metadata: { name: 'aws' },
  spec: {
    serviceAccountName: 'catalog-sa',
    cloudAccountRef: { name: 'prod-aws' },
    aws: {
      policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::your-org-book-covers/*'] }],
      managedPolicyArns: ['arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess'],
      maxSessionDuration: '1h',
    },
  },
};

const gcpIdentity: WorkloadIdentity = {
  apiVersion: API_VERSION,
  kind: 'WorkloadIdentity',
  metadata: { name: 'gcp' },
  spec: {
    serviceAccountName: 'catalog-sa',
    cloudAccountRef: { name: 'prod-gcp' },
    gcp: {
      roles: [{ role: 'roles/storage.objectViewer', resource: '//storage.googleapis.com/projects/_/buckets/your-org-book-covers' }],
    },
  },
};

const azureIdentity: WorkloadIdentity = {
  apiVersion: API_VERSION,
  kind: 'WorkloadIdentity',
  metadata: { name: 'azure' },
  spec: {
    serviceAccountName: 'catalog-sa',
    cloudAccountRef: { name: 'prod-azure' },
    azure: { roleAssignments: [{ role: 'Storage Blob Data Reader', scope: `/subscriptions/${guid}/resourceGroups/books` }] },
  },
};

const awsAccount: CloudAccount = {
  apiVersion: API_VERSION,
  kind: 'CloudAccount',
  metadata: { name: 'aws' },
  spec: { aws: { accountId: '123456789012', region: 'us-east-1' } },
};

const gcpAccount: CloudAccount = {
  apiVersion: API_VERSION,
  kind: 'CloudAccount',
  metadata: { name: 'gcp' },
  spec: { gcp: { projectId: 'my-project-123', projectNumber: '123456789012' } },
};

const FEDERATION_PROVIDER = 'projects/123456789012/locations/global/workloadIdentityPools/my-clusters/providers/prod-eks';

const federatedGcpAccount: CloudAccount = {
  apiVersion: API_VERSION,
  kind: 'CloudAccount',
  metadata: { name: 'gcp-federation' },
  spec: { gcp: { projectId: 'my-project-123', projectNumber: '123456789012', workloadIdentityProvider: FEDERATION_PROVIDER } },
};

const azureAccount: CloudAccount = {
  apiVersion: API_VERSION,
  kind: 'CloudAccount',
  metadata: { name: 'azure' },
  spec: {
    azure: {
      subscriptionId: guid,
      tenantId: guid,
      resourceGroup: 'keyless-identities',
      location: 'eastus',
      oidcIssuer: `https://eastus.oic.prod-aks.azure.com/${guid}/${guid}/`,
    },
  },
};

interface Table<T> {
  columnDefinitions: { name: string; priority: number }[];
  rows: { cells: unknown[]; object: T }[];
}

/** The server-side Table that `kubectl get` prints, with the object each row was rendered from. */
async function serverTable<T>(kc: KubeConfig, urlPath: string): Promise<Table<T>> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const options: https.RequestOptions = { headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' } };
  await kc.applyToHTTPSOptions(options);
  const url = new URL(`${urlPath}?includeObject=Object`, cluster.server);
  const body = await new Promise<string>((resolve, reject) => {
    https
      .get(url, options, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`GET ${urlPath}: ${res.statusCode} ${text}`))));
      })
      .on('error', reject);
  });
  return JSON.parse(body) as Table<T>;
}

/** The HTTP status and the Status message of a failed call, or of a call that unexpectedly succeeded. */
function failure(err: unknown): { code: number | undefined; message: string } {
  const body = String((err as { body?: unknown } | undefined)?.body);
  try {
    return { code: statusCode(err), message: String((JSON.parse(body) as { message?: unknown }).message) };
  } catch {
    return { code: statusCode(err), message: body };
  }
}

/** A deep copy of `base` with each dotted path set to its value, or removed when the value is undefined. */
function edited(base: WorkloadIdentity | CloudAccount, changes: Record<string, unknown>): Json {
  const copy = structuredClone(base) as unknown as Json;
  for (const [path, value] of Object.entries(changes)) {
    const keys = path.split('.');
    const last = keys.pop() ?? '';
    const parent = keys.reduce((node, key) => node[key] as Json, copy);
    if (value === undefined) delete parent[last];
    else parent[last] = value;
  }
  return copy;
}

interface Rejection {
  what: string;
  base: WorkloadIdentity | CloudAccount;
  changes: Record<string, unknown>;
  /** 422 Invalid for schema and CEL failures; 400 BadRequest for unknown fields under strict field validation. */
  code?: number;
  message: string;
}

const rejections: Rejection[] = [
  // WorkloadIdentity
  { what: 'a WorkloadIdentity with none of aws, gcp or azure', base: awsIdentity, changes: { 'spec.aws': undefined }, message: 'exactly one of spec.aws, spec.gcp or spec.azure must be set' },
  { what: 'a WorkloadIdentity with both aws and gcp', base: awsIdentity, changes: { 'spec.gcp': {} }, message: 'exactly one of spec.aws, spec.gcp or spec.azure must be set' },
  { what: 'a WorkloadIdentity without cloudAccountRef', base: awsIdentity, changes: { 'spec.cloudAccountRef': undefined }, message: 'spec.cloudAccountRef: Required value' },
  { what: 'a serviceAccountName that is not a DNS-1123 subdomain', base: awsIdentity, changes: { 'spec.serviceAccountName': 'Catalog_SA' }, message: 'serviceAccountName must be a DNS-1123 subdomain' },
  { what: 'a serviceAccountName longer than 253 characters', base: awsIdentity, changes: { 'spec.serviceAccountName': 'a'.repeat(254) }, message: 'spec.serviceAccountName: Too long' },
  { what: 'a namespace field in spec (the subject is always derived)', base: awsIdentity, changes: { 'spec.namespace': 'kube-system' }, code: 400, message: 'unknown field "spec.namespace"' },
  { what: 'a subject field in spec.aws', base: awsIdentity, changes: { 'spec.aws.subject': 'system:serviceaccount:kube-system:default' }, code: 400, message: 'unknown field "spec.aws.subject"' },
  { what: 'a deletionPolicy other than Delete or Orphan', base: awsIdentity, changes: { 'spec.deletionPolicy': 'Retain' }, message: 'Unsupported value: "Retain"' },
  { what: 'an AWS mechanism other than IRSA or PodIdentity', base: awsIdentity, changes: { 'spec.aws.mechanism': 'Kiam' }, message: 'Unsupported value: "Kiam"' },
  { what: 'a maxSessionDuration of 30m', base: awsIdentity, changes: { 'spec.aws.maxSessionDuration': '30m' }, message: 'maxSessionDuration must be a duration between 1h and 12h' },
  { what: 'a maxSessionDuration of 13h', base: awsIdentity, changes: { 'spec.aws.maxSessionDuration': '13h' }, message: 'maxSessionDuration must be a duration between 1h and 12h' },
  { what: 'a maxSessionDuration that is not a duration', base: awsIdentity, changes: { 'spec.aws.maxSessionDuration': 'an hour' }, message: 'maxSessionDuration must be a duration between 1h and 12h' },
  { what: 'a statement effect other than Allow or Deny', base: awsIdentity, changes: { 'spec.aws.policy.0.effect': 'Permit' }, message: 'Unsupported value: "Permit"' },
  { what: 'a statement with no actions', base: awsIdentity, changes: { 'spec.aws.policy.0.actions': [] }, message: 'spec.aws.policy[0].actions in body should have at least 1 items' },
  { what: 'an empty action', base: awsIdentity, changes: { 'spec.aws.policy.0.actions': [''] }, message: 'spec.aws.policy[0].actions[0] in body should be at least 1 chars long' },
  { what: 'an action without a service prefix', base: awsIdentity, changes: { 'spec.aws.policy.0.actions': ['GetObject'] }, message: 'each action must look like service:Action' },
  { what: 'a statement with no resources', base: awsIdentity, changes: { 'spec.aws.policy.0.resources': [] }, message: 'spec.aws.policy[0].resources in body should have at least 1 items' },
  { what: 'a resource that is not an ARN', base: awsIdentity, changes: { 'spec.aws.policy.0.resources': ['my-bucket'] }, message: 'each resource must be an ARN' },
  { what: 'duplicate statement sids', base: awsIdentity, changes: { 'spec.aws.policy': [{ sid: 'A', effect: 'Allow', actions: ['s3:GetObject'], resources: ['*'] }, { sid: 'A', effect: 'Deny', actions: ['s3:PutObject'], resources: ['*'] }] }, message: 'policy statement sids must be unique' },
  { what: 'a managed policy ARN that names a role', base: awsIdentity, changes: { 'spec.aws.managedPolicyArns': ['arn:aws:iam::123456789012:role/admin'] }, message: 'each managedPolicyArns entry must be a managed policy ARN' },
  { what: 'a GCP role without a roles/, projects/ or organizations/ prefix', base: gcpIdentity, changes: { 'spec.gcp.roles.0.role': 'storage.objectViewer' }, message: 'role must start with roles/, projects/ or organizations/' },
  { what: 'a GCP resource that is not a full resource name', base: gcpIdentity, changes: { 'spec.gcp.roles.0.resource': 'projects/_/buckets/b' }, message: 'resource must be a full resource name starting with //' },
  { what: 'a GCP mechanism other than ServiceAccount or DirectPrincipal', base: gcpIdentity, changes: { 'spec.gcp.mechanism': 'Impersonation' }, message: 'Unsupported value: "Impersonation"' },
  { what: 'an Azure scope outside /subscriptions/', base: azureIdentity, changes: { 'spec.azure.roleAssignments.0.scope': '/resourceGroups/books' }, message: 'scope must be an Azure resource ID starting with /subscriptions/' },
  { what: 'a duplicate Azure role assignment', base: azureIdentity, changes: { 'spec.azure.roleAssignments': [{ role: 'Reader', scope: `/subscriptions/${guid}` }, { role: 'Reader', scope: `/subscriptions/${guid}` }] }, message: 'spec.azure.roleAssignments[1]: Duplicate value' },
  // CloudAccount
  { what: 'a CloudAccount with none of aws, gcp or azure', base: awsAccount, changes: { 'spec.aws': undefined }, message: 'exactly one of spec.aws, spec.gcp or spec.azure must be set' },
  { what: 'a CloudAccount with both aws and azure', base: awsAccount, changes: { 'spec.azure': azureAccount.spec.azure }, message: 'exactly one of spec.aws, spec.gcp or spec.azure must be set' },
  { what: 'an AWS accountId that is not 12 digits', base: awsAccount, changes: { 'spec.aws.accountId': '12345' }, message: 'accountId must be exactly 12 digits' },
  { what: 'an AWS region that is not a region code', base: awsAccount, changes: { 'spec.aws.region': 'US East' }, message: 'region must be an AWS region code' },
  { what: 'a PodIdentity default without clusterName', base: awsAccount, changes: { 'spec.aws.mechanism': 'PodIdentity' }, message: 'clusterName is required when mechanism is PodIdentity' },
  { what: 'an AWS oidcIssuer over plain http', base: awsAccount, changes: { 'spec.aws.oidcIssuer': 'http://oidc.example.com' }, message: 'oidcIssuer must be an https:// URL' },
  { what: 'manageOidcProvider without an issuer to create the provider for', base: awsAccount, changes: { 'spec.aws.manageOidcProvider': true }, message: 'manageOidcProvider needs oidcIssuer or clusterName' },
  { what: 'manageOidcProvider with an empty oidcIssuer and no clusterName', base: awsAccount, changes: { 'spec.aws.manageOidcProvider': true, 'spec.aws.oidcIssuer': '' }, message: 'manageOidcProvider needs oidcIssuer or clusterName' },
  { what: 'a rolePath that does not start and end with /', base: awsAccount, changes: { 'spec.aws.rolePath': 'keyless' }, message: 'rolePath must start and end with /' },
  { what: 'a roleNamePrefix longer than 32 characters', base: awsAccount, changes: { 'spec.aws.roleNamePrefix': 'k'.repeat(33) }, message: 'spec.aws.roleNamePrefix: Too long' },
  { what: 'a roleNamePrefix with characters IAM rejects', base: awsAccount, changes: { 'spec.aws.roleNamePrefix': 'team/' }, message: 'roleNamePrefix may contain only' },
  { what: 'a permissionsBoundaryArn that is not a policy ARN', base: awsAccount, changes: { 'spec.aws.permissionsBoundaryArn': 'boundary' }, message: 'permissionsBoundaryArn must be a managed policy ARN' },
  { what: 'a tag key in the keyless.dev/ namespace', base: awsAccount, changes: { 'spec.aws.tags': { 'keyless.dev/cluster': 'forged' } }, message: 'tag keys must not start with aws:' },
  { what: 'a GCP projectId that is not a project ID', base: gcpAccount, changes: { 'spec.gcp.projectId': 'My_Project' }, message: 'projectId must be a Google Cloud project ID' },
  { what: 'a GCP projectNumber with letters', base: gcpAccount, changes: { 'spec.gcp.projectNumber': 'p123' }, message: 'projectNumber must be the project' },
  { what: 'a GCP workloadIdentityProvider that is not a provider name', base: gcpAccount, changes: { 'spec.gcp.workloadIdentityProvider': 'my-clusters/prod-eks' }, message: 'workloadIdentityProvider must be projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>' },
  { what: 'a GCP workloadIdentityProvider with a project id instead of a number', base: gcpAccount, changes: { 'spec.gcp.workloadIdentityProvider': `projects/my-project-123/locations/global/workloadIdentityPools/my-clusters/providers/prod` }, message: 'workloadIdentityProvider must be projects/<number>' },
  { what: 'a GCP workloadIdentityProvider in a regional location', base: gcpAccount, changes: { 'spec.gcp.workloadIdentityProvider': `projects/123456789012/locations/europe-west1/workloadIdentityPools/my-clusters/providers/prod` }, message: 'workloadIdentityProvider must be projects/<number>' },
  { what: 'a GCP workloadIdentityProvider with the reserved gcp- prefix', base: gcpAccount, changes: { 'spec.gcp.workloadIdentityProvider': `projects/123456789012/locations/global/workloadIdentityPools/gcp-clusters/providers/prod` }, message: 'may not start with gcp-' },
  { what: 'a GCP workloadIdentityProvider in another project than projectNumber', base: gcpAccount, changes: { 'spec.gcp.workloadIdentityProvider': `projects/999/locations/global/workloadIdentityPools/my-clusters/providers/prod` }, message: 'workloadIdentityProvider must name a provider in this project' },
  { what: 'GKE’s workloadPool beside a workloadIdentityProvider', base: gcpAccount, changes: { 'spec.gcp.workloadPool': 'my-project-123.svc.id.goog', 'spec.gcp.workloadIdentityProvider': FEDERATION_PROVIDER }, message: 'workloadPool (GKE\'s pool) and workloadIdentityProvider' },
  { what: 'manageWorkloadIdentityProvider without a workloadIdentityProvider to create', base: gcpAccount, changes: { 'spec.gcp.manageWorkloadIdentityProvider': true, 'spec.gcp.oidcIssuer': 'https://oidc.example.com/cluster-1' }, message: 'manageWorkloadIdentityProvider needs workloadIdentityProvider' },
  { what: 'manageWorkloadIdentityProvider without the oidcIssuer to trust', base: federatedGcpAccount, changes: { 'spec.gcp.manageWorkloadIdentityProvider': true }, message: 'manageWorkloadIdentityProvider needs oidcIssuer' },
  { what: 'manageWorkloadIdentityProvider with an empty oidcIssuer', base: federatedGcpAccount, changes: { 'spec.gcp.manageWorkloadIdentityProvider': true, 'spec.gcp.oidcIssuer': '' }, message: 'manageWorkloadIdentityProvider needs oidcIssuer' },
  { what: 'a GCP oidcIssuer that is plain http', base: federatedGcpAccount, changes: { 'spec.gcp.manageWorkloadIdentityProvider': true, 'spec.gcp.oidcIssuer': 'http://oidc.example.com/cluster-1' }, message: 'oidcIssuer must be an https:// URL' },
  { what: 'an Azure subscriptionId that is not a GUID', base: azureAccount, changes: { 'spec.azure.subscriptionId': 'prod' }, message: 'subscriptionId must be a GUID' },
  { what: 'an Azure tenantId that is not a GUID', base: azureAccount, changes: { 'spec.azure.tenantId': 'contoso.onmicrosoft.com' }, message: 'tenantId must be a GUID' },
  { what: 'an Azure oidcIssuer over plain http', base: azureAccount, changes: { 'spec.azure.oidcIssuer': 'http://issuer.example.com/' }, message: 'oidcIssuer must be an https:// URL' },
  { what: 'an In requirement without values in namespaceSelector', base: awsAccount, changes: { 'spec.namespaceSelector': { matchExpressions: [{ key: 'team', operator: 'In' }] } }, message: 'values must be non-empty for In and NotIn' },
];

describe('keyless.dev CRDs', () => {
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  // CloudAccounts are cluster-scoped: unique names, and each one this suite tries to create is deleted after.
  const accountPrefix = `crds-${randomBytes(3).toString('hex')}`;
  const accounts = new Set<string>();

  const accountName = (suffix: string) => {
    const name = `${accountPrefix}-${suffix}`;
    accounts.add(name);
    return name;
  };

  /** Creates the object named `name` (in the suite's namespace for a WorkloadIdentity) with strict field validation. */
  async function create<T extends WorkloadIdentity | CloudAccount>(body: T | Json, name: string, dryRun?: 'All'): Promise<T> {
    const kind = body.kind as Kind;
    const object = { ...body, metadata: kind === 'CloudAccount' ? { name: accountName(name) } : { name, namespace: ns } };
    const common = { group: GROUP, version: VERSION, body: object, dryRun, fieldValidation: 'Strict' };
    return (await (kind === 'CloudAccount'
      ? custom.createClusterCustomObject({ ...common, plural: CLOUD_ACCOUNT_PLURAL })
      : custom.createNamespacedCustomObject({ ...common, namespace: ns, plural: WORKLOAD_IDENTITY_PLURAL }))) as T;
  }

  async function mergePatch(kind: Kind, name: string, body: Json): Promise<unknown> {
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    return kind === 'CloudAccount'
      ? custom.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: CLOUD_ACCOUNT_PLURAL, name, body }, merge)
      : custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: WORKLOAD_IDENTITY_PLURAL, name, body }, merge);
  }

  before(async () => {
    kc = kubeConfig();
    custom = kc.makeApiClient(CustomObjectsApi);
    await installCrds();
    [ns, dropNamespace] = await freshNamespace(kc, 'crds');
  });

  after(async () => {
    for (const name of accounts) {
      await custom
        .deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: CLOUD_ACCOUNT_PLURAL, name })
        .catch((err: unknown) => {
          if (statusCode(err) !== 404) throw err;
        });
    }
    // Deleted here rather than left to the namespace controller, so nothing of this suite outlives it.
    await custom.deleteCollectionNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: WORKLOAD_IDENTITY_PLURAL });
    await dropNamespace();
  });

  it('accepts each base object the rejection table starts from', async () => {
    for (const base of [awsIdentity, gcpIdentity, azureIdentity, awsAccount, gcpAccount, federatedGcpAccount, azureAccount]) {
      await create(base, `base-${base.metadata.name}`, 'All');
    }
  });

  describe('rejects', () => {
    rejections.forEach((row, i) => {
      it(`${row.what} (${row.code ?? 422}: ${row.message})`, async () => {
        const err = await create(edited(row.base, row.changes), `invalid-${i}`).then(
          () => undefined,
          (e: unknown) => e,
        );
        const { code, message } = failure(err);
        assert.equal(code, row.code ?? 422, message);
        assert.ok(message.includes(row.message), `expected "${row.message}" in: ${message}`);
      });
    });
  });

  it('rejects a change of cloudAccountRef on update, and accepts other spec changes', async () => {
    await create(awsIdentity, 'moving');
    const err = await mergePatch('WorkloadIdentity', 'moving', { spec: { cloudAccountRef: { name: 'other-aws' } } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const { code, message } = failure(err);
    assert.equal(code, 422, message);
    assert.match(message, /cloudAccountRef is immutable: create a new WorkloadIdentity/);

    // The identity belongs to its ServiceAccount: another ServiceAccount needs another WorkloadIdentity.
    const renamed = await mergePatch('WorkloadIdentity', 'moving', { spec: { serviceAccountName: 'other-sa' } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(failure(renamed).code, 422);
    assert.match(failure(renamed).message, /serviceAccountName is immutable/);

    const updated = (await mergePatch('WorkloadIdentity', 'moving', { spec: { aws: { maxSessionDuration: '2h' } } })) as WorkloadIdentity;
    assert.equal(updated.spec.aws?.maxSessionDuration, '2h');
  });

  it('rejects changing the account ID or the cloud of a CloudAccount', async () => {
    const created = await create(awsAccount, 'pinned');
    const name = created.metadata.name;
    const rejected = async (body: Json) =>
      mergePatch('CloudAccount', name, body).then(
        () => 'accepted',
        (e: unknown) => `${failure(e).code} ${failure(e).message}`,
      );
    assert.match(await rejected({ spec: { aws: { accountId: '210987654321' } } }), /^422 .*accountId is immutable/);
    assert.match(
      await rejected({ spec: { aws: null, gcp: gcpAccount.spec.gcp } }),
      /^422 .*the cloud of a CloudAccount is immutable/,
    );
  });

  it('fills in the AWS CloudAccount defaults: rolePath, roleNamePrefix, mechanism and deletionPolicy', async () => {
    const created = await create(awsAccount, 'defaults-aws');
    assert.deepEqual(created.spec, {
      aws: { accountId: '123456789012', region: 'us-east-1', rolePath: '/keyless/', roleNamePrefix: 'keyless-', mechanism: 'IRSA' },
      deletionPolicy: 'Delete',
    });
  });

  it('accepts manageOidcProvider with an oidcIssuer or a clusterName to find the issuer, and leaves it unset by default', async () => {
    await create(edited(awsAccount, { 'spec.aws.manageOidcProvider': true, 'spec.aws.oidcIssuer': 'https://oidc.example.com/cluster-1' }), 'managed-issuer', 'All');
    await create(edited(awsAccount, { 'spec.aws.manageOidcProvider': true, 'spec.aws.clusterName': 'prod-use1' }), 'managed-cluster', 'All');
    await create(edited(awsAccount, { 'spec.aws.manageOidcProvider': false }), 'unmanaged', 'All');
    assert.equal((await create(awsAccount, 'managed-default', 'All')).spec.aws?.manageOidcProvider, undefined);
  });

  it('accepts manageWorkloadIdentityProvider with a workloadIdentityProvider and an oidcIssuer, and leaves it unset by default', async () => {
    await create(edited(federatedGcpAccount, { 'spec.gcp.manageWorkloadIdentityProvider': true, 'spec.gcp.oidcIssuer': 'https://oidc.example.com/cluster-1' }), 'managed-wip', 'All');
    await create(edited(federatedGcpAccount, { 'spec.gcp.manageWorkloadIdentityProvider': false }), 'unmanaged-wip', 'All');
    assert.equal((await create(federatedGcpAccount, 'managed-wip-default', 'All')).spec.gcp?.manageWorkloadIdentityProvider, undefined);
  });

  it('fills in the GCP and Azure CloudAccount defaults', async () => {
    const gcp = await create(gcpAccount, 'defaults-gcp');
    assert.deepEqual(gcp.spec, { gcp: { ...gcpAccount.spec.gcp, mechanism: 'ServiceAccount' }, deletionPolicy: 'Delete' });
    const azure = await create(azureAccount, 'defaults-azure');
    assert.deepEqual(azure.spec, { ...azureAccount.spec, deletionPolicy: 'Delete' });
  });

  it('leaves a WorkloadIdentity without mechanism and deletionPolicy, so the CloudAccount decides', async () => {
    for (const base of [awsIdentity, gcpIdentity, azureIdentity]) {
      const created = await create(base, `no-defaults-${base.metadata.name}`);
      assert.deepEqual(created.spec, base.spec);
    }
  });

  it('accepts a fully specified WorkloadIdentity', async () => {
    const full = edited(awsIdentity, {
      'spec.deletionPolicy': 'Orphan',
      'spec.aws.mechanism': 'PodIdentity',
      'spec.aws.maxSessionDuration': '12h',
      'spec.aws.policy': [
        {
          sid: 'ReadCovers',
          effect: 'Allow',
          actions: ['s3:GetObject', 's3:List*'],
          resources: ['arn:aws:s3:::your-org-book-covers', 'arn:aws:s3:::your-org-book-covers/*'],
          conditions: { StringLike: { 's3:prefix': ['covers/*'] } },
        },
        { effect: 'Deny', actions: ['*'], resources: ['*'], conditions: { Bool: { 'aws:SecureTransport': ['false'] } } },
      ],
    });
    const created = await create<WorkloadIdentity>(full, 'full');
    assert.deepEqual(created.spec, full['spec']);
  });

  it('drops a namespace or subject field sent without strict validation, so it can never reach the operator', async () => {
    const body = edited(awsIdentity, { 'spec.namespace': 'kube-system', 'spec.aws.subject': 'system:serviceaccount:kube-system:default' });
    const created = (await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: WORKLOAD_IDENTITY_PLURAL,
      body: { ...body, metadata: { name: 'lenient', namespace: ns } },
      fieldValidation: 'Ignore',
    })) as WorkloadIdentity;
    assert.deepEqual(created.spec, awsIdentity.spec);
  });

  it('kubectl apply rejects an unknown field by default', async () => {
    const manifest = JSON.stringify(edited(awsIdentity, { 'metadata.name': 'typo', 'metadata.namespace': ns, 'spec.serviceAccount': 'catalog-sa' }));
    const err = await kubectl(['apply', '-f', '-'], manifest).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.match(String((err as { stderr?: unknown } | undefined)?.stderr), /strict decoding error: unknown field "spec.serviceAccount"/);
  });

  it('kubectl explain shows the field descriptions', async () => {
    // The OpenAPI document the API server publishes catches up with a new CRD a moment after it is Established.
    const text = await eventually('kubectl explain to know the CRD', async () => {
      const { stdout } = await kubectl(['explain', 'workloadidentity.spec.aws.policy']);
      return stdout.includes('FIELDS:') ? stdout.replace(/\s+/g, ' ') : undefined;
    });
    assert.ok(text.includes("The role's inline IAM policy, one entry per statement"), text);
    assert.match(text, /effect <string> -required-.*Whether the statement allows or denies the actions\. One of Allow, Deny\./);
  });

  it('kubectl get prints the WorkloadIdentity columns, and Reason and Subject only with -o wide', async () => {
    await create(awsIdentity, 'listed');
    const table = await kubectl(['get', 'wi', '-n', ns, 'listed']);
    assert.match(table.stdout, /^NAME\s+CLOUD\s+MECHANISM\s+SERVICEACCOUNT\s+READY\s+IDENTITY\s+AGE\n/);
    const wide = await kubectl(['get', 'wi', '-n', ns, 'listed', '-o', 'wide']);
    assert.match(wide.stdout, /^NAME\s+CLOUD\s+MECHANISM\s+SERVICEACCOUNT\s+READY\s+REASON\s+IDENTITY\s+SUBJECT\s+AGE\n/);
    assert.match(wide.stdout, /\nlisted\s+catalog-sa\s+\S+\n/);
  });

  it('kubectl get prints the CloudAccount columns, found by its short name', async () => {
    const { metadata } = await create(awsAccount, 'listed');
    const wide = await kubectl(['get', 'cacct', metadata.name, '-o', 'wide']);
    assert.match(wide.stdout, /^NAME\s+CLOUD\s+ISSUER\s+IDENTITIES\s+READY\s+REASON\s+AGE\n/);
  });

  // The cells are compared with the object returned in the same response: an operator running elsewhere in the
  // test run may rewrite the status at any moment, and the columns must show whatever the status says.
  it('fills the WorkloadIdentity columns from status and the Ready condition', async () => {
    await create(awsIdentity, 'printed');
    const status: WorkloadIdentityStatus = {
      cloud: 'aws',
      mechanism: 'IRSA',
      identity: 'arn:aws:iam::123456789012:role/keyless/catalog',
      subject: `system:serviceaccount:${ns}:catalog-sa`,
      conditions: [{ type: 'Ready', status: 'True', reason: 'UpToDate', message: 'ok', lastTransitionTime: '2026-01-01T00:00:00Z' }],
    };
    await custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, namespace: ns, plural: WORKLOAD_IDENTITY_PLURAL, name: 'printed', body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const table = await serverTable<WorkloadIdentity>(kc, `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${WORKLOAD_IDENTITY_PLURAL}/printed`);
    const { object: wi, cells } = table.rows[0] ?? assert.fail('no row');
    const ready = wi.status?.conditions?.find((c) => c.type === 'Ready');
    assert.deepEqual(
      table.columnDefinitions.map((c) => [c.name, cells[table.columnDefinitions.indexOf(c)]]),
      [
        ['Name', 'printed'],
        ['Cloud', wi.status?.cloud ?? null],
        ['Mechanism', wi.status?.mechanism ?? null],
        ['ServiceAccount', 'catalog-sa'],
        ['Ready', ready?.status ?? null],
        ['Reason', ready?.reason ?? null],
        ['Identity', wi.status?.identity ?? null],
        ['Subject', wi.status?.subject ?? null],
        ['Age', cells[8]],
      ],
    );
    assert.deepEqual(table.columnDefinitions.filter((c) => c.priority === 1).map((c) => c.name), ['Reason', 'Subject']);
  });

  it('fills the CloudAccount columns from status and the Ready condition', async () => {
    const { metadata } = await create(awsAccount, 'printed');
    const status: CloudAccountStatus = {
      cloud: 'aws',
      issuer: 'https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE',
      identities: 3,
      conditions: [{ type: 'Ready', status: 'False', reason: 'OIDCProviderNotFound', message: 'no provider', lastTransitionTime: '2026-01-01T00:00:00Z' }],
    };
    await custom.patchClusterCustomObjectStatus(
      { group: GROUP, version: VERSION, plural: CLOUD_ACCOUNT_PLURAL, name: metadata.name, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const table = await serverTable<CloudAccount>(kc, `/apis/${GROUP}/${VERSION}/${CLOUD_ACCOUNT_PLURAL}/${metadata.name}`);
    const { object: account, cells } = table.rows[0] ?? assert.fail('no row');
    const ready = account.status?.conditions?.find((c) => c.type === 'Ready');
    assert.deepEqual(
      table.columnDefinitions.map((c) => [c.name, cells[table.columnDefinitions.indexOf(c)]]),
      [
        ['Name', metadata.name],
        ['Cloud', account.status?.cloud ?? null],
        ['Issuer', account.status?.issuer ?? null],
        ['Identities', account.status?.identities ?? null],
        ['Ready', ready?.status ?? null],
        ['Reason', ready?.reason ?? null],
        ['Age', cells[6]],
      ],
    );
    assert.deepEqual(table.columnDefinitions.filter((c) => c.priority === 1).map((c) => c.name), ['Reason']);
  });

  it('kubectl get keyless lists both kinds through their category', async () => {
    await create(awsIdentity, 'categorized');
    const { metadata } = await create(awsAccount, 'categorized');
    const { stdout } = await kubectl(['get', 'keyless', '-n', ns, '-o', 'name']);
    assert.match(stdout, /^workloadidentity\.keyless\.dev\/categorized$/m);
    assert.match(stdout, new RegExp(`^cloudaccount\\.keyless\\.dev/${metadata.name}$`, 'm'));
  });
});
