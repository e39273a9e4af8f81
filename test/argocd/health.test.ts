// The Argo CD health checks in config/argocd/health-checks.yaml, run under the real lua5.1 against a table of
// WorkloadIdentity and CloudAccount status fixtures, including statuses built by the reconciler's own condition
// code.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { REASON, type Reason } from '../../src/api/constants.ts';
import type { Condition } from '../../src/api/types.ts';
import { mergeConditions } from '../../src/domain/conditions.ts';
import { workloadIdentityConditions } from '../../src/reconciler/workload-identity/conditions.ts';
import { ARGO_HEALTH_STATUSES, runHealthCheck, toLuaLiteral, type HealthResult } from './lua.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FILE = path.join(root, 'config/argocd/health-checks.yaml');
const WI_KEY = 'resource.customizations.health.keyless.dev_WorkloadIdentity';
const CA_KEY = 'resource.customizations.health.keyless.dev_CloudAccount';

const configMap = parse(readFileSync(FILE, 'utf8')) as { kind: string; metadata: { name: string; namespace: string }; data: Record<string, string> };
const scripts = { WorkloadIdentity: configMap.data[WI_KEY] ?? '', CloudAccount: configMap.data[CA_KEY] ?? '' };

/** Reasons after which nothing converges until a person changes something: Argo CD shows these as Degraded. */
const TERMINAL = ['InvalidSpec', 'CloudRejected', 'CloudMismatch', 'Conflict', 'NotOwned', 'QuotaExceeded', 'GuardrailViolation', 'NamespaceNotAllowed', 'AnnotationConflict', 'GrantsNothing'];

const condition = (type: string, status: Condition['status'], reason: string, message: string, observedGeneration?: number): Condition => ({
  type,
  status,
  reason,
  message,
  ...(observedGeneration === undefined ? {} : { observedGeneration }),
  lastTransitionTime: '2026-01-01T00:00:00Z',
});

interface ObjectOptions {
  generation?: number;
  status?: Record<string, unknown>;
  deletionTimestamp?: string;
}

