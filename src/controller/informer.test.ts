// ResourceWatch's list+watch protocol against a scripted API server on loopback: paged lists, the transform on
// every object, a watch the server ends resumed from the last resourceVersion (bookmarks included) without a
// relist, and an expired watch (410 Gone) answered with a relist. The real API server's side is covered by
// test/integration/controller-informer.test.ts.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { KubeApi } from '../kube/api.ts';
import { Metrics } from '../observability/metrics.ts';
import { ResourceWatch } from './informer.ts';

interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion: string; managedFields?: { manager: string }[] };
  data?: string;
}

const obj = (name: string, rv: number, data = ''): Obj => ({ metadata: { name, resourceVersion: String(rv), managedFields: [{ manager: 'kubectl' }] }, data });

/** An API server whose answers the test scripts: lists by `continue` token, and one watch script per watch call. */
class ScriptedServer {
  readonly requests: string[] = [];
  pages: Record<string, { items: Obj[]; continue?: string; resourceVersion: string }> = {};
  /** One per watch request: a script for a 200 stream, or an error status the API server answers instead. */
  watches: (((res: http.ServerResponse) => void) | { status: number })[] = [];
  readonly #server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push(`${url.searchParams.get('watch') ? 'WATCH' : 'LIST'} ${url.searchParams.toString()}`);
    if (url.searchParams.get('watch')) {
      const script = this.watches.shift();
      if (!script) return; // hang: no more scripted watches
      if (typeof script === 'object') {
        res.writeHead(script.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: script.status }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      script(res);
      return;
    }
    const page = this.pages[url.searchParams.get('continue') ?? ''];
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ items: page?.items ?? [], metadata: { resourceVersion: page?.resourceVersion ?? '0', ...(page?.continue ? { continue: page.continue } : {}) } }));
  });

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

