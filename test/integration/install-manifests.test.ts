// The install manifests in config/: what `kubectl apply -k config/default` (make deploy) would create, checked for
// least privilege and pod hardening, and accepted by a real API server in a server-side dry run; the samples are
// valid objects for the installed CRDs.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type V1ClusterRole,
  type V1ClusterRoleBinding,
  type V1Deployment,
  type V1Role,
  type V1RoleBinding,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { freshNamespace, installCrds, kubeConfig, kubectl, repoPath } from '../support/cluster.ts';

const operatorNamespace = 'keyless-system';

function parseAll(text: string): KubernetesObject[] {
  return parseAllDocuments(text).map((doc) => doc.toJS() as KubernetesObject);
}

function find<T extends KubernetesObject>(objects: KubernetesObject[], kind: string, name: string): T {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  assert.ok(found, `config/default renders ${kind} ${name}`);
  return found as T;
}

describe('install manifests (config/)', () => {
  let kc: KubeConfig;
  let rendered: string;
  let objects: KubernetesObject[];
  let ns: string;
  let dropNamespace: () => Promise<void>;

  before(async () => {
    kc = kubeConfig();
    rendered = (await kubectl(['kustomize', repoPath('config/default')])).stdout;
    objects = parseAll(rendered);
    // A throwaway namespace labelled like keyless-system, so the dry run below meets the same Pod Security level.
    [ns, dropNamespace] = await freshNamespace(kc, 'install');
    const { labels } = find(objects, 'Namespace', operatorNamespace).metadata ?? {};
    await kc.makeApiClient(CoreV1Api).patchNamespace(
      { name: ns, body: { metadata: { labels } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  });

  after(async () => {
    await dropNamespace();
  });

  it('renders the CRDs, the RBAC and the operator, with every namespaced object in keyless-system', () => {
    const names = objects.map((o) => `${o.kind}/${o.metadata?.name}`).sort();
    assert.deepEqual(names, [
      'ClusterRole/keyless-operator',
      'ClusterRoleBinding/keyless-operator',
      'CustomResourceDefinition/cloudaccounts.keyless.dev',
      'CustomResourceDefinition/workloadidentities.keyless.dev',
      'Deployment/keyless-operator',
      'Namespace/keyless-system',
      'Role/keyless-leader-election',
      'RoleBinding/keyless-leader-election',
      'Service/keyless-operator-metrics',
      'ServiceAccount/keyless-operator',
    ]);
    const namespaced = objects.filter((o) => !['ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'Namespace'].includes(o.kind ?? ''));
    assert.deepEqual(
      namespaced.filter((o) => o.metadata?.namespace !== operatorNamespace).map((o) => `${o.kind}/${o.metadata?.name}`),
      [],
    );
  });

  it('grants the operator nothing on Secrets and no wildcard', () => {
    const role = find<V1ClusterRole>(objects, 'ClusterRole', 'keyless-operator');
    const rules = role.rules ?? [];
    assert.ok(rules.length > 0);
    for (const rule of rules) {
      const words = [...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs, ...(rule.resourceNames ?? [])];
      assert.ok(!words.some((w) => w.includes('*')), `no wildcard in ${JSON.stringify(rule)}`);
      assert.ok(!(rule.resources ?? []).some((r) => r === 'secrets' || r.startsWith('secrets/')), `no secrets in ${JSON.stringify(rule)}`);
      assert.equal(rule.nonResourceURLs, undefined);
    }
  });

  it('binds the ClusterRole and the leader-election Role (Leases only) to the operator ServiceAccount', () => {
    const subject = [{ kind: 'ServiceAccount', name: 'keyless-operator', namespace: operatorNamespace }];
    assert.deepEqual(find<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding', 'keyless-operator').subjects, subject);
    assert.deepEqual(find<V1RoleBinding>(objects, 'RoleBinding', 'keyless-leader-election').subjects, subject);
    assert.deepEqual(find<V1Role>(objects, 'Role', 'keyless-leader-election').rules, [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
    ]);
  });

  it('runs the operator as non-root, read-only, without privilege escalation or capabilities', () => {
    const deployment = find<V1Deployment>(objects, 'Deployment', 'keyless-operator');
    const pod = deployment.spec?.template.spec;
    const container = pod?.containers[0];
    assert.equal(pod?.serviceAccountName, 'keyless-operator');
    assert.deepEqual(pod?.securityContext?.seccompProfile, { type: 'RuntimeDefault' });
    assert.deepEqual(
      {
        runAsNonRoot: container?.securityContext?.runAsNonRoot,
        runAsUser: container?.securityContext?.runAsUser,
        readOnlyRootFilesystem: container?.securityContext?.readOnlyRootFilesystem,
        allowPrivilegeEscalation: container?.securityContext?.allowPrivilegeEscalation,
        capabilities: container?.securityContext?.capabilities,
      },
      { runAsNonRoot: true, runAsUser: 65532, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
    );
    assert.deepEqual(container?.env?.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath ?? e.value]), [
      ['POD_NAMESPACE', 'metadata.namespace'],
      ['POD_NAME', 'metadata.name'],
      // The V8 heap sized for the memory limit (docs/benchmarks.md).
      ['NODE_OPTIONS', '--max-old-space-size=128 --max-semi-space-size=4'],
    ]);
  });

  it('is accepted by the API server in a server-side dry run, without Pod Security warnings', async () => {
    // The same manifests moved into a throwaway namespace: a dry run cannot create keyless-system for the objects
    // that live in it, and this suite must not create or change the real one on a shared cluster.
    const manifests = rendered.replaceAll(operatorNamespace, ns);
    const { stdout, stderr } = await kubectl(
      ['apply', '--server-side', '--force-conflicts', '--field-manager=keyless-tests', '--dry-run=server', '-f', '-'],
      manifests,
    );
    assert.equal(stdout.match(/serverside-applied \(server dry run\)/g)?.length, objects.length, stdout);
    assert.doesNotMatch(stderr, /PodSecurity/);
  });

  it('has samples the installed CRDs accept, every one of them', async () => {
    await installCrds();
    // Unique CloudAccount names and one namespace, so the dry run is independent of what else runs on the cluster.
    const suffix = randomBytes(3).toString('hex');
    const files = readdirSync(repoPath('config/samples')).filter((f) => f.endsWith('.yaml'));
    const samples = files
      .map((file) => readFileSync(repoPath(`config/samples/${file}`), 'utf8'))
      .join('\n---\n')
      .replace(/\b(local|prod)-(aws|gcp|azure)\b/g, (_, _env: string, cloud: string) => `install-${cloud}-${suffix}`)
      .replace(/\b(namespace: )(bookstore|shop)\b/g, `$1${ns}`);
    const docs = parseAll(samples).filter((o) => o.kind !== 'Namespace');
    assert.ok(docs.filter((o) => o.kind === 'CloudAccount').length >= 3, 'a CloudAccount sample per cloud');
    assert.ok(docs.filter((o) => o.kind === 'WorkloadIdentity').length >= 4, 'a WorkloadIdentity sample per mechanism');
    const { stdout } = await kubectl(
      ['apply', '--server-side', '--field-manager=keyless-tests', '--dry-run=server', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs }),
    );
    assert.equal(stdout.match(/serverside-applied \(server dry run\)/g)?.length, docs.length, stdout);
  });
});