const workloadIdentity = (o: ObjectOptions = {}) => ({
  apiVersion: 'keyless.dev/v1alpha1',
  kind: 'WorkloadIdentity',
  metadata: {
    name: 'catalog',
    namespace: 'bookstore',
    generation: o.generation ?? 1,
    ...(o.deletionTimestamp ? { deletionTimestamp: o.deletionTimestamp, finalizers: ['keyless.dev/revoke'] } : {}),
  },
  spec: { serviceAccountName: 'catalog-sa', cloudAccountRef: { name: 'prod-aws' }, aws: { policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::books/*'] }] } },
  ...(o.status ? { status: o.status } : {}),
});

const cloudAccount = (o: ObjectOptions = {}) => ({
  apiVersion: 'keyless.dev/v1alpha1',
  kind: 'CloudAccount',
  metadata: { name: 'prod-aws', generation: o.generation ?? 1, ...(o.deletionTimestamp ? { deletionTimestamp: o.deletionTimestamp } : {}) },
  spec: { aws: { accountId: '123456789012', region: 'us-east-1' } },
  ...(o.status ? { status: o.status } : {}),
});

/** A WorkloadIdentity status whose Ready condition has `reason`, as the reconciler's condition code writes it. */
function reconcilerStatus(generation: number, ready: { ok: true; message: string } | { ok: false; reason: Reason; message: string }) {
  const conditions = workloadIdentityConditions(
    ready.ok
      ? {
          steps: {
            identity: { ok: true, reason: REASON.UpToDate, message: 'IAM role arn:aws:iam::123456789012:role/keyless/r exists' },
            trust: { ok: true, reason: REASON.UpToDate, message: 'trusted' },
            permissions: { ok: true, reason: REASON.UpToDate, message: 'granted' },
          },
          serviceAccount: { ok: true, reason: REASON.Annotated, message: 'annotated' },
          readyMessage: ready.message,
        }
      : { steps: {}, blocked: { reason: ready.reason, message: ready.message }, readyMessage: '' },
  );
  return { observedGeneration: generation, subject: 'system:serviceaccount:bookstore:catalog-sa', conditions: mergeConditions(undefined, conditions, generation, new Date('2026-01-01T00:00:00Z')) };
}

const readyOnly = (status: Condition['status'], reason: string, message: string, observedGeneration: number) => ({
  observedGeneration,
  conditions: [condition('Ready', status, reason, message, observedGeneration)],
});

interface Fixture {
  name: string;
  kind: keyof typeof scripts;
  obj: unknown;
  status: (typeof ARGO_HEALTH_STATUSES)[number];
  message?: RegExp;
}

const READY_MESSAGE = 'Pods using ServiceAccount bookstore/catalog-sa can use arn:aws:iam::123456789012:role/keyless/r';

const fixtures: Fixture[] = [
  { name: 'a WorkloadIdentity with no status yet', kind: 'WorkloadIdentity', obj: workloadIdentity(), status: 'Progressing', message: /Waiting for Keyless/ },
  { name: 'a status without conditions', kind: 'WorkloadIdentity', obj: workloadIdentity({ status: { observedGeneration: 1 } }), status: 'Progressing', message: /Ready condition/ },
  {
    name: 'Ready=True for the current generation, as the reconciler writes it',
    kind: 'WorkloadIdentity',
    obj: workloadIdentity({ generation: 3, status: reconcilerStatus(3, { ok: true, message: READY_MESSAGE }) }),
    status: 'Healthy',
    message: new RegExp(`^${READY_MESSAGE}`),
  },
  {
    name: 'Ready=True for an older generation (the spec changed since)',
    kind: 'WorkloadIdentity',
    obj: workloadIdentity({ generation: 4, status: reconcilerStatus(3, { ok: true, message: READY_MESSAGE }) }),
    status: 'Progressing',
    message: /generation 4 \(the status describes generation 3\)/,
  },
  {
    name: 'a terminal reason for an older generation (the user just pushed a fix)',
    kind: 'WorkloadIdentity',
    obj: workloadIdentity({ generation: 2, status: reconcilerStatus(1, { ok: false, reason: REASON.InvalidSpec, message: 'Invalid spec: too long.' }) }),
    status: 'Progressing',
  },
  {
    name: 'Ready without observedGeneration on the condition falls back to status.observedGeneration',
    kind: 'WorkloadIdentity',
    obj: workloadIdentity({ generation: 2, status: { observedGeneration: 2, conditions: [condition('Ready', 'True', 'Ready', READY_MESSAGE)] } }),
    status: 'Healthy',
  },
  {
    name: 'Ready=True with no observedGeneration anywhere',
    kind: 'WorkloadIdentity',
    obj: workloadIdentity({ generation: 2, status: { conditions: [condition('Ready', 'True', 'Ready', READY_MESSAGE)] } }),
    status: 'Progressing',
    message: /^Waiting for Keyless to reconcile generation 2$/,
  },
  ...TERMINAL.map(
    (reason): Fixture => ({
      name: `terminal reason ${reason}`,
      kind: 'WorkloadIdentity',
      obj: workloadIdentity({ generation: 2, status: readyOnly('False', reason, `what went wrong with ${reason} and the fix`, 2) }),
      status: 'Degraded',
      message: new RegExp(`^${reason}: what went wrong with ${reason} and the fix$`),
    }),
  ),
  {
    name: 'Conflict as the reconciler writes it, with the other WorkloadIdentity named',
    kind: 'WorkloadIdentity',
    obj: workloadIdentity({ status: reconcilerStatus(1, { ok: false, reason: REASON.Conflict, message: 'WorkloadIdentity bookstore/catalog already gives ServiceAccount catalog-sa a aws identity.' }) }),
    status: 'Degraded',
    message: /^Conflict: WorkloadIdentity bookstore\/catalog already gives/,
  },
  ...(['Reconciling', 'CloudError', 'Throttled'] as const).map(
    (reason): Fixture => ({
      name: `transient reason ${reason}`,
      kind: 'WorkloadIdentity',
      obj: workloadIdentity({ status: reconcilerStatus(1, { ok: false, reason, message: 'Provisioning; the cloud asked us to retry (Throttling). Keyless retries with backoff.' }) }),
      status: 'Progressing',
      message: new RegExp(`^${reason}: Provisioning`),
    }),
  ),
  {
    name: 'waiting for the ServiceAccount',
    kind: 'WorkloadIdentity',
    obj: workloadIdentity({ status: readyOnly('False', 'ServiceAccountNotFound', 'ServiceAccount bookstore/catalog-sa does not exist yet.', 1) }),
    status: 'Progressing',
    message: /^ServiceAccountNotFound: /,
  },
  {
    name: 'waiting for the CloudAccount',
    kind: 'WorkloadIdentity',
    obj: workloadIdentity({ status: readyOnly('False', 'CloudAccountNotReady', 'CloudAccount "prod-aws" is not ready: no IAM OIDC provider', 1) }),
    status: 'Progressing',
  },
  {
    name: 'Ready=Unknown',
    kind: 'WorkloadIdentity',
    obj: workloadIdentity({ status: readyOnly('Unknown', 'Pending', 'Not attempted', 1) }),
    status: 'Progressing',
  },
  {
    name: 'deleting while the cloud confirms',
    kind: 'WorkloadIdentity',
    obj: workloadIdentity({ deletionTimestamp: '2026-01-01T00:00:00Z', status: readyOnly('False', 'Deleting', 'Deleting IAM role arn:aws:iam::123456789012:role/keyless/r; waiting for IAM to confirm', 1) }),
    status: 'Progressing',
    message: /^Deleting; Deleting: Deleting IAM role/,
  },
  {
    name: 'deleting after its CloudAccount was deleted (the finalizer waits)',
    kind: 'WorkloadIdentity',
    obj: workloadIdentity({ deletionTimestamp: '2026-01-01T00:00:00Z', status: readyOnly('False', 'CloudAccountNotFound', 'Cannot revoke: CloudAccount "prod-aws" does not exist. Recreate it, or set spec.deletionPolicy: Orphan.', 1) }),
    status: 'Progressing',
    message: /CloudAccountNotFound: Cannot revoke/,
  },
  {
    name: 'deleting while still Ready',
    kind: 'WorkloadIdentity',
    obj: workloadIdentity({ deletionTimestamp: '2026-01-01T00:00:00Z', status: reconcilerStatus(1, { ok: true, message: READY_MESSAGE }) }),
    status: 'Progressing',
    message: /revoking/,
  },
  {
    name: 'a message with quotes, backslashes, newlines and non-ASCII text',
    kind: 'WorkloadIdentity',
    obj: workloadIdentity({ status: readyOnly('False', 'CloudRejected', 'IAM said "no" \\ twice\nthen — nein', 1) }),
    status: 'Degraded',
    message: /^CloudRejected: IAM said "no" \\ twice\\nthen — nein$/,
  },

  { name: 'a CloudAccount with no status yet', kind: 'CloudAccount', obj: cloudAccount(), status: 'Progressing', message: /Waiting for Keyless/ },
  {
    name: 'a CloudAccount that trusts the issuer',
    kind: 'CloudAccount',
    obj: cloudAccount({ generation: 2, status: { ...readyOnly('True', 'Ready', 'Issuer https://oidc.example is trusted', 2), issuer: 'https://oidc.example' } }),
    status: 'Healthy',
    message: /^Issuer https:\/\/oidc.example is trusted$/,
  },
  {
    name: 'a CloudAccount without the IAM OIDC provider (the platform team creates it; no spec change needed)',
    kind: 'CloudAccount',
    obj: cloudAccount({ status: readyOnly('False', 'OIDCProviderNotFound', 'AWS account 123456789012 has no IAM OIDC identity provider. Create it: aws iam create-open-id-connect-provider --url https://oidc.example --client-id-list sts.amazonaws.com', 1) }),
    status: 'Progressing',
    message: /create-open-id-connect-provider/,
  },
  {
    name: 'a CloudAccount whose issuer cannot be found',
    kind: 'CloudAccount',
    obj: cloudAccount({ status: readyOnly('False', 'IssuerNotFound', 'EKS cluster x was not found', 1) }),
    status: 'Progressing',
  },
  { name: 'a CloudAccount with an invalid spec', kind: 'CloudAccount', obj: cloudAccount({ status: readyOnly('False', 'InvalidSpec', 'gcp is not supported', 1) }), status: 'Degraded', message: /^InvalidSpec: / },
  {
    name: 'a CloudAccount the cloud refuses to check (the operator lacks permissions)',
    kind: 'CloudAccount',
    obj: cloudAccount({ status: readyOnly('False', 'CloudRejected', 'AccessDenied. Check the operator\'s own cloud permissions for this account.', 1) }),
    status: 'Degraded',
  },
  {
    name: 'a CloudAccount whose status describes an older generation',
    kind: 'CloudAccount',
    obj: cloudAccount({ generation: 5, status: readyOnly('True', 'Ready', 'trusted', 4) }),
    status: 'Progressing',
    message: /generation 5/,
  },
  { name: 'a CloudAccount being deleted', kind: 'CloudAccount', obj: cloudAccount({ deletionTimestamp: '2026-01-01T00:00:00Z', status: readyOnly('True', 'Ready', 'trusted', 1) }), status: 'Progressing' },
];

/** The shape Argo CD accepts: a table with a known status and, optionally, a string message — nothing else. */
function assertArgoShape(result: HealthResult): void {
  assert.equal(result.type, 'table', 'the script returns a table');
  for (const key of Object.keys(result.fields)) assert.ok(key === 'status' || key === 'message', `unexpected field hs.${key}`);
  assert.equal(result.fields['status']?.type, 'string', 'hs.status is a string');
  assert.ok((ARGO_HEALTH_STATUSES as readonly string[]).includes(result.fields['status']?.value ?? ''), `hs.status ${result.fields['status']?.value} is one Argo CD knows`);
  const message = result.fields['message'];
  if (message) assert.equal(message.type, 'string', 'hs.message is a string');
}

describe('Argo CD health checks', () => {
  it('ship as the argocd-cm keys Argo CD reads, one per kind', () => {
    assert.equal(configMap.kind, 'ConfigMap');
    assert.equal(configMap.metadata.name, 'argocd-cm');
    assert.deepEqual(Object.keys(configMap.data).sort(), [CA_KEY, WI_KEY]);
  });

  for (const f of fixtures) {
    it(`${f.kind}: ${f.name} is ${f.status}`, async () => {
      const result = await runHealthCheck(scripts[f.kind], f.obj);
      assertArgoShape(result);
      assert.equal(result.fields['status']?.value, f.status, `hs.message was: ${result.fields['message']?.value}`);
      if (f.message) assert.match(result.fields['message']?.value ?? '', f.message);
    });
  }

  it('classify every reason Keyless defines: terminal ones Degraded, all others Progressing', async () => {
    for (const [kind, build] of [['WorkloadIdentity', workloadIdentity], ['CloudAccount', cloudAccount]] as const) {
      for (const reason of Object.values(REASON)) {
        const result = await runHealthCheck(scripts[kind], build({ status: readyOnly('False', reason, 'm', 1) }));
        assertArgoShape(result);
        const expected = TERMINAL.includes(reason) ? 'Degraded' : 'Progressing';
        assert.equal(result.fields['status']?.value, expected, `${kind} with Ready=False reason ${reason}`);
      }
    }
  });

  it('name only reasons that exist or are announced (guardrails), so a typo cannot hide a terminal failure', () => {
    const known = new Set<string>([...Object.values(REASON), 'GuardrailViolation', 'NamespaceNotAllowed']);
    for (const [kind, script] of Object.entries(scripts)) {
      const table = /local terminal = \{([^}]*)\}/.exec(script)?.[1] ?? '';
      const named = [...table.matchAll(/(\w+) = true/g)].map((m) => m[1] ?? '');
      assert.deepEqual(named.sort(), [...TERMINAL].sort(), `${kind}'s terminal reasons`);
      for (const reason of named) assert.ok(known.has(reason), `${kind} names unknown reason ${reason}`);
    }
  });

  it('fail under lua5.1 when a script uses the string library Argo CD does not load', async () => {
    await assert.rejects(runHealthCheck('local hs = {}\nhs.status = string.lower("HEALTHY")\nreturn hs', {}), /runtime error/);
    await assert.rejects(runHealthCheck('local hs = {}\nhs.status = ("x"):upper()\nreturn hs', {}), /runtime error/);
  });

  it('hand the object to Lua exactly (JSON to Lua table literal)', async () => {
    const tricky = { s: 'a"b\\c\n\u00e9', n: 3, f: 1.5, t: true, list: [1, 'two', { three: 3 }], skip: null };
    assert.equal(toLuaLiteral({ a: [1] }), '{["a"] = {1}}');
    const echo = 'local hs = {}\nhs.status = "Healthy"\nhs.message = obj.s .. "|" .. tostring(obj.n + obj.f) .. "|" .. tostring(obj.t) .. "|" .. obj.list[2] .. tostring(obj.list[3].three) .. "|" .. tostring(obj.skip) .. "|" .. tostring(#obj.list)\nreturn hs';
    const result = await runHealthCheck(echo, tricky);
    assert.equal(result.fields['message']?.value, 'a"b\\c\\n\u00e9|4.5|true|two3|nil|3');
  });
});
