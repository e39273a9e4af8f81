// The benchmark's view of a cloud: a proxy between the operator and a cloud's emulator that adds a fixed latency to
// every call and enforces the cloud's write limit the way the cloud does — a token bucket per limit, and beyond it
// the cloud's own throttling answer (cloud-dialects.ts has each cloud's wire format). It counts every request it
// sees, SDK retries included, and every error the cloud answered, so the numbers do not depend on the operator's
// own metrics. Latency, limit and upstream can change between scenarios. HTTPS where the cloud's SDK insists (ARM).
// For `make chaos` it also injects faults (faults.ts): errors, throttling, resets, timeouts, lost answers.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Dialect, RequestKind } from './cloud-dialects.ts';
import { pickFault, RecentlyCreated, type FaultKind, type FaultSettings } from './faults.ts';

export interface ProxySettings {
  /** Added to every answer, throttled ones included. */
  latencyMs: number;
  /** Writes per second per limit; 0 = unlimited. */
  writeRate: number;
  /** Writes the bucket holds when full (what a quiet service lets through at once). */
  writeBurst: number;
  upstream: string;
  /** Faults to inject (chaos); undefined: none. */
  faults?: FaultSettings | undefined;
}

/** TLS for a cloud whose SDK refuses plain http: the proxy's own certificate, and the CA its upstream's is from. */
export interface ProxyTls {
  cert: string;
  key: string;
  upstreamCa: string;
}

export interface OperationCount {
  calls: number;
  throttled: number;
  /** Writes that lost to a concurrent writer (a stale etag, a concurrent write) and must be redone. */
  conflicts: number;
}

export interface ProxyCounts {
  byOperation: Record<string, OperationCount>;
  reads: number;
  writes: number;
  throttled: number;
  conflicts: number;
  /** Writes let through, per limit: what the limit applies to. */
  acceptedWrites: Record<string, number>;
  /** Error answers from the cloud (throttling answers not included), by `operation status code`. */
  errors: Record<string, number>;
  /** Faults injected, by kind, and point reads answered "not found" for a young object (eventual consistency). */
  faults: Partial<Record<FaultKind | 'invisible', number>>;
}

/** What the proxy tells its owner as it happens (chaos kills the operator right after a cloud write). */
export interface ProxyHooks {
  /** A write the cloud applied (2xx upstream), called once its answer is on its way to the caller, or withheld. */
  onWriteApplied?(kind: RequestKind): void;
}

export interface CloudProxy {
  endpoint: string;
  settings: ProxySettings;
  /** Set by the proxy's owner at any time. */
  hooks: ProxyHooks;
  configure(settings: Partial<ProxySettings>): void;
  /** A copy of the counters since the start. Subtract two snapshots for one scenario's share. */
  snapshot(): ProxyCounts;
  stop(): Promise<void>;
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
  /** Whole seconds until the next write would pass (at least 1): what a cloud puts in Retry-After. */
  secondsToNext(rate: number): number {
    return rate <= 0 ? 1 : Math.max(1, Math.ceil((1 - this.#tokens) / rate));
  }
}

export async function startCloudProxy(dialect: Dialect, initial: ProxySettings, tls?: ProxyTls): Promise<CloudProxy> {
  const hooks: ProxyHooks = {};
  const settings = { ...initial };
  const recent = new RecentlyCreated();
  const buckets = new Map<string, WriteBucket>();
  const bucket = (name: string) => {
    let b = buckets.get(name);
    if (!b) {
      b = new WriteBucket();
      b.refillTo(settings.writeBurst);
      buckets.set(name, b);
    }
    return b;
  };
  const counts = emptyCounts();
  const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 64 }), https: new https.Agent({ keepAlive: true, maxSockets: 64, ...(tls ? { ca: tls.upstreamCa } : {}) }) };

