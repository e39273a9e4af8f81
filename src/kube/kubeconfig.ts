// Where the API server is and how to authenticate to it, found the way kubectl and client-go find it: $KUBECONFIG
// (the first file that exists), else ~/.kube/config, else the in-cluster ServiceAccount. Only what an operator needs:
// client certificates, bearer tokens (inline, from a file, or from an exec credential plugin), a CA, and
// insecure-skip-tls-verify for development clusters. Legacy auth-provider plugins are refused with a clear message.
// https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { load as parseYaml } from 'js-yaml';

const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Bound ServiceAccount tokens are rotated by the kubelet; client-go re-reads the file every minute. */
const TOKEN_FILE_REFRESH_MS = 60_000;

export interface KubeConnection {
  /** The API server's base URL, e.g. https://10.0.0.1:443 (no trailing slash). */
  server: string;
  /** TLS settings for node:https: the CA, the client certificate and whether to check the server's certificate. */
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean; servername?: string };
  /** The Authorization header to send, if any; asked before every request (tokens rotate). */
  authorization(): Promise<string | undefined>;
  /** Where this came from, for log lines. */
  source: string;
  /** The namespace the context names, if any (kubectl's default namespace); the in-cluster one in a pod. */
  namespace?: string;
}

interface NamedCluster {
  name: string;
  cluster: { server: string; 'certificate-authority'?: string; 'certificate-authority-data'?: string; 'insecure-skip-tls-verify'?: boolean; 'tls-server-name'?: string };
}
interface ExecConfig {
  command: string;
  args?: string[];
  env?: { name: string; value: string }[] | null;
  apiVersion?: string;
}
interface NamedUser {
  name: string;
  user: {
    'client-certificate'?: string;
    'client-certificate-data'?: string;
    'client-key'?: string;
    'client-key-data'?: string;
    token?: string;
    tokenFile?: string;
    exec?: ExecConfig;
    'auth-provider'?: { name: string };
    username?: string;
  };
}
interface KubeconfigFile {
  clusters?: NamedCluster[];
  users?: NamedUser[];
  contexts?: { name: string; context: { cluster: string; user: string; namespace?: string } }[];
  'current-context'?: string;
}

/**
 * The connection of the process: $KUBECONFIG, ~/.kube/config, or in-cluster, in that order — or, as kubectl's
 * --kubeconfig and --context flags say, that file and that context.
 */
export function loadKubeConnection(env: NodeJS.ProcessEnv = process.env, flags: { kubeconfig?: string | undefined; context?: string | undefined } = {}): KubeConnection {
  if (flags.kubeconfig) return connectionFromKubeconfig(flags.kubeconfig, flags.context);
  const candidates = env['KUBECONFIG'] ? env['KUBECONFIG'].split(path.delimiter).filter(Boolean) : [path.join(os.homedir(), '.kube', 'config')];
  const file = candidates.find((f) => existsSync(f));
  if (file) return connectionFromKubeconfig(file, flags.context);
  if (env['KUBERNETES_SERVICE_HOST']) return inClusterConnection(env);
  throw new Error(`no kubeconfig (looked at ${candidates.join(', ')}) and not running in a cluster (KUBERNETES_SERVICE_HOST is unset)`);
}

export function inClusterConnection(env: NodeJS.ProcessEnv = process.env, dir = IN_CLUSTER_DIR): KubeConnection {
  const host = env['KUBERNETES_SERVICE_HOST'] ?? '';
  const port = env['KUBERNETES_SERVICE_PORT'] ?? '443';
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    tls: { ca: readFileSync(path.join(dir, 'ca.crt')), rejectUnauthorized: true },
    authorization: bearerFromFile(path.join(dir, 'token')),
    source: 'in-cluster ServiceAccount',
    ...(existsSync(path.join(dir, 'namespace')) ? { namespace: readFileSync(path.join(dir, 'namespace'), 'utf8').trim() } : {}),
  };
}

