// The operator's only HTTP listener: liveness and readiness probes for the kubelet and the Prometheus scrape
// endpoint. It never serves anything that depends on a request body.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(opts: {
  port: number;
  host?: string;
  metrics: Metrics;
  healthy: () => boolean;
  ready: () => boolean;
  logger: Logger;
}): Promise<HttpServer> {
  const { metrics, logger } = opts;

  const reply = (res: http.ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8') => {
    res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
    res.end(body);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      reply(res, 405, 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/healthz':
        if (opts.healthy()) reply(res, 200, 'ok\n');
        else reply(res, 503, 'unhealthy\n');
        return;
      case '/readyz':
        if (opts.ready()) reply(res, 200, 'ok\n');
        else reply(res, 503, 'not ready\n');
        return;
      case '/metrics':
        reply(res, 200, await metrics.registry.metrics(), metrics.registry.contentType);
        return;
      default:
        reply(res, 404, 'not found\n');
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err, path: req.url }, 'http handler failed');
      if (!res.headersSent) reply(res, 500, 'internal error\n');
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, host: opts.host ?? '*' }, 'http server listening');

  return {
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Scrapers and probes keep connections alive; without this close() waits for their idle timeout.
        server.closeAllConnections();
      }),
  };
}
