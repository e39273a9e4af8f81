// The anonymous GET against a loopback server: what it sends (no credentials), and the deadline and the body bound.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { anonymousGet } from './anonymous-get.ts';

describe('anonymousGet', () => {
  let server: http.Server;
  let base: string;
  const headers: http.IncomingHttpHeaders[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      headers.push(req.headers);
      if (req.url === '/slow') return void setTimeout(() => res.end('{}'), 2_000).unref();
      if (req.url === '/big') return void res.end('x'.repeat(4096));
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json' });
      res.end('{"issuer":"x"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('answers the status and the body', async () => {
    assert.deepEqual(await anonymousGet()(`${base}/ok`), { status: 200, body: '{"issuer":"x"}' });
    assert.equal((await anonymousGet()(`${base}/missing`)).status, 404);
  });

  it('sends no credentials', async () => {
    headers.length = 0;
    await anonymousGet()(`${base}/ok`);
    assert.equal(headers[0]?.authorization, undefined);
    assert.equal(headers[0]?.cookie, undefined);
  });

  it('gives up at the deadline, saying so', async () => {
    await assert.rejects(anonymousGet({ timeoutMs: 100 })(`${base}/slow`), /^Error: no answer within 0\.1s$/);
  });

  it('refuses a body beyond the bound', async () => {
    await assert.rejects(anonymousGet({ maxBodyBytes: 1024 })(`${base}/big`), /larger than 1 KiB/);
  });

  it('names a refused connection', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(anonymousGet()(`http://127.0.0.1:${port}/`), /connection was refused \(ECONNREFUSED\)/);
  });
});
