// Access to the real control plane that `make test` starts (hack/test.sh): a KubeConfig for
// @kubernetes/client-node, the matching kubectl, raw authenticated HTTPS for endpoints the generated clients do
// not cover, and throwaway namespaces.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { KubeApi } from '../../src/kube/api.ts';
import { connectionFromKubeconfig } from '../../src/kube/kubeconfig.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function kubeconfigPath(): string {
  const file = process.env['KEYLESS_TEST_KUBECONFIG'];
  if (!file) {
    throw new Error('KEYLESS_TEST_KUBECONFIG is not set: run the suites through `make test`, which starts the control plane');
  }
  return file;
}

export function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return kc;
}

/** The operator's own API client for the test cluster; `server` reaches it another way (a proxy on loopback). */
export function kubeApi(server?: string): KubeApi {
  const connection = connectionFromKubeconfig(kubeconfigPath());
  return new KubeApi(server ? { ...connection, server } : connection);
}

/** A KubeConfig for the same cluster that authenticates with a bearer token instead of the admin certificate. */
export function kubeConfigWithToken(admin: KubeConfig, token: string): KubeConfig {
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'token-user', token }],
    contexts: [{ name: 'token', cluster: cluster.name, user: 'token-user' }],
    currentContext: 'token',
  });
  return kc;
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
}

/** Runs the control plane's own kubectl (bin/kubectl, same Kubernetes version) against the test cluster. */
export async function kubectl(args: string[], input?: string): Promise<KubectlResult> {
  const run = promisify(execFile);
  const child = run(path.join(root, 'bin/kubectl'), ['--kubeconfig', kubeconfigPath(), ...args], { timeout: 120_000 });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  return child;
}

/** `kubectl apply` of these objects, as one multi-document input (JSON documents, one per line). */
export function kubectlApply(...objects: object[]): Promise<KubectlResult> {
  return kubectl(['apply', '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'));
}

/** GET on the apiserver with the kubeconfig's credentials; for discovery endpoints such as the OIDC documents. */
export async function rawGet(kc: KubeConfig, urlPath: string): Promise<{ status: number; body: string }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const options: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    https
      .get(new URL(urlPath, cluster.server), options, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** The issuer this cluster's ServiceAccount tokens carry, from its OIDC discovery document. */
export async function clusterIssuer(kc: KubeConfig): Promise<string> {
  return (JSON.parse((await rawGet(kc, '/.well-known/openid-configuration')).body) as { issuer: string }).issuer;
}

/** Creates a namespace with a random suffix; the returned function deletes it and waits until it is gone. */
export async function freshNamespace(kc: KubeConfig, prefix: string): Promise<[string, () => Promise<void>]> {
  const core = kc.makeApiClient(CoreV1Api);
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name } } });
  return [
    name,
    async () => {
      await core.deleteNamespace({ name });
      // Namespace deletion waits for finalizers (ours among them), so this also proves revocation finished.
      await kubectl(['wait', '--for=delete', `namespace/${name}`, '--timeout=120s']);
    },
  ];
}

/** Several fresh namespaces, one per prefix, and one function that deletes them all (in order). */
export async function freshNamespaces(kc: KubeConfig, ...prefixes: string[]): Promise<[string[], () => Promise<void>]> {
  const made: [string, () => Promise<void>][] = [];
  for (const prefix of prefixes) made.push(await freshNamespace(kc, prefix));
  return [
    made.map(([name]) => name),
    async () => {
      for (const [, drop] of made) await drop();
    },
  ];
}

/** Polls `check` until it returns a value other than undefined; gives up with `what` in the error after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The HTTP status of a failed client-node call (ApiException.code), or undefined for other errors. */
export function statusCode(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number' ? err.code : undefined;
}

/** An absolute path inside the repository, for kubectl arguments such as `-k crds` that must not depend on cwd. */
export function repoPath(relative: string): string {
  return path.join(root, relative);
}

/**
 * Installs (or updates) the keyless.dev CRDs from crds/ by server-side apply and waits until they are served.
 * Idempotent, so every suite that needs the CRDs calls it; they stay installed for the rest of the run.
 */
export async function installCrds(): Promise<void> {
  await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=keyless-tests', '-k', repoPath('crds')]);
  await kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/workloadidentities.keyless.dev',
    'crd/cloudaccounts.keyless.dev',
  ]);
}

/**
 * Resolves once CloudAccount `account` counts exactly the WorkloadIdentities that name it. The operator coalesces
 * that recount after identities come and go (src/reconciler/triggers.ts), so a test measuring steady state waits
 * for it first; otherwise the late recount lands in its window as a write.
 */
export async function identityCountSettled(account: string): Promise<void> {
  await eventually(`CloudAccount ${account} to count its identities`, async () => {
    const identities = JSON.parse((await kubectl(['get', 'workloadidentities', '-A', '-o', 'json'])).stdout) as { items: { spec: { cloudAccountRef: { name: string } } }[] };
    const counted = JSON.parse((await kubectl(['get', 'cloudaccount', account, '-o', 'json'])).stdout) as { status?: { identities?: number } };
    const expected = identities.items.filter((wi) => wi.spec.cloudAccountRef.name === account).length;
    return counted.status?.identities === expected ? true : undefined;
  });
}

