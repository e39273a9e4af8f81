// An EKS Pod Identity association emulator (moto has no pod-identity routes). It speaks the restJson1 wire format
// the real @aws-sdk/client-eks sends (shared/reference/cloud-apis.md §2): epoch-second timestamps, `a-` + 17
// character ids, 409 ResourceInUseException with the existing id only in the message, 404
// ResourceNotFoundException, the per-cluster association limit, idempotent creates by clientRequestToken, and
// deletes that stay visible for a while (eventual consistency). Every other request (IAM, STS, DescribeCluster)
// is forwarded to `upstream` (moto), whose DescribeCluster also decides whether a cluster exists.
//
// Test hooks under /__emulator/: GET requests (the request log), POST faults ({operation, status, code, message,
// count}), POST settings ({deleteDelayMs, limitPerCluster}), POST reset, GET associations[?cluster=NAME] (the live
// associations, what the pod identity webhook of a cluster knows: hack/pod-identity-sync.ts).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { forwarderTo } from '../http.ts';

interface Association {
  clusterName: string;
  namespace: string;
  serviceAccount: string;
  roleArn: string;
  associationArn: string;
  associationId: string;
  tags: Record<string, string>;
  createdAt: number;
  modifiedAt: number;
  disableSessionTags: boolean;
  clientRequestToken: string;
  deletedAt?: number;
}

interface Fault {
  operation: string;
  status: number;
  code: string;
  message: string;
  count: number;
}

export interface EmulatorRequest {
  operation: string;
  method: string;
  path: string;
  status: number;
}

export interface PodIdentityEmulator {
  endpoint: string;
  stop(): Promise<void>;
}

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function newId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return `a-${[...randomBytes(17)].map((b) => alphabet[b % alphabet.length]).join('')}`;
}

