// ResourceWatch against the real API server: it sees adds, updates and deletes, and its watchdog recovers a
// watch whose TCP connection stops carrying bytes without being closed (a half-open connection, a wedged proxy).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import pino from 'pino';
import { ResourceWatch, objectKey } from '../../src/controller/informer.ts';
import type { KubeApi } from '../../src/kube/api.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { eventually, freshNamespace, kubeApi, kubeConfig } from '../support/cluster.ts';

const logger = pino({ level: process.env['KEYLESS_TEST_LOG_LEVEL'] ?? 'silent' });

/** `eventually` for a synchronous check of local state. */
function waitFor<T>(what: string, check: () => T | undefined, timeoutMs?: number): Promise<T> {
  return eventually(what, () => Promise.resolve(check()), timeoutMs);
}

function configMapWatch(api: KubeApi, namespace: string, metrics: Metrics, stallTimeoutMs?: number) {
  return new ResourceWatch<V1ConfigMap>({
    name: 'configmaps',
    api,
    path: `/api/v1/namespaces/${namespace}/configmaps`,
    ...(stallTimeoutMs === undefined ? {} : { stallTimeoutMs }),
    logger,
    metrics,
  });
}

/**
 * A TCP proxy on loopback in front of the API server. `freeze()` stops forwarding on every connection open at that
 * moment without closing it — to the client it looks exactly like a half-open connection; later connections work.
 */
class FreezableProxy {
  readonly #server: net.Server;
  readonly #pairs = new Set<[net.Socket, net.Socket]>();
  readonly #frozen: net.Socket[] = [];

  constructor(target: { host: string; port: number }) {
    this.#server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host);
      const pair: [net.Socket, net.Socket] = [client, upstream];
      this.#pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      const drop = () => {
        this.#pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** Returns how many connections were frozen. */
  freeze(): number {
    for (const [client, upstream] of this.#pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
      this.#frozen.push(client, upstream);
    }
    const frozen = this.#pairs.size;
    this.#pairs.clear(); // frozen connections are never forwarded again, whatever else happens
    return frozen;
  }

  /** Drops every open connection, as a restarting API server or load balancer would. */
  cut(): number {
    const cut = this.#pairs.size;
    for (const [client, upstream] of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    return cut;
  }

  async close(): Promise<void> {
    for (const [client, upstream] of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    for (const socket of this.#frozen) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** The operator's client reaching the API server through `port` on 127.0.0.1 (the server certificate covers 127.0.0.1). */
function viaPort(port: number): KubeApi {
  return kubeApi(`https://127.0.0.1:${port}`);
}

async function restarts(metrics: Metrics, reason: 'stall' | 'error' | 'expired'): Promise<number> {
  const values = (await metrics.informerRestarts.get()).values;
  return values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe('ResourceWatch', { timeout: 120_000 }, () => {
  const admin = kubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  let namespace: string;
  let deleteNamespace: () => Promise<void>;

  before(async () => {
    [namespace, deleteNamespace] = await freshNamespace(admin, 'informer');
  });
  after(() => deleteNamespace());

  it('lists existing objects, then sees adds, updates and deletes', async (t) => {
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'before' }, data: { v: '1' } } });
    const watch = configMapWatch(kubeApi(), namespace, new Metrics());
    t.after(() => watch.stop());
    const changed: string[] = [];
    const deleted: string[] = [];
    watch.onChange((cm) => changed.push(`${objectKey(cm)}=${cm.data?.['v']}`));
    watch.onDelete((cm) => deleted.push(objectKey(cm)));

    await watch.start();
    assert.equal(watch.synced, true);
    assert.equal(watch.get(`${namespace}/before`)?.data?.['v'], '1', 'the first list is in the cache when start resolves');
    assert.ok(changed.includes(`${namespace}/before=1`));

    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'a' }, data: { v: '1' } } });
    await waitFor('the add', () => (changed.includes(`${namespace}/a=1`) ? true : undefined));

    await core.replaceNamespacedConfigMap({ name: 'a', namespace, body: { metadata: { name: 'a' }, data: { v: '2' } } });
    await waitFor('the update', () => (changed.includes(`${namespace}/a=2`) ? true : undefined));
    assert.equal(watch.get(`${namespace}/a`)?.data?.['v'], '2');

    await core.deleteNamespacedConfigMap({ name: 'a', namespace });
    await waitFor('the delete', () => (deleted.includes(`${namespace}/a`) ? true : undefined));
    assert.equal(watch.get(`${namespace}/a`), undefined);
    assert.ok(watch.list().some((cm) => cm.metadata?.name === 'before'));
  });

