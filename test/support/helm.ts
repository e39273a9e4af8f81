// The real Helm (bin/helm, built by hack/helm.sh) and the kustomize of the control plane's kubectl, for the chart's
// tests: both installs rendered as objects, and helm commands against the test cluster.
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHART = path.join(root, 'charts/keyless');

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface HelmResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs bin/helm with its cache, config and data in .test/helm (nothing from the user's own Helm setup), against the
 * cluster of `kubeconfig` when given. `values` go in as a values file on stdin.
 */
export async function helm(args: string[], opts: { kubeconfig?: string; values?: object } = {}): Promise<HelmResult> {
  const home = path.join(root, '.test', 'helm');
  mkdirSync(home, { recursive: true });
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    HOME: home,
    HELM_CACHE_HOME: path.join(home, 'cache'),
    HELM_CONFIG_HOME: path.join(home, 'config'),
    HELM_DATA_HOME: path.join(home, 'data'),
  };
  if (opts.kubeconfig) env['KUBECONFIG'] = opts.kubeconfig;
  const child = promisify(execFile)(path.join(root, 'bin/helm'), [...args, ...(opts.values ? ['--values', '-'] : [])], { env, timeout: 120_000 });
  child.child.stdin?.end(opts.values ? JSON.stringify(opts.values) : undefined);
  return child;
}

/** Every object in a multi-document YAML stream, empty documents left out. */
export function parseObjects(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

/** `helm template` of charts/keyless: the objects a release named `release` in `namespace` would create. */
export async function renderChart(opts: { release?: string; namespace?: string; values?: object; valuesFiles?: string[]; includeCrds?: boolean } = {}): Promise<KubeObject[]> {
  const args = ['template', opts.release ?? 'keyless', CHART, '--namespace', opts.namespace ?? 'keyless-system'];
  if (opts.includeCrds) args.push('--include-crds');
  for (const file of opts.valuesFiles ?? []) args.push('--values', file);
  return parseObjects((await helm(args, opts.values ? { values: opts.values } : {})).stdout);
}

/** The objects `kubectl apply -k` of each config/ directory would create, e.g. renderKustomize('config/default'). */
export async function renderKustomize(...dirs: string[]): Promise<KubeObject[]> {
  const run = promisify(execFile);
  const rendered = await Promise.all(dirs.map((dir) => run(path.join(root, 'bin/kubectl'), ['kustomize', path.join(root, dir)])));
  return rendered.flatMap(({ stdout }) => parseObjects(stdout));
}

/** `Kind/namespace/name`, or `Kind/name` for a cluster-scoped object. */
export function objectKey(o: KubeObject): string {
  return [o.kind, o.metadata.namespace, o.metadata.name].filter(Boolean).join('/');
}

/** The labels Helm's chart adds to every object on top of config/'s (templates/_helpers.tpl, keyless.labels). */
export const HELM_LABELS = ['app.kubernetes.io/instance', 'app.kubernetes.io/version', 'app.kubernetes.io/managed-by', 'helm.sh/chart'];

/** The object without Helm's own labels: what it must equal in config/. */
export function withoutHelmLabels(o: KubeObject): KubeObject {
  if (!o.metadata.labels) return o;
  const labels = Object.fromEntries(Object.entries(o.metadata.labels).filter(([k]) => !HELM_LABELS.includes(k)));
  return { ...o, metadata: { ...o.metadata, labels } };
}

/** Every path to a scalar, an empty map or an empty list in a values document: each value a user can set. */
export function valuePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length > 0) {
    return Object.entries(value).flatMap(([k, v]) => valuePaths(v, prefix ? `${prefix}.${k}` : k));
  }
  return [prefix];
}
