import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// Labels carry only bounded, non-secret values: controller names and result classes. Never key
// ids, error texts or object names of tenants' secrets.

/**
 * How often the event loop's delay is sampled (the nodejs_eventloop_lag_* metrics). prom-client's
 * default, 10 ms, woke an idle process 100 times a second: 6.5 ms of CPU per second, most of what a
 * controller with no work spent (0.8 of its 1.3 core-seconds per 2 minutes). Every 100 ms costs
 * 0.8 ms per second and still records every stall longer than 100 ms.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

export function createRegistry(defaults = true, eventLoopSampleMs = EVENT_LOOP_SAMPLE_MS): Registry {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: eventLoopSampleMs });
  return registry;
}

export interface ControllerMetrics {
  reconciles: Counter<'controller' | 'result'>;
  reconcileDuration: Histogram<'controller'>;
  queueDepth: Gauge<'controller'>;
  /** Fairness: namespaces with keys waiting, and the most keys one namespace has waiting (no names: tenants stay private). */
  queueNamespaces: Gauge<'controller'>;
  queueLargestNamespace: Gauge<'controller'>;
  isLeader: Gauge<'lease'>;
}

const cache = new WeakMap<Registry, ControllerMetrics>();

export function controllerMetrics(registry: Registry): ControllerMetrics {
  const existing = cache.get(registry);
  if (existing) return existing;
  const metrics: ControllerMetrics = {
    reconciles: new Counter({
      name: 'kdc_reconcile_total',
      help: 'Reconciles by controller and result (success, error, requeue)',
      labelNames: ['controller', 'result'],
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: 'kdc_reconcile_duration_seconds',
      help: 'Reconcile duration',
      labelNames: ['controller'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'kdc_workqueue_depth',
      help: 'Keys waiting in the work queue',
      labelNames: ['controller'],
      registers: [registry],
    }),
    queueNamespaces: new Gauge({
      name: 'kdc_workqueue_waiting_namespaces',
      help: 'Namespaces with keys waiting (served round-robin)',
      labelNames: ['controller'],
      registers: [registry],
    }),
    queueLargestNamespace: new Gauge({
      name: 'kdc_workqueue_largest_namespace_depth',
      help: 'Keys waiting from the namespace with the most: one tenant that keeps the queue busy shows here',
      labelNames: ['controller'],
      registers: [registry],
    }),
    isLeader: new Gauge({
      name: 'kdc_leader',
      help: '1 while this instance holds the lease',
      labelNames: ['lease'],
      registers: [registry],
    }),
  };
  cache.set(registry, metrics);
  return metrics;
}

/**
 * The resource a Kubernetes API path names, with its subresource ("kmskeys/status"): bounded,
 * unlike the path (namespaces and object names stay out of the labels).
 */
export function kubeResourceOfPath(path: string): string {
  const parts = path.split('?')[0]!.split('/').filter(Boolean);
  let rest = parts[0] === 'api' ? parts.slice(2) : parts[0] === 'apis' ? parts.slice(3) : [];
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  if (rest.length === 0) return 'other';
  return rest[2] ? `${rest[0]}/${rest[2]}` : rest[0]!;
}

/** kdc_kube_requests_total, as client-go's rest_client_requests_total: what a controller costs the apiserver. */
export function countKubeRequests(
  kube: { onResponse?: (method: string, path: string, status: number) => void },
  registry: Registry,
): void {
  const requests = new Counter({
    name: 'kdc_kube_requests_total',
    help: 'Kubernetes API requests by method, resource and status code (0: no answer)',
    labelNames: ['method', 'resource', 'code'],
    registers: [registry],
  });
  kube.onResponse = (method, path, status) =>
    requests.inc({ method, resource: kubeResourceOfPath(path), code: String(status) });
}

/** Serves /metrics, /healthz and /readyz on a (loopback by default) port. */
export function serveMetrics(
  registry: Registry,
  options: { port: number; host?: string; ready?: () => boolean },
): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.setHeader('Content-Type', registry.contentType);
          res.end(text);
        },
        (error: unknown) => {
          res.statusCode = 500;
          res.end(`collecting metrics failed: ${(error as Error).message}`);
        },
      );
    } else if (req.url === '/healthz') {
      res.end('ok');
    } else if (req.url === '/readyz') {
      const ready = options.ready ? options.ready() : true;
      res.statusCode = ready ? 200 : 503;
      res.end(ready ? 'ok' : 'not ready');
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve(server));
  });
}

/**
 * `host:port`, `[v6]:port`, or `v6:port` as the chart writes it from the pod IP (`$(POD_IP):8080`):
 * the port is what follows the last colon.
 */
export function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  const port = Number(address.slice(at + 1));
  if (at <= 0 || !host || !/^\d{1,5}$/.test(address.slice(at + 1)) || port > 65535)
    throw new Error(`"${address}" is not host:port`);
  return { host, port };
}
