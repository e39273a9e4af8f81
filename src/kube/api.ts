// The Kubernetes REST API as the operator uses it: JSON requests and watch streams over ONE keep-alive connection
// pool per API server and user. A client that opens a TLS connection per request (as @kubernetes/client-node 2.x
// does, docs/benchmarks.md) spends most of its CPU on handshakes and holds their native memory until the next
// garbage collection; and a generated client for every API group costs ~85 MiB of resident memory at import, more
// than the rest of the operator at rest. Objects are plain JSON typed by the caller (client-node's types, erased).
import http from 'node:http';
import https from 'node:https';
import type { KubeConnection } from './kubeconfig.ts';

/** Every request but a watch must finish within this long (CONVENTIONS habit 5: every call out has a deadline). */
const DEFAULT_TIMEOUT_MS = 60_000;

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  /** Sent as JSON; `contentType` says which kind of patch it is. */
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const PATCH = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategicMerge: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

/** A failed API request: `code` is the HTTP status and `body` the Status object the API server sent. */
export class KubeApiError extends Error {
  readonly code: number;
  readonly body: unknown;
  constructor(method: string, path: string, code: number, body: unknown) {
    const message = (body as { message?: unknown } | undefined)?.message;
    super(`${method} ${path}: HTTP ${code}${typeof message === 'string' ? `: ${message}` : ''}`);
    this.name = 'KubeApiError';
    this.code = code;
    this.body = body;
  }
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export class KubeApi {
  readonly #server: URL;
  readonly #connection: KubeConnection;
  /** Requests share one pool; watches get their own, so a dead watch connection is never handed to a request. */
  readonly #agent: http.Agent;
  readonly #watchAgent: http.Agent;
  readonly #transport: typeof https | typeof http;

  constructor(connection: KubeConnection) {
    this.#connection = connection;
    this.#server = new URL(connection.server);
    const secure = this.#server.protocol === 'https:';
    this.#transport = secure ? https : http;
    const pool = (maxSockets: number) => (secure ? new https.Agent({ keepAlive: true, maxSockets, maxFreeSockets: 8, ...connection.tls }) : new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: 8 }));
    this.#agent = pool(32);
    this.#watchAgent = pool(Infinity);
  }

  get server(): string {
    return this.#connection.server;
  }

  /** One request; the parsed JSON answer, or a KubeApiError for any status ≥ 400. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    let res: http.IncomingMessage;
    try {
      res = await this.#send(method, path, opts, false);
    } catch (err) {
      // The API server may close an idle pooled connection just as we reuse it; Node's documentation recommends
      // one retry on a fresh connection for exactly this case. The request never reached the server.
      if (!(err instanceof ReusedSocketReset)) throw err;
      res = await this.#send(method, path, opts, false);
    }
    const text = await readBody(res);
    const body = parseJson(text);
    if ((res.statusCode ?? 0) >= 400) throw new KubeApiError(method, path, res.statusCode ?? 0, body ?? text);
    return body as T;
  }

  /**
   * Opens a watch and calls `onEvent` for each event as it arrives; resolves when the API server ends the stream
   * (its timeoutSeconds), rejects on a network error or when `signal` aborts. An ERROR event is passed on as is.
   */
  async watch<T>(path: string, query: Query, onEvent: (event: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
    const res = await this.#send('GET', path, { query: { ...query, watch: true }, signal }, true);
    if ((res.statusCode ?? 0) >= 400) {
      const text = await readBody(res);
      throw new KubeApiError('GET', path, res.statusCode ?? 0, parseJson(text) ?? text);
    }
    res.setEncoding('utf8');
    let buffered = '';
    await new Promise<void>((resolve, reject) => {
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          newline = buffered.indexOf('\n');
          if (!line.trim()) continue;
          try {
            onEvent(JSON.parse(line) as WatchEvent<T>);
          } catch (err) {
            res.destroy(err instanceof Error ? err : new Error(String(err)));
            return;
          }
        }
      });
      res.on('end', resolve);
      res.on('error', reject);
      res.on('close', () => (res.complete ? resolve() : reject(signal.aborted ? abortError(signal) : new Error(`watch ${path}: connection closed`))));
    });
  }

  #send(method: string, path: string, opts: RequestOptions, streaming: boolean): Promise<http.IncomingMessage> {
    const url = new URL(path, this.#server);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    return this.#connection.authorization().then(
      (authorization) =>
        new Promise<http.IncomingMessage>((resolve, reject) => {
          const headers: http.OutgoingHttpHeaders = { accept: 'application/json', 'user-agent': 'keyless' };
          if (authorization) headers['authorization'] = authorization;
          if (payload !== undefined) {
            headers['content-type'] = opts.contentType ?? 'application/json';
            headers['content-length'] = Buffer.byteLength(payload);
          }
          const agent = streaming ? this.#watchAgent : this.#agent;
          const req = this.#transport.request(url, { method, headers, agent, ...(opts.signal ? { signal: opts.signal } : {}) }, resolve);
          req.on('error', (err: NodeJS.ErrnoException) => reject(req.reusedSocket && err.code === 'ECONNRESET' ? new ReusedSocketReset(err) : err));
          if (!streaming) {
            const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
            req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url.pathname}: no answer from ${this.#connection.server} within ${timeoutMs / 1000}s`)));
          }
          req.end(payload);
        }),
    );
  }

  /**
   * Closes the idle pooled connections. After a watch stalled, the network path may have broken half-open
   * connections in the pool too; a fresh list must not wait out its deadline on one of them.
   */
  dropIdleConnections(): void {
    for (const sockets of Object.values(this.#agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
  }

  /** Closes every pooled connection (tests and shutdown). */
  close(): void {
    this.#agent.destroy();
    this.#watchAgent.destroy();
  }
}

/** ECONNRESET on a reused keep-alive connection: the server closed it before our request arrived. */
class ReusedSocketReset extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause });
  }
}

function readBody(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}
