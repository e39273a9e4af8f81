// Proves the test control plane is a real Kubernetes API server with the behaviours operators depend on, used
// through the same clients the operator and its users use: @kubernetes/client-node and kubectl.
import assert from 'node:assert/strict';
import { createPublicKey, verify, type JsonWebKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  ApiextensionsV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  Watch,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import {
  eventually,
  freshNamespace,
  kubeConfig,
  kubeConfigWithToken,
  kubectl,
  rawGet,
  statusCode,
} from '../support/cluster.ts';

const group = 'conformance.keyless.dev';

interface Gadget extends KubernetesObject {
  spec?: { replicas: number; maxReplicas: number };
  status?: { phase?: string; conditions?: { type: string; status: string; reason: string; message: string; lastTransitionTime: string }[] };
}

// A CRD with a CEL rule, the status subresource and a printer column: the features Keyless's own CRDs use.
const gadgetCRD: V1CustomResourceDefinition = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `gadgets.${group}` },
  spec: {
    group,
    names: { kind: 'Gadget', plural: 'gadgets', singular: 'gadget', listKind: 'GadgetList' },
    scope: 'Namespaced',
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [{ name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' }],
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                required: ['replicas', 'maxReplicas'],
                properties: { replicas: { type: 'integer' }, maxReplicas: { type: 'integer' } },
                x_kubernetes_validations: [
                  { rule: 'self.replicas <= self.maxReplicas', message: 'replicas must not exceed maxReplicas' },
                ],
              },
              status: {
                type: 'object',
                properties: {
                  phase: { type: 'string' },
                  conditions: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: Object.fromEntries(
                        ['type', 'status', 'reason', 'message', 'lastTransitionTime'].map((f) => [f, { type: 'string' }]),
                      ),
                    },
                  },
                },
              },
            },
          },
        },
      },
    ],
  },
};

const gadget = (namespace: string, name: string, replicas: number, maxReplicas = 3): Gadget => ({
  apiVersion: `${group}/v1`,
  kind: 'Gadget',
  metadata: { name, namespace },
  spec: { replicas, maxReplicas },
});