  /**
   * Passes the request upstream and its answer to `deliver` (by default: back to the caller), reading the answer
   * whole to name an error in it.
   */
  const forward = (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse, kind: RequestKind, deliver?: (send: () => void) => void) => {
    const operation = kind.operation;
    const upstream = new URL(settings.upstream);
    const secure = upstream.protocol === 'https:';
    const options = { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers };
    const onAnswer = (answer: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => {
        const text = Buffer.concat(chunks);
        const status = answer.statusCode ?? 502;
        if (status >= 400) {
          const code = dialect.errorCode(status, answer.headers, text.toString());
          const key = `${operation} ${status} ${code}`;
          counts.errors[key] = (counts.errors[key] ?? 0) + 1;
          if (dialect.isConflict(status, code)) {
            counts.conflicts++;
            const count = counts.byOperation[operation];
            if (count) count.conflicts++;
          }
        }
        const send = () => {
          res.writeHead(status, answer.headers);
          res.end(text);
        };
        // Only while eventual consistency is emulated: the benchmark's 10,000 creates need no memory of them.
        if (status < 300 && settings.faults?.invisibleMs) {
          const created = dialect.consistency?.created(kind, body.toString());
          if (created !== undefined) recent.created(created);
        }
        if (deliver) deliver(send);
        else send();
        if (status < 300 && kind.bucket !== undefined) hooks.onWriteApplied?.(kind);
      });
    };
    const out = secure ? https.request({ ...options, agent: agents.https }, onAnswer) : http.request({ ...options, agent: agents.http }, onAnswer);
    out.on('error', (err) => {
      res.writeHead(502);
      res.end(err.message);
    });
    out.end(body);
  };

  /** Forwards the request, unless a fault (or eventual consistency) answers it instead. */
  const faulted = (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse, kind: RequestKind) => {
    const faults = settings.faults;
    if (!faults) return forward(req, body, res, kind);
    const young = faults.invisibleMs > 0 ? dialect.consistency?.read(kind, body.toString()) : undefined;
    if (young !== undefined && recent.hidden(young, faults.invisibleMs)) {
      counts.faults.invisible = (counts.faults.invisible ?? 0) + 1;
      return dialect.consistency?.notFound(res, kind, young);
    }
    const fault = pickFault(faults);
    if (fault) counts.faults[fault] = (counts.faults[fault] ?? 0) + 1;
    const drop = () => res.socket?.destroy();
    switch (fault) {
      case undefined:
        return forward(req, body, res, kind);
      case 'error':
        return dialect.serverError(res, kind);
      case 'throttle':
      case 'throttleRetryAfter':
        return dialect.throttle(res, kind, 1, fault === 'throttleRetryAfter');
      case 'reset':
        return drop();
      case 'timeout':
        // Applied, never answered: the caller's deadline ends it; the connection goes once the hang is over.
        return forward(req, body, res, kind, () => setTimeout(drop, faults.hangMs));
      case 'slow':
        return forward(req, body, res, kind, (send) => setTimeout(send, faults.slowMs));
      case 'lost':
        return forward(req, body, res, kind, () => (Math.random() < 0.5 ? drop() : dialect.serverError(res, kind)));
    }
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const kind = dialect.classify(req.method ?? 'GET', req.url ?? '/', body.toString());
      const count = (counts.byOperation[kind.operation] ??= { calls: 0, throttled: 0, conflicts: 0 });
      count.calls++;
      if (kind.bucket === undefined) counts.reads++;
      else counts.writes++;
      // Admission is decided on arrival, as a real service does; the latency applies to every answer.
      const limit = kind.bucket === undefined ? undefined : bucket(kind.bucket);
      const admitted = !limit || limit.tryTake(settings.writeRate, settings.writeBurst);
      if (!admitted) {
        count.throttled++;
        counts.throttled++;
      } else if (kind.bucket !== undefined) {
        counts.acceptedWrites[kind.bucket] = (counts.acceptedWrites[kind.bucket] ?? 0) + 1;
      }
      const retryAfter = limit?.secondsToNext(settings.writeRate) ?? 1;
      const answer = () => (admitted ? faulted(req, body, res, kind) : dialect.throttle(res, kind, retryAfter));
      if (settings.latencyMs > 0) setTimeout(answer, settings.latencyMs);
      else answer();
    });
  };
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handle) : http.createServer(handle);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    endpoint: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    settings,
    hooks,
    configure(next) {
      Object.assign(settings, next);
      // A new limit starts with a full bucket, like a service that was quiet.
      for (const b of buckets.values()) b.refillTo(settings.writeBurst);
    },
    snapshot: () => structuredClone(counts),
    stop: () =>
      new Promise<void>((resolve) => {
        agents.http.destroy();
        agents.https.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function difference(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/** `after − before`, per operation. */
export function countsBetween(before: ProxyCounts, after: ProxyCounts): ProxyCounts {
  const byOperation: Record<string, OperationCount> = {};
  for (const [op, c] of Object.entries(after.byOperation)) {
    const b = before.byOperation[op] ?? { calls: 0, throttled: 0, conflicts: 0 };
    if (c.calls - b.calls > 0) byOperation[op] = { calls: c.calls - b.calls, throttled: c.throttled - b.throttled, conflicts: c.conflicts - b.conflicts };
  }
  return {
    byOperation,
    reads: after.reads - before.reads,
    writes: after.writes - before.writes,
    throttled: after.throttled - before.throttled,
    conflicts: after.conflicts - before.conflicts,
    acceptedWrites: difference(after.acceptedWrites, before.acceptedWrites),
    errors: difference(after.errors, before.errors),
    faults: difference(after.faults, before.faults),
  };
}

export function emptyCounts(): ProxyCounts {
  return { byOperation: {}, reads: 0, writes: 0, throttled: 0, conflicts: 0, acceptedWrites: {}, errors: {}, faults: {} };
}

/** Per-operation counts of two bills added up, as counts (for per-identity totals over several phases). */
export function sumCounts(a: Record<string, OperationCount>, b: Record<string, OperationCount>): ProxyCounts {
  const byOperation: Record<string, OperationCount> = {};
  for (const part of [a, b]) {
    for (const [op, c] of Object.entries(part)) {
      const sum = (byOperation[op] ??= { calls: 0, throttled: 0, conflicts: 0 });
      sum.calls += c.calls;
      sum.throttled += c.throttled;
      sum.conflicts += c.conflicts;
    }
  }
  return { ...emptyCounts(), byOperation };
}
