// The AWS side of the end-to-end tests: a moto server (the independent IAM/STS/EKS emulator, from the project's
// .venv), the in-project Pod Identity emulator in front of it (moto lacks those routes), the checking STS / EKS Auth
// front in front of that (moto's STS does not evaluate trust; test/emulators/aws-sts), and a small recording proxy
// in front of all. The proxy counts every call the operator makes by operation — evidence that does not rely on
// the operator's own metrics — and can run a hook when a given operation has been answered (the crash-safety test
// kills the operator there).
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateOpenIDConnectProviderCommand, IAMClient } from '@aws-sdk/client-iam';
import { EKSClient } from '@aws-sdk/client-eks';
import { startAwsTokenEmulator, type AwsTokenEmulator } from '../emulators/aws-sts/server.ts';
import { startPodIdentityEmulator } from '../emulators/eks-pod-identity/server.ts';
import type { IssuerSource } from '../emulators/oidc/issuers.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const TEST_ACCOUNT_ID = '123456789012';
export const TEST_REGION = 'us-east-1';
export const TEST_CREDENTIALS = { accessKeyId: 'AKIDKEYLESSTEST', secretAccessKey: 'keyless-test' };

export interface AwsCall {
  operation: string;
}

export interface AwsEmulator {
  /** What the operator talks to: the recording proxy. */
  endpoint: string;
  /** Straight to the emulators, for the tests' own reads and edits (not counted). */
  motoEndpoint: string;
  /** The Pod Identity emulator (in front of moto); its /__emulator/ hooks set faults and read its log. */
  eksEndpoint: string;
  /**
   * The checking STS and EKS Auth front, straight (what pods' SDKs use as AWS_ENDPOINT_URL_STS); `endpoint` reaches
   * it too, through the recording proxy. Its `agentUri` is the Pod Identity Agent when `podIdentityAgent` was asked.
   */
  tokens: AwsTokenEmulator;
  calls: AwsCall[];
  /** Called after `operation` was answered by moto and before the answer reaches the caller. */
  onAnswered: ((operation: string) => void) | undefined;
  iam(): IAMClient;
  eks(): EKSClient;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** The operation of an AWS request: `Action=` for awsQuery (IAM, STS), method and path shape for EKS. */
export function operationOf(method: string, url: string, body: string): string {
  const action = new URLSearchParams(body).get('Action');
  if (action) return action;
  const pathname = new URL(url, 'http://x').pathname;
  if (/^\/clusters\/[^/]+\/pod-identity-associations\/[^/]+$/.test(pathname)) {
    return { GET: 'DescribePodIdentityAssociation', POST: 'UpdatePodIdentityAssociation', DELETE: 'DeletePodIdentityAssociation' }[method] ?? method;
  }
  if (/^\/clusters\/[^/]+\/pod-identity-associations$/.test(pathname)) {
    return method === 'POST' ? 'CreatePodIdentityAssociation' : 'ListPodIdentityAssociations';
  }
  if (/^\/clusters\/[^/]+$/.test(pathname)) return method === 'GET' ? 'DescribeCluster' : `${method} cluster`;
  return `${method} ${pathname}`;
}

export function isWrite(operation: string): boolean {
  return !/^(Get|List|Describe)/.test(operation);
}

async function waitForHttp(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`moto exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      http.get(url, (res) => {
        res.resume();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('moto did not start');
}

export interface AwsEmulatorOptions {
  /** Issuers whose ServiceAccount tokens STS and EKS Auth can verify. */
  issuers?: IssuerSource[];
  /** EKS clusters (created in moto by the test) and the issuer of their tokens. */
  clusters?: { name: string; issuer: string }[];
  /** Serve the Pod Identity Agent for this cluster. */
  podIdentityAgent?: string;
}

export async function startAwsEmulator(opts: AwsEmulatorOptions = {}): Promise<AwsEmulator> {
  const motoPort = await freePort();
  const moto = spawn(path.join(root, '.venv/bin/moto_server'), ['-H', '127.0.0.1', '-p', String(motoPort)], { stdio: 'ignore' });
  // If a test fails before its cleanup runs, moto must not outlive the test process.
  const killMoto = () => moto.kill('SIGTERM');
  process.once('exit', killMoto);
  const motoEndpoint = `http://127.0.0.1:${motoPort}`;
  await waitForHttp(`${motoEndpoint}/moto-api/`, moto);
  const podIdentity = await startPodIdentityEmulator({ upstream: motoEndpoint });
  const tokens = await startAwsTokenEmulator({
    upstream: podIdentity.endpoint,
    issuers: opts.issuers ?? [],
    clusters: opts.clusters ?? [],
    ...(opts.podIdentityAgent ? { agent: { cluster: opts.podIdentityAgent } } : {}),
  });
  const front = new URL(tokens.endpoint);

  const emulator: AwsEmulator = {
    endpoint: '',
    motoEndpoint,
    eksEndpoint: podIdentity.endpoint,
    tokens,
    calls: [],
    onAnswered: undefined,
    iam: () => new IAMClient({ endpoint: motoEndpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS }),
    eks: () => new EKSClient({ endpoint: podIdentity.endpoint, region: TEST_REGION, credentials: TEST_CREDENTIALS }),
    stop: async () => {
      await tokens.stop();
      await podIdentity.stop();
      process.removeListener('exit', killMoto);
      killMoto();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };

  const proxy = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation = operationOf(req.method ?? 'GET', req.url ?? '/', body.toString());
      emulator.calls.push({ operation });
      const upstream = http.request(
        { host: front.hostname, port: front.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (c: Buffer) => parts.push(c));
          answer.on('end', () => {
            emulator.onAnswered?.(operation);
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(Buffer.concat(parts));
          });
        },
      );
      upstream.on('error', (err) => {
        res.writeHead(502);
        res.end(err.message);
      });
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  emulator.endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  return emulator;
}

/** Registers `issuer` as an IAM OIDC identity provider, as a platform team does once per cluster for IRSA. */
export async function createOidcProvider(iam: IAMClient, issuer: string): Promise<void> {
  await iam.send(new CreateOpenIDConnectProviderCommand({ Url: issuer, ClientIDList: ['sts.amazonaws.com'], ThumbprintList: ['9e99a48a9960b14926bb7f3b02e22da2b0ab7280'] }));
}
