// Keeps src/api/types.ts and the CRD schemas in crds/ in step. The compiler makes each sample below set every field
// its type declares (DeepRequired); the tests then compare the samples' property paths with the schemas', in both
// directions, and check the enums and the descriptions `kubectl explain` shows.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { CLOUD_ACCOUNT_PLURAL, GROUP, VERSION, WORKLOAD_IDENTITY_PLURAL } from './constants.ts';
import type {
  AwsMechanism,
  Cloud,
  CloudAccount,
  Condition,
  DeletionPolicy,
  GcpMechanism,
  LabelSelectorRequirement,
  AwsPolicyStatement,
  WorkloadIdentity,
} from './types.ts';

type DeepRequired<T> = T extends readonly (infer U)[]
  ? DeepRequired<U>[]
  : T extends object
    ? { [K in keyof T]-?: DeepRequired<Exclude<T[K], undefined>> }
    : T;

interface SchemaNode {
  type?: string;
  description?: string;
  enum?: unknown[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  additionalProperties?: SchemaNode | boolean;
}

interface CRD {
  spec: {
    group: string;
    names: { kind: string; plural: string };
    versions: { name: string; schema: { openAPIV3Schema: SchemaNode } }[];
  };
}

function loadCRD(file: string): CRD {
  return parse(readFileSync(new URL(`../../crds/${file}`, import.meta.url), 'utf8')) as CRD;
}

function schemaOf(crd: CRD): SchemaNode {
  const version = crd.spec.versions.find((v) => v.name === VERSION);
  assert.ok(version, `the CRD serves ${VERSION}`);
  return version.schema.openAPIV3Schema;
}

const join = (path: string, segment: string) => (path === '' ? segment : `${path}.${segment}`);
const mapValues = (node: SchemaNode) => (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
// An object schema with neither properties nor additionalProperties is opaque: only `metadata`, which the API
// server owns and a CRD may not describe.
const opaque = (node: SchemaNode) => node.type === 'object' && !node.properties && !node.additionalProperties;

/** Every property path of a schema, `[]` for array items and `*` for the values of a free-form map. */
function schemaPaths(node: SchemaNode, path = '', out = new Map<string, SchemaNode>()): Map<string, SchemaNode> {
  if (path !== '') out.set(path, node);
  for (const [key, child] of Object.entries(node.properties ?? {})) schemaPaths(child, join(path, key), out);
  if (node.items) schemaPaths(node.items, `${path}[]`, out);
  const values = mapValues(node);
  if (values) schemaPaths(values, join(path, '*'), out);
  return out;
}

/** Every property path of a sample with the JSON type found there; the schema says which objects are maps. */
function samplePaths(value: unknown, node: SchemaNode | undefined, path = '', out = new Map<string, string>()): Map<string, string> {
  if (path !== '') out.set(path, Array.isArray(value) ? 'array' : typeof value);
  if (node && opaque(node)) return out;
  if (Array.isArray(value)) {
    for (const item of value) samplePaths(item, node?.items, `${path}[]`, out);
  } else if (typeof value === 'object' && value !== null) {
    const values = node && !node.properties ? mapValues(node) : undefined;
    for (const [key, child] of Object.entries(value)) {
      samplePaths(child, values ?? node?.properties?.[key], join(path, values ? '*' : key), out);
    }
  }
  return out;
}

function jsonType(schemaType: string | undefined): string | undefined {
  return schemaType === 'integer' || schemaType === 'number' ? 'number' : schemaType === 'array' ? 'array' : schemaType;
}

function assertSameShape(sample: object, schema: SchemaNode): void {
  const inSchema = schemaPaths(schema);
  const inSample = samplePaths(sample, schema);
  const onlyInTypes = [...inSample.keys()].filter((p) => !inSchema.has(p));
  const onlyInSchema = [...inSchema.keys()].filter((p) => !inSample.has(p));
  const typeMismatches = [...inSample]
    .filter(([p, t]) => inSchema.has(p) && jsonType(inSchema.get(p)?.type) !== t)
    .map(([p, t]) => `${p}: ${t} in types.ts, ${inSchema.get(p)?.type} in the CRD`);
  assert.deepEqual(
    { onlyInTypes, onlyInSchema, typeMismatches },
    { onlyInTypes: [], onlyInSchema: [], typeMismatches: [] },
    'src/api/types.ts and the CRD schema disagree',
  );
}

function assertDescribed(schema: SchemaNode): void {
  const undescribed = [...schemaPaths(schema)]
    .filter(([path, node]) => path !== 'metadata' && !node.description?.trim())
    .map(([path]) => path);
  if (!schema.description?.trim()) undescribed.unshift('(root)');
  assert.deepEqual(undescribed, [], 'schema nodes without a description');
}

/** Identity on a list that must name every member of the union T and nothing else; the compiler checks both. */
const every =
  <T extends string>() =>
  <const A extends readonly T[]>(values: A & ([T] extends [A[number]] ? unknown : never)): readonly string[] =>
    values;

function assertEnum(schema: SchemaNode, path: string, values: readonly string[]): void {
  const node = schemaPaths(schema).get(path);
  assert.ok(node, `${path} exists in the CRD`);
  assert.deepEqual([...(node.enum ?? [])].sort(), [...values].sort(), `enum of ${path}`);
}

const condition: DeepRequired<Condition> = {
  type: 'Ready',
  status: 'True',
  reason: 'Ready',
  message: 'ok',
  observedGeneration: 1,
  lastTransitionTime: '2026-01-01T00:00:00Z',
};

// metadata is the API server's ObjectMeta (client-node's type), not part of the CRD schema.
const metadata: WorkloadIdentity['metadata'] = { name: 'catalog', namespace: 'bookstore' };

/** The whole object with every spec and status field required, metadata as the API server defines it. */
type Complete<T extends { metadata: unknown }> = DeepRequired<Omit<T, 'metadata'>> & { metadata: T['metadata'] };

const workloadIdentity: Complete<WorkloadIdentity> = {
  apiVersion: 'keyless.dev/v1alpha1',
  kind: 'WorkloadIdentity',
  metadata,
  spec: {
    serviceAccountName: 'catalog-sa',
    cloudAccountRef: { name: 'prod-aws' },
    deletionPolicy: 'Delete',
    aws: {
      mechanism: 'PodIdentity',
      policy: [
        {
          sid: 'ReadCovers',
          effect: 'Allow',
          actions: ['s3:GetObject'],
          resources: ['arn:aws:s3:::your-org-book-covers/*'],
          conditions: { StringEquals: { 's3:prefix': ['covers/'] } },
        },
      ],
      managedPolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'],
      maxSessionDuration: '1h',
    },
    gcp: {
      mechanism: 'ServiceAccount',
      roles: [
        {
          role: 'roles/storage.objectViewer',
          resource: '//storage.googleapis.com/projects/_/buckets/your-org-book-covers',
          condition: { title: 'covers', description: 'covers only', expression: 'true' },
        },
      ],
    },
    azure: {
      roleAssignments: [{ role: 'Storage Blob Data Reader', scope: '/subscriptions/00000000-0000-0000-0000-000000000000' }],
    },
  },
  status: {
    observedGeneration: 1,
    cloud: 'aws',
    mechanism: 'IRSA',
    identity: 'arn:aws:iam::123456789012:role/keyless/catalog',
    subject: 'system:serviceaccount:bookstore:catalog-sa',
    issuer: 'https://oidc.example.com',
    audience: 'sts.amazonaws.com',
    aws: { roleArn: 'arn:aws:iam::123456789012:role/keyless/catalog', roleName: 'catalog', associationId: 'a-1' },
    gcp: { serviceAccountEmail: 'catalog@p.iam.gserviceaccount.com', member: 'serviceAccount:catalog@p.iam.gserviceaccount.com', credentialConfigMap: 'catalog-gcp-credentials' },
    azure: { clientId: 'c', principalId: 'p', tenantId: 't', identityId: '/subscriptions/s/x' },
    provisioned: {
      cloud: 'aws',
      cloudAccount: 'prod-aws',
      mechanism: 'IRSA',
      serviceAccountAnnotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/keyless/catalog' },
      configMap: { name: 'catalog-gcp-credentials' },
      aws: { accountId: '123456789012', region: 'us-east-1', roleName: 'catalog', roleArn: 'arn:aws:iam::123456789012:role/keyless/catalog', clusterName: 'my-cluster' },
      gcp: {
        projectId: 'p',
        projectNumber: '1',
        workloadPool: 'p.svc.id.goog',
        workloadIdentityProvider: 'projects/1/locations/global/workloadIdentityPools/clusters/providers/prod',
        serviceAccountEmail: 'catalog@p.iam.gserviceaccount.com',
        grants: [
          {
            member: 'serviceAccount:catalog@p.iam.gserviceaccount.com',
            resource: '//storage.googleapis.com/projects/_/buckets/covers',
            role: 'roles/storage.objectViewer',
            condition: { title: 'covers', description: 'covers only', expression: 'true' },
          },
        ],
      },
      azure: { subscriptionId: 's', tenantId: 't', resourceGroup: 'rg', identityName: 'keyless-x', identityId: '/subscriptions/s/x', subscriptions: ['s'] },
    },
    conditions: [condition],
  },
};

const cloudAccount: Complete<CloudAccount> = {
  apiVersion: 'keyless.dev/v1alpha1',
  kind: 'CloudAccount',
  metadata,
  spec: {
    aws: {
      accountId: '123456789012',
      region: 'us-east-1',
      clusterName: 'my-cluster',
      oidcIssuer: 'https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE',
      mechanism: 'IRSA',
      rolePath: '/keyless/',
      roleNamePrefix: 'keyless-',
      permissionsBoundaryArn: 'arn:aws:iam::123456789012:policy/boundary',
      tags: { team: 'platform' },
      manageOidcProvider: true,
    },
    gcp: {
      projectId: 'my-project',
      projectNumber: '123456789012',
      workloadPool: 'my-project.svc.id.goog',
      mechanism: 'ServiceAccount',
      workloadIdentityProvider: 'projects/123456789012/locations/global/workloadIdentityPools/clusters/providers/prod',
      manageWorkloadIdentityProvider: true,
      oidcIssuer: 'https://oidc.example.com/clusters/prod',
    },
    azure: {
      subscriptionId: '00000000-0000-0000-0000-000000000000',
      tenantId: '00000000-0000-0000-0000-000000000000',
      resourceGroup: 'rg',
      location: 'eastus',
      oidcIssuer: 'https://eastus.oic.prod-aks.azure.com/t/c/',
    },
    namespaceSelector: {
      matchLabels: { env: 'prod' },
      matchExpressions: [{ key: 'team', operator: 'In', values: ['books'] }],
    },
    deletionPolicy: 'Orphan',
    verification: { enabled: true },
    guardrails: {
      maxIdentitiesPerNamespace: 20,
      allowAdoption: false,
      aws: {
        allowedActions: ['s3:Get*'],
        deniedActions: ['s3:Delete*'],
        allowedResources: ['arn:aws:s3:::team-a-*'],
        deniedResources: ['arn:aws:s3:::audit-*'],
        allowedManagedPolicyArns: ['arn:aws:iam::aws:policy/ReadOnlyAccess'],
        requirePermissionsBoundary: true,
        maxSessionDuration: '2h',
        allowWildcards: false,
        allowPrivilegeEscalation: false,
        allowUnknownActions: false,
      },
      gcp: {
        allowedRoles: ['roles/storage.object*'],
        deniedRoles: ['roles/pubsub.admin'],
        allowedResources: ['//storage.googleapis.com/projects/_/buckets/team-a-*'],
        deniedResources: ['//storage.googleapis.com/projects/_/buckets/audit-*'],
        allowPrivilegedRoles: false,
      },
      azure: {
        allowedRoles: ['Storage Blob Data Reader'],
        allowedScopePrefixes: ['/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/team-a'],
        allowPrivilegedRoles: false,
      },
    },
  },
  status: {
    observedGeneration: 1,
    cloud: 'aws',
    issuer: 'https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE',
    oidcProviderArn: 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE',
    managedTrust: {
      oidcProviderArns: ['arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE'],
      workloadIdentityPools: ['projects/123456789012/locations/global/workloadIdentityPools/clusters'],
      workloadIdentityProviders: ['projects/123456789012/locations/global/workloadIdentityPools/clusters/providers/prod'],
    },
    identities: 1,
    conditions: [condition],
  },
};

const deletionPolicies = every<DeletionPolicy>()(['Delete', 'Orphan']);
const awsMechanisms = every<AwsMechanism>()(['IRSA', 'PodIdentity']);
const gcpMechanisms = every<GcpMechanism>()(['ServiceAccount', 'DirectPrincipal']);
const clouds = every<Cloud>()(['aws', 'gcp', 'azure']);
const conditionStatuses = every<Condition['status']>()(['True', 'False', 'Unknown']);

describe('WorkloadIdentity types and CRD', () => {
  const crd = loadCRD('keyless.dev_workloadidentities.yaml');
  const schema = schemaOf(crd);

  it('names the group, kind and plural of src/api/constants.ts', () => {
    assert.deepEqual(
      [crd.spec.group, crd.spec.names.kind, crd.spec.names.plural],
      [GROUP, workloadIdentity.kind, WORKLOAD_IDENTITY_PLURAL],
    );
  });

  it('has exactly the fields of the WorkloadIdentity type, with the same JSON types', () => {
    assertSameShape(workloadIdentity, schema);
  });

  it('has the enums of the WorkloadIdentity type', () => {
    assertEnum(schema, 'spec.deletionPolicy', deletionPolicies);
    assertEnum(schema, 'spec.aws.mechanism', awsMechanisms);
    assertEnum(schema, 'spec.aws.policy[].effect', every<AwsPolicyStatement['effect']>()(['Allow', 'Deny']));
    assertEnum(schema, 'spec.gcp.mechanism', gcpMechanisms);
    assertEnum(schema, 'status.cloud', clouds);
    assertEnum(schema, 'status.conditions[].status', conditionStatuses);
  });

  it('describes every field', () => {
    assertDescribed(schema);
  });
});

describe('CloudAccount types and CRD', () => {
  const crd = loadCRD('keyless.dev_cloudaccounts.yaml');
  const schema = schemaOf(crd);

  it('names the group, kind and plural of src/api/constants.ts', () => {
    assert.deepEqual([crd.spec.group, crd.spec.names.kind, crd.spec.names.plural], [GROUP, cloudAccount.kind, CLOUD_ACCOUNT_PLURAL]);
  });

  it('has exactly the fields of the CloudAccount type, with the same JSON types', () => {
    assertSameShape(cloudAccount, schema);
  });

  it('has the enums of the CloudAccount type', () => {
    assertEnum(schema, 'spec.deletionPolicy', deletionPolicies);
    assertEnum(schema, 'spec.aws.mechanism', awsMechanisms);
    assertEnum(schema, 'spec.gcp.mechanism', gcpMechanisms);
    assertEnum(
      schema,
      'spec.namespaceSelector.matchExpressions[].operator',
      every<LabelSelectorRequirement['operator']>()(['In', 'NotIn', 'Exists', 'DoesNotExist']),
    );
    assertEnum(schema, 'status.cloud', clouds);
    assertEnum(schema, 'status.conditions[].status', conditionStatuses);
  });

  it('describes every field', () => {
    assertDescribed(schema);
  });
});
