// The benchmark's view of the cloud: a proxy between the operator and the AWS emulators that adds a fixed latency
// to every call and enforces a write rate limit per service the way AWS does — a token bucket, and beyond it the
// service's own Throttling answer (cloud-apis.md §1.5 and §5): IAM `400 <Code>Throttling</Code>` in awsQuery XML,
// EKS `429 ThrottlingException` in restJson1. It counts every request it sees, SDK retries included, so the
// numbers do not depend on the operator's own metrics. Latency, limit and upstream can change between scenarios.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isWrite } from '../test/support/aws.ts';

export type Service = 'iam' | 'eks';

export interface ProxySettings {
  /** Added to every answer, throttled ones included. */
  latencyMs: number;
  /** Writes per second per service; 0 = unlimited. */
  writeRate: number;
  /** Writes the bucket holds when full (what a quiet service lets through at once). */
  writeBurst: number;
  upstream: string;
}

export interface OperationCount {
  calls: number;
  throttled: number;
}

export interface ProxyCounts {
  byOperation: Record<string, OperationCount>;
  reads: number;
  writes: number;
  throttled: number;
  /** Writes let through, per service: what the limit applies to. */
  acceptedWrites: Record<Service, number>;
}

export interface CloudProxy {
  endpoint: string;
  settings: ProxySettings;
  configure(settings: Partial<ProxySettings>): void;
  /** A copy of the counters since the start. Subtract two snapshots for one scenario's share. */
  snapshot(): ProxyCounts;
  stop(): Promise<void>;
}

/** awsQuery (IAM) carries `Action=`; everything else here is EKS restJson1, named by method and route. */
function operationOf(method: string, url: string, body: string): { service: Service; operation: string } {
  const action = new URLSearchParams(body).get('Action');
  if (action) return { service: 'iam', operation: action };
  const pathname = new URL(url, 'http://x').pathname;
  if (/^\/clusters\/[^/]+\/pod-identity-associations\/[^/]+$/.test(pathname)) {
    return { service: 'eks', operation: { GET: 'DescribePodIdentityAssociation', POST: 'UpdatePodIdentityAssociation', DELETE: 'DeletePodIdentityAssociation' }[method] ?? method };
  }
  if (/^\/clusters\/[^/]+\/pod-identity-associations$/.test(pathname)) {
    return { service: 'eks', operation: method === 'POST' ? 'CreatePodIdentityAssociation' : 'ListPodIdentityAssociations' };
  }
  if (/^\/clusters\/[^/]+$/.test(pathname)) return { service: 'eks', operation: method === 'GET' ? 'DescribeCluster' : `${method} cluster` };
  return { service: 'eks', operation: `${method} ${pathname}` };
}

class WriteBucket {
  #tokens = 0;
  #at = performance.now();
  refillTo(burst: number): void {
    this.#tokens = burst;
    this.#at = performance.now();
  }
  tryTake(rate: number, burst: number): boolean {
    if (rate <= 0) return true;
    const now = performance.now();
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#at) / 1000) * rate);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

function throttle(service: Service, res: http.ServerResponse): void {
  if (service === 'iam') {
    res.writeHead(400, { 'content-type': 'text/xml' });
    res.end(
      '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>',
    );
  } else {
    res.writeHead(429, { 'content-type': 'application/json', 'x-amzn-errortype': 'ThrottlingException' });
    res.end(JSON.stringify({ message: 'Rate exceeded' }));
  }
}

export async function startCloudProxy(initial: ProxySettings): Promise<CloudProxy> {
  const settings = { ...initial };
  const buckets: Record<Service, WriteBucket> = { iam: new WriteBucket(), eks: new WriteBucket() };
  for (const b of Object.values(buckets)) b.refillTo(settings.writeBurst);
  const counts = emptyCounts();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  const forward = (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => {
    const upstream = new URL(settings.upstream);
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', (err) => {
      res.writeHead(502);
      res.end(err.message);
    });
    out.end(body);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const { service, operation } = operationOf(req.method ?? 'GET', req.url ?? '/', body.toString());
      const count = (counts.byOperation[operation] ??= { calls: 0, throttled: 0 });
      count.calls++;
      const write = isWrite(operation);
      if (write) counts.writes++;
      else counts.reads++;
      // Admission is decided on arrival, as a real service does; the latency applies to every answer.
      const admitted = !write || buckets[service].tryTake(settings.writeRate, settings.writeBurst);
      if (!admitted) {
        count.throttled++;
        counts.throttled++;
      } else if (write) {
        counts.acceptedWrites[service]++;
      }
      const answer = () => (admitted ? forward(req, body, res) : throttle(service, res));
      if (settings.latencyMs > 0) setTimeout(answer, settings.latencyMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    settings,
    configure(next) {
      Object.assign(settings, next);
      // A new limit starts with a full bucket, like a service that was quiet.
      for (const b of Object.values(buckets)) b.refillTo(settings.writeBurst);
    },
    snapshot: () => structuredClone(counts),
    stop: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `after − before`, per operation. */
export function countsBetween(before: ProxyCounts, after: ProxyCounts): ProxyCounts {
  const byOperation: Record<string, OperationCount> = {};
  for (const [op, c] of Object.entries(after.byOperation)) {
    const b = before.byOperation[op] ?? { calls: 0, throttled: 0 };
    if (c.calls - b.calls > 0) byOperation[op] = { calls: c.calls - b.calls, throttled: c.throttled - b.throttled };
  }
  return {
    byOperation,
    reads: after.reads - before.reads,
    writes: after.writes - before.writes,
    throttled: after.throttled - before.throttled,
    acceptedWrites: { iam: after.acceptedWrites.iam - before.acceptedWrites.iam, eks: after.acceptedWrites.eks - before.acceptedWrites.eks },
  };
}

export function emptyCounts(): ProxyCounts {
  return { byOperation: {}, reads: 0, writes: 0, throttled: 0, acceptedWrites: { iam: 0, eks: 0 } };
}

/** Per-operation counts of two bills added up, as counts (for per-identity totals over several phases). */
export function sumCounts(a: Record<string, OperationCount>, b: Record<string, OperationCount>): ProxyCounts {
  const byOperation: Record<string, OperationCount> = {};
  for (const part of [a, b]) {
    for (const [op, c] of Object.entries(part)) {
      const sum = (byOperation[op] ??= { calls: 0, throttled: 0 });
      sum.calls += c.calls;
      sum.throttled += c.throttled;
    }
  }
  return { ...emptyCounts(), byOperation };
}
