import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type * as PerfHooks from 'node:perf_hooks';
import { describe, expect, it, vi } from 'vitest';
import { createLogger } from './log.ts';
import {
  EVENT_LOOP_SAMPLE_MS,
  countKubeRequests,
  createRegistry,
  kubeResourceOfPath,
  serveMetrics,
  splitHostPort,
} from './metrics.ts';
import { Controller } from './runtime/controller.ts';

describe('controller metrics', () => {
  it('counts reconciles by result and serves them with health endpoints', async () => {
    const registry = createRegistry(false);
    let badAttempts = 0;
    const controller = new Controller({
      name: 'metrics-test',
      logger: createLogger('t', { level: 'silent' }),
      registry,
      backoff: { baseDelayMs: 1, maxDelayMs: 5 },
      reconcile: async (key) => {
        if (key === 'bad' && ++badAttempts < 3) throw new Error('boom');
        return key === 'later' ? { requeueAfterMs: 60_000 } : undefined;
      },
    });
    controller.start();
    controller.enqueue('good');
    controller.enqueue('later');
    controller.enqueue('bad');
    await new Promise((r) => setTimeout(r, 200));
    await controller.stop();

    let ready = false;
    const server = await serveMetrics(registry, { port: 0, ready: () => ready });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/kdc_reconcile_total\{controller="metrics-test",result="success"\} 2/);
    expect(text).toMatch(/kdc_reconcile_total\{controller="metrics-test",result="requeue"\} 1/);
    expect(text).toMatch(/kdc_reconcile_total\{controller="metrics-test",result="error"\} 2/);
    expect(text).toContain('kdc_reconcile_duration_seconds_bucket');
    expect(text).toContain('kdc_workqueue_depth');
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    ready = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${base}/healthz`)).text()).toBe('ok');
    server.close();
  });
});

describe('splitHostPort', () => {
  it.each([
    ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }],
    ['10.244.1.7:8080', { host: '10.244.1.7', port: 8080 }],
    ['fd00:10:244::7:8080', { host: 'fd00:10:244::7', port: 8080 }],
    ['[fd00::7]:8080', { host: 'fd00::7', port: 8080 }],
    ['0.0.0.0:0', { host: '0.0.0.0', port: 0 }],
  ])('%s', (address, expected) => expect(splitHostPort(address)).toEqual(expected));

  it.each(['8080', ':8080', '$(POD_IP):', 'host:http', 'host:70000'])('refuses %j', (address) =>
    expect(() => splitHostPort(address)).toThrow(/is not host:port/),
  );
});

describe('Kubernetes request metrics', () => {
  it.each([
    ['/api/v1/namespaces/tenant-a/secrets/db', 'secrets'],
    ['/api/v1/namespaces/tenant-a', 'namespaces'],
    ['/api/v1/namespaces', 'namespaces'],
    ['/apis/kdc.io/v1alpha1/namespaces/t/kmskeys/k/status', 'kmskeys/status'],
    ['/apis/kdc.io/v1alpha1/namespaces/t/kmskeys', 'kmskeys'],
    ['/apis/kdc.io/v1alpha1/kdcclusters?watch=true', 'kdcclusters'],
    ['/apis/coordination.k8s.io/v1/namespaces/kube-dc-system/leases/x', 'leases'],
    ['/readyz', 'other'],
  ])('%s counts as %s (no namespace or object name in a label)', (path, resource) => {
    expect(kubeResourceOfPath(path)).toBe(resource);
  });

  it('counts each answer by method, resource and code', async () => {
    const registry = createRegistry(false);
    const kube: { onResponse?: (method: string, path: string, status: number) => void } = {};
    countKubeRequests(kube, registry);
    kube.onResponse!('PATCH', '/apis/kdc.io/v1alpha1/namespaces/t/kmskeys/k/status', 200);
    kube.onResponse!('PATCH', '/apis/kdc.io/v1alpha1/namespaces/u/kmskeys/j/status', 200);
    kube.onResponse!('GET', '/api/v1/namespaces/t/secrets/s', 0);
    const text = await registry.metrics();
    expect(text).toContain('kdc_kube_requests_total{method="PATCH",resource="kmskeys/status",code="200"} 2');
    expect(text).toContain('kdc_kube_requests_total{method="GET",resource="secrets",code="0"} 1');
  });
});

describe('default metrics', () => {
  it('sample the event loop every 100 ms, not every 10 ms (100 wake-ups a second of an idle process)', async () => {
    // prom-client takes perf_hooks through require, at the moment it registers its collectors.
    const perfHooks = createRequire(import.meta.url)('node:perf_hooks') as typeof PerfHooks;
    const monitor = vi.spyOn(perfHooks, 'monitorEventLoopDelay');
    try {
      const registry = createRegistry();
      const plugin = createRegistry(true, 1000);
      expect(monitor.mock.calls.map(([options]) => options?.resolution)).toEqual([EVENT_LOOP_SAMPLE_MS, 1000]);
      expect(EVENT_LOOP_SAMPLE_MS).toBe(100);
      expect(await registry.getSingleMetricAsString('nodejs_eventloop_lag_p99_seconds')).toMatch(/^# HELP/);
      for (const r of [registry, plugin]) r.clear();
    } finally {
      monitor.mockRestore();
    }
  });
});
