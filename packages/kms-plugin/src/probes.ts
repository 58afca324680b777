import { createServer, type Server } from 'node:http';
import type { KeyState } from './key-state.ts';

// The listener kubelet's probes and k8-manager reach over the pod network. It answers only what
// they need: liveness, readiness (healthz ok), and the Transit version behind the published
// key_id. Everything else (request rates, latencies, token TTL, error classes) stays on the
// loopback metrics port (SPEC 4).

export function serveProbes(state: Pick<KeyState, 'healthz' | 'current'>, options: { host: string; port: number }): Promise<Server> {
  const server = createServer((req, res) => {
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.statusCode = 405;
      return res.end();
    }
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz') return res.end('ok');
    if (path === '/readyz') {
      const ready = state.healthz() === 'ok';
      res.statusCode = ready ? 200 : 503;
      return res.end(ready ? 'ok' : 'not ready');
    }
    if (path === '/key-version') {
      const current = state.current;
      res.statusCode = current ? 200 : 503;
      return res.end(current ? `${current.version}\n` : 'no key yet\n');
    }
    res.statusCode = 404;
    res.end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve(server));
  });
}
