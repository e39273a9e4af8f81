// Runs the real operator (node src/main.ts) as a child process for end-to-end tests, authenticated as its own
// ServiceAccount bound to the shipped ClusterRole — not as cluster admin — so missing or excessive RBAC shows up.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { kubectl } from './cluster.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const OPERATOR_NAMESPACE = 'keyless-system';
export const OPERATOR_SERVICE_ACCOUNT = 'keyless-operator';

/**
 * Applies what `kubectl apply -k config/default` installs, minus the Deployment and Service (the operator runs
 * here as a local process), and returns a kubeconfig file that authenticates as the operator's ServiceAccount.
 */
export async function installOperator(kc: KubeConfig, name: string, dir = path.join(root, '.test', 'operator')): Promise<string> {
  const rendered = (await kubectl(['kustomize', path.join(root, 'config/default')])).stdout;
  const kept = parseAllDocuments(rendered)
    .map((d) => d.toJSON() as { kind?: string })
    .filter((o) => o.kind !== 'Deployment' && o.kind !== 'Service');
  await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=keyless-e2e', '-f', '-'], kept.map((o) => JSON.stringify(o)).join('\n'));
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/workloadidentities.keyless.dev', 'crd/cloudaccounts.keyless.dev']);

  const token = await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    namespace: OPERATOR_NAMESPACE,
    name: OPERATOR_SERVICE_ACCOUNT,
    body: { spec: { expirationSeconds: 24 * 3600 } },
  });
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.kubeconfig`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server: cluster.server, 'certificate-authority-data': cluster.caData } }],
      users: [{ name: OPERATOR_SERVICE_ACCOUNT, user: { token: token.status?.token } }],
      contexts: [{ name: 'operator', context: { cluster: 'test', user: OPERATOR_SERVICE_ACCOUNT } }],
      'current-context': 'operator',
    }),
    { mode: 0o600 },
  );
  return file;
}

export interface RunningOperator {
  port: number;
  process: ChildProcess;
  logFile: string;
  /** The value of a counter/gauge series from /metrics, summed over series whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** The JSON log lines written so far whose `msg` is `msg`. */
  logged(msg: string): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/**
 * Starts `node src/main.ts` with `env` on top of the test defaults, logging to `logFile`, and resolves once its
 * caches have synced, with the port of its metrics server (the `caches synced` log line carries it).
 */
export async function spawnOperator(opts: { kubeconfig: string; env: Record<string, string>; logFile: string; syncTimeoutMs: number }): Promise<{ child: ChildProcess; port: number; exited: Promise<void> }> {
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  const child = spawn(process.execPath, [path.join(root, 'src/main.ts')], {
    env: {
      PATH: process.env['PATH'] ?? '',
      KUBECONFIG: opts.kubeconfig,
      KEYLESS_HTTP_PORT: '0',
      KEYLESS_LEADER_ELECTION_NAMESPACE: OPERATOR_NAMESPACE,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr.pipe(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const port = await new Promise<number>((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`operator did not sync within ${opts.syncTimeoutMs / 1000}s; see ${opts.logFile}`)), opts.syncTimeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      log.write(chunk);
      buffer += chunk.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as { msg?: string; port?: number };
          if (entry.msg === 'caches synced' && entry.port) {
            clearTimeout(timer);
            resolve(entry.port);
          }
        } catch {
          // not a JSON log line
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`operator exited with ${code}; see ${opts.logFile}`));
    });
  });
  return { child, port, exited };
}

export async function startOperator(opts: { name: string; kubeconfig: string; env: Record<string, string> }): Promise<RunningOperator> {
  const logFile = path.join(root, '.test', 'operator', `${opts.name}.log`);
  const { child, port, exited } = await spawnOperator({ kubeconfig: opts.kubeconfig, env: opts.env, logFile, syncTimeoutMs: 60_000 });

  const metric = async (name: string, labels: Record<string, string> = {}) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
      if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  };

  const logged = async (msg: string) => {
    const lines: Record<string, unknown>[] = [];
    for (const line of (await readFile(logFile, 'utf8')).split('\n')) {
      if (!line.includes(`"msg":"${msg}"`)) continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line cut off by a kill
      }
    }
    return lines;
  };

  return {
    port,
    process: child,
    logFile,
    metric,
    logged,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
    kill: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Environment that points the operator's AWS SDK clients at the test emulator. */
export function awsEnv(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_IAM: endpoint,
    AWS_ENDPOINT_URL_EKS: endpoint,
    AWS_ENDPOINT_URL_STS: endpoint,
    AWS_ENDPOINT_URL_EKS_AUTH: endpoint,
    AWS_ACCESS_KEY_ID: 'AKIDKEYLESSTEST',
    AWS_SECRET_ACCESS_KEY: 'keyless-test',
    AWS_REGION: 'us-east-1',
  };
}

/**
 * Environment that points the operator's ARM clients at the Azure emulator (test/support/azure.ts): its endpoint,
 * a static bearer token, and its CA, which Node reads only at start-up.
 */
export function azureEnv(endpoint: string, caFile: string): Record<string, string> {
  // The emulator serves Microsoft Entra's token endpoint on the same host, for CredentialsVerified.
  return { KEYLESS_AZURE_ENDPOINT: endpoint, KEYLESS_AZURE_AUTHORITY_HOST: endpoint, KEYLESS_AZURE_CREDENTIAL: 'static', NODE_EXTRA_CA_CERTS: caFile };
}

/** Environment that points the operator's Google API clients at the GCP emulator (test/support/gcp.ts). */
export function gcpEnv(endpoint: string): Record<string, string> {
  return { KEYLESS_GCP_ENDPOINT: endpoint, KEYLESS_GCP_ACCESS_TOKEN: 'keyless-operator' };
}