export async function startPodIdentityEmulator(opts: { upstream: string; port?: number }): Promise<PodIdentityEmulator> {
  const upstream = new URL(opts.upstream);
  let associations = new Map<string, Association>();
  let faults: Fault[] = [];
  let log: EmulatorRequest[] = [];
  let settings = { deleteDelayMs: 0, limitPerCluster: 5000 };

  const visible = (a: Association) => a.deletedAt === undefined || Date.now() - a.deletedAt < settings.deleteDelayMs;
  const live = (a: Association) => a.deletedAt === undefined;
  const wire = (a: Association) => ({
    clusterName: a.clusterName,
    namespace: a.namespace,
    serviceAccount: a.serviceAccount,
    roleArn: a.roleArn,
    associationArn: a.associationArn,
    associationId: a.associationId,
    tags: a.tags,
    createdAt: a.createdAt,
    modifiedAt: a.modifiedAt,
    disableSessionTags: a.disableSessionTags,
  });

  const forward = forwarderTo(upstream);

  const clusterExists = (name: string) =>
    new Promise<boolean>((resolve) => {
      http
        .get({ host: upstream.hostname, port: upstream.port, path: `/clusters/${encodeURIComponent(name)}`, headers: { authorization: 'AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/eks/aws4_request' } }, (answer) => {
          answer.resume();
          resolve(answer.statusCode === 200);
        })
        .on('error', () => resolve(false));
    });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(req, Buffer.concat(chunks), res);
    });
  });

  const json = (res: http.ServerResponse, status: number, body: unknown, errorType?: string) => {
    res.writeHead(status, { 'content-type': 'application/json', ...(errorType ? { 'x-amzn-errortype': errorType } : {}) });
    res.end(JSON.stringify(body));
  };
  const error = (res: http.ServerResponse, status: number, type: string, message: string) => json(res, status, { message }, type);

  async function handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = req.method ?? 'GET';

    if (url.pathname.startsWith('/__emulator/')) {
      const input = body.length ? (JSON.parse(body.toString()) as Record<string, unknown>) : {};
      if (url.pathname === '/__emulator/requests') return json(res, 200, log);
      if (url.pathname === '/__emulator/associations') {
        const cluster = url.searchParams.get('cluster');
        return json(res, 200, [...associations.values()].filter((a) => live(a) && (!cluster || a.clusterName === cluster)).map(wire));
      }
      if (url.pathname === '/__emulator/faults') {
        faults.push({ count: 1, status: 500, code: 'ServerException', message: 'injected fault', ...(input as Partial<Fault>), operation: str(input['operation']) });
        return json(res, 200, {});
      }
      if (url.pathname === '/__emulator/settings') {
        settings = { ...settings, ...(input as Partial<typeof settings>) };
        return json(res, 200, settings);
      }
      if (url.pathname === '/__emulator/reset') {
        associations = new Map();
        faults = [];
        log = [];
        return json(res, 200, {});
      }
      return json(res, 404, {});
    }

    const match = /^\/clusters\/([^/]+)\/pod-identity-associations(?:\/([^/]+))?$/.exec(url.pathname);
    if (!match) return forward(req, body, res);
    const cluster = decodeURIComponent(match[1] ?? '');
    const id = match[2] ? decodeURIComponent(match[2]) : undefined;
    const operation = id
      ? ({ GET: 'DescribePodIdentityAssociation', POST: 'UpdatePodIdentityAssociation', DELETE: 'DeletePodIdentityAssociation' }[method] ?? method)
      : method === 'POST'
        ? 'CreatePodIdentityAssociation'
        : 'ListPodIdentityAssociations';
    const entry: EmulatorRequest = { operation, method, path: url.pathname, status: 200 };
    log.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));

    const fault = faults.find((f) => f.operation === operation && f.count > 0);
    if (fault) {
      fault.count--;
      return error(res, fault.status, fault.code, fault.message);
    }
    if (!(await clusterExists(cluster))) return error(res, 404, 'ResourceNotFoundException', `No cluster found for name: ${cluster}.`);
    const input = body.length ? (JSON.parse(body.toString()) as Record<string, unknown>) : {};
    const inCluster = [...associations.values()].filter((a) => a.clusterName === cluster);

    if (operation === 'CreatePodIdentityAssociation') {
      const namespace = str(input['namespace']);
      const serviceAccount = str(input['serviceAccount']);
      const token = str(input['clientRequestToken']);
      const existing = inCluster.find((a) => live(a) && a.namespace === namespace && a.serviceAccount === serviceAccount);
      if (existing) {
        if (token && existing.clientRequestToken === token && existing.roleArn === input['roleArn']) return json(res, 200, { association: wire(existing) });
        return error(res, 409, 'ResourceInUseException', `Association already exists: ${existing.associationId}`);
      }
      if (inCluster.filter(live).length >= settings.limitPerCluster) {
        return error(res, 400, 'ResourceLimitExceededException', `You have reached the limit of ${settings.limitPerCluster} Pod Identity associations for cluster ${cluster}.`);
      }
      if (input['policy'] !== undefined && input['disableSessionTags'] !== true) {
        return error(res, 400, 'InvalidParameterException', 'A session policy requires disableSessionTags to be true.');
      }
      const associationId = newId();
      const now = Date.now() / 1000;
      const association: Association = {
        clusterName: cluster,
        namespace,
        serviceAccount,
        roleArn: str(input['roleArn']),
        associationId,
        associationArn: `arn:aws:eks:${REGION}:${ACCOUNT}:podidentityassociation/${cluster}/${associationId}`,
        tags: (input['tags'] as Record<string, string> | undefined) ?? {},
        createdAt: now,
        modifiedAt: now,
        disableSessionTags: input['disableSessionTags'] === true,
        clientRequestToken: token,
      };
      associations.set(associationId, association);
      return json(res, 200, { association: wire(association) });
    }

    if (operation === 'ListPodIdentityAssociations') {
      const ns = url.searchParams.get('namespace');
      const sa = url.searchParams.get('serviceAccount');
      const max = Number(url.searchParams.get('maxResults') ?? 100);
      const start = Number(url.searchParams.get('nextToken') ?? 0);
      const all = inCluster.filter((a) => live(a) && (!ns || a.namespace === ns) && (!sa || a.serviceAccount === sa));
      const page = all.slice(start, start + max);
      return json(res, 200, {
        associations: page.map((a) => ({ clusterName: a.clusterName, namespace: a.namespace, serviceAccount: a.serviceAccount, associationArn: a.associationArn, associationId: a.associationId })),
        ...(start + max < all.length ? { nextToken: String(start + max) } : {}),
      });
    }

    const association = id ? associations.get(id) : undefined;
    if (!association || association.clusterName !== cluster || !visible(association)) {
      return error(res, 404, 'ResourceNotFoundException', `No Pod Identity Association found for id: ${id ?? ''}`);
    }
    if (operation === 'DescribePodIdentityAssociation') return json(res, 200, { association: wire(association) });
    if (!live(association)) return error(res, 404, 'ResourceNotFoundException', `No Pod Identity Association found for id: ${id ?? ''}`);
    if (operation === 'UpdatePodIdentityAssociation') {
      if (typeof input['roleArn'] === 'string') association.roleArn = input['roleArn'];
      association.modifiedAt = Date.now() / 1000;
      return json(res, 200, { association: wire(association) });
    }
    if (operation === 'DeletePodIdentityAssociation') {
      association.deletedAt = Date.now();
      if (settings.deleteDelayMs === 0) associations.delete(association.associationId);
      return json(res, 200, { association: wire(association) });
    }
    return error(res, 400, 'InvalidRequestException', `unsupported ${method}`);
  }

  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