describe('control plane conformance', () => {
  let kc: KubeConfig;
  let core: CoreV1Api;
  let objects: KubernetesObjectApi;
  let ns: string;
  let dropNamespace: () => Promise<void>;

  before(async () => {
    kc = kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    objects = KubernetesObjectApi.makeApiClient(kc);
    [ns, dropNamespace] = await freshNamespace(kc, 'conformance');
    const crds = kc.makeApiClient(ApiextensionsV1Api);
    await crds.createCustomResourceDefinition({ body: gadgetCRD }).catch((err: unknown) => {
      if (statusCode(err) !== 409) throw err;
    });
    await kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/gadgets.${group}`]);
  });

  after(async () => {
    await dropNamespace();
    await kc.makeApiClient(ApiextensionsV1Api).deleteCustomResourceDefinition({ name: `gadgets.${group}` });
  });

  it('rejects an object that breaks a CRD CEL rule with 422 and the rule message, and accepts a valid one', async () => {
    const err = await objects.create(gadget(ns, 'too-many', 5)).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(statusCode(err), 422);
    assert.match(String((err as { body?: unknown }).body), /replicas must not exceed maxReplicas/);
    const created = await objects.create(gadget(ns, 'fine', 2));
    assert.ok(created.metadata?.uid);
  });

  it('replays the DELETED event of an object deleted before a watch started at an older resourceVersion', async () => {
    const cm = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'short-lived' } } });
    const createdAt = cm.metadata?.resourceVersion;
    assert.ok(createdAt);
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'short-lived' });

    const seen: string[] = [];
    let abort: AbortController | undefined;
    const deleted = new Promise<void>((resolve, reject) => {
      new Watch(kc)
        .watch(
          `/api/v1/namespaces/${ns}/configmaps`,
          { resourceVersion: createdAt, fieldSelector: 'metadata.name=short-lived' },
          (phase: string) => {
            seen.push(phase);
            if (phase === 'DELETED') resolve();
          },
          (err: unknown) => (err ? reject(err as Error) : undefined),
        )
        .then((controller) => (abort = controller), reject);
    });
    await Promise.race([deleted, new Promise((_, reject) => setTimeout(() => reject(new Error(`saw only ${seen.join(',')}`)), 15_000))]);
    abort?.abort();
    assert.deepEqual(seen, ['DELETED']);
  });

  it('answers 409 Conflict to an update carrying a stale resourceVersion', async () => {
    const first = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'contended' }, data: { v: '1' } } });
    await core.replaceNamespacedConfigMap({ namespace: ns, name: 'contended', body: { ...first, data: { v: '2' } } });
    const err = await core
      .replaceNamespacedConfigMap({ namespace: ns, name: 'contended', body: { ...first, data: { v: '3' } } })
      .then(() => undefined, (e: unknown) => e);
    assert.equal(statusCode(err), 409);
  });

  it('keeps an object with a finalizer, marked with deletionTimestamp, until the finalizer is removed', async () => {
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'guarded', finalizers: [`${group}/hold`] } },
    });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'guarded' });
    const held = await core.readNamespacedConfigMap({ namespace: ns, name: 'guarded' });
    assert.ok(held.metadata?.deletionTimestamp, 'deletionTimestamp is set');
    assert.deepEqual(held.metadata?.finalizers, [`${group}/hold`]);

    await core.patchNamespacedConfigMap(
      { namespace: ns, name: 'guarded', body: [{ op: 'remove', path: '/metadata/finalizers' }] },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    const gone = await core.readNamespacedConfigMap({ namespace: ns, name: 'guarded' }).then(() => 200, statusCode);
    assert.equal(gone, 404);
  });

  it('separates spec and status through the status subresource, and bumps generation only on spec changes', async () => {
    const created = await objects.create(gadget(ns, 'split', 1));
    assert.equal(created.metadata?.generation, 1);

    // A write to the main resource ignores status...
    const afterSpec = await objects.patch(
      { ...gadget(ns, 'split', 2), status: { phase: 'Ignored' } },
      undefined, undefined, 'conformance', undefined, PatchStrategy.MergePatch,
    );
    assert.equal(afterSpec.metadata?.generation, 2);
    assert.equal(afterSpec.status, undefined);

    // ...a write to /status ignores spec and leaves generation alone...
    const statusPatched = await patchStatus(kc, ns, 'split', { spec: { replicas: 3, maxReplicas: 3 }, status: { phase: 'Running' } });
    assert.equal(statusPatched.status?.phase, 'Running');
    assert.equal(statusPatched.spec?.replicas, 2);
    assert.equal(statusPatched.metadata?.generation, 2);

    // ...and a metadata-only change does not bump generation either.
    const labelled = await objects.patch<Gadget>(
      { apiVersion: `${group}/v1`, kind: 'Gadget', metadata: { name: 'split', namespace: ns, labels: { tier: 'test' } } },
      undefined, undefined, 'conformance', undefined, PatchStrategy.MergePatch,
    );
    assert.equal(labelled.metadata?.generation, 2);
  });

  it('lets two server-side-apply field managers own different annotations of one ServiceAccount without conflict', async () => {
    const apply = (manager: string, annotations: Record<string, string>) =>
      core.patchNamespacedServiceAccount(
        {
          namespace: ns,
          name: 'shared',
          fieldManager: manager,
          body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'shared', namespace: ns, annotations } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      );
    await apply('gitops', { 'example.com/team': 'bookstore' });
    await apply('keyless', { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/x' });
    // The GitOps owner re-applies its own manifest: it must not remove the other manager's key.
    const final = await apply('gitops', { 'example.com/team': 'bookstore', 'example.com/tier': 'web' });
    assert.deepEqual(final.metadata?.annotations, {
      'example.com/team': 'bookstore',
      'example.com/tier': 'web',
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/x',
    });
    const managers = (final.metadata?.managedFields ?? []).map((m) => m.manager).sort();
    assert.deepEqual(managers, ['gitops', 'keyless']);
  });

  it('issues TokenRequest JWTs whose issuer, subject, audience and signature match the OIDC discovery documents', async () => {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'catalog-sa' } } });
    const tr = await core.createNamespacedServiceAccountToken({
      namespace: ns,
      name: 'catalog-sa',
      body: { spec: { audiences: ['sts.amazonaws.com'], expirationSeconds: 3600 } },
    });
    const token = tr.status?.token;
    assert.ok(token);

    const discovery = await rawGet(kc, '/.well-known/openid-configuration');
    assert.equal(discovery.status, 200);
    const { issuer, jwks_uri } = JSON.parse(discovery.body) as { issuer: string; jwks_uri: string };
    const jwks = await rawGet(kc, new URL(jwks_uri).pathname);
    assert.equal(jwks.status, 200);
    const { keys } = JSON.parse(jwks.body) as { keys: (JsonWebKey & { kid: string })[] };

    const [headerB64, payloadB64, signatureB64] = token.split('.') as [string, string, string];
    const header = JSON.parse(Buffer.from(headerB64, 'base64url').toString()) as { alg: string; kid: string };
    const claims = JSON.parse(Buffer.from(payloadB64, 'base64url').toString()) as { iss: string; sub: string; aud: string[] };
    assert.equal(header.alg, 'RS256');
    assert.equal(claims.iss, issuer);
    assert.equal(claims.sub, `system:serviceaccount:${ns}:catalog-sa`);
    assert.deepEqual(claims.aud, ['sts.amazonaws.com']);

    const jwk = keys.find((k) => k.kid === header.kid);
    assert.ok(jwk, `JWKS has the signing key ${header.kid}`);
    const valid = verify('RSA-SHA256', Buffer.from(`${headerB64}.${payloadB64}`), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(signatureB64, 'base64url'));
    assert.equal(valid, true);

    // The apiserver itself accepts the token for its own audience only: TokenReview with the STS audience passes.
    const review = await kc.makeApiClient(AuthenticationV1Api).createTokenReview({
      body: { spec: { token, audiences: ['sts.amazonaws.com'] } },
    });
    assert.equal(review.status?.authenticated, true);
    assert.equal(review.status?.user?.username, `system:serviceaccount:${ns}:catalog-sa`);
  });

  it('enforces RBAC: a ServiceAccount bound to a role without secrets access cannot list Secrets', async () => {
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const name = `conformance-${ns}`;
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'reader' } } });
    await rbac.createClusterRole({
      body: { metadata: { name }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }] },
    });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns }],
      },
    });
    try {
      const tr = await core.createNamespacedServiceAccountToken({ namespace: ns, name: 'reader', body: { spec: {} } });
      const asReader = kubeConfigWithToken(kc, tr.status?.token ?? '').makeApiClient(CoreV1Api);
      // RBAC bindings reach the authorizer's cache asynchronously, so wait for the allowed call to pass first.
      await eventually('the binding to take effect', async () => (await asReader.listNamespacedConfigMap({ namespace: ns })).items);
      const denied = await asReader.listNamespacedSecret({ namespace: ns }).then(() => 200, statusCode);
      assert.equal(denied, 403);
    } finally {
      await rbac.deleteClusterRoleBinding({ name });
      await rbac.deleteClusterRole({ name });
    }
  });

  it('runs the garbage collector: deleting an owner removes its dependents', async () => {
    const owner = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'owner' } } });
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'dependent', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata?.uid ?? '' }] } },
    });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'owner' });
    await eventually('the dependent to be collected', async () =>
      (await core.readNamespacedConfigMap({ namespace: ns, name: 'dependent' }).then(() => 200, statusCode)) === 404 ? true : undefined,
    );
  });

  it('runs namespace lifecycle: a deleted namespace is emptied and disappears', async () => {
    const [doomed] = await freshNamespace(kc, 'conformance-doomed');
    await core.createNamespacedConfigMap({ namespace: doomed, body: { metadata: { name: 'content' } } });
    await core.deleteNamespace({ name: doomed });
    await eventually('the namespace to be gone', async () => ((await core.readNamespace({ name: doomed }).then(() => 200, statusCode)) === 404 ? true : undefined), 60_000);
  });

  it('serves kubectl apply, get with printer columns, wait for a condition, and delete', async () => {
    const manifest = JSON.stringify(gadget(ns, 'from-kubectl', 1));
    const applied = await kubectl(['apply', '-f', '-'], manifest);
    assert.match(applied.stdout, /gadget\.conformance\.keyless\.dev\/from-kubectl created/);

    const table = await kubectl(['get', 'gadgets', '-n', ns, 'from-kubectl']);
    // A CRD's printer columns replace the default ones, so AGE appears only if the CRD declares it.
    assert.match(table.stdout, /^NAME\s+REPLICAS\n/);
    assert.match(table.stdout, /\nfrom-kubectl\s+1\n/);

    // kubectl wait blocks on a watch until something (here the test, standing in for an operator) sets Ready.
    const waiting = kubectl(['wait', '--for=condition=Ready', '--timeout=60s', '-n', ns, 'gadget/from-kubectl']);
    await patchStatus(kc, ns, 'from-kubectl', {
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'Converged', message: 'ok', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }],
      },
    });
    assert.match((await waiting).stdout, /condition met/);

    const deleted = await kubectl(['delete', '-n', ns, 'gadget/from-kubectl', '--wait=true']);
    assert.match(deleted.stdout, /deleted/);
    const gone = await kubectl(['get', '-n', ns, 'gadget/from-kubectl', '--ignore-not-found', '-o', 'name']);
    assert.equal(gone.stdout.trim(), '');
  });
});

/** Merge-patches the status subresource of a Gadget. */
async function patchStatus(kc: KubeConfig, namespace: string, name: string, body: Partial<Gadget>): Promise<Gadget> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return (await custom.patchNamespacedCustomObjectStatus(
    { group, version: 'v1', namespace, plural: 'gadgets', name, body },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )) as Gadget;
}