  it('restarts a stalled watch through its watchdog and catches up', async (t) => {
    const cluster = admin.getCurrentCluster();
    assert.ok(cluster);
    const server = new URL(cluster.server);
    const proxy = new FreezableProxy({ host: server.hostname, port: Number(server.port) });
    const api = viaPort(await proxy.listen());
    const metrics = new Metrics();
    const watch = configMapWatch(api, namespace, metrics, 1500);
    // Control: the same watch through the same proxy, with the default (minutes-long) stall timeout.
    const control = configMapWatch(api, namespace, new Metrics());
    t.after(async () => {
      await watch.stop();
      await control.stop();
      await proxy.close();
    });
    await Promise.all([watch.start(), control.start()]);

    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'warm-up' } } });
    await waitFor('both watches to be live', () =>
      watch.get(`${namespace}/warm-up`) && control.get(`${namespace}/warm-up`) ? true : undefined,
    );

    assert.ok(proxy.freeze() > 0, 'the watch connections were open when frozen');
    const stallsBefore = await restarts(metrics, 'stall');
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'during-stall' } } });

    // 20 s is generous for a 1.5 s watchdog; without it the frozen watch never notices.
    await waitFor('the object created during the stall', () => watch.get(`${namespace}/during-stall`), 20_000);
    assert.ok((await restarts(metrics, 'stall')) > stallsBefore, 'the watchdog restarted the informer');
    assert.equal(control.get(`${namespace}/during-stall`), undefined, 'without the watchdog the frozen watch is still blind');
  });

  it('reports an object deleted during a stall as deleted once the relist misses it', async (t) => {
    const cluster = admin.getCurrentCluster();
    assert.ok(cluster);
    const server = new URL(cluster.server);
    const proxy = new FreezableProxy({ host: server.hostname, port: Number(server.port) });
    const api = viaPort(await proxy.listen());
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'doomed' } } });
    const watch = configMapWatch(api, namespace, new Metrics(), 1500);
    t.after(async () => {
      await watch.stop();
      await proxy.close();
    });
    const deleted: string[] = [];
    watch.onDelete((cm) => deleted.push(objectKey(cm)));
    await watch.start();
    assert.ok(watch.get(`${namespace}/doomed`));
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'canary' } } });
    await waitFor('the watch to be live', () => watch.get(`${namespace}/canary`));

    assert.ok(proxy.freeze() > 0, 'the watch connection was open when frozen');
    await core.deleteNamespacedConfigMap({ name: 'doomed', namespace });
    await waitFor('the delete seen after the relist', () =>
      deleted.includes(`${namespace}/doomed`) ? true : undefined,
    20_000);
    assert.equal(watch.get(`${namespace}/doomed`), undefined);
  });

  it('resumes the watch from its last resourceVersion after the connection is cut, and catches up without a relist', async (t) => {
    const cluster = admin.getCurrentCluster();
    assert.ok(cluster);
    const server = new URL(cluster.server);
    const proxy = new FreezableProxy({ host: server.hostname, port: Number(server.port) });
    const api = viaPort(await proxy.listen());
    const metrics = new Metrics();
    const watch = configMapWatch(api, namespace, metrics);
    t.after(async () => {
      await watch.stop();
      await proxy.close();
    });
    await watch.start();
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'before-cut' } } });
    await waitFor('the watch to be live', () => watch.get(`${namespace}/before-cut`));

    assert.ok(proxy.cut() > 0, 'the watch connection was open when cut');
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'after-cut' } } });
    await waitFor('the object created after the cut', () => watch.get(`${namespace}/after-cut`));
    // As client-go's reflector: a cut connection is not a reason to list everything again (informer.ts).
    assert.equal(await restarts(metrics, 'error'), 0, 'the cut watch was resumed, not restarted with a fresh list');
    assert.equal(await restarts(metrics, 'expired'), 0);
  });
});
