import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Metrics } from './metrics.ts';
import { startHttpServer, type HttpServer } from './server.ts';

describe('http server', () => {
  const state = { healthy: true, ready: false };
  const metrics = new Metrics();
  let server: HttpServer;
  let base: string;

  before(async () => {
    server = await startHttpServer({
      port: 0,
      host: '127.0.0.1',
      metrics,
      healthy: () => state.healthy,
      ready: () => state.ready,
      logger: pino({ level: 'silent' }),
    });
    base = `http://127.0.0.1:${server.port}`;
  });
  after(() => server.close());

  it('picks a free port when asked for port 0', () => {
    assert.ok(server.port > 0);
  });

  it('answers /healthz with 200 ok while healthy and 503 otherwise', async () => {
    state.healthy = true;
    const ok = await fetch(`${base}/healthz`);
    assert.equal(ok.status, 200);
    assert.equal((await ok.text()).trim(), 'ok');
    state.healthy = false;
    const bad = await fetch(`${base}/healthz`);
    assert.equal(bad.status, 503);
    assert.match(await bad.text(), /unhealthy/);
    state.healthy = true;
  });

  it('answers /readyz with 503 and a reason until ready, then 200', async () => {
    state.ready = false;
    const notReady = await fetch(`${base}/readyz`);
    assert.equal(notReady.status, 503);
    assert.match(await notReady.text(), /not ready/);
    state.ready = true;
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal((await ready.text()).trim(), 'ok');
  });

  it('serves the instruments in Prometheus text format on /metrics', async () => {
    metrics.reconcileTotal.inc({ controller: 'workloadidentity', result: 'success' });
    metrics.cloudApiCalls.inc({ cloud: 'aws', operation: 'CreateRole', code: '200' });
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    assert.match(body, /^keyless_reconcile_total\{controller="workloadidentity",result="success"\} 1$/m);
    assert.match(body, /^keyless_cloud_api_calls_total\{cloud="aws",operation="CreateRole",code="200"\} 1$/m);
    assert.match(body, /^# TYPE keyless_reconcile_duration_seconds histogram$/m);
    assert.match(body, /^keyless_leader 0$/m);
    assert.match(body, /^process_cpu_user_seconds_total /m, 'default process metrics');
  });

  it('answers unknown paths with 404 and other methods with 405', async () => {
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
  });
});

describe('Metrics', () => {
  it('registers every instrument under its documented name', async () => {
    const names = (await new Metrics().registry.getMetricsAsJSON()).map((m) => m.name);
    for (const name of [
      'keyless_reconcile_total',
      'keyless_reconcile_duration_seconds',
      'keyless_workqueue_depth',
      'keyless_workqueue_retries_total',
      'keyless_informer_restarts_total',
      'keyless_leader',
      'keyless_cloud_api_calls_total',
      'keyless_cloud_api_call_duration_seconds',
      'keyless_kubernetes_writes_total',
    ]) {
      assert.ok(names.includes(name), `${name} is registered`);
    }
  });

  it('keeps instances independent (one registry each)', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.isLeader.set(1);
    assert.equal((await b.isLeader.get()).values[0]?.value, 0);
  });
});
