// helm install, upgrade and uninstall of charts/keyless with the real Helm against the real control plane, into a
// throwaway namespace: what lands is what config/ would have created, a changed value lands on upgrade, and uninstall
// leaves the CRDs and the users' objects. The operator image cannot run here, so this tests the objects, not the pods.
// Each release is named keyless-<random>: its cluster-scoped objects never meet another test's.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Deployment } from '@kubernetes/client-node';
import { freshNamespace, kubeConfig, kubeconfigPath, kubectl, kubectlApply } from '../support/cluster.ts';
import { CHART, helm, objectKey, parseObjects, renderKustomize, type HelmResult, type KubeObject } from '../support/helm.ts';
import { objectDifferences } from '../support/object-diff.ts';

const CRDS = ['workloadidentities.keyless.dev', 'cloudaccounts.keyless.dev'];

/** An object of config/ as it would be for `release` in `namespace`: the chart names objects after the release. */
function asRelease(o: KubeObject, release: string, namespace: string): KubeObject {
  const json = JSON.stringify(o)
    .replaceAll('system:serviceaccount:keyless-system:keyless-operator', `system:serviceaccount:${namespace}:${release}-operator`)
    .replace(/"keyless-(system|operator|operator-metrics|leader-election|verification|verification-tokens)"/g, (_, name: string) =>
      JSON.stringify(name === 'system' ? namespace : `${release}-${name}`),
    );
  return JSON.parse(json) as KubeObject;
}

/** The object as stored in the cluster, or undefined when there is none. */
async function live(o: { kind: string; metadata: { name: string; namespace?: string } }): Promise<KubeObject | undefined> {
  const args = ['get', o.kind, o.metadata.name, '--ignore-not-found', '-o', 'json', ...(o.metadata.namespace ? ['-n', o.metadata.namespace] : [])];
  const { stdout } = await kubectl(args);
  return stdout.trim() ? (JSON.parse(stdout) as KubeObject) : undefined;
}

/** What differs between what config/ sets and what is stored; the API server's defaults and Helm's labels aside. */
async function landed(expected: KubeObject[]): Promise<string[]> {
  const problems: string[] = [];
  for (const o of expected) {
    const stored = await live(o);
    if (!stored) problems.push(`${objectKey(o)}: not in the cluster`);
    else problems.push(...objectDifferences(o, stored, { names: ['config/', 'the cluster'], subset: true }).map((d) => `${objectKey(o)}: ${d}`));
  }
  return problems;
}

/**
 * Deletes the keyless.dev CRDs, so that this test sees Helm install them. Only when no WorkloadIdentity or
 * CloudAccount exists: deleting a CRD deletes its objects, and another test's would be lost.
 */
async function withoutCrds(): Promise<void> {
  const existing = await Promise.all(
    ['workloadidentities.keyless.dev', 'cloudaccounts.keyless.dev'].map(async (resource) => {
      try {
        return (await kubectl(['get', resource, '-A', '-o', 'name'])).stdout.trim();
      } catch {
        return ''; // no such resource type: the CRD is not installed
      }
    }),
  );
  const objects = existing.filter(Boolean).join('\n');
  assert.equal(objects, '', 'no keyless.dev object is left in the cluster by another test, so the CRDs can be deleted and installed by Helm');
  await kubectl(['delete', 'crd', ...CRDS, '--ignore-not-found', '--wait', '--timeout=60s']);
}