/** One context of one kubeconfig file: `contextName`, else its current-context. */
export function connectionFromKubeconfig(file: string, contextName: string | undefined = undefined): KubeConnection {
  const config = (parseYaml(readFileSync(file, 'utf8')) ?? {}) as KubeconfigFile;
  const relative = (p: string) => (path.isAbsolute(p) ? p : path.resolve(path.dirname(file), p));
  contextName ??= config['current-context'];
  const context = config.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) throw new Error(`kubeconfig ${file}: context "${contextName ?? ''}" is not among its contexts`);
  const cluster = config.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster) throw new Error(`kubeconfig ${file}: cluster "${context.cluster}" of context "${contextName}" is missing`);
  const user = config.users?.find((u) => u.name === context.user)?.user ?? {};
  if (user['auth-provider']) {
    throw new Error(`kubeconfig ${file}: user "${context.user}" uses the auth-provider "${user['auth-provider'].name}", which Kubernetes removed; use an exec credential plugin`);
  }
  const data = (inline: string | undefined, fromFile: string | undefined) =>
    inline ? Buffer.from(inline, 'base64') : fromFile ? readFileSync(relative(fromFile)) : undefined;
  const tls: KubeConnection['tls'] = { rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true };
  const ca = data(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = data(user['client-certificate-data'], user['client-certificate']);
  const key = data(user['client-key-data'], user['client-key']);
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  if (cluster['tls-server-name']) tls.servername = cluster['tls-server-name'];
  let authorization: KubeConnection['authorization'] = () => Promise.resolve(undefined);
  if (user.token) authorization = () => Promise.resolve(`Bearer ${user.token}`);
  else if (user.tokenFile) authorization = bearerFromFile(relative(user.tokenFile));
  else if (user.exec) authorization = bearerFromExec(user.exec, path.dirname(file));
  return { server: cluster.server.replace(/\/+$/, ''), tls, authorization, source: `${file} (context ${contextName})`, ...(context.namespace ? { namespace: context.namespace } : {}) };
}

function bearerFromFile(file: string): KubeConnection['authorization'] {
  let token = '';
  let readAt = -Infinity;
  return () => {
    if (performance.now() - readAt > TOKEN_FILE_REFRESH_MS) {
      token = readFileSync(file, 'utf8').trim();
      readAt = performance.now();
    }
    return Promise.resolve(`Bearer ${token}`);
  };
}

/**
 * A client.authentication.k8s.io ExecCredential plugin (aws eks get-token, gke-gcloud-auth-plugin, kubelogin): run
 * it, keep the token until shortly before its expirationTimestamp, run it again after that. One run at a time.
 * https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins
 */
function bearerFromExec(exec: ExecConfig, cwd: string): KubeConnection['authorization'] {
  const run = promisify(execFile);
  let cached: { token: string; expiresAt: number } | undefined;
  let pending: Promise<string> | undefined;
  const refresh = async (): Promise<string> => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const e of exec.env ?? []) env[e.name] = e.value;
    env['KUBERNETES_EXEC_INFO'] = JSON.stringify({ apiVersion: exec.apiVersion ?? 'client.authentication.k8s.io/v1', kind: 'ExecCredential', spec: { interactive: false } });
    const { stdout } = await run(exec.command, exec.args ?? [], { env, cwd, timeout: 60_000, maxBuffer: 1 << 20 });
    const status = (JSON.parse(stdout) as { status?: { token?: string; expirationTimestamp?: string } }).status;
    if (!status?.token) throw new Error(`the exec credential plugin ${exec.command} returned no status.token`);
    // Without an expiry the credential is used until the API server refuses it; a minute is a safe compromise.
    const expiresAt = status.expirationTimestamp ? Date.parse(status.expirationTimestamp) - 30_000 : Date.now() + 60_000;
    cached = { token: status.token, expiresAt };
    return status.token;
  };
  return async () => {
    if (cached && Date.now() < cached.expiresAt) return `Bearer ${cached.token}`;
    pending ??= refresh().finally(() => (pending = undefined));
    return `Bearer ${await pending}`;
  };
}
