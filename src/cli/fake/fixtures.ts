// Fixture builders for the plugin's unit tests: WorkloadIdentities with the status the operator writes, and pods as
// the webhooks leave them.
import type { V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import type { Condition, WorkloadIdentity, WorkloadIdentityStatus } from '../../api/types.ts';

const T0 = '2026-01-01T10:00:00Z';

export function condition(type: string, status: Condition['status'], reason: string, message = `${type} ${reason}`, at = T0): Condition {
  return { type, status, reason, message, lastTransitionTime: at, observedGeneration: 1 };
}

const READY_STEPS = ['IdentityReady', 'TrustReady', 'PermissionsReady', 'ServiceAccountReady', 'Ready'];

/** A WorkloadIdentity of `bookstore`, Ready unless the conditions given replace some of its steps. */
export function aWorkloadIdentity(name: string, status: WorkloadIdentityStatus = {}, overrides: Condition[] = []): WorkloadIdentity {
  const conditions = READY_STEPS.map((t) => overrides.find((c) => c.type === t) ?? condition(t, 'True', t === 'Ready' ? 'Ready' : 'Created'));
  conditions.push(...overrides.filter((c) => !READY_STEPS.includes(c.type)));
  return {
    apiVersion: 'keyless.dev/v1alpha1',
    kind: 'WorkloadIdentity',
    metadata: { name, namespace: 'bookstore', generation: 1 },
    spec: { serviceAccountName: `${name}-sa`, cloudAccountRef: { name: 'prod-aws' }, aws: {} },
    status: { observedGeneration: 1, conditions, ...status },
  };
}

export const IRSA_STATUS: WorkloadIdentityStatus = {
  cloud: 'aws',
  mechanism: 'IRSA',
  identity: 'arn:aws:iam::111122223333:role/keyless/keyless-bookstore-catalog-1a2b3c4d',
  subject: 'system:serviceaccount:bookstore:catalog-sa',
  issuer: 'https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE',
  audience: 'sts.amazonaws.com',
  aws: { roleArn: 'arn:aws:iam::111122223333:role/keyless/keyless-bookstore-catalog-1a2b3c4d', roleName: 'keyless-bookstore-catalog-1a2b3c4d' },
};

export const AZURE_STATUS: WorkloadIdentityStatus = {
  cloud: 'azure',
  mechanism: 'WorkloadIdentity',
  identity: '00000000-0000-0000-0000-0000000000d4',
  subject: 'system:serviceaccount:bookstore:catalog-sa',
  audience: 'api://AzureADTokenExchange',
  azure: { clientId: '00000000-0000-0000-0000-0000000000d4', tenantId: '00000000-0000-0000-0000-0000000000b2' },
};

/** A ServiceAccount whose `annotations` were set by `manager` at `at`. */
export function aServiceAccount(name: string, annotations: Record<string, string> = {}, at = T0, manager = 'keyless-aws'): V1ServiceAccount {
  const fields = Object.fromEntries(Object.keys(annotations).map((k) => [`f:${k}`, {}]));
  return {
    metadata: {
      name,
      namespace: 'bookstore',
      annotations,
      managedFields: Object.keys(annotations).length ? [{ manager, operation: 'Apply', time: new Date(at), fieldsV1: { 'f:metadata': { 'f:annotations': fields } } }] : [],
    },
  };
}

/** A running pod of a Deployment's ReplicaSet, created at `at`, with what a webhook injected. */
export function aPod(name: string, opts: { sa?: string; at?: string; env?: Record<string, string>; labels?: Record<string, string>; tokenVolume?: { name: string; mountPath: string; audience: string }; hostNetwork?: boolean } = {}): V1Pod {
  const volume = opts.tokenVolume;
  return {
    metadata: {
      name,
      namespace: 'bookstore',
      creationTimestamp: new Date(opts.at ?? T0),
      labels: { app: 'catalog', 'pod-template-hash': '7d9f4', ...opts.labels },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'catalog-7d9f4', uid: 'rs', controller: true }],
    },
    spec: {
      serviceAccountName: opts.sa ?? 'catalog-sa',
      ...(opts.hostNetwork ? { hostNetwork: true } : {}),
      containers: [
        {
          name: 'app',
          image: 'app',
          env: Object.entries(opts.env ?? {}).map(([n, value]) => ({ name: n, value })),
          ...(volume ? { volumeMounts: [{ name: volume.name, mountPath: volume.mountPath, readOnly: true }] } : {}),
        },
      ],
      ...(volume ? { volumes: [{ name: volume.name, projected: { sources: [{ serviceAccountToken: { audience: volume.audience, expirationSeconds: 86400, path: 'token' } }] } }] } : {}),
    },
    status: { phase: 'Running' },
  };
}