describe('helm install, upgrade and uninstall', () => {
  let kc: KubeConfig;
  let ns: string;
  let dropNamespace: () => Promise<void>;
  const run = (args: string[], values?: object) => helm([...args, '--namespace', ns], { kubeconfig: kubeconfigPath(), ...(values ? { values } : {}) });
  const manifest = async (name: string) => parseObjects((await run(['get', 'manifest', name])).stdout);
  const uninstall = (name: string) => run(['uninstall', name, '--ignore-not-found', '--wait', '--timeout', '60s']);
  const crdsEstablished = () => kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...CRDS.map((c) => `crd/${c}`)]);

  /** Installs a release of its own for `check`, and uninstalls it whatever happens. */
  const withRelease = async (values: object | undefined, check: (name: string, installed: HelmResult) => Promise<void>) => {
    const name = `keyless-${randomBytes(3).toString('hex')}`;
    try {
      await check(name, await run(['install', name, CHART], values));
    } finally {
      await uninstall(name);
    }
  };

  before(async () => {
    kc = kubeConfig();
    // Labelled as config/manager/namespace.yaml labels keyless-system (restricted Pod Security), as docs/install.md
    // tells a Helm user to.
    [ns, dropNamespace] = await freshNamespace(kc, 'chart');
    const namespace = (await renderKustomize('config/default')).find((o) => o.kind === 'Namespace');
    await kc.makeApiClient(CoreV1Api).patchNamespace(
      { name: ns, body: { metadata: { labels: namespace?.metadata.labels } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  });

  after(async () => {
    await dropNamespace();
  });

  it('installs what config/default creates, without a Pod Security warning', async () => {
    await withRelease(undefined, async (name, { stderr }) => {
      assert.doesNotMatch(stderr, /PodSecurity|would violate/);
      const expected = (await renderKustomize('config/default'))
        .filter((o) => o.kind !== 'Namespace' && o.kind !== 'CustomResourceDefinition')
        .map((o) => asRelease(o, name, ns));
      assert.deepEqual((await manifest(name)).map(objectKey).sort(), expected.map(objectKey).sort());
      assert.deepEqual(await landed(expected), []);
    });
  });

  it('installs the CRDs of crds/ from the chart’s crds/, outside the release', async () => {
    await withoutCrds();
    await withRelease(undefined, async (name) => {
      await crdsEstablished();
      assert.deepEqual(await landed(await renderKustomize('crds')), []);
      for (const crd of CRDS) {
        const stored = await live({ kind: 'CustomResourceDefinition', metadata: { name: crd } });
        assert.equal(stored?.metadata.annotations?.['meta.helm.sh/release-name'], undefined, `${crd} is not owned by the release`);
      }
      assert.ok(!(await manifest(name)).some((o) => o.kind === 'CustomResourceDefinition'), 'no CRD in the release manifest');
    });
  });

  it('upgrade lands a changed value and turns verification on as config/verification does', async () => {
    await withRelease(undefined, async (name) => {
      await run(['upgrade', name, CHART, '--reuse-values', '--set', 'logLevel=debug', '--set', 'resources.limits.memory=512Mi', '--set', 'verification.enabled=true']);
      const deployment = (await live({ kind: 'Deployment', metadata: { name: `${name}-operator`, namespace: ns } })) as unknown as V1Deployment;
      const operator = deployment.spec?.template.spec?.containers[0];
      assert.deepEqual(
        operator?.env?.filter((e) => e.name.startsWith('KEYLESS_')),
        [{ name: 'KEYLESS_LOG_LEVEL', value: 'debug' }],
      );
      assert.equal(operator?.resources?.limits?.['memory'], '512Mi');
      assert.equal(deployment.metadata?.generation, 2);
      const verification = (await renderKustomize('config/verification')).map((o) => asRelease(o, name, ns));
      assert.deepEqual(await landed(verification), []);
    });
  });

  it('uninstall removes the release and leaves the CRDs and the WorkloadIdentities created meanwhile', async () => {
    await withoutCrds();
    const identity = { kind: 'WorkloadIdentity', metadata: { name: 'catalog', namespace: ns } };
    try {
      await withRelease({ verification: { enabled: true } }, async (name) => {
        const installed = await manifest(name);
        await crdsEstablished();
        await kubectlApply({
          apiVersion: 'keyless.dev/v1alpha1',
          ...identity,
          spec: { serviceAccountName: 'catalog-sa', cloudAccountRef: { name: 'prod-aws' }, aws: { policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::your-org-book-covers/*'] }] } },
        });
        const created = await live(identity);
        await uninstall(name);

        const left = [];
        for (const o of installed) if (await live(o)) left.push(objectKey(o));
        assert.deepEqual(left, [], 'every object of the release is gone');
        for (const crd of CRDS) assert.ok(await live({ kind: 'CustomResourceDefinition', metadata: { name: crd } }), `${crd} is still installed`);
        assert.equal((await live(identity))?.metadata.uid, created?.metadata.uid, 'the WorkloadIdentity created before uninstall is still there');
      });
    } finally {
      await kubectl(['delete', 'workloadidentity', 'catalog', '-n', ns, '--ignore-not-found']);
    }
  });
});