const line = (type: string, object: unknown) => `${JSON.stringify({ type, object })}\n`;

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('ResourceWatch protocol', () => {
  const server = new ScriptedServer();
  let api: KubeApi;
  before(async () => {
    const url = await server.listen();
    api = new KubeApi({ server: url, tls: { rejectUnauthorized: true }, authorization: () => Promise.resolve(undefined), source: 'test' });
  });
  after(async () => {
    api.close();
    await server.close();
  });

  it('lists in pages, transforms every object, resumes an ended watch from the last version and relists only on 410', async () => {
    server.pages = {
      '': { items: [obj('a', 1)], continue: 'page2', resourceVersion: '' },
      page2: { items: [obj('b', 2)], resourceVersion: '10' },
    };
    server.watches = [
      (res) => {
        res.write(line('ADDED', obj('c', 11)));
        res.write(line('BOOKMARK', { metadata: { resourceVersion: '15' } }));
        res.end(); // the API server's timeoutSeconds
      },
      (res) => {
        res.write(line('MODIFIED', obj('a', 16, 'changed')));
        res.end(line('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 16 (20)' }));
      },
    ];
    const metrics = new Metrics();
    const watch = new ResourceWatch<Obj>({
      name: 'things',
      api,
      path: '/api/v1/things',
      transform: (o) => {
        delete o.metadata.managedFields;
        return o;
      },
      logger: pino({ level: 'silent' }),
      metrics,
    });
    const changes: string[] = [];
    watch.onChange((o) => changes.push(`${o.metadata.name}@${o.metadata.resourceVersion}`));
    try {
      await watch.start();
      assert.deepEqual(watch.list().map((o) => o.metadata.name).sort(), ['a', 'b'], 'both pages are in the cache when start resolves');
      // After the 410 the informer relists; the script has no more pages than before, so "c" (never in a list) goes.
      await until('the relist after 410', () => server.requests.filter((r) => r.startsWith('LIST')).length >= 4);
      await watch.stop();

      assert.deepEqual(server.requests.slice(0, 2), ['LIST limit=500', 'LIST limit=500&continue=page2']);
      assert.match(server.requests[2] ?? '', /^WATCH resourceVersion=10&allowWatchBookmarks=true&timeoutSeconds=\d+&watch=true$/);
      assert.match(server.requests[3] ?? '', /^WATCH resourceVersion=15&/, 'resumed from the bookmark, without a list in between');
      assert.ok(changes.includes('c@11') && changes.includes('a@16'));
      assert.equal(watch.get('a')?.metadata.managedFields, undefined, 'the transform ran before caching');
      const restarts = (await metrics.informerRestarts.get()).values;
      assert.equal(restarts.find((v) => v.labels.reason === 'expired')?.value, 1);
      assert.equal(restarts.find((v) => v.labels.reason === 'error')?.value, 0);
    } finally {
      await watch.stop();
    }
  });

  it('resumes a watch the network or a restarting API server dropped from its last version, without a relist', async () => {
    server.requests.length = 0;
    server.pages = { '': { items: [obj('a', 1)], resourceVersion: '10' } };
    server.watches = [
      (res) => {
        res.write(line('ADDED', obj('b', 12)));
        // The connection goes mid-stream (an API server restarting, a load balancer dropping it).
        setTimeout(() => res.socket?.destroy(), 150);
      },
      { status: 503 }, // the API server is not ready again yet
      { status: 403 }, // ready, but its authorizer's caches are still filling
      (res) => {
        res.write(line('MODIFIED', obj('a', 13, 'changed')));
        res.end();
      },
    ];
    const metrics = new Metrics();
    const watch = new ResourceWatch<Obj>({ name: 'things', api, path: '/api/v1/things', logger: pino({ level: 'silent' }), metrics });
    try {
      await watch.start();
      await until('the fourth watch', () => server.requests.filter((r) => r.startsWith('WATCH')).length >= 5);
      const requests = [...server.requests];
      await watch.stop();
      assert.deepEqual(
        requests.map((r) => r.split(' ')[0]),
        ['LIST', 'WATCH', 'WATCH', 'WATCH', 'WATCH', 'WATCH'],
        `one list only: ${requests.join(' | ')}`,
      );
      assert.match(requests[2] ?? '', /^WATCH resourceVersion=12&/, 'resumed from the last event seen before the reset');
      assert.match(requests[3] ?? '', /^WATCH resourceVersion=12&/, 'and again after the 503');
      assert.match(requests[4] ?? '', /^WATCH resourceVersion=12&/, 'and after the 403');
      assert.match(requests[5] ?? '', /^WATCH resourceVersion=13&/);
      assert.equal(watch.get('a')?.data, 'changed');
      assert.ok(watch.get('b'));
      const restarts = (await metrics.informerRestarts.get()).values;
      assert.ok(restarts.every((v) => v.value === 0), `no restart of any kind: ${JSON.stringify(restarts)}`);
    } finally {
      await watch.stop();
    }
  });

  it('keeps its indices in step with adds, moves between index values and deletes', async () => {
    server.requests.length = 0;
    server.pages = { '': { items: [obj('a', 1, 'x'), obj('b', 2, 'x')], resourceVersion: '2' } };
    let finish: () => void = () => undefined;
    server.watches = [
      (res) => {
        res.write(line('MODIFIED', obj('a', 3, 'y')));
        res.write(line('DELETED', obj('b', 4, 'x')));
        res.write(line('ADDED', obj('c', 5, 'y')));
        finish = () => res.end();
      },
    ];
    const watch = new ResourceWatch<Obj>({ name: 'indexed', api, path: '/api/v1/things', indexers: { data: (o) => [o.data ?? ''] }, logger: pino({ level: 'silent' }), metrics: new Metrics() });
    try {
      await watch.start();
      assert.deepEqual(watch.byIndex('data', 'x').map((o) => o.metadata.name).sort(), ['a', 'b']);
      await until('the watch events', () => watch.get('c') !== undefined);
      assert.deepEqual(watch.byIndex('data', 'x'), []);
      assert.deepEqual(watch.byIndex('data', 'y').map((o) => o.metadata.name).sort(), ['a', 'c']);
      assert.throws(() => watch.byIndex('nope', 'x'), /no index named nope/);
    } finally {
      finish();
      await watch.stop();
    }
  });
});
